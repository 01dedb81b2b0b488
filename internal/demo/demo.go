// Package demo runs the whole stream on one machine: an in-process Kafka
// broker and Schema Registry (or external ones), Redis (the local server
// when reachable, else an embedded one), the synthetic population's
// features loaded, a stream of lead changes with echoes and malformed
// records mixed in, the scorer, and a summary read back from the output
// topics.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/featurestore"
	"github.com/leadscorer/leadscorer/internal/cdcsim"
	"github.com/leadscorer/leadscorer/internal/rediskeys"
	"github.com/leadscorer/leadscorer/internal/sandbox"
	"github.com/leadscorer/leadscorer/internal/synth"
	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/progress"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/service"
	"github.com/leadscorer/leadscorer/topics"
	"github.com/leadscorer/leadscorer/validation/stream"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// Options configures a demo run.
type Options struct {
	// Brokers and RegistryURL point at an external stack; empty starts an
	// in-process one.
	Brokers     []string
	RegistryURL string
	// RedisURL is tried first; when nothing answers, an embedded Redis is
	// used.
	RedisURL string
	Registry string // model registry file
	// Format is the input format: config.InputSalesforceCDC (the default,
	// change events as the CDC connector writes them) or
	// config.InputLeadChanged.
	Format string
	// JSON writes the change events as schemaless JSON instead of Avro.
	JSON     bool
	Events   int
	Advisors int
	Seed     uint64
	// Timeout bounds the scoring phase.
	Timeout time.Duration
	// Progress shows a progress bar of the scoring phase when it is a
	// terminal (progress.New); the output w never gets one.
	Progress io.Writer
	Log      *slog.Logger
	// Validation, when set, follows the stream with the simulated parallel
	// validation (its Registry, RedisURL and RedisPrefix are filled in).
	Validation *ValidationOptions
}

// Summary is what a demo run did, counted from the output topics.
type Summary struct {
	Events, Scored, SinkRecords, Suppressed, Echoes int
	DLQ                                             map[string]int
	// What the demo produced besides ordinary changes.
	Sent    Sent
	Elapsed time.Duration
	Samples []schemas.LeadScoreSfdc
	// CDC is what became of the Salesforce change events; nil for
	// LeadChanged input.
	CDC *CDCSummary
	// Validation is the validator's report of the simulated parallel
	// validation; nil without it.
	Validation *stream.Report
}

