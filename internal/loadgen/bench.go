package loadgen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/featurestore"
	"github.com/leadscorer/leadscorer/internal/kafkastack"
	"github.com/leadscorer/leadscorer/internal/process"
	"github.com/leadscorer/leadscorer/internal/rediskeys"
	"github.com/leadscorer/leadscorer/internal/sandbox"
	"github.com/leadscorer/leadscorer/internal/synth"
	"github.com/leadscorer/leadscorer/schemas"
)

// BenchOptions configures Bench.
type BenchOptions struct {
	// DevBin is the leadscorer-dev binary that runs the sandbox and the
	// broker ceiling's pass-through consumer.
	DevBin string
	// Kafka is "sandbox" (default: a fresh kfake process per run) or "real":
	// an Apache Kafka cluster of Brokers brokers (default 1) started with
	// StackScript in StackDir for the whole benchmark, each run on topics,
	// a group and transactional ids of its own. On a real cluster the
	// broker's own ceiling is measured too, with Kafka's ProducerPerformance
	// and ConsumerPerformance from the jars in KafkaLibs (default: the
	// stack's cache).
	Kafka                 string
	Brokers               int
	StackScript, StackDir string
	KafkaLibs             string
	// ScorerBin is the leadscorer binary whose "run" is measured (this
	// build's, or an older one to compare). Required.
	ScorerBin string
	// ScorerArgs are extra flags of "run".
	ScorerArgs []string
	// RedisURL is the Redis the features are loaded into and read from.
	RedisURL string
	// Prefix of the feature store's keys; removed at the end unless
	// KeepRedis.
	Prefix    string
	KeepRedis bool
	// Registry is the model registry file the scorer loads.
	Registry string
	// Advisors in the synthetic population (100,000 in the issue).
	Advisors int
	// SaturationEvents is the backlog scored as fast as possible.
	SaturationEvents int
	// Rates are the fixed offered rates of the latency runs, each for
	// RateDuration; latencies of the first second are not counted.
	Rates        []float64
	RateDuration time.Duration
	// Scorers are the numbers of scorer processes to measure.
	Scorers []int
	// Partitions of the input topic.
	Partitions int
	// SkipCeiling leaves out the pass-through run.
	SkipCeiling bool
	// ProfileDir, when set, receives CPU and allocation profiles of one
	// scorer under load (the scorer must serve net/http/pprof at
	// LEADSCORER_PPROF_ADDR): scorer-cpu[-memo].pprof over the whole
	// saturation drain, whose samples are then all the scorer's CPU for
	// the backlog's events (scripts/profile-stages.py makes the per-stage
	// table of it), and scorer-cpu-at-<rate>[-memo].pprof at the highest
	// fixed rate.
	ProfileDir string
	// Shape is the load: ShapeCDC (default: change events of the CDC
	// simulation's mix and key spread, scored as input_format
	// salesforce-cdc, spread over the partitions by key) or ShapeZipf
	// (LeadChanged records, Zipf-spread keys: the benchmark before).
	Shape string
	// ProfileSeconds is how long the drain's CPU profile lasts (default
	// 30): longer than the drain, or its end is not sampled.
	ProfileSeconds int
	// Memo lists the score_memo settings to measure every figure with;
	// default off, then on. The keys of a run with the memo on end in
	// _memo; the others are the headline.
	Memo []bool
	// Out receives the key=value lines, Log the progress.
	Out, Log io.Writer
}

