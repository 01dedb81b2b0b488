// Package chaos is the fault suite: it runs the scorer as real processes
// against a broker (a sandbox broker process, or a real Apache Kafka
// cluster of scripts/stack.sh) and the real Redis, streams a known set of
// lead changes through it while something fails (a scorer killed with
// SIGKILL, scorers joining and leaving, the broker restarted, Redis cut
// off, malformed input, a corrupt model; on a real cluster also a broker
// killed in the middle of a transaction and a broker frozen), and checks
// the committed output
// topics against what the input must produce: every good event scored
// exactly once with the score computed offline, every malformed record in
// the dead-letter topic with its class, and nothing else.
//
// A scorer scores each batch as of one instant, to the millisecond, and
// writes it in every output record (scored_at), so every expected score is
// recomputed offline exactly, with no tolerance, from the production binary
// as it runs in production.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/featurestore"
	"github.com/leadscorer/leadscorer/internal/kafkastack"
	"github.com/leadscorer/leadscorer/internal/process"
	"github.com/leadscorer/leadscorer/internal/sandbox"
	"github.com/leadscorer/leadscorer/internal/synth"
	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// Scenarios are the suite's scenarios on the sandbox broker, in the order
// they run.
var Scenarios = []string{"kill9", "rebalance", "broker-restart", "redis-outage", "poison", "bad-model"}

// ClusterScenarios are the scenarios only a real cluster has: they run after
// Scenarios on one.
var ClusterScenarios = []string{"broker-kill", "broker-stall"}

// Kafka kinds: the sandbox broker process (kfake) or a real Apache Kafka
// cluster started with scripts/stack.sh.
const (
	KafkaSandbox = "sandbox"
	KafkaReal    = "real"
)

// Options configure a run of the suite.
type Options struct {
	// Bin is the leadscorer binary the scorers run: the production build.
	Bin string
	// DevBin is the leadscorer-dev binary that runs the sandbox broker.
	DevBin string
	// Kafka is KafkaSandbox (default) or KafkaReal.
	Kafka string
	// Brokers is the real cluster's size, 1 or 3 (default 3).
	Brokers int
	// StackScript is scripts/stack.sh, for KafkaReal; StackDir its run
	// folder (default WorkDir/kafka-stack). A stack already running there
	// is used and left running.
	StackScript, StackDir string
	// Input is the scorers' input_format and so the streams':
	// config.InputLeadChanged (default) or config.InputSalesforceCDC
	// (StreamCDC).
	Input string
	// Registry is the model registry file; its folder is copied for each
	// scenario, so the bad-model scenario never touches the original.
	Registry string
	// RedisAddr is the Redis every scorer uses (host:port, database 0);
	// each scenario works under its own key prefix and deletes it after.
	RedisAddr string
	// WorkDir holds the broker data directories, model copies and process
	// logs, one folder per scenario.
	WorkDir string
	// Events is the number of input records per scenario (default 100000).
	Events int
	// Seed makes the population and the streams reproducible.
	Seed uint64
	// StreamFor spreads the production of a scenario's events over this
	// long, so the faults land while the stream runs (default 15s).
	StreamFor time.Duration
	// ScenarioTimeout bounds one scenario from start to verdict (default
	// 4m); a scenario that has not caught up by then fails.
	ScenarioTimeout time.Duration
	// Progress receives what the suite is doing; nil discards it.
	Progress io.Writer
}

// EventTime is the Salesforce time of every lead change the suite sends:
// noon of the population's snapshot day.
var EventTime = synth.Snapshot.Add(12 * time.Hour)

// ScoreEpsilon is the quota guard's threshold given to the scorers.
const ScoreEpsilon = 0.001

const (
	partitions   = 6
	maxInputSize = 8 << 20 // the input topic's max.message.bytes: room for the 2 MB poison
)

// Suite runs scenarios.
type Suite struct {
	opts     Options
	pop      *synth.Population
	rdb      *redis.Client
	srURL    string
	srcl     *sr.Client
	codec    *schemas.Codec // the default topics' schema ids (sandbox)
	progress io.Writer
	// The real cluster (KafkaReal): its stack, its Kafka release, and a
	// token that keeps this run's topics, groups and transactional ids
	// apart from any earlier run's on the same cluster.
	stack   *kafkastack.Stack
	version string
	runID   string
}

