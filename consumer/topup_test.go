package consumer

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
)

// batches is a Transformer that records each batch's input values and
// runs its hook, if any, on each call.
type batches struct {
	mu   sync.Mutex
	seen [][]string
	hook func(call int)
}

func (b *batches) Transform(_ context.Context, in, out []*kgo.Record) ([]*kgo.Record, error) {
	var vals []string
	for _, r := range in {
		vals = append(vals, string(r.Value))
	}
	b.mu.Lock()
	b.seen = append(b.seen, vals)
	call := len(b.seen)
	b.mu.Unlock()
	if b.hook != nil {
		b.hook(call)
	}
	return out, nil
}

func (b *batches) Committed(context.Context, []*kgo.Record) error { return nil }

func (b *batches) calls() [][]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.seen)
}

// bufferedHook reports each record the client buffers from a fetch.
type bufferedHook chan string

func (h bufferedHook) OnFetchRecordBuffered(r *kgo.Record) { h <- string(r.Value) }

// twoBatches runs a consumer of a one-partition topic holding first, whose
// batches take at most len(first) records, until it has made two batches,
// and returns them. While the first batch runs, buffered is produced and
// fetched into the client's buffer, then after is produced and stays on
// the broker: the second batch takes buffered and, within wait, after.
func twoBatches(t *testing.T, first []string, buffered string, after []string, wait time.Duration) ([][]string, *Metrics) {
	t.Helper()
	e := startEnv(t)
	in := e.k.Topic("in1", 1)
	produce := func(vs ...string) {
		recs := make([]*kgo.Record, len(vs))
		for i, v := range vs {
			recs[i] = &kgo.Record{Topic: in, Value: []byte(v)}
		}
		if len(recs) > 0 {
			e.k.Produce(recs...)
		}
	}
	produce(first...)
	fetched := make(bufferedHook, 16)
	fail := make(chan string, 1)
	tr := &batches{}
	tr.hook = func(call int) {
		if call != 1 {
			return
		}
		produce(buffered)
		for v := ""; v != buffered; {
			select {
			case v = <-fetched:
			case <-time.After(30 * time.Second):
				fail <- buffered + " was never fetched into the client's buffer"
				return
			}
		}
		produce(after...)
	}
	m := NewMetrics(nil)
	c, err := New(Options{
		Brokers: e.k.Brokers, Group: e.group, Topic: in, TransactionalID: e.k.Name("txn-topup"),
		// A full first batch is not topped up; the second is.
		BatchMaxRecords: len(first), TopUpWait: wait,
		ClientOpts: []kgo.Opt{kgo.WithHooks(fetched)},
		Backoff:    time.Millisecond, MaxBackoff: 10 * time.Millisecond, Metrics: m,
	}, tr)
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, c, func() bool {
		select {
		case msg := <-fail:
			t.Fatal(msg)
		default:
		}
		return len(tr.calls()) >= 2
	})
	return tr.calls()[:2], m
}

// The client keeps one fetch buffered, answered as soon as the previous
// batch took its records. A batch takes that fetch and, within
// TopUpWait, the one the client sends when it is taken: what arrived
// while the previous batch ran is scored now, not a batch later.
func TestBatchTopsUpWithWhatArrivedMeanwhile(t *testing.T) {
	// The wait ends as soon as a fetch brings records.
	got, m := twoBatches(t, []string{"a1", "a2", "a3"}, "b", []string{"c"}, 20*time.Second)
	want := [][]string{{"a1", "a2", "a3"}, {"b", "c"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("batches %q, want %q: the second batch did not take what arrived while the first ran", got, want)
	}
	if n := testutil.ToFloat64(m.topUpRecords); n != 1 {
		t.Errorf("leadscorer_kafka_top_up_records_total = %v, want 1", n)
	}
}

// A top-up that finds nothing more ends at TopUpWait and the batch goes on
// with what was buffered; the poll's own deadline is not a fetch error.
func TestTopUpThatFindsNothingIsNoError(t *testing.T) {
	got, m := twoBatches(t, []string{"a1", "a2"}, "b", nil, 20*time.Millisecond)
	want := [][]string{{"a1", "a2"}, {"b"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("batches %q, want %q", got, want)
	}
	if n := testutil.ToFloat64(m.fetchErrors); n != 0 {
		t.Errorf("leadscorer_kafka_fetch_errors_total = %v after a top-up that found nothing, want 0", n)
	}
	if n := testutil.ToFloat64(m.topUpRecords); n != 0 {
		t.Errorf("leadscorer_kafka_top_up_records_total = %v, want 0", n)
	}
}
