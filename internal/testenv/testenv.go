// Package testenv gives every test package the services it needs, one way:
//
//   - Redis: the real server (REDIS_URL, default redis://127.0.0.1:6379/0;
//     `make test` starts one), a key prefix of the test's own whose keys are
//     deleted when the test ends. A Redis that does not answer fails the
//     test: it is never skipped.
//   - Kafka and a Schema Registry: by default an in-process sandbox (kfake
//     and srfake) per test. When KAFKA_BROKERS is set (and SCHEMA_REGISTRY,
//     `make test-kafka`), the real cluster and registry it names: every test
//     then has topics, a consumer group and transactional ids of its own
//     (unique names), its topics are created from the topics declaration
//     with the replication factor the cluster's size allows, and deleted
//     when the test ends.
//   - A secured Kafka listener (Secure: TLS, SASL/SCRAM, PLAIN, client
//     certificates): in process, a kfake broker asking for them; on the
//     real stack, its listener of that kind, named by the variables
//     `scripts/stack.sh up` prints (KAFKA_SASL_SSL_BROKERS, KAFKA_CA_FILE,
//     ...). One missing fails the test, naming it, as SCHEMA_REGISTRY does.
//
// Tests ask for names through the Kafka they get (Name, Configure), never
// hard-code a topic, group or transactional id, so the same test runs on
// both.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/internal/rediskeys"
	"github.com/leadscorer/leadscorer/internal/sandbox"
	"github.com/leadscorer/leadscorer/topics"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"go.uber.org/goleak"
)

// The environment variables that switch the tests to a real stack.
const (
	EnvBrokers  = "KAFKA_BROKERS"
	EnvRegistry = "SCHEMA_REGISTRY"
	EnvRedis    = "REDIS_URL"
)

// RealKafka reports whether the tests run against the cluster named by
// KAFKA_BROKERS.
func RealKafka() bool { return os.Getenv(EnvBrokers) != "" }

// uniq is a name part unique to the test: a readable form of its name and
// random hex.
func uniq(tb testing.TB) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(tb.Name(), "-")
	if len(name) > 60 {
		name = name[:60]
	}
	return strings.Trim(name, "-") + "-" + hex.EncodeToString(b[:])
}

// ---------------------------------------------------------------- Redis

// RedisURL is the Redis the tests use.
func RedisURL() string {
	if u := os.Getenv(EnvRedis); u != "" {
		return u
	}
	return config.Default().RedisURL
}

// Redis is a connection to the test Redis and a key prefix of the test's
// own.
type Redis struct {
	Client *redis.Client
	URL    string
	// Prefix ends with ":"; every key under it is deleted when the test
	// ends.
	Prefix string
}

// NewRedis connects to the test Redis and fails the test when it does not
// answer.
func NewRedis(tb testing.TB) *Redis {
	tb.Helper()
	url := RedisURL()
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatalf("%s: %v", EnvRedis, err)
	}
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		tb.Fatalf("Redis at %s is required for these tests (make test starts one with scripts/ensure-redis.sh): %v", config.Redact(url), err)
	}
	r := &Redis{Client: rdb, URL: url, Prefix: "lstest:" + uniq(tb) + ":"}
	tb.Cleanup(func() {
		if err := rediskeys.DeletePrefix(context.Background(), rdb, r.Prefix); err != nil {
			tb.Errorf("cleaning up %s*: %v", r.Prefix, err)
		}
		rdb.Close()
	})
	return r
}

// ---------------------------------------------------------------- Schema Registry

// NewRegistry returns a Schema Registry client: to SCHEMA_REGISTRY when
// KAFKA_BROKERS is set, else to an in-process srfake closed when the test
// ends. Subjects are named after topics: use Kafka.Name or Unique for them
// on a shared registry.
func NewRegistry(tb testing.TB) (*sr.Client, string) {
	tb.Helper()
	url := os.Getenv(EnvRegistry)
	if !RealKafka() || url == "" {
		if RealKafka() {
			tb.Fatalf("%s is set but %s is not: the tests need the stack's Schema Registry too", EnvBrokers, EnvRegistry)
		}
		reg := srfake.New()
		tb.Cleanup(reg.Close)
		url = reg.URL()
	}
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		tb.Fatal(err)
	}
	return cl, url
}