// New prepares a suite: the population, Redis, and the Kafka side. On the
// sandbox, an in-process Schema Registry: it lives in the suite, not in the
// broker's process, so schemas outlive a broker restart as a real
// registry's would. On a real cluster, the stack of scripts/stack.sh
// (brokers and its Schema Registry), started here unless one already runs
// in StackDir; the returned func stops what New started.
func New(ctx context.Context, opts Options) (*Suite, func(), error) {
	if opts.Events <= 0 {
		opts.Events = 100_000
	}
	if opts.StreamFor <= 0 {
		opts.StreamFor = 15 * time.Second
	}
	if opts.ScenarioTimeout <= 0 {
		opts.ScenarioTimeout = 4 * time.Minute
	}
	if opts.RedisAddr == "" {
		opts.RedisAddr = "127.0.0.1:6379"
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.Kafka == "" {
		opts.Kafka = KafkaSandbox
	}
	if opts.Brokers == 0 {
		opts.Brokers = 3
	}
	switch opts.Input {
	case "":
		opts.Input = config.InputLeadChanged
	case config.InputLeadChanged, config.InputSalesforceCDC:
	default:
		return nil, nil, fmt.Errorf("chaos: Input %q: want %s or %s", opts.Input, config.InputLeadChanged, config.InputSalesforceCDC)
	}
	if opts.Bin == "" || opts.WorkDir == "" || opts.Registry == "" {
		return nil, nil, errors.New("chaos: Bin, WorkDir and Registry are required")
	}
	switch opts.Kafka {
	case KafkaSandbox:
		if opts.DevBin == "" {
			return nil, nil, errors.New("chaos: DevBin (the sandbox broker) is required")
		}
	case KafkaReal:
		if opts.StackScript == "" {
			return nil, nil, errors.New("chaos: StackScript is required with a real cluster")
		}
		if opts.StackDir == "" {
			opts.StackDir = filepath.Join(opts.WorkDir, "kafka-stack")
		}
	default:
		return nil, nil, fmt.Errorf("chaos: Kafka %q: want %s or %s", opts.Kafka, KafkaSandbox, KafkaReal)
	}
	rdb := redis.NewClient(&redis.Options{Addr: opts.RedisAddr})
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, nil, fmt.Errorf("chaos: redis at %s: %w", opts.RedisAddr, err)
	}
	pop, err := synth.Generate(synth.Options{Seed: opts.Seed})
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	s := &Suite{opts: opts, pop: pop, rdb: rdb, progress: opts.Progress, runID: strconv.FormatInt(time.Now().Unix(), 36)}
	var stop func()
	if opts.Kafka == KafkaReal {
		fmt.Fprintf(opts.Progress, "chaos: starting a %d-broker Apache Kafka cluster and its Schema Registry (%s, run folder %s)\n",
			opts.Brokers, opts.StackScript, opts.StackDir)
		st, err := kafkastack.Up(ctx, kafkastack.Options{Script: opts.StackScript, Dir: opts.StackDir, Brokers: opts.Brokers, Log: opts.Progress})
		if err != nil {
			rdb.Close()
			return nil, nil, fmt.Errorf("chaos: %w", err)
		}
		if st.Reused() {
			fmt.Fprintf(opts.Progress, "chaos: using the stack already running in %s (left running)\n", opts.StackDir)
		}
		s.stack, s.srURL = st, st.Registry
		if adm, closeAdm, err := kafkastack.NewAdmin(st.Brokers); err == nil {
			wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			err = kafkastack.WarmCoordinators(wctx, adm)
			cancel()
			closeAdm()
			if err != nil {
				_ = st.Down()
				rdb.Close()
				return nil, nil, fmt.Errorf("chaos: %w", err)
			}
		}
		s.version, err = kafkastack.Version(filepath.Join(kafkastack.CacheDir(), "libs"))
		if err != nil {
			s.version = "unknown"
		}
		stop = func() {
			if err := st.Down(); err != nil {
				fmt.Fprintf(opts.Progress, "chaos: %v\n", err)
			}
		}
	} else {
		s.srURL, stop, err = startRegistry()
		if err != nil {
			rdb.Close()
			return nil, nil, err
		}
	}
	closeAll := func() { stop(); rdb.Close() }
	if s.srcl, err = sr.NewClient(sr.URLs(s.srURL)); err != nil {
		closeAll()
		return nil, nil, err
	}
	if opts.Kafka == KafkaSandbox {
		topics := schemas.DefaultTopics()
		if s.cdc() {
			topics = schemas.CDCTopics()
		}
		ids, err := schemas.Register(ctx, s.srcl, topics)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		s.codec = schemas.NewCodec(s.srcl, ids)
	}
	return s, closeAll, nil
}

