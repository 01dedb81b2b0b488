package pipeline

import (
	"context"
	"fmt"
	"github.com/leadscorer/leadscorer/scoring"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/featurestore"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// testPipeline is a pipeline over a schema registry (srfake), the real Redis
// under a unique prefix holding advisor 77, and registry reg.
type testPipeline struct {
	*Pipeline
	codec *schemas.Codec
	store *featurestore.Store
}

func newTestPipeline(t *testing.T, reg *scoring.Registry) *testPipeline {
	t.Helper()
	ctx := context.Background()
	sreg := srfake.New()
	t.Cleanup(sreg.Close)
	srcl, err := sr.NewClient(sr.URLs(sreg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := schemas.Register(ctx, srcl, schemas.DefaultTopics())
	if err != nil {
		t.Fatal(err)
	}
	codec := schemas.NewCodec(srcl, ids)

	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	prefix := fmt.Sprintf("test-pipeline-%d:", time.Now().UnixNano())
	store := featurestore.New(rdb, prefix, nil)
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
		rdb.Close()
	})
	if err := store.PutAdvisors(ctx, []features.Advisor{{CRD: 77, RepType: "IA", IndustryStart: testDay(2015, 1, 1),
		SnapshotAt: testDay(2025, 11, 1)}}); err != nil {
		t.Fatalf("redis on 127.0.0.1:6379 is required: %v", err)
	}
	p, err := New(Options{SfdcTopic: "sfdc", ShadowTopic: "shadow", DLQTopic: "dlq", MaxRecordBytes: 1 << 16,
		FeatureMaxAge: time.Hour, ScoreEpsilon: 0.001, Now: func() time.Time { return testDay(2025, 11, 2) }}, codec, store, reg)
	if err != nil {
		t.Fatal(err)
	}
	return &testPipeline{Pipeline: p, codec: codec, store: store}
}

func testDay(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// event is a lead change of advisor 77 for lead number i.
func (tp *testPipeline) event(t *testing.T, i int) *kgo.Record {
	t.Helper()
	lead := fmt.Sprintf("00Q5e0000%08dA", i) // 18 characters
	v, err := tp.codec.AppendLeadChanged(nil, &schemas.LeadChanged{EventID: fmt.Sprint(i), LeadID: lead, CRD: 77, HasCRD: true,
		ChangedFields: []string{"Status"}, EventTime: testDay(2025, 11, 2)})
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: "in", Key: []byte(lead), Value: v}
}

// A registry swapped while batches are scored takes effect between
// batches, whole: every batch is scored by one snapshot, never a mix.
func TestRegistrySwapUnderLoadNeverMixesSnapshots(t *testing.T) {
	ctx := context.Background()
	champion := loadRegistry(t) // v4.0.0 production, v4.1.0 shadow
	promoted := loadRegistry(t)
	if err := promoted.Promote("v4.1.0", "test", time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	tp := newTestPipeline(t, champion)
	p, codec := tp.Pipeline, tp.codec

	// 200 events per batch, one lead each, so every event gives a shadow record.
	var in []*kgo.Record
	for i := range 200 {
		in = append(in, tp.event(t, i))
	}

	// Swap the registry back and forth as fast as possible while scoring.
	var stop atomic.Bool
	var swaps atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			r := champion
			if i%2 == 1 {
				r = promoted
			}
			if err := p.SetRegistry(r); err != nil {
				t.Error(err)
				return
			}
			swaps.Add(1)
		}
	}()

	seen := map[string]int{}
	var out []*kgo.Record
	for batch := 0; batch < 60 || len(seen) < 2; batch++ {
		if batch > 2000 {
			break
		}
		var err error
		out, err = p.Transform(ctx, in, out[:0])
		if err != nil {
			t.Fatal(err)
		}
		production, shadows := "", 0
		for _, r := range out {
			if r.Topic != "shadow" {
				continue
			}
			shadows++
			var s schemas.LeadScoreShadow
			if err := codec.DecodeShadow(ctx, r.Value, &s); err != nil {
				t.Fatal(err)
			}
			var roles []string
			for _, vs := range s.Scores {
				roles = append(roles, vs.Version+"="+vs.Role)
			}
			got := strings.Join(roles, ",")
			if production == "" {
				production = got
			} else if got != production {
				t.Fatalf("batch %d mixes snapshots: %s and %s", batch, production, got)
			}
		}
		if shadows != len(in) {
			t.Fatalf("batch %d: %d shadow records for %d events", batch, shadows, len(in))
		}
		seen[production]++
	}
	stop.Store(true)
	wg.Wait()
	if len(seen) < 2 || swaps.Load() < 2 {
		t.Fatalf("batches saw %v after %d swaps: the swap never took effect", seen, swaps.Load())
	}
	t.Logf("%d swaps; batches per snapshot: %v", swaps.Load(), seen)
}

// The quota state of a lead is gone from Redis before its sink record can
// commit, and saved again only after the commit: a scorer that dies in
// between leaves no state, never a stale one.
func TestQuotaStateIsForgottenBeforeCommitAndSavedAfter(t *testing.T) {
	ctx := context.Background()
	tp := newTestPipeline(t, loadRegistry(t))
	in := tp.event(t, 1)
	lead := string(in.Key)
	stale := featurestore.SinkState{LeadID: lead, Score: 0.01, Percentile: 1, Version: "v4.0.0"}
	if err := tp.store.SaveSink(ctx, []featurestore.SinkState{stale}); err != nil {
		t.Fatal(err)
	}
	lookup := func() featurestore.Result {
		out := make([]featurestore.Result, 1)
		if err := tp.store.Lookup(ctx, []featurestore.Request{{CRD: 77, LeadID: lead}}, out); err != nil {
			t.Fatal(err)
		}
		return out[0]
	}
	out, err := tp.Transform(ctx, []*kgo.Record{in}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sinks := 0
	for _, r := range out {
		if r.Topic == "sfdc" {
			sinks++
		}
	}
	if sinks != 1 {
		t.Fatalf("%d sink records, want 1 (the score changed from the stale state)", sinks)
	}
	if got := lookup(); got.HasLastSink {
		t.Fatalf("quota state %+v still in Redis before the commit", got.LastSink)
	}
	if err := tp.Committed(ctx, out); err != nil {
		t.Fatal(err)
	}
	got := lookup()
	if !got.HasLastSink || got.LastSink.Score == stale.Score {
		t.Fatalf("after the commit the state is %+v (found %v), want the new score", got.LastSink, got.HasLastSink)
	}
}