// Unique returns base as is on the in-process stack, and made unique to the
// test (base + "." + the test's name and random hex) on a shared one: for
// topic names, Schema Registry subjects, groups and transactional ids.
func Unique(tb testing.TB, base string) string {
	if !RealKafka() {
		return base
	}
	return base + "." + uniq(tb)
}

// ---------------------------------------------------------------- Kafka

// Option adjusts NewKafka.
type Option func(*kafkaOptions)

type kafkaOptions struct {
	kfakeOnly string
	kafkaOpts []kfake.Opt
	secure    Listener
}

// KfakeOnly runs the test on the in-process broker even when KAFKA_BROKERS
// is set, with kfake options the real stack does not offer (an injected
// answer, say). reason is logged, so `go test -v` shows which tests did
// not run on the real broker and why.
func KfakeOnly(reason string, opts ...kfake.Opt) Option {
	return func(o *kafkaOptions) { o.kfakeOnly, o.kafkaOpts = reason, opts }
}

// Kafka is the broker and Schema Registry of one test.
type Kafka struct {
	tb          testing.TB
	Brokers     []string
	RegistryURL string
	// ClientOpts reach the broker (TLS, SASL); every client of the test
	// needs them.
	ClientOpts []kgo.Opt
	// Secured is what reaches the secured listener the test asked for
	// (Secure); nil without one.
	Secured *Secured
	// Real is true on the cluster named by KAFKA_BROKERS.
	Real bool
	// Sandbox is the in-process stack; nil when Real.
	Sandbox *sandbox.Sandbox
	// ReplicationFactor of the test's topics: 1 in process, up to 3 on a
	// real cluster (its broker count).
	ReplicationFactor int16
	suffix            string
	admin             *kgo.Client
	created           []string
}

// NewKafka gives the test a broker and a Schema Registry, torn down or
// cleaned up when it ends.
func NewKafka(tb testing.TB, opts ...Option) *Kafka {
	tb.Helper()
	var o kafkaOptions
	for _, opt := range opts {
		opt(&o)
	}
	k := &Kafka{tb: tb, ReplicationFactor: 1}
	switch {
	case RealKafka() && o.kfakeOnly == "":
		k.Real = true
		k.Brokers = strings.Split(os.Getenv(EnvBrokers), ",")
		k.RegistryURL = os.Getenv(EnvRegistry)
		if k.RegistryURL == "" {
			tb.Fatalf("%s is set but %s is not: the tests need the stack's Schema Registry too", EnvBrokers, EnvRegistry)
		}
		if o.secure != "" {
			k.Secured, k.Brokers = realSecured(tb, o.secure)
		}
		k.suffix = "." + uniq(tb)
	default:
		if o.kfakeOnly != "" && RealKafka() {
			tb.Logf("kfake only, not on %s: %s", os.Getenv(EnvBrokers), o.kfakeOnly)
		}
		kopts := o.kafkaOpts
		if o.secure != "" {
			var sopts []kfake.Opt
			k.Secured, sopts = fakeSecured(tb, o.secure)
			kopts = append(slices.Clip(kopts), sopts...)
		}
		sb, err := sandbox.Start(sandbox.Options{KafkaOpts: kopts})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(sb.Close)
		k.Sandbox = sb
		k.Brokers, k.RegistryURL = sb.Brokers(), sb.RegistryURL()
	}
	if k.Secured != nil {
		copts, err := k.Secured.clientOpts()
		if err != nil {
			tb.Fatalf("the test's clients on the %s listener: %v", k.Secured.Listener, err)
		}
		k.ClientOpts = copts
	}
	admin, err := kgo.NewClient(k.clientOpts()...)
	if err != nil {
		tb.Fatal(err)
	}
	k.admin = admin
	tb.Cleanup(k.cleanup)
	if k.Real {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		bs, err := k.Admin().ListBrokers(ctx)
		if err != nil {
			tb.Fatalf("kafka at %s (%s): %v", strings.Join(k.Brokers, ","), EnvBrokers, err)
		}
		k.ReplicationFactor = topics.ClusterReplicationFactor(len(bs))
		warmUp.Do(func() { warmUpErr = k.warmUp() })
		if warmUpErr != nil {
			tb.Fatal(warmUpErr)
		}
	}
	return k
}