// Run runs the demo, writing what it does and the summary to w.
func Run(ctx context.Context, opts Options, w io.Writer) (*Summary, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	cfg := config.Default()
	cfg.Registry = opts.Registry
	cfg.RedisPrefix = "leadscorer-demo:"
	cfg.HTTPAddr = ""
	cfg.Group = "leadscorer-demo"
	cfg.TransactionalID = "leadscorer-demo"
	cfg.BatchMaxRecords = 2000
	switch opts.Format {
	case "":
	case config.InputSalesforceCDC, config.InputLeadChanged:
		cfg.InputFormat = opts.Format
	default:
		return nil, fmt.Errorf("demo: format %q: want %s or %s", opts.Format, config.InputSalesforceCDC, config.InputLeadChanged)
	}
	cdc := cfg.InputFormat == config.InputSalesforceCDC
	cfg.SinkUserID = cdcsim.SinkUser
	// Kafka and the Schema Registry, with the service's topics as
	// `leadscorer topics apply` creates them.
	if len(opts.Brokers) == 0 {
		sb, err := sandbox.Start(sandbox.Options{Topics: topics.Declared(cfg, 1)})
		if err != nil {
			return nil, err
		}
		defer sb.Close()
		opts.Brokers, opts.RegistryURL = sb.Brokers(), sb.RegistryURL()
		fmt.Fprintf(w, "kafka     in-process kfake broker at %s\n", strings.Join(opts.Brokers, ","))
		fmt.Fprintf(w, "registry  in-process schema registry at %s\n", opts.RegistryURL)
	} else {
		fmt.Fprintf(w, "kafka     %s\nregistry  %s\n", strings.Join(opts.Brokers, ","), opts.RegistryURL)
		if err := applyTopics(ctx, opts.Brokers, cfg, w); err != nil {
			return nil, err
		}
	}
	cfg.Brokers, cfg.SchemaRegistry = opts.Brokers, opts.RegistryURL

	// Redis.
	redisURL, closeRedis, err := pickRedis(ctx, opts.RedisURL, w)
	if err != nil {
		return nil, err
	}
	defer closeRedis()
	cfg.RedisURL = redisURL

	// The population's features into Redis.
	pop, err := synth.Generate(synth.Options{Seed: opts.Seed, Advisors: opts.Advisors})
	if err != nil {
		return nil, err
	}
	ropts, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	store := featurestore.New(rdb, cfg.RedisPrefix, nil)
	// The demo's keys are its own: a run starts from nothing (no quota or
	// Lead state of an earlier run, no advisor of another seed).
	if err := rediskeys.DeletePrefix(ctx, rdb, cfg.RedisPrefix); err != nil {
		return nil, err
	}
	if err := store.PutFirms(ctx, pop.Firms); err != nil {
		return nil, err
	}
	if err := store.PutAdvisors(ctx, pop.Advisors); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "features  %d advisors and %d firms loaded\n", len(pop.Advisors), len(pop.Firms))

	// The scorer, scoring as of the population's snapshot day.
	asOf := synth.Snapshot.Add(12 * time.Hour)
	svc, err := service.New(ctx, cfg, opts.Log, service.WithClock(func() time.Time { return asOf }))
	if err != nil {
		return nil, err
	}
	defer svc.Close() // when returning before Run: its session has joined the group
	srcl, err := sr.NewClient(sr.URLs(opts.RegistryURL))
	if err != nil {
		return nil, err
	}
	reg := schemas.DefaultTopics()
	if cdc {
		reg = schemas.CDCTopics() // LeadChangeEvent on the input, as the connector registers it
	}
	ids, err := schemas.Register(ctx, srcl, reg)
	if err != nil {
		return nil, err
	}
	codec := schemas.NewCodec(srcl, ids)

	// The input stream.
	var (
		recs    []*kgo.Record
		sent    Sent
		cdcSent *cdcsim.Sent
	)
	if cdc {
		g := cdcsim.New(cdcsim.Options{Codec: codec, Topic: cfg.TopicIn, JSON: opts.JSON, Seed: opts.Seed,
			Start: asOf.Add(-24 * time.Hour)})
		recs, cdcSent, err = cdcsim.Stream(g, cdcLeads(pop), cdcsim.DefaultMix(opts.Events, cfg.MaxRecordBytes))
		if cdcSent != nil {
			sent = Sent{Echoes: cdcSent.Echoes, Poison: cdcSent.Poison}
		}
	} else {
		recs, sent, err = Events(codec, cfg.TopicIn, pop, EventMix{
			Events: opts.Events, Echoes: 0.03, Poison: 0.002, Seed: opts.Seed,
			MaxRecordBytes: cfg.MaxRecordBytes, At: asOf,
		})
	}
	if err != nil {
		return nil, err
	}
	kopts := []kgo.Opt{kgo.SeedBrokers(opts.Brokers...), kgo.ProducerBatchMaxBytes(4 << 20)}
	if cdc {
		// The CDC connector runs one task and writes one partition: the
		// order of every Lead's changes is the order Salesforce committed
		// them (docs/SALESFORCE.md). Every record goes to partition 0.
		kopts = append(kopts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	inStart, err := endOffsets(ctx, cl, cfg.TopicIn)
	if err != nil {
		return nil, err
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, fmt.Errorf("demo: produce events: %w", err)
	}
	what := "LeadChanged records"
	if cdc {
		what = "Salesforce change events (Avro, as the CDC connector writes them)"
		if opts.JSON {
			what = "Salesforce change events (schemaless JSON, as the CDC connector writes them)"
		}
	}
	fmt.Fprintf(w, "events    %d %s produced to %s\n", len(recs), what, cfg.TopicIn)

	// Score until the group has committed every input offset.
	start := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- svc.Run(runCtx) }()
	bar := progress.New(opts.Progress, "scoring", int64(len(recs)))
	err = waitCommitted(runCtx, cl, cfg.Group, cfg.TopicIn, bar, len(recs), inStart)
	bar.Finish()
	if err != nil {
		cancel()
		<-errc
		return nil, err
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-errc; err != nil {
		return nil, err
	}

	var sum *Summary
	if cdc {
		sum, err = summarizeCDC(ctx, opts.Brokers, cfg, codec, svc.Registry(), recs, cdcSent, elapsed)
	} else {
		sum, err = summarize(ctx, opts.Brokers, cfg, codec, len(recs), sent, elapsed)
	}
	if err != nil {
		return nil, err
	}
	sum.print(w)
	if opts.Validation != nil {
		vo := *opts.Validation
		vo.Registry, vo.RedisURL, vo.RedisPrefix = opts.Registry, redisURL, cfg.RedisPrefix
		if err := rediskeys.DeletePrefix(ctx, rdb, cfg.RedisPrefix+"sink:"); err != nil {
			return nil, err
		}
		if sum.Validation, err = Validation(ctx, pop, vo, w); err != nil {
			return nil, err
		}
	}
	return sum, nil
}

// pickRedis returns the URL of a reachable Redis: the given one, or an
// embedded one started here.
func pickRedis(ctx context.Context, url string, w io.Writer) (string, func(), error) {
	if url != "" {
		if ropts, err := redis.ParseURL(url); err == nil {
			rdb := redis.NewClient(ropts)
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			err := rdb.Ping(pctx).Err()
			cancel()
			rdb.Close()
			if err == nil {
				fmt.Fprintf(w, "redis     %s\n", config.Redact(url))
				return url, func() {}, nil
			}
		}
	}
	mr, err := miniredis.Run()
	if err != nil {
		return "", nil, fmt.Errorf("demo: embedded redis: %w", err)
	}
	fmt.Fprintf(w, "redis     none reachable at %s: embedded Redis at %s\n", config.Redact(url), mr.Addr())
	return "redis://" + mr.Addr() + "/0", mr.Close, nil
}

// applyTopics creates the service's topics on external brokers as the
// declaration says, with the replication factor the cluster allows (3 from
// three brokers up), and waits until every partition is served.
func applyTopics(ctx context.Context, brokers []string, cfg *config.Config, w io.Writer) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	bs, err := adm.ListBrokers(ctx)
	if err != nil {
		return fmt.Errorf("demo: kafka at %s: %w", strings.Join(brokers, ","), err)
	}
	rf := topics.ClusterReplicationFactor(len(bs))
	results, err := topics.Apply(ctx, cl, topics.Declared(cfg, rf), false)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	for _, r := range results {
		if r.Err != nil {
			return fmt.Errorf("demo: topics: %s", r)
		}
		fmt.Fprintf(w, "topic     %s\n", r)
	}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return topics.Ready(rctx, adm, topics.Names(topics.Declared(cfg, rf))...)
}