// Kafka describes the broker the suite runs on, as key=value pairs:
// kafka=kfake brokers=1, or kafka=apache-<version> brokers=<n>.
func (s *Suite) Kafka() string {
	if s.stack == nil {
		return "kafka=kfake brokers=1"
	}
	return fmt.Sprintf("kafka=apache-%s brokers=%d", s.version, s.opts.Brokers)
}

// Scenarios are the scenarios this suite runs by default: Scenarios, and
// ClusterScenarios on a real cluster.
func (s *Suite) Scenarios() []string {
	if s.stack == nil {
		return Scenarios
	}
	return append(append([]string{}, Scenarios...), ClusterScenarios...)
}

// Run runs one scenario and returns its verdict. An error means the suite
// could not run the scenario at all (a broker that never started, say);
// a scorer that loses or repeats records is a failing Result, not an error.
func (s *Suite) Run(ctx context.Context, name string) (*Result, error) {
	plan, ok := plans[name]
	if !ok {
		return nil, fmt.Errorf("chaos: unknown scenario %q (known: %v)", name, append(append([]string{}, Scenarios...), ClusterScenarios...))
	}
	if s.stack == nil && slices.Contains(ClusterScenarios, name) {
		return nil, fmt.Errorf("chaos: %s needs a real cluster (--kafka %s)", name, KafkaReal)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.ScenarioTimeout)
	defer cancel()
	e, err := s.setUp(ctx, name)
	if err != nil {
		return nil, err
	}
	defer e.tearDown()
	return e.run(ctx, plan)
}

// topicSet names a scenario's topics.
type topicSet struct{ In, Sfdc, Shadow, DLQ, Outcomes, Refresh string }

func defaultTopicSet() topicSet {
	cfg := config.Default()
	return topicSet{In: cfg.TopicIn, Sfdc: cfg.TopicSfdc, Shadow: cfg.TopicShadow, DLQ: cfg.TopicDLQ,
		Outcomes: cfg.TopicOutcomes, Refresh: cfg.TopicRefresh}
}

func (t topicSet) prefixed(p string) topicSet {
	return topicSet{In: p + t.In, Sfdc: p + t.Sfdc, Shadow: p + t.Shadow, DLQ: p + t.DLQ,
		Outcomes: p + t.Outcomes, Refresh: p + t.Refresh}
}

func (t topicSet) all() []string {
	return []string{t.In, t.Sfdc, t.Shadow, t.DLQ, t.Outcomes, t.Refresh}
}

// cdc reports whether the suite's streams are change events.
func (s *Suite) cdc() bool { return s.opts.Input == config.InputSalesforceCDC }

// createTopics creates a scenario's topics on a real cluster as the project
// declares them (kafkastack.CreateScorerTopics), the input with room for
// the 2 MB poison; with change events (cdc) also the outcomes' and the
// refresh requests' topics, which such a scorer writes.
func createTopics(ctx context.Context, adm *kadm.Client, brokers int, t topicSet, cdc bool) error {
	err := kafkastack.CreateScorerTopics(ctx, adm, brokers, partitions, maxInputSize,
		kafkastack.ScorerTopics{In: t.In, Sfdc: t.Sfdc, Shadow: t.Shadow, DLQ: t.DLQ})
	if err != nil || !cdc {
		return err
	}
	return kafkastack.CreateTopics(ctx, adm, int16(min(brokers, 3)),
		kafkastack.Topic{Name: t.Outcomes, Partitions: partitions}, kafkastack.Topic{Name: t.Refresh, Partitions: partitions})
}

