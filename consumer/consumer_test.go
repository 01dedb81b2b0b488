package consumer

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// upper is a Transformer that copies each input to the output topic,
// optionally failing its first batches to exercise the abort path.
type upper struct {
	out         string
	failures    atomic.Int32 // batches still to fail
	calls       atomic.Int32
	committedMu sync.Mutex
	committed   int
}

// committedAtLeast returns a condition of runUntil: n outputs committed.
func (u *upper) committedAtLeast(n int) func() bool {
	return func() bool {
		u.committedMu.Lock()
		defer u.committedMu.Unlock()
		return u.committed >= n
	}
}

func (u *upper) Transform(_ context.Context, in, out []*kgo.Record) ([]*kgo.Record, error) {
	u.calls.Add(1)
	if u.failures.Add(-1) >= 0 {
		return out, errors.New("injected batch failure")
	}
	for _, r := range in {
		out = append(out, &kgo.Record{Topic: u.out, Key: r.Key, Value: append([]byte("out:"), r.Value...)})
	}
	return out, nil
}

func (u *upper) Committed(_ context.Context, out []*kgo.Record) error {
	u.committedMu.Lock()
	u.committed += len(out)
	u.committedMu.Unlock()
	return nil
}

func produceInputs(t *testing.T, e *env, n int) {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		// 50 keys, so every key has many records whose order matters.
		recs[i] = &kgo.Record{Topic: e.in, Key: []byte("lead-" + strconv.Itoa(i%50)), Value: []byte(strconv.Itoa(i))}
	}
	e.k.Produce(recs...)
}

// checkExactlyOnce reads the committed output and checks that every input
// appears exactly once and that each key's outputs keep the input order.
func checkExactlyOnce(t *testing.T, e *env, n int) {
	t.Helper()
	recs := e.k.Drain(e.out)
	count := map[int]int{}
	last := map[string]int{}
	for _, r := range recs {
		i, err := strconv.Atoi(string(r.Value[len("out:"):]))
		if err != nil {
			t.Fatalf("unexpected output %q", r.Value)
		}
		count[i]++
		if prev, ok := last[string(r.Key)]; ok && prev > i {
			t.Errorf("key %s: output %d after %d: order lost", r.Key, i, prev)
		}
		last[string(r.Key)] = i
	}
	var lost, dup int
	for i := range n {
		switch c := count[i]; {
		case c == 0:
			lost++
		case c > 1:
			dup += c - 1
		}
	}
	if lost != 0 || dup != 0 || len(recs) != n {
		t.Fatalf("outputs: %d records for %d inputs, lost=%d duplicated=%d", len(recs), n, lost, dup)
	}
}

// env is a test's broker (in process, or the real one of make test-kafka)
// with an input and an output topic of three partitions each and a group.
type env struct {
	k              *testenv.Kafka
	in, out, group string
}

func startEnv(t *testing.T) *env {
	t.Helper()
	k := testenv.NewKafka(t)
	return &env{k: k, in: k.Topic("in", 3), out: k.Topic("out", 3), group: k.Name("g")}
}

// newConsumer makes a consumer of e's input with its own metrics
// (c.opts.Metrics).
func newConsumer(t *testing.T, e *env, txnID string, tr Transformer) *Consumer {
	t.Helper()
	c, err := New(Options{
		Brokers: e.k.Brokers, Group: e.group, Topic: e.in, TransactionalID: e.k.Name(txnID),
		BatchMaxRecords: 100, Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, Metrics: NewMetrics(nil),
	}, tr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// faultedEnv is an env on kfake whose produces to the output topic are
// answered with answer, once.
func faultedEnv(t *testing.T, answer *kerr.Error) (*env, *kfake.FaultHandle) {
	t.Helper()
	k := testenv.NewKafka(t, testenv.KfakeOnly("the broker's answer is injected, which only kfake can do"))
	e := &env{k: k, in: k.Topic("in", 3), out: k.Topic("out", 3), group: k.Name("g")}
	return e, k.Sandbox.Cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: e.out, Err: answer})
}