var (
	warmUp    sync.Once
	warmUpErr error
)

// warmUp waits, once per test process, until the cluster's group and
// transaction coordinators answer. On a fresh cluster the first group or
// transaction creates __consumer_offsets or __transaction_state: requests
// meanwhile get COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR or
// COORDINATOR_LOAD_IN_PROGRESS for seconds. franz-go retries them inside a
// consumer or producer, but an admin request such as DescribeGroups
// reports them, and the first test would time its steps from a cold
// start.
func (k *Kafka) warmUp() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	txn, err := kgo.NewClient(k.clientOpts(kgo.TransactionalID("testenv-warm-up"))...)
	if err != nil {
		return err
	}
	defer txn.Close()
	if _, _, err := txn.ProducerID(ctx); err != nil {
		return fmt.Errorf("kafka: the transaction coordinator did not answer: %w", err)
	}
	for {
		gs, err := k.Admin().DescribeGroups(ctx, "testenv-warm-up")
		if err == nil {
			err = gs.Error()
		}
		// A coordinator that knows no such group has answered (Kafka 4.x
		// says GROUP_ID_NOT_FOUND, older ones describe a Dead group).
		if err == nil || errors.Is(err, kerr.GroupIDNotFound) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka: the group coordinator did not answer: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// clientOpts are the options of a test client: the brokers, what reaches
// them, and a short metadata age. On a real broker a request can meet a
// partition whose leader is moving (a topic just created, a broker
// restarted); the client then waits for its next metadata refresh, at most
// once per MetadataMinAge (5 s by default).
func (k *Kafka) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := append([]kgo.Opt{kgo.SeedBrokers(k.Brokers...), kgo.MetadataMinAge(250 * time.Millisecond)}, k.ClientOpts...)
	return append(opts, extra...)
}

func (k *Kafka) cleanup() {
	defer k.admin.Close()
	if !k.Real || len(k.created) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := k.Admin().DeleteTopics(ctx, k.created...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		k.tb.Logf("deleting the test's topics %v: %v", k.created, err)
	}
}

// Admin is an admin client on the test's broker.
func (k *Kafka) Admin() *kadm.Client { return kadm.NewClient(k.admin) }

// Client returns a client of the test's broker with extra options, closed
// when the test ends.
func (k *Kafka) Client(extra ...kgo.Opt) *kgo.Client {
	k.tb.Helper()
	cl, err := kgo.NewClient(k.clientOpts(extra...)...)
	if err != nil {
		k.tb.Fatal(err)
	}
	k.tb.Cleanup(cl.Close)
	return cl
}

// Registry returns a client of the test's Schema Registry.
func (k *Kafka) Registry() *sr.Client {
	k.tb.Helper()
	cl, err := sr.NewClient(sr.URLs(k.RegistryURL))
	if err != nil {
		k.tb.Fatal(err)
	}
	return cl
}

// Name returns base on the in-process broker and base made unique to the
// test on a real one: topic names, groups, transactional ids.
func (k *Kafka) Name(base string) string { return base + k.suffix }