// env is one scenario's world.
type env struct {
	s        *Suite
	name     string
	dir      string
	port     int
	brokers  []string
	broker   *process.Process
	prefix   string
	redisURL string
	proxy    *process.Proxy
	registry string
	group    string
	topics   topicSet
	codec    *schemas.Codec
	// adm reaches the brokers (a real cluster's admin requests, the
	// committed offsets); closeAdm releases it.
	adm      *kadm.Client
	closeAdm func()
	oracle   *Oracle
	recs     []*kgo.Record
	sent     []Sent
	produced atomic.Int64

	// readyWait bounds the wait for a scorer to serve HTTP before it is
	// stopped (default 1m).
	readyWait time.Duration

	mu      sync.Mutex
	scorers map[int]*scorer
	notes   []string
	rng     *rand.Rand
}

type scorer struct {
	id   int
	p    *process.Process
	http string
	// stopping is set before the suite stops or kills the process, so an
	// exit the suite did not cause shows as a problem.
	stopping bool
}

// txnID is scorer id's transactional id, stable across its restarts.
func (e *env) txnID(id int) string { return fmt.Sprintf("%s-%d", e.group, id) }

func (s *Suite) setUp(ctx context.Context, name string) (*env, error) {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	e := &env{
		s: s, name: name, dir: filepath.Join(s.opts.WorkDir, name),
		prefix:  fmt.Sprintf("chaos-%s-%d:", name, time.Now().UnixNano()),
		group:   "chaos-" + name,
		topics:  defaultTopicSet(),
		codec:   s.codec,
		scorers: map[int]*scorer{},
		rng:     rand.New(rand.NewPCG(s.opts.Seed, h.Sum64())),
	}
	if err := os.RemoveAll(e.dir); err != nil {
		return nil, err
	}
	registry, err := scoring.CopyRegistry(s.opts.Registry, filepath.Join(e.dir, "models"))
	if err != nil {
		return nil, fmt.Errorf("chaos: copy models: %w", err)
	}
	e.registry = registry
	reg, err := scoring.LoadRegistry(e.registry)
	if err != nil {
		return nil, err
	}
	e.oracle = NewOracle(s.pop, reg)

	if s.stack == nil {
		// The broker: a sandbox of its own, on a fresh data directory.
		port, err := process.FreePort()
		if err != nil {
			return nil, err
		}
		e.port, e.brokers = port, []string{"127.0.0.1:" + strconv.Itoa(port)}
		if err := e.startBroker(ctx); err != nil {
			return nil, err
		}
		if e.adm, e.closeAdm, err = kafkastack.NewAdmin(e.brokers); err != nil {
			e.tearDown()
			return nil, err
		}
		if err := e.configureInput(ctx); err != nil {
			e.tearDown()
			return nil, err
		}
	} else {
		// The cluster is the suite's; the scenario gets topics, a group
		// and transactional ids of its own, once every replica of the
		// cluster is in sync again after the previous scenario's faults.
		e.brokers = s.stack.Brokers
		e.group = fmt.Sprintf("chaos-%s-%s", s.runID, name)
		e.topics = defaultTopicSet().prefixed(e.group + ".")
		if e.adm, e.closeAdm, err = kafkastack.NewAdmin(e.brokers); err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		err := kafkastack.WaitInSync(wctx, e.adm, s.opts.Brokers)
		cancel()
		if err != nil {
			e.tearDown()
			return nil, fmt.Errorf("chaos: the cluster is not healthy before %s: %w", name, err)
		}
		if err := createTopics(ctx, e.adm, s.opts.Brokers, e.topics, s.cdc()); err != nil {
			e.tearDown()
			return nil, err
		}
		topics := schemas.Topics{LeadChanged: e.topics.In, Sfdc: e.topics.Sfdc, Shadow: e.topics.Shadow}
		if s.cdc() { // the input as the connector registers it; the poison needs LeadOutcome
			topics.LeadChanged, topics.ChangeEvents = "", e.topics.In
			topics.Outcomes, topics.Refresh = e.topics.Outcomes, e.topics.Refresh
		}
		ids, err := schemas.Register(ctx, s.srcl, topics)
		if err != nil {
			e.tearDown()
			return nil, fmt.Errorf("chaos: register the schemas: %w", err)
		}
		e.codec = schemas.NewCodec(s.srcl, ids)
	}

	// Redis: the population's features under the scenario's prefix.
	e.redisURL = "redis://" + s.opts.RedisAddr + "/0"
	store := featurestore.New(s.rdb, e.prefix, nil)
	if err := store.PutFirms(ctx, s.pop.Firms); err != nil {
		e.tearDown()
		return nil, err
	}
	if err := store.PutAdvisors(ctx, s.pop.Advisors); err != nil {
		e.tearDown()
		return nil, err
	}

	// The stream.
	mix := Mix{Events: s.opts.Events, Echoes: 0.01, Flip: 0.1, Seed: s.opts.Seed ^ h.Sum64(), At: EventTime}
	if name == "poison" {
		mix.Poison = 0.01
	}
	if s.cdc() {
		e.recs, e.sent, err = StreamCDC(e.codec, e.topics.In, s.pop, mix)
	} else {
		e.recs, e.sent, err = Stream(e.codec, e.topics.In, name, s.pop, mix)
	}
	if err != nil {
		e.tearDown()
		return nil, err
	}
	return e, nil
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.s.progress, "chaos %s: %s\n", e.name, fmt.Sprintf(format, args...))
}

