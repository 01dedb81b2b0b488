package pipeline

import (
	"math"
	"testing"

	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/internal/synth"
	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/scoring"
)

func loadRegistry(t testing.TB) *scoring.Registry {
	t.Helper()
	reg, err := scoring.LoadRegistry("../models/registry.json")
	if err != nil {
		t.Fatalf("load registry: %v", err)
	}
	return reg
}

// The memo must give, for every feature vector, exactly what scoring the
// vector directly gives: it may only skip work, never change an output.
func TestMemoGivesWhatDirectScoringGives(t *testing.T) {
	p, err := New(Options{}, nil, nil, loadRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	pop, err := synth.Generate(synth.Options{Seed: 3, Advisors: 2000})
	if err != nil {
		t.Fatal(err)
	}
	snap := p.snap.Load()
	var vals features.Values
	hits := 0
	for i := range pop.Leads {
		pop.Derive(&pop.Leads[i], &vals)
		for _, sv := range snap.serving {
			sv.layout.Fill(&vals, sv.x)
			before := len(sv.memo)
			got, err := sv.score()
			if err != nil {
				t.Fatal(err)
			}
			if len(sv.memo) == before {
				hits++
			}
			v := sv.v
			score := v.Model.Score(sv.x)
			contrib := make([]float64, len(sv.x)+1)
			if err := v.Model.Contributions(sv.x, contrib); err != nil {
				t.Fatal(err)
			}
			want := v.TopFactors(sv.x, contrib, make([]scoring.Factor, TopFactors))
			if got.score != score || got.pct != v.Percentile(score) {
				t.Fatalf("lead %d %s: memo score %v pct %d, direct %v pct %d", i, v.Name, got.score, got.pct, score, v.Percentile(score))
			}
			if len(got.factors) != len(want) {
				t.Fatalf("lead %d %s: %d factors, direct %d", i, v.Name, len(got.factors), len(want))
			}
			for j, f := range want {
				g := got.factors[j]
				sameValue := g.Value == f.Value || math.IsNaN(g.Value) && math.IsNaN(f.Value)
				if g.Feature != f.Feature || !sameValue || g.Contribution != f.Contribution || g.Phrase != f.Phrase {
					t.Fatalf("lead %d %s factor %d: memo %+v, direct %+v", i, v.Name, j, g, f)
				}
			}
			wantFactors := make([]schemas.Factor, len(want))
			for j, f := range want {
				wantFactors[j] = schemas.Factor{Phrase: f.Phrase, Contribution: f.Contribution}
			}
			if e := producer.Explanation(wantFactors, schemas.MaxExplanationLen); got.explanation != e || got.explHash != hash(e) {
				t.Fatalf("lead %d %s: memo explanation %q, direct %q", i, v.Name, got.explanation, e)
			}
		}
	}
	if hits == 0 {
		t.Fatal("no vector was scored twice: the test does not exercise the memo")
	}
	t.Logf("%d lookups, %d memo hits", 2*len(pop.Leads), hits)
}

func TestMemoIsBounded(t *testing.T) {
	p, err := New(Options{}, nil, nil, loadRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	sv := p.snap.Load().serving[0]
	for i := range maxMemo + 10 {
		for j := range sv.x {
			sv.x[j] = float64(i * (j + 1))
		}
		if _, err := sv.score(); err != nil {
			t.Fatal(err)
		}
		if len(sv.memo) > maxMemo {
			t.Fatalf("memo holds %d entries after %d vectors, more than %d", len(sv.memo), i+1, maxMemo)
		}
	}
}