// CreateTopics creates ts, with the test's replication factor, and waits
// until every partition is served.
func (k *Kafka) CreateTopics(ts ...topics.Topic) {
	k.tb.Helper()
	if len(ts) == 0 {
		return
	}
	all := make([]topics.Topic, len(ts))
	for i, t := range ts {
		t.ReplicationFactor = k.ReplicationFactor
		cfgs := map[string]string{}
		for key, v := range t.Configs {
			cfgs[key] = v
		}
		if k.ReplicationFactor < 3 {
			cfgs[topics.MinInSyncReplicas] = "1"
		}
		t.Configs = cfgs
		all[i] = t
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := topics.Apply(ctx, k.admin, all, false)
	if err != nil {
		k.tb.Fatal(err)
	}
	for _, r := range results {
		if !r.OK() {
			k.tb.Fatalf("creating the test's topics: %s", r)
		}
		if r.Created {
			k.created = append(k.created, r.Topic)
		}
	}
	if err := topics.Ready(ctx, k.Admin(), topics.Names(all)...); err != nil {
		k.tb.Fatal(err)
	}
}

// DeleteAtEnd has the topics named, created by the code under test,
// deleted when the test ends on a real cluster.
func (k *Kafka) DeleteAtEnd(names ...string) { k.created = append(k.created, names...) }

// Topic creates a topic of the test named after base, with partitions
// partitions and the declaration's usual settings, and returns its name.
func (k *Kafka) Topic(base string, partitions int32) string {
	k.tb.Helper()
	name := k.Name(base)
	k.CreateTopics(topics.Topic{Name: name, Partitions: partitions, Configs: map[string]string{
		topics.CleanupPolicy: "delete", topics.RetentionMs: "604800000", topics.MaxMessageBytes: "1048588", topics.MinInSyncReplicas: "1"}})
	return name
}

// Configure points cfg at the test's broker and registry, gives it the
// test's topic names, group and transactional id, and creates every
// declared topic.
func (k *Kafka) Configure(cfg *config.Config) {
	k.tb.Helper()
	cfg.Brokers, cfg.SchemaRegistry = k.Brokers, k.RegistryURL
	for _, p := range []*string{&cfg.TopicIn, &cfg.TopicSfdc, &cfg.TopicShadow, &cfg.TopicDLQ, &cfg.TopicOutcomes, &cfg.TopicRefresh, &cfg.TopicRegistry} {
		*p = k.Name(*p)
	}
	cfg.Group = k.Name(cfg.Group)
	cfg.TransactionalID = k.Name("test-scorer")
	k.CreateTopics(topics.Declared(cfg, k.ReplicationFactor)...)
}

// Produce writes recs and waits for their acknowledgement.
func (k *Kafka) Produce(recs ...*kgo.Record) {
	k.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(k.clientOpts()...)
	if err != nil {
		k.tb.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		k.tb.Fatal(err)
	}
}

// WaitStable waits until no transaction is pending on the topics: on every
// partition the last stable offset is the end offset. A real broker
// answers EndTxn before it writes the transaction's markers: right after a
// commit, a read_committed reader that takes the last stable offset as the
// end may stop before the committed records. (kfake writes the markers
// before it answers.)
func (k *Kafka) WaitStable(topics ...string) {
	k.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := k.Admin()
	for {
		lso, err1 := adm.ListCommittedOffsets(ctx, topics...)
		hwm, err2 := adm.ListEndOffsets(ctx, topics...)
		stable := err1 == nil && err2 == nil
		if stable {
			hwm.Each(func(o kadm.ListedOffset) {
				if l, ok := lso.Lookup(o.Topic, o.Partition); !ok || l.Offset != o.Offset {
					stable = false
				}
			})
		}
		if stable {
			return
		}
		select {
		case <-ctx.Done():
			k.tb.Fatalf("transactions still pending on %v: %v %v", topics, err1, err2)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Drain returns every committed record of topic (read_committed, to the
// end): every transaction writing to it must have ended.
func (k *Kafka) Drain(topic string) []*kgo.Record {
	k.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs, err := sandbox.DrainCommitted(ctx, k.Brokers, topic, append([]kgo.Opt{kgo.FetchMaxBytes(64 << 20)}, k.ClientOpts...)...)
	if err != nil {
		k.tb.Fatal(err)
	}
	return recs
}

// Committed reports whether group has consumed every record of topic: its
// committed offset on each partition is the end offset, or only
// transaction markers and aborted records lie between the two. (A consumer
// commits the offset after the last record it was given; a marker that
// follows it is never committed past: a topic written in transactions
// keeps a gap of one after each.)
func (k *Kafka) Committed(ctx context.Context, group, topic string) (bool, error) {
	behind, ends, err := k.behind(ctx, group, topic)
	if err != nil || len(behind) == 0 {
		return err == nil, err
	}
	return onlyMarkers(ctx, k.clientOpts(), topic, behind, ends)
}

// behind returns the partitions of topic where group's committed offset is
// below the end offset: from where, to where.
func (k *Kafka) behind(ctx context.Context, group, topic string) (map[int32]kgo.Offset, map[int32]int64, error) {
	adm := k.Admin()
	end, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	if err := end.Error(); err != nil {
		return nil, nil, err
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, nil, err
	}
	behind := map[int32]kgo.Offset{}
	ends := map[int32]int64{}
	end.Each(func(o kadm.ListedOffset) {
		at := int64(0)
		if c, ok := committed.Lookup(topic, o.Partition); ok {
			at = c.At
		}
		if at < o.Offset {
			behind[o.Partition] = kgo.NewOffset().At(at)
			ends[o.Partition] = o.Offset
		}
	})
	return behind, ends, nil
}

// onlyMarkers reads the partitions from the offsets given to the ends
// given, read_committed, and reports whether no data record is there.
func onlyMarkers(ctx context.Context, opts []kgo.Opt, topic string, from map[int32]kgo.Offset, ends map[int32]int64) (bool, error) {
	rd, err := kgo.NewClient(append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return false, err
	}
	defer rd.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for len(ends) > 0 {
		f := rd.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			// Nothing more to read before the end: an open transaction.
			return false, nil
		}
		var ferr error
		f.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return false, ferr
		}
		data := false
		f.EachRecord(func(r *kgo.Record) {
			end, ok := ends[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if !r.Attrs.IsControl() {
				data = true
			}
			if r.Offset+1 >= end {
				delete(ends, r.Partition)
			}
		})
		if data {
			return false, nil
		}
	}
	return true, nil
}

// WaitCommitted waits until group has consumed every record of topic
// (Committed), or fails the test at the deadline; errc, when not nil,
// fails it as soon as the consumer under test stops.
func (k *Kafka) WaitCommitted(ctx context.Context, group, topic string, errc <-chan error) {
	k.tb.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last string
	still := 0
	for {
		behind, ends, err := k.behind(ctx, group, topic)
		if err == nil && len(behind) == 0 {
			return
		}
		// Offsets that stopped moving: the consumer is idle, and what is
		// left may be transaction markers only.
		if now := fmt.Sprint(behind, ends); err == nil && now == last {
			if still++; still >= 5 {
				still = 0
				if done, err := onlyMarkers(ctx, k.clientOpts(), topic, behind, ends); err == nil && done {
					return
				}
			}
		} else {
			last, still = now, 0
		}
		select {
		case err := <-errc:
			k.tb.Fatalf("the consumer stopped before committing every input: %v", err)
		case <-ctx.Done():
			k.tb.Fatalf("timed out waiting for group %s to commit every record of %s (last error: %v)", group, topic, err)
		case <-tick.C:
		}
	}
}

// Describe says which stack the tests run on, for logs.
func (k *Kafka) Describe() string {
	on := ""
	if k.Secured != nil {
		on = ", listener " + string(k.Secured.Listener)
	}
	if k.Real {
		return fmt.Sprintf("Kafka at %s%s, Schema Registry at %s", strings.Join(k.Brokers, ","), on, k.RegistryURL)
	}
	return "in-process kfake" + on + " and srfake"
}

// Main runs a package's tests and then fails them when a goroutine
// outlives them (goleak). The idle keep-alive connections of the default
// HTTP transport are closed first: a real Schema Registry keeps the
// connections of the service's and the tests' clients open (srfake's
// server closed them as each test ended); they are a pool, not a leak.
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on a successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
