package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/featurestore"
	"github.com/leadscorer/leadscorer/internal/testenv"
	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/prometheus/client_golang/prometheus/testutil"
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
	rdb   *redis.Client
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

	r := testenv.NewRedis(t)
	store := featurestore.New(r.Client, r.Prefix, nil)
	if err := store.PutAdvisors(ctx, []features.Advisor{{CRD: 77, RepType: "IA", IndustryStart: testDay(2015, 1, 1),
		SnapshotAt: testDay(2025, 11, 1)}}); err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{SfdcTopic: "sfdc", ShadowTopic: "shadow", DLQTopic: "dlq", MaxRecordBytes: 1 << 16,
		FeatureMaxAge: time.Hour, ScoreEpsilon: 0.001, Now: func() time.Time { return testDay(2025, 11, 2) }}, codec, store, reg)
	if err != nil {
		t.Fatal(err)
	}
	return &testPipeline{Pipeline: p, codec: codec, store: store, rdb: r.Client}
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

// route names where each output record went: its topic, and for a dead
// letter its class.
func route(out []*kgo.Record) []string {
	var got []string
	for _, r := range out {
		if r.Topic == "dlq" {
			got = append(got, "dlq:"+producer.Header(r, producer.HeaderErrorClass))
			continue
		}
		got = append(got, r.Topic)
	}
	return got
}

// Every way one input record can go: each row is a batch, built from lead
// changes of a lead of its own, and the outputs it must give in order.
func TestRoutingOfEachRecord(t *testing.T) {
	ctx := context.Background()
	tp := newTestPipeline(t, loadRegistry(t))
	rdb := tp.rdb
	if err := rdb.Set(ctx, tp.store.AdvisorKey(78), "not a number|||||", 0).Err(); err != nil {
		t.Fatal(err)
	}
	change := func(lead int, edit func(*schemas.LeadChanged)) *kgo.Record {
		e := schemas.LeadChanged{EventID: fmt.Sprint(lead), LeadID: fmt.Sprintf("00Q5e0000%08dA", lead), CRD: 77, HasCRD: true,
			ChangedFields: []string{"Status"}, EventTime: testDay(2025, 11, 2)}
		if edit != nil {
			edit(&e)
		}
		v, err := tp.codec.AppendLeadChanged(nil, &e)
		if err != nil {
			t.Fatal(err)
		}
		return &kgo.Record{Topic: "in", Key: []byte(e.LeadID), Value: v}
	}
	raw := func(v []byte) *kgo.Record { return &kgo.Record{Topic: "in", Value: v} }
	good := change(1, nil).Value

	cases := []struct {
		name       string
		in         []*kgo.Record
		unknownDLQ bool
		want       []string
		echoes     float64
	}{
		{"a change is scored: a sink record, then the shadow record", []*kgo.Record{change(1, nil)},
			false, []string{"sfdc", "shadow"}, 0},
		{"the same lead unchanged again: the quota guard keeps the sink record back",
			[]*kgo.Record{change(2, nil), change(2, nil)}, false, []string{"sfdc", "shadow", "shadow"}, 0},
		{"a changed lead is written again", []*kgo.Record{change(3, nil), change(3, func(e *schemas.LeadChanged) { e.HasEmail = true })},
			false, []string{"sfdc", "shadow", "sfdc", "shadow"}, 0},
		{"an echo of the sink's write gives nothing",
			[]*kgo.Record{change(4, func(e *schemas.LeadChanged) { e.ChangedFields = []string{"V4_Score__c", "V4_Scored_At__c"} })},
			false, nil, 1},
		{"an oversized record is a dead letter of class size", []*kgo.Record{raw(make([]byte, 1<<16+1))},
			false, []string{"dlq:size"}, 0},
		{"bytes that are not a record are a dead letter of class decode", []*kgo.Record{raw([]byte("not avro"))},
			false, []string{"dlq:decode"}, 0},
		{"an unknown schema id is a dead letter of class schema", []*kgo.Record{raw(append([]byte{0, 0, 0x0f, 0x42, 0x3f}, good[5:]...))},
			false, []string{"dlq:schema"}, 0},
		{"a change without a CRD is a dead letter of class validation",
			[]*kgo.Record{change(5, func(e *schemas.LeadChanged) { e.HasCRD = false })}, false, []string{"dlq:validation"}, 0},
		{"an unknown advisor is scored with missing values",
			[]*kgo.Record{change(6, func(e *schemas.LeadChanged) { e.CRD = 999 })}, false, []string{"sfdc", "shadow"}, 0},
		{"an unknown advisor is a dead letter of class features when the policy says dlq",
			[]*kgo.Record{change(7, func(e *schemas.LeadChanged) { e.CRD = 999 })}, true, []string{"dlq:features"}, 0},
		{"a malformed stored advisor is a dead letter of class features",
			[]*kgo.Record{change(8, func(e *schemas.LeadChanged) { e.CRD = 78 })}, false, []string{"dlq:features"}, 0},
		{"a bad record does not stop the good ones around it; dead letters come first, as records are decoded before the batch is scored",
			[]*kgo.Record{change(9, nil), raw([]byte{0}), change(10, nil)}, false, []string{"dlq:decode", "sfdc", "shadow", "sfdc", "shadow"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tp.opts.UnknownAdvisorToDLQ = tc.unknownDLQ
			echoes := testutil.ToFloat64(tp.m.echoes)
			out, err := tp.Transform(ctx, tc.in, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := route(out); !slices.Equal(got, tc.want) {
				t.Fatalf("outputs %v, want %v", got, tc.want)
			}
			if got := testutil.ToFloat64(tp.m.echoes) - echoes; got != tc.echoes {
				t.Fatalf("%v echoes counted, want %v", got, tc.echoes)
			}
			if err := tp.Committed(ctx, out); err != nil {
				t.Fatal(err)
			}
		})
	}
}