func (e *env) note(format string, args ...any) {
	e.mu.Lock()
	e.notes = append(e.notes, fmt.Sprintf(format, args...))
	e.mu.Unlock()
	e.logf(format, args...)
}

func (e *env) startBroker(ctx context.Context) error {
	p, err := startProc("sandbox", filepath.Join(e.dir, "sandbox.log"), e.s.opts.DevBin, "sandbox",
		"--data-dir", filepath.Join(e.dir, "kafka"), "--kafka-port", strconv.Itoa(e.port),
		// The schema registry of the suite is used; the sandbox's own
		// goes on a spare port, unused.
		"--registry-addr", "127.0.0.1:0", "--partitions", strconv.Itoa(partitions))
	if err != nil {
		return err
	}
	e.broker = p
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := process.WaitTCP(wctx, e.brokers[0]); err != nil {
		p.Stop(5 * time.Second)
		return fmt.Errorf("chaos: broker did not start (see %s): %w", filepath.Join(e.dir, "sandbox.log"), err)
	}
	return nil
}

// configureInput lets the sandbox's input topic take the 2 MB poison: the
// broker's default limit is 1 MB.
func (e *env) configureInput(ctx context.Context) error {
	v := strconv.Itoa(maxInputSize)
	resp, err := e.adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: &v}}, e.topics.In)
	if err != nil {
		return fmt.Errorf("chaos: %s max.message.bytes: %w", e.topics.In, err)
	}
	for _, r := range resp {
		if r.Err != nil {
			return fmt.Errorf("chaos: %s max.message.bytes: %w", e.topics.In, r.Err)
		}
	}
	return nil
}

