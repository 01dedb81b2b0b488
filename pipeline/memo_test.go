package pipeline

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
)

func loadRegistry(t testing.TB) *scoring.Registry {
	t.Helper()
	reg, err := scoring.LoadRegistry("../models/registry.json")
	if err != nil {
		t.Fatalf("load registry: %v", err)
	}
	return reg
}

// rowOnly hides a model's batch methods: the pipeline must then score and
// explain it one row at a time.
type rowOnly struct{ scoring.Model }

// Batch scoring, with the memo or without, and the row-at-a-time fallback
// must give every change exactly what scoring its vector directly gives:
// score, percentile, factors with their phrases, explanation and its hash.
func TestBatchScoringGivesWhatDirectScoringGives(t *testing.T) {
	for _, tc := range []struct {
		name     string
		memo     bool
		rowsOnly bool
	}{{"batch", false, false}, {"batch-memo", true, false}, {"rows", false, true}, {"rows-memo", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 700 // several blocks of missBlock, and a partial one
			p := scoreBatchPipeline(t, n, tc.memo, func(reg *scoring.Registry) {
				if tc.rowsOnly {
					for _, v := range reg.Serving() {
						v.Model = rowOnly{v.Model}
					}
				}
			})
			snap := p.snap.Load()
			for _, sv := range snap.serving {
				if (sv.batch == nil) != tc.rowsOnly {
					t.Fatalf("%s: batch model %v", sv.v.Name, sv.batch != nil)
				}
			}
			now := benchNow
			// Twice: the second batch finds the first one's vectors in the
			// memo, and reuses the memory of the first without the memo.
			for round := range 2 {
				p.out.Reset()
				clear(p.pending)
				if _, err := p.scoreAll(snap, now, now, nil); err != nil {
					t.Fatal(err)
				}
				checkDirect(t, p, snap, now)
				if tc.memo {
					for _, sv := range snap.serving {
						hits := testutil.ToFloat64(p.m.memoHits.WithLabelValues(sv.v.Name))
						lookups := testutil.ToFloat64(p.m.memoLookups.WithLabelValues(sv.v.Name))
						if lookups != float64((round+1)*n) || hits < float64(round*n) || hits == 0 {
							t.Fatalf("round %d %s: %v hits of %v lookups", round, sv.v.Name, hits, lookups)
						}
					}
				}
			}
		})
	}
}

func checkDirect(t *testing.T, p *Pipeline, snap *snapshot, now time.Time) {
	t.Helper()
	var vals features.Values
	for i := range p.changes {
		derive(now, &p.changes[i], &p.results[i], &vals)
		for _, sv := range snap.serving {
			v := sv.v
			x := make([]float64, len(v.Features))
			sv.layout.Fill(&vals, x)
			got := sv.outs[i]
			score := v.Model.Score(x)
			contrib := make([]float64, len(x)+1)
			if err := v.Model.Contributions(x, contrib); err != nil {
				t.Fatal(err)
			}
			want := v.TopFactors(x, contrib, make([]scoring.Factor, TopFactors))
			if math.Float64bits(got.score) != math.Float64bits(score) || got.pct != v.Percentile(score) {
				t.Fatalf("change %d %s: score %v pct %d, direct %v pct %d", i, v.Name, got.score, got.pct, score, v.Percentile(score))
			}
			if len(got.factors) != len(want) {
				t.Fatalf("change %d %s: %d factors, direct %d", i, v.Name, len(got.factors), len(want))
			}
			for j, f := range want {
				g := got.factors[j]
				sameValue := g.Value == f.Value || math.IsNaN(g.Value) && math.IsNaN(f.Value)
				if g.Feature != f.Feature || !sameValue || g.Contribution != f.Contribution || g.Phrase != f.Phrase {
					t.Fatalf("change %d %s factor %d: %+v, direct %+v", i, v.Name, j, g, f)
				}
			}
			if v.Role != scoring.RoleProduction {
				continue
			}
			wantFactors := make([]schemas.Factor, len(want))
			for j, f := range want {
				wantFactors[j] = schemas.Factor{Phrase: f.Phrase, Contribution: f.Contribution}
			}
			if e := producer.Explanation(wantFactors, schemas.MaxExplanationLen); got.explanation != e || got.explHash != hash(e) {
				t.Fatalf("change %d %s: explanation %q, direct %q", i, v.Name, got.explanation, e)
			}
		}
	}
}

// With the memo off, a batch allocates nothing once its buffers have grown:
// features, both versions scored and explained, factors, explanation,
// quota guard and the encoded sink and shadow records.
func TestScoringABatchAllocatesNothing(t *testing.T) {
	p := scoreBatchPipeline(t, 300, false, nil)
	snap := p.snap.Load()
	var out []*kgo.Record
	run := func() {
		p.out.Reset()
		clear(p.pending)
		var err error
		if out, err = p.scoreAll(snap, benchNow, benchNow, out[:0]); err != nil {
			t.Fatal(err)
		}
	}
	run()
	if allocs := testing.AllocsPerRun(5, run); allocs != 0 {
		t.Fatalf("%v allocations per batch of %d changes", allocs, len(p.changes))
	}
	if len(out) < len(p.changes) {
		t.Fatalf("%d outputs for %d changes", len(out), len(p.changes))
	}
}

func TestMemoIsBounded(t *testing.T) {
	p := scoreBatchPipeline(t, 1, true, nil)
	sv := p.snap.Load().serving[0]
	var vals features.Values
	const batch = 1000
	for b := range (maxMemo + 10*batch) / batch {
		sv.begin(batch)
		for i := range batch {
			for j := range vals {
				vals[j] = float64((b*batch + i) * (j + 1))
			}
			sv.add(i, &vals)
		}
		if err := sv.run(); err != nil {
			t.Fatal(err)
		}
		if len(sv.memo) > maxMemo {
			t.Fatalf("memo holds %d entries after %d vectors, more than %d", len(sv.memo), (b+1)*batch, maxMemo)
		}
	}
}

// failing explains nothing: its batch fails.
type failing struct{ scoring.Model }

func (failing) Contributions(x, out []float64) error {
	if len(out) != len(x)+1 {
		return scoring.ErrNoContributions
	}
	return errExplain
}

var errExplain = errors.New("explain failed")

// A batch whose scoring fails must leave nothing in the memo: the vectors
// it queued there were never computed, and a later batch would take their
// zero scores.
func TestFailedBatchLeavesNoMemoEntries(t *testing.T) {
	p := scoreBatchPipeline(t, 50, true, nil)
	snap := p.snap.Load()
	sv := snap.serving[0]
	sv.v.Model, sv.batch, sv.explain = failing{sv.v.Model}, nil, true
	if _, err := p.scoreAll(snap, benchNow, benchNow, nil); !errors.Is(err, errExplain) {
		t.Fatalf("scoreAll: %v, want the model's error", err)
	}
	if len(sv.memo) != 0 {
		t.Fatalf("%d memo entries after a failed batch", len(sv.memo))
	}
}