func endOffsets(ctx context.Context, cl *kgo.Client, topic string) (kadm.ListedOffsets, error) {
	return kadm.NewClient(cl).ListEndOffsets(ctx, topic)
}

// waitCommitted polls the group's committed offsets until they reach the
// input's end offsets, showing progress on bar.
func waitCommitted(ctx context.Context, cl *kgo.Client, group, topic string, bar *progress.Bar, total int, base kadm.ListedOffsets) error {
	adm := kadm.NewClient(cl)
	end, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: scoring did not finish in time: %w", ctx.Err())
		case <-tick.C:
		}
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			continue // the group may not exist yet
		}
		done, all := 0, true
		end.Each(func(o kadm.ListedOffset) {
			c, ok := committed.Lookup(topic, o.Partition)
			from := int64(0)
			if b, ok := base.Lookup(topic, o.Partition); ok {
				from = b.Offset
			}
			at := from
			if ok && c.At > from {
				at = c.At
			}
			done += int(at - from)
			if at < o.Offset {
				all = false
			}
		})
		rate := float64(done) / time.Since(start).Seconds()
		bar.Set(int64(done), fmt.Sprintf("%d/%d events committed (%.0f events/s)", done, total, rate))
		if all {
			return nil
		}
	}
}

func summarize(ctx context.Context, brokers []string, cfg *config.Config, codec *schemas.Codec, events int, sent Sent, elapsed time.Duration) (*Summary, error) {
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	sum := &Summary{Events: events, DLQ: map[string]int{}, Sent: sent, Elapsed: elapsed}
	sink, err := sandbox.DrainCommitted(dctx, brokers, cfg.TopicSfdc)
	if err != nil {
		return nil, err
	}
	shadow, err := sandbox.DrainCommitted(dctx, brokers, cfg.TopicShadow)
	if err != nil {
		return nil, err
	}
	dlq, err := sandbox.DrainCommitted(dctx, brokers, cfg.TopicDLQ)
	if err != nil {
		return nil, err
	}
	for _, r := range dlq {
		sum.DLQ[producer.Header(r, producer.HeaderErrorClass)]++
	}
	sum.Scored, sum.SinkRecords = len(shadow), len(sink)
	sum.Suppressed = sum.Scored - sum.SinkRecords
	sum.Echoes = events - sum.Scored - len(dlq)
	for _, r := range sink[:min(3, len(sink))] {
		var s schemas.LeadScoreSfdc
		if err := codec.DecodeSfdc(ctx, r.Value, &s); err != nil {
			return nil, fmt.Errorf("demo: decode sink record: %w", err)
		}
		sum.Samples = append(sum.Samples, s)
	}
	if sum.Echoes < 0 {
		return sum, errors.New("demo: more outputs than inputs: duplicates")
	}
	return sum, nil
}