// startScorer starts scorer id (1, 2, ...), with a transactional id stable
// across its restarts, so a restart fences the killed incarnation.
func (e *env) startScorer(id int) error {
	port, err := process.FreePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	redisURL := e.redisURL
	if e.proxy != nil {
		redisURL = "redis://" + e.proxy.Addr() + "/0"
	}
	p, err := startProc(fmt.Sprintf("scorer-%d", id), filepath.Join(e.dir, fmt.Sprintf("scorer-%d.log", id)), e.s.opts.Bin, "run",
		"--brokers", strings.Join(e.brokers, ","), "--schema-registry", e.s.srURL,
		"--redis-url", redisURL, "--redis-prefix", e.prefix,
		"--topic-in", e.topics.In, "--topic-sfdc", e.topics.Sfdc, "--topic-shadow", e.topics.Shadow, "--topic-dlq", e.topics.DLQ,
		"--topic-outcomes", e.topics.Outcomes, "--topic-refresh", e.topics.Refresh,
		"--group", e.group, "--transactional-id", e.txnID(id),
		"--http-addr", addr, "--registry", e.registry,
		"--score-epsilon", strconv.FormatFloat(ScoreEpsilon, 'g', -1, 64),
		"--transaction-timeout", "20s", "--batch-timeout", "15s", "--log-level", "warn",
		"--input-format", e.s.opts.Input)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.scorers[id] = &scorer{id: id, p: p, http: addr}
	e.mu.Unlock()
	return nil
}

func (e *env) scorer(id int) *scorer {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.scorers[id]
}

// kill9 kills scorer id with SIGKILL and waits until it is gone.
func (e *env) kill9(id int) {
	sc := e.scorer(id)
	e.mu.Lock()
	sc.stopping = true
	e.mu.Unlock()
	sc.p.Kill()
}

// stopScorer stops scorer id with SIGTERM: it finishes its batch, commits
// and leaves the group. A scorer (re)started a moment ago may not have
// installed its SIGTERM handler yet, and would die of the signal: so the
// suite first waits until it serves HTTP (it is then running, well after
// the handler is in place), and accepts death by SIGTERM from one that
// never did within readyWait.
func (e *env) stopScorer(ctx context.Context, id int) error {
	sc := e.scorer(id)
	ready := waitServing(ctx, sc, e.readyTimeout())
	e.mu.Lock()
	sc.stopping = true
	delete(e.scorers, id)
	e.mu.Unlock()
	if !sc.p.Stop(40 * time.Second) {
		return fmt.Errorf("scorer-%d did not stop within 40s of SIGTERM and was killed", id)
	}
	if err := sc.p.Err(); err != nil {
		if !ready && diedOf(err, syscall.SIGTERM) {
			e.note("scorer-%d was stopped before it was serving (%v)", id, err)
			return nil
		}
		return fmt.Errorf("scorer-%d exited with %v after SIGTERM (see %s)", id, err, filepath.Join(e.dir, fmt.Sprintf("scorer-%d.log", id)))
	}
	return nil
}

func (e *env) readyTimeout() time.Duration {
	if e.readyWait > 0 {
		return e.readyWait
	}
	return time.Minute
}