// runUntil runs until the transformer has seen n committed outputs,
// then stops the consumer and waits for Run to return.
func runUntil(t *testing.T, c *Consumer, done func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	deadline := time.After(60 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		select {
		case err := <-errc:
			cancel()
			t.Fatalf("Run returned early: %v", err)
		case <-deadline:
			cancel()
			t.Fatal("timed out waiting for the consumer")
		case <-tick.C:
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestExactlyOnceWithFailedBatchesRetried(t *testing.T) {
	e := startEnv(t)
	const n = 1000
	produceInputs(t, e, n)
	tr := &upper{out: e.out}
	tr.failures.Store(3) // the first three batches fail and must be redone
	c := newConsumer(t, e, "txn-a", tr)
	runUntil(t, c, tr.committedAtLeast(n))
	if got := tr.calls.Load(); got < 4 {
		t.Fatalf("transform called %d times; the injected failures did not happen", got)
	}
	checkExactlyOnce(t, e, n)
}

// A scorer that produces a batch and then "dies" before the commit: the
// test hook closes the session with its transaction still open, as a
// killed process would leave it.
func TestCrashBetweenProduceAndCommitLeavesNoDuplicates(t *testing.T) {
	e := startEnv(t)
	const n = 500
	produceInputs(t, e, n)

	crashed := make(chan struct{})
	tr1 := &upper{out: e.out}
	c1 := newConsumer(t, e, "txn-same", tr1)
	c1.beforeEnd = func() error {
		c1.sess.Client().Close() // connections gone, transaction left open
		close(crashed)
		return errors.New("crashed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c1.runSession(ctx) }()
	select {
	case <-crashed:
	case <-time.After(30 * time.Second):
		t.Fatal("first consumer never produced a batch")
	}
	cancel()
	<-errc

	// The restarted scorer has the same transactional id: initialising it
	// aborts the dangling transaction, and it starts from the committed
	// offsets, so the crashed batch is produced again, once.
	tr2 := &upper{out: e.out}
	c2 := newConsumer(t, e, "txn-same", tr2)
	runUntil(t, c2, tr2.committedAtLeast(n))
	checkExactlyOnce(t, e, n)
}

func TestAbortAfterProduceHidesOutputsAndRedoesTheBatch(t *testing.T) {
	e := startEnv(t)
	const n = 700
	produceInputs(t, e, n)
	tr := &upper{out: e.out}
	c := newConsumer(t, e, "txn-b", tr)
	var aborts atomic.Int32
	c.beforeEnd = func() error {
		// Every other batch is aborted after its outputs reached the
		// broker: read_committed readers must never see them.
		if aborts.Add(1)%2 == 1 {
			return errors.New("injected abort after produce")
		}
		return nil
	}
	runUntil(t, c, tr.committedAtLeast(n))
	if aborts.Load() < 2 {
		t.Fatalf("only %d transactions ended: no abort happened", aborts.Load())
	}
	checkExactlyOnce(t, e, n)
}

// A scorer that stops cleanly takes its static member out of the group, so
// its partitions move at once rather than after the session timeout.
func TestCleanShutdownLeavesTheGroup(t *testing.T) {
	e := startEnv(t)
	const n = 50
	produceInputs(t, e, n)
	tr := &upper{out: e.out}
	c := newConsumer(t, e, "txn-leave", tr)
	runUntil(t, c, tr.committedAtLeast(n))
	groups, err := e.k.Admin().DescribeGroups(context.Background(), e.group)
	if err != nil {
		t.Fatal(err)
	}
	if g := groups[e.group]; len(g.Members) != 0 {
		t.Fatalf("group still has %d members after a clean shutdown: %+v", len(g.Members), g.Members)
	}
}

// The lag gauge is labelled with the partition number in decimal, and
// holds the records between the last one fetched and the high watermark.
// A Consumer made but never run (a start-up that fails after New) has
// joined the group all the same: Close takes it out, so its partitions do
// not wait for its session to time out. Run after Close is refused.
func TestCloseWithoutRunLeavesTheGroup(t *testing.T) {
	e := startEnv(t)
	c := newConsumer(t, e, "txn-close", &upper{out: e.out})
	adm := e.k.Admin()
	members := func() int {
		t.Helper()
		groups, err := adm.DescribeGroups(context.Background(), e.group)
		if err != nil {
			t.Fatal(err)
		}
		return len(groups[e.group].Members)
	}
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for members() == 0 {
		select {
		case <-deadline:
			t.Fatal("the consumer never joined the group")
		case <-tick.C:
		}
	}
	c.Close()
	if n := members(); n != 0 {
		t.Fatalf("group has %d members after Close", n)
	}
	c.Close() // a second Close does nothing
	if err := c.Run(context.Background()); err == nil {
		t.Fatal("Run after Close succeeded")
	}
}

func TestLagGaugePerPartitionNumber(t *testing.T) {
	m := NewMetrics(nil)
	m.observeLag(kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "in", Partitions: []kgo.FetchPartition{
		{Partition: 0, HighWatermark: 10, Records: []*kgo.Record{{Offset: 3}, {Offset: 4}}},
		{Partition: 7, HighWatermark: 8, Records: []*kgo.Record{{Offset: 7}}},
		{Partition: 123, HighWatermark: 1000, Records: []*kgo.Record{{Offset: 499}}},
	}}}}})
	got := map[string]float64{}
	ch := make(chan prometheus.Metric, 10)
	m.lag.Collect(ch)
	close(ch)
	for s := range ch {
		var d dto.Metric
		if err := s.Write(&d); err != nil {
			t.Fatal(err)
		}
		got[d.GetLabel()[0].GetValue()] = d.GetGauge().GetValue()
	}
	if want := map[string]float64{"0": 5, "7": 0, "123": 500}; !maps.Equal(got, want) {
		t.Errorf("lag by partition label = %v, want %v", got, want)
	}
}

// Missing and conflicting options stop New, naming each; the defaults fill
// the rest.
func TestOptionsValidatedInOnePlace(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want []string
	}{
		{"nothing given", Options{}, []string{"no brokers", "Group is required", "Topic is required", "TransactionalID is required"}},
		{"batch timeout not below the transaction timeout", Options{Brokers: []string{"b:1"}, Group: "g", Topic: "t", TransactionalID: "x",
			TransactionTimeout: 10 * time.Second, BatchTimeout: 10 * time.Second}, []string{"BatchTimeout 10s must be below TransactionTimeout 10s"}},
		{"default batch timeout above a short transaction timeout", Options{Brokers: []string{"b:1"}, Group: "g", Topic: "t", TransactionalID: "x",
			TransactionTimeout: 20 * time.Second}, []string{"BatchTimeout 30s must be below TransactionTimeout 20s"}},
		{"max backoff below backoff", Options{Brokers: []string{"b:1"}, Group: "g", Topic: "t", TransactionalID: "x",
			Backoff: time.Second, MaxBackoff: time.Millisecond}, []string{"MaxBackoff 1ms is below Backoff 1s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts, nil)
			if err == nil {
				t.Fatal("New accepted the options")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	o := Options{Brokers: []string{"b:1"}, Group: "g", Topic: "t", TransactionalID: "x"}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	if o.BatchMaxRecords != 2000 || o.TransactionTimeout != time.Minute || o.BatchTimeout != 30*time.Second ||
		o.Backoff != 100*time.Millisecond || o.MaxBackoff != 10*time.Second || o.Logger == nil || o.Metrics == nil {
		t.Errorf("defaults not filled: %+v", o)
	}
}

// overrun is upper whose first batch runs past its BatchTimeout (as when a
// broker stops answering): it returns only once the batch's context ends.
type overrun struct {
	upper
	overran atomic.Bool
}

func (o *overrun) Transform(ctx context.Context, in, out []*kgo.Record) ([]*kgo.Record, error) {
	if !o.overran.Swap(true) {
		<-ctx.Done()
		return out, ctx.Err()
	}
	return o.upper.Transform(ctx, in, out)
}

// A batch that runs out of its time is aborted on a context of its own: an
// abort on the expired batch context failed at once and left the
// transaction open, so the next batch's Begin failed ("already in a
// transaction") and the whole session was replaced.
func TestBatchPastItsTimeIsAbortedAndRedoneInTheSameSession(t *testing.T) {
	e := startEnv(t)
	const n = 300
	produceInputs(t, e, n)
	tr := &overrun{upper: upper{out: e.out}}
	m := NewMetrics(nil)
	c, err := New(Options{
		Brokers: e.k.Brokers, Group: e.group, Topic: e.in, TransactionalID: e.k.Name("txn-overrun"),
		// Time enough for any later batch on three loaded brokers: with
		// 300 ms the aborts there could follow each other for a minute.
		BatchMaxRecords: 100, BatchTimeout: 2 * time.Second, Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		Metrics: m,
	}, tr)
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, c, tr.committedAtLeast(n))
	if !tr.overran.Load() {
		t.Fatal("no batch overran")
	}
	for name, ctr := range map[string]prometheus.Counter{"aborted": m.txnAborts, "session restarts": m.sessionRestarts} {
		var d dto.Metric
		if err := ctr.Write(&d); err != nil {
			t.Fatal(err)
		}
		want := map[string]float64{"aborted": 1, "session restarts": 0}[name]
		if got := d.GetCounter().GetValue(); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	checkExactlyOnce(t, e, n)
}

// On Apache Kafka 4.x (transactions v2, KIP-890) a produce that reaches a
// partition while the previous transaction's markers are still being
// written is answered CONCURRENT_TRANSACTIONS. franz-go holds the batch back
// until its next metadata refresh, at most one per MetadataMinAge: with the
// default 5 s, one such answer stalled the transaction for up to 5 s, and
// on the three-broker cluster the scorer fell seconds behind 5,000 events/s.
// kfake answers the first produce so here; the batch must go through well
// before the old 5 s.
func TestConcurrentTransactionsOnProduceDoesNotStallTheBatch(t *testing.T) {
	e, fault := faultedEnv(t, kerr.ConcurrentTransactions)
	const n = 300
	produceInputs(t, e, n)
	tr := &upper{out: e.out}
	c := newConsumer(t, e, "txn-concurrent", tr)
	m := c.opts.Metrics
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := fault.Wait(wctx, 1); err != nil {
		stop()
		t.Fatalf("no produce answered CONCURRENT_TRANSACTIONS: %v", err)
	}
	hit := time.Now()
	for {
		tr.committedMu.Lock()
		done := tr.committed >= n
		tr.committedMu.Unlock()
		if done {
			break
		}
		if time.Since(hit) > 10*time.Second {
			stop()
			t.Fatal("not every input committed 10 s after the CONCURRENT_TRANSACTIONS answer")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// About metadataMinAge on an idle machine; the old behaviour waited
	// until 5 s after the metadata refresh the first produce forced.
	if d := time.Since(hit); d > 2*time.Second {
		t.Errorf("the batch answered CONCURRENT_TRANSACTIONS committed %v later, want well under the 5 s metadata wait", d.Round(time.Millisecond))
	}
	stop()
	// The stall is the produce stage's: it shows in the metric.
	for _, stage := range []string{"produce", "commit"} {
		var d dto.Metric
		if err := m.txnStage.WithLabelValues(stage).(prometheus.Histogram).Write(&d); err != nil {
			t.Fatal(err)
		}
		h := d.GetHistogram()
		if h.GetSampleCount() < n/100 {
			t.Errorf("%s stage: %d batches observed, want at least %d", stage, h.GetSampleCount(), n/100)
		}
		if stage == "produce" && h.GetSampleSum() > 2 {
			t.Errorf("produce stage: %.2f s in all, want well under the old 5 s stall", h.GetSampleSum())
		}
	}
	checkExactlyOnce(t, e, n)
}

// A partition leader answers a produce INVALID_PRODUCER_EPOCH when the
// epoch is not the one it expects. On a three-broker cluster a broker
// thawed after a SIGSTOP did so to a new session's first produce, with the
// coordinator state it held before the freeze; the scorer took it for a
// fence and stopped, alone in its group. It is abortable (KIP-588): the
// batch is aborted and consumed again, in the same session, and only the
// coordinator's PRODUCER_FENCED (see the zombie test) stops the scorer.
func TestStaleEpochOnProduceAbortsTheBatchOnly(t *testing.T) {
	e, fault := faultedEnv(t, kerr.InvalidProducerEpoch)
	const n = 300
	produceInputs(t, e, n)
	tr := &upper{out: e.out}
	c := newConsumer(t, e, "txn-stale-epoch", tr)
	m := c.opts.Metrics
	runUntil(t, c, tr.committedAtLeast(n))
	if got := fault.Hits(); got != 1 {
		t.Fatalf("%d produces answered INVALID_PRODUCER_EPOCH, want 1", got)
	}
	if got := testutil.ToFloat64(m.txnAborts); got < 1 {
		t.Errorf("aborted transactions: %v, want the refused batch's", got)
	}
	if got := testutil.ToFloat64(m.sessionRestarts); got != 0 {
		t.Errorf("session restarts: %v, want 0", got)
	}
	checkExactlyOnce(t, e, n)
}

// preparing is upper as a Preparer whose BeforeCommit runs before.
type preparing struct {
	*upper
	before func(ctx context.Context) error
	calls  atomic.Int32
}

func (p *preparing) Prepare(ctx context.Context, in, out []*kgo.Record) ([]*kgo.Record, error) {
	return p.upper.Transform(ctx, in, out)
}

func (p *preparing) BeforeCommit(ctx context.Context) error {
	p.calls.Add(1)
	return p.before(ctx)
}

func (p *preparing) Transform(ctx context.Context, in, out []*kgo.Record) ([]*kgo.Record, error) {
	out, err := p.Prepare(ctx, in, out)
	if err != nil {
		return out, err
	}
	return out, p.BeforeCommit(ctx)
}

// A Preparer's writes before the commit run while the batch's outputs are
// in flight: each BeforeCommit sees the batch's records reach the output
// log (uncommitted) before it returns. One that fails aborts the batch,
// which is consumed again: exactly once holds.
func TestPreparerWritesWhileTheOutputsAreProduced(t *testing.T) {
	e := startEnv(t)
	const n = 300
	produceInputs(t, e, n)
	adm := e.k.Admin()
	var logged int64 // records in the output log, aborted ones included
	tr := &preparing{upper: &upper{out: e.out}}
	tr.before = func(ctx context.Context) error {
		deadline := time.Now().Add(30 * time.Second)
		for {
			ends, err := adm.ListEndOffsets(ctx, e.out)
			if err != nil {
				return err
			}
			var sum int64
			ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
			if sum > logged {
				logged = sum
				break
			}
			if time.Now().After(deadline) {
				t.Error("no output of the batch reached the log while BeforeCommit ran")
				return errors.New("outputs not in flight")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if tr.calls.Load() == 1 {
			return errors.New("injected failure of the writes before the commit")
		}
		return nil
	}
	c := newConsumer(t, e, "txn-prepare", tr)
	m := c.opts.Metrics
	runUntil(t, c, tr.committedAtLeast(n))
	if got := tr.calls.Load(); got < 4 {
		t.Errorf("BeforeCommit ran %d times, want the failed batch's and at least three more", got)
	}
	if got := testutil.ToFloat64(m.txnAborts); got < 1 {
		t.Errorf("aborted transactions: %v, want the failed batch's", got)
	}
	checkExactlyOnce(t, e, n)
}
