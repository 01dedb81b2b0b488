package pipeline

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/featurestore"
	"github.com/leadscorer/leadscorer/internal/cdcsim"
	"github.com/leadscorer/leadscorer/internal/synth"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// BenchmarkTransformCDC is the whole pipeline on a batch of 2,000 change
// events in the load generator's CDC shape (the demo's mix over a pool of
// 400 Leads of a 5,000-advisor population), against the real Redis on
// 127.0.0.1:6379: decode, the Lead states read and written, the advisor
// and firm lookups, features, both versions scored and explained (memo
// off), outputs encoded, and the quota states saved after the commit.
// Kafka is not in it. ns/event is wall time and includes the waits on
// Redis; cpu-ns/event is this process's CPU (getrusage) over the same
// spans, so the scorer's alone. Under callgrind the instructions are the
// scorer's own: Redis runs in its own process.
//
// "redo" transforms the same records every iteration, which the pipeline
// takes for a batch redone after an abort (its Lead states were written at
// these offsets), so it starts from the same states and does the same work;
// only the quota guard, which sees the states saved by the previous
// iteration, holds back more sink records than the first pass. A redo also
// decodes each Lead's state before the batch, which a drain does not.
// "drain" is the common path: every iteration is the mixer's next 2,000
// events at the offsets after the last, made with the timer stopped.
func BenchmarkTransformCDC(b *testing.B) {
	const n = 2000
	ctx := context.Background()
	sreg := srfake.New()
	defer sreg.Close()
	srcl, err := sr.NewClient(sr.URLs(sreg.URL()))
	if err != nil {
		b.Fatal(err)
	}
	ids, err := schemas.Register(ctx, srcl, schemas.CDCTopics())
	if err != nil {
		b.Fatal(err)
	}
	codec := schemas.NewCodec(srcl, ids)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	prefix := fmt.Sprintf("bench-transform-%d:", time.Now().UnixNano())
	store := featurestore.New(rdb, prefix, nil)
	defer func() {
		keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	}()
	pop, err := synth.Generate(synth.Options{Seed: 1, Advisors: 5000})
	if err != nil {
		b.Fatal(err)
	}
	if err := store.PutFirms(ctx, pop.Firms); err != nil {
		b.Fatalf("redis on 127.0.0.1:6379 is required: %v", err)
	}
	if err := store.PutAdvisors(ctx, pop.Advisors); err != nil {
		b.Fatal(err)
	}
	leads := make([]cdcsim.Lead, len(pop.Leads))
	for i, l := range pop.Leads {
		leads[i] = cdcsim.Lead{ID: l.ID, CRD: l.CRD, HasEmail: l.HasEmail, HasLinkedIn: l.HasLinkedIn}
	}
	gen := cdcsim.New(cdcsim.Options{Codec: codec, Topic: "in", Seed: 1, Start: time.Date(2025, 11, 1, 9, 0, 0, 0, time.UTC)})
	mix := cdcsim.DefaultMix(n, 0)
	mix.Poison, mix.Duplicates = 0, 0
	m := cdcsim.NewMixer(gen, leads, mix)
	var offset int64
	next := func() []*kgo.Record {
		var in []*kgo.Record
		for range n {
			if err := m.Next(); err != nil {
				b.Fatal(err)
			}
			for _, r := range m.Take() {
				r.Offset = offset
				offset++
				in = append(in, r)
			}
		}
		return in
	}
	o := cdcOptions()
	o.SinkUserID = cdcsim.SinkUser
	p, err := New(Options{SfdcTopic: "sfdc", ShadowTopic: "shadow", DLQTopic: "dlq", MaxRecordBytes: 1 << 18,
		FeatureMaxAge: 720 * time.Hour, ScoreEpsilon: 0.001, CDC: o, RedisBackoff: featurestore.DefaultBackoff,
		Now: func() time.Time { return time.Date(2025, 11, 2, 0, 0, 0, 0, time.UTC) }}, codec, store, loadRegistry(b))
	if err != nil {
		b.Fatal(err)
	}
	var out []*kgo.Record
	run := func(b *testing.B, in func() []*kgo.Record) {
		var events, outputs int
		var cpu time.Duration
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			batch := in()
			b.StartTimer()
			start := processCPU(b)
			if out, err = p.Transform(ctx, batch, out[:0]); err != nil {
				b.Fatal(err)
			}
			if err := p.Committed(ctx, out); err != nil {
				b.Fatal(err)
			}
			cpu += processCPU(b) - start
			events += len(batch)
			outputs += len(out)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(events), "cpu-ns/event")
		b.ReportMetric(float64(outputs)/float64(events), "outputs/event")
	}
	same := next()
	b.Run("redo", func(b *testing.B) { run(b, func() []*kgo.Record { return same }) })
	b.Run("drain", func(b *testing.B) { run(b, next) })
}

// processCPU is the user and system CPU time this process has used: the
// scorer's own, without Redis's, which ns/event includes as waiting.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