func (o *BenchOptions) defaults() {
	if o.RedisURL == "" {
		o.RedisURL = "redis://127.0.0.1:6379/0"
	}
	if o.Prefix == "" {
		o.Prefix = "leadscorer-bench:"
	}
	if o.Registry == "" {
		o.Registry = "models/registry.json"
	}
	if o.Advisors == 0 {
		o.Advisors = 100_000
	}
	if o.SaturationEvents == 0 {
		o.SaturationEvents = 400_000
	}
	if o.Rates == nil {
		o.Rates = []float64{5000, 20000, 50000}
	}
	if o.RateDuration == 0 {
		o.RateDuration = 10 * time.Second
	}
	if len(o.Scorers) == 0 {
		o.Scorers = []int{1, 2}
	}
	if o.Partitions == 0 {
		o.Partitions = 6
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Kafka == "" {
		o.Kafka = "sandbox"
	}
	if o.Brokers == 0 {
		o.Brokers = 1
	}
	if o.KafkaLibs == "" {
		o.KafkaLibs = filepath.Join(kafkastack.CacheDir(), "libs")
	}
	if o.Shape == "" {
		o.Shape = ShapeCDC
	}
	if o.ProfileSeconds == 0 {
		o.ProfileSeconds = 30
	}
	if len(o.Memo) == 0 {
		o.Memo = []bool{false, true}
	}
}

const (
	benchGroup = "leadscorer"
	topicIn    = "leads.changed.v1"
	topicSfdc  = "leads.scored.sfdc.v1"
	topicShad  = "leads.scored.shadow.v1"
	topicDLQ   = "leads.dlq.v1"
	// Change events only.
	topicOutcomes = "leads.outcomes.v1"
	topicRefresh  = "leads.refresh.v1"
)

// Bench runs the end-to-end benchmark and writes one key=value line per
// figure to opts.Out (see docs/BENCHMARKS.md for each key).
func Bench(ctx context.Context, opts BenchOptions) error {
	opts.defaults()
	put := func(k string, v any) {
		switch x := v.(type) {
		case float64:
			fmt.Fprintf(opts.Out, "%s=%s\n", k, strconv.FormatFloat(x, 'f', fmtDigits(x), 64))
		default:
			fmt.Fprintf(opts.Out, "%s=%v\n", k, v)
		}
	}
	pop, err := synth.Generate(synth.Options{Advisors: opts.Advisors})
	if err != nil {
		return err
	}
	leads := LeadsOf(pop)
	ropt, err := redis.ParseURL(opts.RedisURL)
	if err != nil {
		return fmt.Errorf("bench: redis url: %w", err)
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	fmt.Fprintf(opts.Log, "loading %d advisors and %d firms into Redis under %q\n", len(pop.Advisors), len(pop.Firms), opts.Prefix)
	store := featurestore.New(rdb, opts.Prefix, nil)
	if err := store.PutFirms(ctx, pop.Firms); err != nil {
		return err
	}
	if err := store.PutAdvisors(ctx, pop.Advisors); err != nil {
		return err
	}
	if !opts.KeepRedis {
		defer func() { _ = rediskeys.DeletePrefix(context.WithoutCancel(ctx), rdb, opts.Prefix) }()
	}
	b := &bench{opts: opts, rdb: rdb, leads: leads, runID: strconv.FormatInt(time.Now().Unix(), 36)}
	switch opts.Kafka {
	case "sandbox":
		put("kafka", "kfake")
		put("brokers", 1)
	case "real":
		if opts.StackScript == "" || opts.StackDir == "" {
			return errors.New("bench: a real cluster needs StackScript and StackDir")
		}
		fmt.Fprintf(opts.Log, "starting a %d-broker Apache Kafka cluster (%s, run folder %s)\n", opts.Brokers, opts.StackScript, opts.StackDir)
		st, err := kafkastack.Up(ctx, kafkastack.Options{Script: opts.StackScript, Dir: opts.StackDir, Brokers: opts.Brokers, Log: opts.Log})
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer func() {
			if err := st.Down(); err != nil {
				fmt.Fprintf(opts.Log, "bench: %v\n", err)
			}
		}()
		b.cluster = st
		adm, closeAdm, err := kafkastack.NewAdmin(st.Brokers)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err = kafkastack.WarmCoordinators(wctx, adm)
		cancel()
		closeAdm()
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		v, err := kafkastack.Version(opts.KafkaLibs)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		put("kafka", "apache-"+v)
		put("brokers", opts.Brokers)
	default:
		return fmt.Errorf("bench: Kafka %q: sandbox or real", opts.Kafka)
	}
	input := config.InputSalesforceCDC
	switch opts.Shape {
	case ShapeCDC:
	case ShapeZipf:
		input = config.InputLeadChanged
	default:
		return fmt.Errorf("bench: shape %q: want %s or %s", opts.Shape, ShapeCDC, ShapeZipf)
	}
	put("shape", opts.Shape)
	put("input_format", input)
	put("advisors", opts.Advisors)
	put("leads", len(leads))
	put("partitions", opts.Partitions)

	ceiling := 0.0
	if !opts.SkipCeiling {
		r, err := b.saturation(ctx, 1, true)
		if err != nil {
			return fmt.Errorf("bench: broker ceiling: %w", err)
		}
		ceiling = r.eps
		put("broker_ceiling_eps", r.eps)
		// What the pass-through's client costs: about what Kafka costs
		// the scorer, which fetches, produces and commits the same way.
		put("broker_ceiling_cpu_us_per_event", r.cpuPerEvent)
		put("broker_ceiling_machine_cores_busy", r.machineCores)
		if !math.IsNaN(r.brokerCPUPerEvent) {
			put("broker_ceiling_broker_cpu_us_per_event", r.brokerCPUPerEvent)
		}
		if b.cluster != nil {
			pr, err := b.kafkaPerf(ctx)
			if err != nil {
				return fmt.Errorf("bench: Kafka's perf tools: %w", err)
			}
			put("kafka_perf_record_bytes", pr.recordBytes)
			put("kafka_producer_perf_rps", pr.producer)
			put("kafka_consumer_perf_rps", pr.consumer)
			put("kafka_consumer_perf_fetch_rps", pr.consumerFetch)
		}
	}
	for _, n := range opts.Scorers {
		for _, memo := range opts.Memo {
			b.memo = memo
			sfx := ""
			if n != 1 {
				sfx = "_" + strconv.Itoa(n) + "proc"
			}
			if memo {
				sfx += "_memo"
			}
			r, err := b.saturation(ctx, n, false)
			if err != nil {
				return fmt.Errorf("bench: saturation with %d scorers (score_memo %v): %w", n, memo, err)
			}
			put("throughput_eps"+sfx, r.eps)
			if ceiling > 0 {
				put("ratio_to_ceiling"+sfx, r.eps/ceiling)
			}
			put("scorer_cpu_us_per_event"+sfx, r.cpuPerEvent)
			put("scorer_cores"+sfx, r.cpuPerEvent*r.eps/1e6)
			put("machine_cores_busy"+sfx, r.machineCores)
			if !math.IsNaN(r.brokerCPUPerEvent) {
				put("broker_cpu_us_per_event"+sfx, r.brokerCPUPerEvent)
			}
			put("redis_cpu_us_per_event"+sfx, r.redisCPUPerEvent)
			put("redis_bytes_out_per_event"+sfx, r.redisOutPerEvent)
			if r.stageUS != nil {
				for _, st := range append(batchStages, "outside") {
					put("batch_us_per_event_"+st+sfx, r.stageUS[st])
				}
			}
			put("scorer_rss_mb"+sfx, r.rssMB)
			put("redis_roundtrips_per_event"+sfx, r.redisPerEvent)
			put("sink_records_per_event"+sfx, r.sinkPerEvent)
			put("scored_per_event"+sfx, r.scoredPerEvent)
			if memo {
				put("score_memo_hit_rate"+sfx, r.memoHitRate)
			}
			for i, rate := range opts.Rates {
				profile := opts.ProfileDir != "" && n == 1 && i == len(opts.Rates)-1
				lr, err := b.latency(ctx, n, rate, profile)
				if err != nil {
					return fmt.Errorf("bench: %d scorers at %.0f events/s (score_memo %v): %w", n, rate, memo, err)
				}
				k := rateKey(rate) + sfx
				put("p50_ms_at_"+k, lr.p50)
				put("p99_ms_at_"+k, lr.p99)
				put("p999_ms_at_"+k, lr.p999)
				put("visible_p99_ms_at_"+k, lr.visibleP99)
				put("achieved_eps_at_"+k, lr.achieved)
				put("scorer_cpu_us_per_event_at_"+k, lr.cpuPerEvent)
				put("scorer_rss_mb_at_"+k, lr.rssMB)
				put("machine_cores_busy_at_"+k, lr.machineCores)
				if !math.IsNaN(lr.brokerCPU) {
					put("broker_cpu_us_per_event_at_"+k, lr.brokerCPU)
				}
				put("redis_cpu_us_per_event_at_"+k, lr.redisCPU)
				put("loadgen_cpu_us_per_event_at_"+k, lr.harnessCPU)
				if !math.IsNaN(lr.topUpShare) {
					put("top_up_share_at_"+k, lr.topUpShare)
				}
				if lr.batchMS != nil {
					put("batch_records_at_"+k, lr.batchRecords)
					for _, st := range append(batchStages, "total") {
						put("batch_ms_"+st+"_at_"+k, lr.batchMS[st])
					}
				}
				if memo {
					put("score_memo_hit_rate_at_"+k, lr.memoHitRate)
				}
			}
		}
	}
	return nil
}

func fmtDigits(x float64) int {
	switch a := math.Abs(x); {
	case a >= 1000:
		return 0
	case a >= 10:
		return 1
	case a >= 0.1:
		return 2
	}
	return 5
}

func rateKey(r float64) string {
	if r >= 1000 && math.Mod(r, 1000) == 0 {
		return strconv.Itoa(int(r/1000)) + "k"
	}
	return strconv.Itoa(int(r))
}

type bench struct {
	opts  BenchOptions
	rdb   *redis.Client
	leads []Lead
	// cluster is the real Kafka cluster (nil on the sandbox); runID and
	// runs name each run's topics, group and transactional ids on it.
	cluster *kafkastack.Stack
	runID   string
	runs    int
	memo    bool // score_memo of the scorers started next
}

// cdc reports whether the load is change events.
func (b *bench) cdc() bool { return b.opts.Shape == ShapeCDC }

// load is the generator's options for the bench's shape.
func (b *bench) load(s *stack, o Options) Options {
	o.Brokers, o.Topic, o.Codec, o.Leads = s.brokers, s.topics.In, s.codec, b.leads
	o.Shape, o.Format = b.opts.Shape, config.InputLeadChanged
	if b.cdc() {
		o.Format, o.SpreadPartitions = config.InputSalesforceCDC, true
	}
	return o
}

// benchTopics are a run's topics.
type benchTopics struct{ In, Sfdc, Shadow, DLQ, Outcomes, Refresh string }

// stack is one sandbox (or a run's topics on the real cluster) and the
// consumers under test.
type stack struct {
	sandbox *child
	topics  benchTopics
	group   string
	real    bool
	brokers []string
	srURL   string
	codec   *schemas.Codec
	cl      *kgo.Client
	adm     *kadm.Client
	procs   []*child
}

func (s *stack) close() {
	for _, p := range s.procs {
		p.Stop(30 * time.Second)
	}
	if s.real && s.adm != nil {
		// The cluster outlives the run: its topics go.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = kafkastack.DeleteTopics(ctx, s.adm, s.topics.In, s.topics.Sfdc, s.topics.Shadow, s.topics.DLQ)
		cancel()
	}
	if s.cl != nil {
		s.cl.Close()
	}
	if s.sandbox != nil {
		s.sandbox.Stop(10 * time.Second)
	}
}

// up starts a fresh sandbox and n consumers: scorers, or pass-through
// consumers when ceiling. It returns once every partition is assigned.
func (b *bench) up(ctx context.Context, n int, ceiling bool) (*stack, error) {
	// Fresh sink and Lead states: every run starts with the quota guard
	// empty and knows no Lead (the same events again would be
	// duplicates).
	for _, k := range []string{"sink:", "lead:"} {
		if err := rediskeys.DeletePrefix(ctx, b.rdb, b.opts.Prefix+k); err != nil {
			return nil, err
		}
	}
	s := &stack{topics: benchTopics{In: topicIn, Sfdc: topicSfdc, Shadow: topicShad, DLQ: topicDLQ,
		Outcomes: topicOutcomes, Refresh: topicRefresh}, group: benchGroup}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if b.cluster == nil {
		kport, err := process.FreePort()
		if err != nil {
			return nil, err
		}
		srport, err := process.FreePort()
		if err != nil {
			return nil, err
		}
		s.brokers, s.srURL = []string{"127.0.0.1:" + strconv.Itoa(kport)}, "http://127.0.0.1:"+strconv.Itoa(srport)
		s.sandbox, err = startProcess("sandbox", b.opts.DevBin, []string{"sandbox", "--data-dir", "",
			"--kafka-port", strconv.Itoa(kport), "--registry-addr", "127.0.0.1:" + strconv.Itoa(srport),
			"--partitions", strconv.Itoa(b.opts.Partitions)}, nil, "")
		if err != nil {
			return nil, err
		}
		if err := process.WaitTCP(wctx, s.brokers[0]); err != nil {
			return nil, err
		}
		if err := process.WaitTCP(wctx, "127.0.0.1:"+strconv.Itoa(srport)); err != nil {
			return nil, err
		}
	} else {
		// A run of its own on the cluster: fresh topics, group and ids.
		b.runs++
		s.real, s.group = true, fmt.Sprintf("bench-%s-%d", b.runID, b.runs)
		p := s.group + "."
		s.topics = benchTopics{In: p + topicIn, Sfdc: p + topicSfdc, Shadow: p + topicShad, DLQ: p + topicDLQ,
			Outcomes: p + topicOutcomes, Refresh: p + topicRefresh}
		s.brokers, s.srURL = b.cluster.Brokers, b.cluster.Registry
	}
	srcl, err := sr.NewClient(sr.URLs(s.srURL))
	if err != nil {
		return nil, err
	}
	topics := schemas.Topics{LeadChanged: s.topics.In, Sfdc: s.topics.Sfdc, Shadow: s.topics.Shadow}
	if b.cdc() { // as the connector registers it
		topics.LeadChanged, topics.ChangeEvents = "", s.topics.In
	}
	ids, err := schemas.Register(wctx, srcl, topics)
	if err != nil {
		return nil, err
	}
	s.codec = schemas.NewCodec(srcl, ids)
	if s.cl, err = kgo.NewClient(kgo.SeedBrokers(s.brokers...), kgo.MetadataMinAge(250*time.Millisecond)); err != nil {
		return nil, err
	}
	s.adm = kadm.NewClient(s.cl)
	if s.real {
		if err := b.createTopics(wctx, s); err != nil {
			return nil, err
		}
	}
	if b.cdc() && s.real {
		// The topics a scorer of change events writes besides the sink's
		// and the shadow's; the sandbox creates every declared topic.
		err := kafkastack.CreateTopics(wctx, s.adm, int16(min(b.opts.Brokers, 3)),
			kafkastack.Topic{Name: s.topics.Outcomes, Partitions: int32(b.opts.Partitions)},
			kafkastack.Topic{Name: s.topics.Refresh, Partitions: int32(b.opts.Partitions)})
		if err != nil {
			return nil, err
		}
	}
	var topicArgs []string
	if s.real { // the defaults on the sandbox, so that an older build runs too
		topicArgs = []string{"--topic-in", s.topics.In, "--topic-sfdc", s.topics.Sfdc, "--topic-shadow", s.topics.Shadow, "--topic-dlq", s.topics.DLQ}
		if b.cdc() {
			topicArgs = append(topicArgs, "--topic-outcomes", s.topics.Outcomes, "--topic-refresh", s.topics.Refresh)
		}
	}
	brokers := strings.Join(s.brokers, ",")
	for i := range n {
		var p *child
		txid := "bench-" + strconv.Itoa(i)
		if s.real {
			txid = s.group + "-" + strconv.Itoa(i)
		}
		if ceiling {
			p, err = startProcess("passthrough", b.opts.DevBin, []string{"loadgen", "passthrough",
				"--brokers", brokers, "--group", s.group, "--transactional-id", txid,
				"--topic-in", s.topics.In, "--topics-out", s.topics.Sfdc + "," + s.topics.Shadow}, nil, "")
		} else {
			hport, perr := process.FreePort()
			if perr != nil {
				return nil, perr
			}
			haddr := "127.0.0.1:" + strconv.Itoa(hport)
			var env []string
			if b.opts.ProfileDir != "" {
				env = append(env, "LEADSCORER_PPROF_ADDR="+haddr)
				pport, perr := process.FreePort()
				if perr != nil {
					return nil, perr
				}
				haddr = "127.0.0.1:" + strconv.Itoa(pport)
				env[0] = "LEADSCORER_PPROF_ADDR=" + haddr
			}
			// By the environment, which a build from before a setting
			// ignores: such a build scores LeadChanged records (the Zipf
			// shape) and memoises whatever score_memo says.
			input := config.InputLeadChanged
			if b.cdc() {
				input = config.InputSalesforceCDC
			}
			env = append(env, "LEADSCORER_INPUT_FORMAT="+input, "LEADSCORER_SCORE_MEMO="+strconv.FormatBool(b.memo))
			args := append(append([]string{"run", "--brokers", brokers, "--schema-registry", s.srURL,
				"--redis-url", b.opts.RedisURL, "--redis-prefix", b.opts.Prefix, "--registry", b.opts.Registry,
				"--transactional-id", txid, "--group", s.group, "--http-addr", haddr, "--log-level", "warn"},
				topicArgs...), b.opts.ScorerArgs...)
			if b.opts.ProfileDir != "" {
				// The metrics server keeps its own port; pprof is on haddr.
				mport, perr := process.FreePort()
				if perr != nil {
					return nil, perr
				}
				maddr := "127.0.0.1:" + strconv.Itoa(mport)
				args[slices.Index(args, "--http-addr")+1] = maddr
				p, err = startProcess("scorer", b.opts.ScorerBin, args, env, maddr)
				if err == nil {
					p.pprof = haddr
				}
			} else {
				p, err = startProcess("scorer", b.opts.ScorerBin, args, env, haddr)
			}
		}
		if err != nil {
			return nil, err
		}
		s.procs = append(s.procs, p)
	}
	if err := s.waitAssigned(ctx, n, b.opts.Partitions); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// waitAssigned waits until the group is stable with n members owning every
// input partition.
func (s *stack) waitAssigned(ctx context.Context, n, partitions int) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		for _, p := range s.procs {
			if p.Exited() {
				return fmt.Errorf("%s exited: %s", p.Name, p.log.String())
			}
		}
		gs, err := s.adm.DescribeGroups(ctx, s.group)
		if err == nil {
			g := gs[s.group]
			owned := 0
			for _, m := range g.Members {
				if a, ok := m.Assigned.AsConsumer(); ok {
					for _, t := range a.Topics {
						owned += len(t.Partitions)
					}
				}
			}
			if g.State == "Stable" && len(g.Members) == n && owned == partitions {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			var logs []string
			for _, p := range s.procs {
				logs = append(logs, p.Name+": "+p.log.String())
			}
			return fmt.Errorf("group never stable with %d members: %w; %s", n, ctx.Err(), strings.Join(logs, "; "))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// committed returns how many input records the group has committed.
func (s *stack) committed(ctx context.Context) (int64, error) {
	offs, err := s.adm.FetchOffsets(ctx, s.group)
	if err != nil {
		return 0, err
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == s.topics.In && o.At > 0 {
			n += o.At
		}
	})
	return n, nil
}

type usage struct {
	cpu    time.Duration
	redis  float64
	sink   float64
	scored float64
	// Score memo lookups and hits; NaN from a build without the metrics.
	memoLookups, memoHits float64
	// stages is the time the scorers' batches spent in each stage, in
	// seconds: the pipeline's (decode, enrich, score, save, committed) and
	// the transaction's (produce, commit); empty from a build without them.
	stages map[string]float64
	// batches is how many batches the scorers committed; 0 from a build
	// without the metric.
	batches uint64
	// topUp is the records batches took from the fetch they waited for
	// after their poll (batch_top_up_wait); NaN from a build without it.
	topUp float64
}

// batchStages are the stages of a batch the scorers time, in their order.
var batchStages = []string{"decode", "enrich", "score", "save", "produce", "commit", "committed"}

// hitRate is the memo's hit rate between u0 and u.
func (u usage) hitRate(u0 usage) float64 {
	return (u.memoHits - u0.memoHits) / (u.memoLookups - u0.memoLookups)
}

func (s *stack) usage(ctx context.Context) (usage, error) {
	var u usage
	for _, p := range s.procs {
		c, err := p.CPU()
		if err != nil {
			return u, err
		}
		u.cpu += c
		if p.http != "" {
			r, err := p.metric(ctx, "leadscorer_redis_roundtrips_total")
			if err != nil {
				return u, err
			}
			k, err := p.metric(ctx, "leadscorer_sink_records_total")
			if err != nil {
				return u, err
			}
			sc, err := p.metric(ctx, "leadscorer_events_scored_total")
			if err != nil {
				return u, err
			}
			u.redis += r
			u.sink += k
			u.scored += sc
			for _, m := range []struct {
				name string
				v    *float64
			}{{"leadscorer_score_memo_lookups_total", &u.memoLookups}, {"leadscorer_score_memo_hits_total", &u.memoHits}} {
				x, err := p.metric(ctx, m.name)
				if err != nil {
					x = math.NaN() // an older build: no memo metrics
				}
				*m.v += x
			}
			for _, h := range []string{"leadscorer_stage_duration_seconds", "leadscorer_kafka_transaction_stage_seconds"} {
				sums, err := process.HistogramSums(ctx, p.http, h, "stage")
				if errors.Is(err, process.ErrNotExported) {
					continue // an older build, or no batch yet
				}
				if err != nil {
					return u, err
				}
				if u.stages == nil {
					u.stages = map[string]float64{}
				}
				for k, v := range sums {
					u.stages[k] += v
				}
			}
			nb, err := process.HistogramCount(ctx, p.http, "leadscorer_batch_records")
			if err != nil && !errors.Is(err, process.ErrNotExported) {
				return u, err
			}
			u.batches += nb
			tu, err := p.metric(ctx, "leadscorer_kafka_top_up_records_total")
			if err != nil {
				tu = math.NaN() // an older build
			}
			u.topUp += tu
		}
	}
	return u, nil
}

func (s *stack) peakRSSMB() (float64, error) {
	var peak int64
	for _, p := range s.procs {
		r, err := p.PeakRSS()
		if err != nil {
			return 0, err
		}
		peak = max(peak, r)
	}
	return float64(peak) / (1 << 20), nil
}

type satResult struct {
	eps, cpuPerEvent, rssMB, redisPerEvent, sinkPerEvent, scoredPerEvent, memoHitRate float64
	// stageUS is the scorers' batch time per event in each stage, in
	// microseconds, and "outside" what their wall time has beyond the
	// stages (waiting for records, beginning the transaction); nil when
	// the build does not time its stages.
	stageUS map[string]float64
	// What the rest of the machine spent on the drain: the cores busy
	// (every process), the broker's CPU per event (the sandbox's kfake
	// process; NaN on a real cluster) and the Redis server's (the whole
	// server's, whoever else uses it).
	machineCores, brokerCPUPerEvent, redisCPUPerEvent float64
	// redisOutPerEvent is the bytes Redis sent its clients per event.
	redisOutPerEvent float64
}

// machineUse is the CPU used so far by the machine (every core), the
// sandbox broker (zero on a real cluster) and the Redis server, and the
// bytes the Redis server has sent its clients.
type machineUse struct {
	// busy is the machine's; harness the bench process's own (the load
	// generator and the readers of the outputs).
	busy, broker, redis, harness time.Duration
	redisOut                     float64
}

// perEvent is m's CPU since m0 in microseconds per event.
func (m machineUse) perEvent(m0 machineUse, events int64) (broker, redis, harness float64) {
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(events) }
	return us(m.broker - m0.broker), us(m.redis - m0.redis), us(m.harness - m0.harness)
}

func (b *bench) machine(ctx context.Context, s *stack) (machineUse, error) {
	var m machineUse
	var err error
	if m.busy, err = process.MachineCPU(); err != nil {
		return m, err
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return m, err
	}
	m.harness = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if s.sandbox != nil {
		if m.broker, err = s.sandbox.CPU(); err != nil {
			return m, err
		}
	}
	info, err := b.rdb.InfoMap(ctx, "cpu").Result()
	if err != nil {
		return m, fmt.Errorf("redis INFO cpu: %w", err)
	}
	for _, k := range []string{"used_cpu_user", "used_cpu_sys"} {
		v, err := strconv.ParseFloat(info["CPU"][k], 64)
		if err != nil {
			return m, fmt.Errorf("redis INFO cpu %s: %w", k, err)
		}
		m.redis += time.Duration(v * float64(time.Second))
	}
	stats, err := b.rdb.InfoMap(ctx, "stats").Result()
	if err != nil {
		return m, fmt.Errorf("redis INFO stats: %w", err)
	}
	if m.redisOut, err = strconv.ParseFloat(stats["Stats"]["total_net_output_bytes"], 64); err != nil {
		return m, fmt.Errorf("redis INFO stats total_net_output_bytes: %w", err)
	}
	return m, nil
}

// saturation stops the consumers, fills a backlog, resumes them and times
// how long they take to commit all of it.
func (b *bench) saturation(ctx context.Context, n int, ceiling bool) (satResult, error) {
	var r satResult
	s, err := b.up(ctx, n, ceiling)
	if err != nil {
		return r, err
	}
	defer s.close()
	for _, p := range s.procs {
		if err := p.Signal(syscall.SIGSTOP); err != nil {
			return r, err
		}
	}
	what := "scorers"
	if ceiling {
		what = "pass-through consumers"
	}
	fmt.Fprintf(b.opts.Log, "saturation: %d %s, filling a backlog of %d events\n", n, what, b.opts.SaturationEvents)
	st, err := Run(ctx, b.load(s, Options{Count: b.opts.SaturationEvents, Seed: 1}))
	if err != nil {
		return r, err
	}
	before, err := s.usage0(ctx) // read while stopped: nothing runs
	if err != nil {
		return r, err
	}
	// The drain's profile: asked for while the scorer is stopped, it
	// starts as the scorer resumes and, lasting longer than the drain,
	// samples all the CPU the scorer spends on the backlog (an idle
	// process adds no samples).
	var profErr error
	var profWG sync.WaitGroup
	if b.opts.ProfileDir != "" && !ceiling && n == 1 {
		profWG.Add(1)
		go func() {
			defer profWG.Done()
			profErr = b.profileCPU(ctx, s.procs[0], "scorer-cpu"+b.memoSuffix(), 0, b.opts.ProfileSeconds)
		}()
	}
	m0, err := b.machine(ctx, s)
	if err != nil {
		return r, err
	}
	start := time.Now()
	for _, p := range s.procs {
		if err := p.Signal(syscall.SIGCONT); err != nil {
			return r, err
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		c, err := s.committed(ctx)
		if err == nil && c >= st.Sent {
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("only %d of %d events committed after 5 minutes", c, st.Sent)
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	m1, err := b.machine(ctx, s)
	if err != nil {
		return r, err
	}
	after, err := s.usage(ctx)
	if err != nil {
		return r, err
	}
	r.eps = float64(st.Sent) / elapsed.Seconds()
	r.machineCores = (m1.busy - m0.busy).Seconds() / elapsed.Seconds()
	r.brokerCPUPerEvent, r.redisCPUPerEvent, _ = m1.perEvent(m0, st.Sent)
	if s.sandbox == nil {
		r.brokerCPUPerEvent = math.NaN()
	}
	r.redisOutPerEvent = (m1.redisOut - m0.redisOut) / float64(st.Sent)
	r.cpuPerEvent = float64((after.cpu - before.cpu).Microseconds()) / float64(st.Sent)
	r.redisPerEvent = (after.redis - before.redis) / float64(st.Sent)
	r.sinkPerEvent = (after.sink - before.sink) / float64(st.Sent)
	r.scoredPerEvent = (after.scored - before.scored) / float64(st.Sent)
	r.memoHitRate = after.hitRate(before)
	if after.stages != nil {
		r.stageUS = map[string]float64{}
		inside := 0.0
		for k, v := range after.stages { // before is zero: the scorers were stopped
			r.stageUS[k] = v * 1e6 / float64(st.Sent)
			inside += r.stageUS[k]
		}
		r.stageUS["outside"] = float64(n)*elapsed.Seconds()*1e6/float64(st.Sent) - inside
	}
	if r.rssMB, err = s.peakRSSMB(); err != nil {
		return r, err
	}
	profWG.Wait()
	if profErr != nil {
		return r, fmt.Errorf("profile: %w", profErr)
	}
	if b.opts.ProfileDir != "" && !ceiling && n == 1 && elapsed > time.Duration(b.opts.ProfileSeconds)*time.Second {
		fmt.Fprintf(b.opts.Log, "warning: the drain took %v, longer than the %d s profile: scorer-cpu%s.pprof misses its end (raise --profile-seconds)\n",
			elapsed.Round(time.Second), b.opts.ProfileSeconds, b.memoSuffix())
	}
	// Every event must have its output, committed: a shadow record per
	// Lead change scored (one per LeadChanged record; with change events
	// merged events name several Leads and echoes, deletes and the like
	// none), which the scorers count.
	outTopic := s.topics.Shadow
	got, err := countCommitted(ctx, s.brokers, outTopic)
	if err != nil {
		return r, err
	}
	want := st.Sent
	if !ceiling && b.cdc() {
		want = int64(after.scored)
	}
	if got != want || !ceiling && got < st.Sent/2 {
		return r, fmt.Errorf("%d events in, %d Lead changes scored, %d committed records in %s", st.Sent, int64(after.scored), got, outTopic)
	}
	fmt.Fprintf(b.opts.Log, "saturation: %d events in %v: %.0f events/s\n", st.Sent, elapsed.Round(time.Millisecond), r.eps)
	return r, nil
}

// usage0 is usage for the stopped processes: their HTTP servers do not
// answer, so the counters are read as zero and the first scrape after the
// run is the delta (the processes were started fresh and idle).
func (s *stack) usage0(ctx context.Context) (usage, error) {
	var u usage
	for _, p := range s.procs {
		c, err := p.CPU()
		if err != nil {
			return u, err
		}
		u.cpu += c
	}
	return u, nil
}

// countCommitted counts the committed records of topic; every transaction
// writing to it must have ended.
func countCommitted(ctx context.Context, brokers []string, topic string) (int64, error) {
	recs, err := sandbox.DrainCommitted(ctx, brokers, topic)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", topic, err)
	}
	return int64(len(recs)), nil
}

type latResult struct {
	p50, p99, p999, visibleP99, achieved, cpuPerEvent, rssMB, memoHitRate float64
	// What shared the machine during the run: its busy cores, and the
	// broker's (NaN on the real cluster), Redis's and the bench process's
	// own CPU per event (the last sends the events and reads the outputs).
	machineCores, brokerCPU, redisCPU, harnessCPU float64
	// batchRecords is the mean batch, in input records, and batchMS the
	// mean time a batch spent in each stage, in milliseconds, "total" their
	// sum; nil when the build does not time its stages.
	batchRecords float64
	batchMS      map[string]float64
	// topUpShare is the share of the events a batch took from the fetch
	// it waited for after its poll; NaN from a build without it.
	topUpShare float64
}

// latency offers rate events/s for RateDuration to running consumers and
// measures, for each committed shadow record, the time from the event's
// event_time to the record's timestamp (set by the scorer's producer when
// it produced the record) and to when a read_committed consumer received it.
func (b *bench) latency(ctx context.Context, n int, rate float64, profile bool) (latResult, error) {
	var r latResult
	s, err := b.up(ctx, n, false)
	if err != nil {
		return r, err
	}
	defer s.close()
	fmt.Fprintf(b.opts.Log, "latency: %d scorers at %.0f events/s for %v\n", n, rate, b.opts.RateDuration)
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.brokers...), kgo.ConsumeTopics(s.topics.Shadow),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return r, err
	}
	defer cl.Close()
	var (
		mu       sync.Mutex
		produced []float64 // ms, event time to record timestamp
		visible  []float64 // ms, event time to receipt
		received int64
		badRec   error
	)
	// The events are made before the run, so that the load generator's
	// encoding does not take the CPU from the scorer during it.
	load := b.load(s, Options{Rate: rate, Duration: b.opts.RateDuration, Seed: 2})
	if load.Prepared, err = Prepare(load); err != nil {
		return r, err
	}
	warm := load.Prepared.Start().Add(time.Second)
	cctx, stopCollect := context.WithCancel(ctx)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for cctx.Err() == nil {
			fs := cl.PollFetches(cctx)
			now := time.Now()
			mu.Lock()
			fs.EachRecord(func(rec *kgo.Record) {
				received++
				et, err := shadowEventTime(rec.Value)
				if err != nil {
					badRec = err
					return
				}
				if et.Before(warm) {
					return
				}
				produced = append(produced, float64(rec.Timestamp.Sub(et).Microseconds())/1000)
				visible = append(visible, float64(now.Sub(et).Microseconds())/1000)
			})
			mu.Unlock()
		}
	}()
	defer func() { stopCollect(); <-collected }()
	// Counted from just before the start, not from while the events were made.
	if err := sleepUntil(ctx, load.Prepared.Start().Add(-100*time.Millisecond)); err != nil {
		return r, err
	}
	before, err := s.usage(ctx)
	if err != nil {
		return r, err
	}
	m0, err := b.machine(ctx, s)
	if err != nil {
		return r, err
	}
	m0At := time.Now()
	var profErr error
	var profWG sync.WaitGroup
	if profile {
		profWG.Add(1)
		go func() {
			defer profWG.Done()
			profErr = b.profile(ctx, s.procs[0], rate)
		}()
	}
	st, err := Run(ctx, load)
	if err != nil {
		return r, err
	}
	r.achieved = st.Rate()
	// Done when every event is committed and every shadow record the
	// scorers produced for them (one per Lead change scored) was read.
	deadline := time.Now().Add(time.Minute)
	var after usage
	for {
		c, err := s.committed(ctx)
		if err == nil && c >= st.Sent {
			if after, err = s.usage(ctx); err != nil {
				return r, err
			}
			mu.Lock()
			got := received
			mu.Unlock()
			if got >= int64(after.scored) {
				m1, err := b.machine(ctx, s)
				if err != nil {
					return r, err
				}
				r.machineCores = (m1.busy - m0.busy).Seconds() / time.Since(m0At).Seconds()
				r.brokerCPU, r.redisCPU, r.harnessCPU = m1.perEvent(m0, st.Sent)
				if s.sandbox == nil {
					r.brokerCPU = math.NaN()
				}
				break
			}
		}
		if time.Now().After(deadline) {
			mu.Lock()
			got := received
			mu.Unlock()
			return r, fmt.Errorf("only %d shadow records for %d events (%.0f scored) after a minute", got, st.Sent, after.scored)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.memoHitRate = after.hitRate(before)
	profWG.Wait()
	if profErr != nil {
		return r, fmt.Errorf("profile: %w", profErr)
	}
	if r.rssMB, err = s.peakRSSMB(); err != nil {
		return r, err
	}
	r.cpuPerEvent = float64((after.cpu - before.cpu).Microseconds()) / float64(st.Sent)
	r.topUpShare = (after.topUp - before.topUp) / float64(st.Sent)
	if nb := float64(after.batches - before.batches); nb > 0 && after.stages != nil {
		r.batchRecords = float64(st.Sent) / nb
		r.batchMS = map[string]float64{}
		for k, v := range after.stages {
			ms := (v - before.stages[k]) * 1e3 / nb
			r.batchMS[k] = ms
			r.batchMS["total"] += ms
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if badRec != nil {
		return r, fmt.Errorf("shadow record: %w", badRec)
	}
	if len(produced) == 0 {
		return r, errors.New("no shadow records after the warm-up second")
	}
	slices.Sort(produced)
	slices.Sort(visible)
	r.p50, r.p99, r.p999 = quantile(produced, 0.5), quantile(produced, 0.99), quantile(produced, 0.999)
	r.visibleP99 = quantile(visible, 0.99)
	fmt.Fprintf(b.opts.Log, "latency: %d events at %.0f/s (behind schedule at most %v): p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms\n",
		st.Sent, r.achieved, st.MaxBehind.Round(time.Millisecond), r.p50, r.p99, r.p999)
	return r, nil
}

// profile saves CPU and allocation profiles of p at a fixed rate.
func (b *bench) profile(ctx context.Context, p *child, rate float64) error {
	secs := max(int(b.opts.RateDuration.Seconds())-3, 1)
	name := "scorer-cpu-at-" + rateKey(rate) + b.memoSuffix()
	if err := b.profileCPU(ctx, p, name, 2*time.Second, secs); err != nil {
		return err
	}
	g, err := os.Create(filepath.Join(b.opts.ProfileDir, "scorer-allocs-at-"+rateKey(rate)+b.memoSuffix()+".pprof"))
	if err != nil {
		return err
	}
	defer g.Close()
	q := &child{Process: p.Process, http: p.pprof}
	return q.fetch(ctx, "/debug/pprof/allocs", g)
}

// profileCPU saves a CPU profile of p, taken after wait for secs seconds,
// as name.pprof in the profile directory.
func (b *bench) profileCPU(ctx context.Context, p *child, name string, wait time.Duration, secs int) error {
	if err := os.MkdirAll(b.opts.ProfileDir, 0o755); err != nil {
		return err
	}
	time.Sleep(wait)
	q := &child{Process: p.Process, http: p.pprof}
	f, err := os.Create(filepath.Join(b.opts.ProfileDir, name+".pprof"))
	if err != nil {
		return err
	}
	defer f.Close()
	return q.fetch(ctx, "/debug/pprof/profile?seconds="+strconv.Itoa(secs), f)
}

func (b *bench) memoSuffix() string {
	if b.memo {
		return "-memo"
	}
	return ""
}

// quantile is the nearest-rank quantile of sorted xs.
func quantile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// shadowEventTime reads event_time, the fourth field of a wire-format
// LeadScoreShadow (event_id, lead_id, crd, event_time), without decoding
// the rest.
func shadowEventTime(b []byte) (time.Time, error) {
	if len(b) < 5 || b[0] != 0 {
		return time.Time{}, errors.New("not the Confluent wire format")
	}
	b = b[5:]
	for range 2 { // event_id, lead_id
		n, k := binary.Varint(b)
		if k <= 0 || n < 0 || int64(len(b)-k) < n {
			return time.Time{}, errors.New("truncated string")
		}
		b = b[k+int(n):]
	}
	_, k := binary.Varint(b) // crd
	if k <= 0 {
		return time.Time{}, errors.New("truncated crd")
	}
	ms, k := binary.Varint(b[k:])
	if k <= 0 {
		return time.Time{}, errors.New("truncated event_time")
	}
	return time.UnixMilli(ms), nil
}