func (s *Summary) print(w io.Writer) {
	fmt.Fprintf(w, "\nsummary\n")
	fmt.Fprintf(w, "  events in          %d\n", s.Events)
	fmt.Fprintf(w, "  scored             %d (both model versions; one shadow record each)\n", s.Scored)
	fmt.Fprintf(w, "  sink records       %d\n", s.SinkRecords)
	fmt.Fprintf(w, "  suppressed         %d (nothing the Lead shows changed: no Salesforce call)\n", s.Suppressed)
	fmt.Fprintf(w, "  skipped echoes     %d\n", s.Echoes)
	classes := make([]string, 0, len(s.DLQ))
	total := 0
	for c, n := range s.DLQ {
		classes = append(classes, c)
		total += n
	}
	sort.Strings(classes)
	fmt.Fprintf(w, "  dead letters       %d", total)
	for _, c := range classes {
		fmt.Fprintf(w, "  %s=%d", c, s.DLQ[c])
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  throughput         %.0f events/s end to end (%.2fs)\n", float64(s.Events)/s.Elapsed.Seconds(), s.Elapsed.Seconds())
	if s.CDC != nil {
		s.CDC.print(w, s)
	}
	fmt.Fprintf(w, "\nsample sink records (decoded with the schema the registry holds for their id)\n")
	for _, r := range s.Samples {
		fmt.Fprintf(w, "  Id=%s V4_Score__c=%.4f V4_Score_Percentile__c=%d V4_Deprioritize__c=%v V4_Model_Version__c=%s\n    V4_Score_Explanation__c=%q\n",
			r.ID, r.Score, r.Percentile, r.Deprioritize, r.ModelVersion, r.Explanation)
	}
}
