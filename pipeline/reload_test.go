package pipeline

import (
	"context"
	"fmt"
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

// A registry swapped while batches are scored takes effect between
// batches, whole: every batch is scored by one snapshot, never a mix.
func TestRegistrySwapUnderLoadNeverMixesSnapshots(t *testing.T) {
	ctx := context.Background()
	champion := loadRegistry(t) // v4.0.0 production, v4.1.0 shadow
	promoted := loadRegistry(t)
	if err := promoted.Promote("v4.1.0", "test", time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}

	reg := srfake.New()
	defer reg.Close()
	srcl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := schemas.Register(ctx, srcl, schemas.DefaultTopics())
	if err != nil {
		t.Fatal(err)
	}
	codec := schemas.NewCodec(srcl, ids)

	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	prefix := fmt.Sprintf("test-reload-%d:", time.Now().UnixNano())
	store := featurestore.New(rdb, prefix, nil)
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	if err := store.PutAdvisors(ctx, []features.Advisor{{CRD: 77, RepType: "IA", IndustryStart: day(2015, 1, 1),
		SnapshotAt: day(2025, 11, 1)}}); err != nil {
		t.Fatalf("redis on 127.0.0.1:6379 is required: %v", err)
	}

	p, err := New(Options{SfdcTopic: "sfdc", ShadowTopic: "shadow", DLQTopic: "dlq", MaxRecordBytes: 1 << 16,
		FeatureMaxAge: time.Hour, Now: func() time.Time { return day(2025, 11, 2) }}, codec, store, champion)
	if err != nil {
		t.Fatal(err)
	}

	// 200 events per batch, one lead each, so every event gives a shadow record.
	var in []*kgo.Record
	for i := range 200 {
		lead := fmt.Sprintf("00Q5e0000%08dA", i) // 18 characters
		v, err := codec.AppendLeadChanged(nil, &schemas.LeadChanged{EventID: fmt.Sprint(i), LeadID: lead, CRD: 77, HasCRD: true,
			ChangedFields: []string{"Status"}, EventTime: day(2025, 11, 2)})
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, &kgo.Record{Topic: "in", Key: []byte(lead), Value: v})
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
