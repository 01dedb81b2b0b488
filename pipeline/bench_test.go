package pipeline

import (
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/featurestore"
	"github.com/leadscorer/leadscorer/internal/synth"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/twmb/franz-go/pkg/kgo"
)

var benchNow = time.Date(2025, 11, 2, 0, 0, 0, 0, time.UTC)

// scoreBatchPipeline is a pipeline holding one enriched batch of n
// changes: the population's leads (distinct) with their advisors and firms
// as Redis would return them, ready for the scoring stage. edit, when set,
// changes the registry first.
func scoreBatchPipeline(t testing.TB, n int, memo bool, edit func(*scoring.Registry)) *Pipeline {
	t.Helper()
	codec := schemas.NewCodec(nil, schemas.IDs{Sfdc: 1, Shadow: 2})
	reg := loadRegistry(t)
	if edit != nil {
		edit(reg)
	}
	p, err := New(Options{SfdcTopic: "sfdc", ShadowTopic: "shadow", DLQTopic: "dlq", MaxRecordBytes: 1 << 16,
		FeatureMaxAge: 720 * time.Hour, ScoreEpsilon: 0.001, ScoreMemo: memo}, codec, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	pop, err := synth.Generate(synth.Options{Seed: 3, Advisors: 20000})
	if err != nil {
		t.Fatal(err)
	}
	if len(pop.Leads) < n {
		t.Fatalf("%d leads, want %d", len(pop.Leads), n)
	}
	in := &kgo.Record{Topic: "leads.changed.v1"}
	for i := range n {
		l := &pop.Leads[i]
		c := change{in: in, eventID: l.ID, leadID: l.ID, crd: l.CRD, lead: l.Lead, eventTime: l.Contact}
		var res featurestore.Result
		if a := pop.Advisor(l.CRD); a != nil {
			res.Advisor, res.AdvisorFound = *a, true
			if crd, _, ok := a.FirmAt(l.Contact); ok {
				if f := pop.Firm(crd); f != nil {
					res.Firm, res.FirmFound = *f, true
				}
			}
		}
		p.changes = append(p.changes, c)
		p.results = append(p.results, res)
	}
	return p
}

// BenchmarkScoreStage is the scoring stage of a batch of 512 distinct
// leads: features, both versions scored and explained, percentiles, top
// factors, explanation text, quota guard, sink and shadow records encoded.
// memo-off is the service's work per event without the score memo;
// memo-cold has the memo on but emptied before every batch, so it helps
// only with vectors repeated within the batch (bucketed features), as a
// key spread without repeats would let it.
func BenchmarkScoreStage(b *testing.B) {
	for _, bc := range []struct {
		name string
		memo bool
	}{{"memo-off", false}, {"memo-cold", true}} {
		b.Run(bc.name, func(b *testing.B) {
			const n = 512
			p := scoreBatchPipeline(b, n, bc.memo, nil)
			snap := p.snap.Load()
			var out []*kgo.Record
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for _, sv := range snap.serving {
					clear(sv.memo)
				}
				clear(p.pending)
				p.out.Reset()
				var err error
				if out, err = p.scoreAll(snap, benchNow, benchNow, out[:0]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
	}
}