// await blocks until frac of the stream has been produced.
func (e *env) await(ctx context.Context, frac float64) error {
	want := int64(frac * float64(len(e.recs)))
	for e.produced.Load() < want {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// produce streams the records in chunks spread over StreamFor.
func (e *env) produce(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ProducerBatchMaxBytes(maxInputSize/2),
		kgo.MaxBufferedBytes(64<<20), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	const chunks = 100
	start := time.Now()
	size := (len(e.recs) + chunks - 1) / chunks
	for i := 0; i*size < len(e.recs); i++ {
		if err := sleep(ctx, time.Until(start.Add(time.Duration(i)*e.s.opts.StreamFor/chunks))); err != nil {
			return err
		}
		part := e.recs[i*size : min((i+1)*size, len(e.recs))]
		if err := cl.ProduceSync(ctx, part...).FirstErr(); err != nil {
			return fmt.Errorf("chaos: produce the input: %w", err)
		}
		e.produced.Add(int64(len(part)))
	}
	return nil
}

// plan is a scenario's faults, run while the stream is produced.
type plan func(ctx context.Context, e *env) error

var plans = map[string]plan{
	"kill9":          planKill9,
	"rebalance":      planRebalance,
	"broker-restart": planBrokerRestart,
	"redis-outage":   planRedisOutage,
	"poison":         planNone,
	"bad-model":      planBadModel,
	"broker-kill":    planBrokerKill,
	"broker-stall":   planBrokerStall,
}

func (e *env) run(ctx context.Context, p plan) (*Result, error) {
	if e.name == "redis-outage" {
		px, err := process.NewProxy(e.s.opts.RedisAddr)
		if err != nil {
			return nil, err
		}
		e.proxy = px
	}
	if err := e.startScorer(1); err != nil {
		return nil, err
	}
	start := time.Now()
	e.logf("streaming %d events over %v", len(e.recs), e.s.opts.StreamFor)
	var wg sync.WaitGroup
	var prodErr, planErr error
	wg.Add(2)
	go func() { defer wg.Done(); prodErr = e.produce(ctx) }()
	go func() { defer wg.Done(); planErr = p(ctx, e) }()
	wg.Wait()
	if err := errors.Join(prodErr, planErr); err != nil {
		return nil, fmt.Errorf("chaos: %s: %w", e.name, err)
	}
	e.logf("stream produced; waiting for the group to commit every input record")
	if err := e.waitCommitted(ctx); err != nil {
		return nil, fmt.Errorf("chaos: %s: %w (logs in %s)", e.name, err, e.dir)
	}
	elapsed := time.Since(start)
	if e.s.stack != nil && (e.name == "broker-restart" || slices.Contains(ClusterScenarios, e.name)) {
		e.scorerKafkaNotes(ctx)
	}
	if e.name == "redis-outage" {
		for _, m := range []string{"leadscorer_redis_errors_total", "leadscorer_redis_lookup_retries_total",
			"leadscorer_kafka_transactions_aborted_total", `leadscorer_dlq_records_total`} {
			v, err := process.Metric(ctx, e.scorer(1).http, m)
			if err != nil {
				v = 0 // a vector with no sample yet
			}
			e.note("scorer-1 %s %v", m, v)
		}
	}
	var problems []string
	e.mu.Lock()
	ids := make([]int, 0, len(e.scorers))
	for id, sc := range e.scorers {
		if sc.p.Exited() && !sc.stopping {
			problems = append(problems, fmt.Sprintf("scorer-%d exited by itself: %v", id, sc.p.Err()))
		}
		ids = append(ids, id)
	}
	e.mu.Unlock()
	for _, id := range ids {
		if err := e.stopScorer(ctx, id); err != nil {
			problems = append(problems, err.Error())
		}
	}
	e.logf("scorers stopped; reading the output topics")
	out, err := e.outputs(ctx)
	if err != nil {
		return nil, err
	}
	if len(out.DLQ) > 0 {
		byClass := map[string]int{}
		for _, d := range out.DLQ {
			byClass[d.Class]++
		}
		e.note("dead letters by class: %v", byClass)
	}
	r, err := Check(e.name, e.sent, out, e.oracle, ScoreEpsilon)
	if err != nil {
		return nil, err
	}
	r.Elapsed = elapsed
	r.Notes = e.notes
	r.Problems = append(problems, r.Problems...)
	return r, nil
}

// waitCommitted waits until the group's committed offsets reach the end of
// every input partition.
func (e *env) waitCommitted(ctx context.Context) error {
	adm, topic := e.adm, e.topics.In
	end, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = end.Error()
	}
	if err != nil {
		return fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	last := time.Now()
	for {
		committed, err := adm.FetchOffsets(ctx, e.group)
		behind := int64(0)
		if err == nil {
			end.Each(func(o kadm.ListedOffset) {
				at := int64(0)
				if c, ok := committed.Lookup(topic, o.Partition); ok {
					at = c.At
				}
				behind += max(o.Offset-at, 0)
			})
			if behind == 0 {
				return nil
			}
		}
		if gone := e.scorersGone(); gone != "" {
			return fmt.Errorf("the group cannot commit the %d input records behind: every scorer exited by itself (%s)", behind, gone)
		}
		if time.Since(last) > 5*time.Second {
			e.logf("%d input records not committed yet", behind)
			last = time.Now()
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("the group did not commit every input record in time (%d behind): %w", behind, err)
		}
	}
}

// scorersGone says how each scorer exited when every one of them exited by
// itself (none is left to commit), and "" while one runs or is being
// stopped by the plan.
func (e *env) scorersGone() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var exits []string
	for id, sc := range e.scorers {
		if !sc.p.Exited() || sc.stopping {
			return ""
		}
		exits = append(exits, fmt.Sprintf("scorer-%d: %v", id, sc.p.Err()))
	}
	slices.Sort(exits)
	return strings.Join(exits, "; ")
}

// outputs reads the committed records of every topic and decodes them.
func (e *env) outputs(ctx context.Context) (*Outputs, error) {
	drain := func(topic string) ([]*kgo.Record, error) {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		recs, err := sandbox.DrainCommitted(dctx, e.brokers, topic, kgo.FetchMaxBytes(64<<20))
		if err != nil {
			return nil, fmt.Errorf("chaos: read %s: %w", topic, err)
		}
		return recs, nil
	}
	out := &Outputs{}
	in, err := drain(e.topics.In)
	if err != nil {
		return nil, err
	}
	for _, r := range in {
		out.Input = append(out.Input, producer.Header(r, HeaderEvent))
	}
	shadow, err := drain(e.topics.Shadow)
	if err != nil {
		return nil, err
	}
	for _, r := range shadow {
		var s schemas.LeadScoreShadow
		if err := e.codec.DecodeShadow(ctx, r.Value, &s); err != nil {
			return nil, fmt.Errorf("chaos: shadow record at %d/%d: %w", r.Partition, r.Offset, err)
		}
		out.Shadow = append(out.Shadow, ShadowOut{EventID: s.EventID, LeadID: s.LeadID, ScoredAt: s.ScoredAt, Scores: s.Scores})
	}
	sink, err := drain(e.topics.Sfdc)
	if err != nil {
		return nil, err
	}
	for _, r := range sink {
		var s schemas.LeadScoreSfdc
		if err := e.codec.DecodeSfdc(ctx, r.Value, &s); err != nil {
			return nil, fmt.Errorf("chaos: sink record at %d/%d: %w", r.Partition, r.Offset, err)
		}
		out.Sink = append(out.Sink, SinkOut{EventID: s.TraceEventID, LeadID: s.ID, Partition: r.Partition, Offset: r.Offset,
			ScoredAt: s.ScoredAt, View: SinkView{Score: s.Score, Percentile: s.Percentile, Deprioritize: s.Deprioritize,
				Version: s.ModelVersion, Explanation: s.Explanation}})
	}
	dlq, err := drain(e.topics.DLQ)
	if err != nil {
		return nil, err
	}
	for _, r := range dlq {
		out.DLQ = append(out.DLQ, DLQOut{Event: producer.Header(r, HeaderEvent), Class: producer.Header(r, producer.HeaderErrorClass)})
	}
	return out, nil
}

// tearDown stops every process of the scenario and deletes its Redis keys.
func (e *env) tearDown() {
	e.mu.Lock()
	scorers := make([]*scorer, 0, len(e.scorers))
	for _, sc := range e.scorers {
		sc.stopping = true
		scorers = append(scorers, sc)
	}
	e.mu.Unlock()
	for _, sc := range scorers {
		sc.p.Stop(20 * time.Second)
	}
	if e.proxy != nil {
		e.proxy.Cut()
	}
	if e.broker != nil {
		e.broker.Stop(20 * time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if e.adm != nil {
		if e.s.stack != nil {
			// The cluster outlives the scenario: its topics go, so that
			// the brokers' restarts in later scenarios recover less data.
			if err := kafkastack.DeleteTopics(ctx, e.adm, e.topics.all()...); err != nil {
				e.logf("could not delete the topics: %v", err)
			}
		}
		e.closeAdm()
	}
	if err := deletePrefix(ctx, e.s.rdb, e.prefix); err != nil {
		e.logf("could not delete the Redis keys %s*: %v", e.prefix, err)
	}
}

func deletePrefix(ctx context.Context, rdb *redis.Client, prefix string) error {
	iter := rdb.Scan(ctx, 0, prefix+"*", 5000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 5000 {
			if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
				return err
			}
			keys = keys[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) > 0 {
		return rdb.Unlink(ctx, keys...).Err()
	}
	return nil
}
