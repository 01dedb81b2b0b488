package validation

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Reference values printed by scripts/validation_reference.py (python3
// scripts/validation_reference.py from the repository root): DeLong's
// variance and covariance by the 1988 paper's definition, from the full
// m x n matrix of pairwise comparisons in numpy (not the midrank algorithm
// used here), AUCs checked against scikit-learn's roc_auc_score, p-values
// and quantiles from scipy.stats.norm.
type delongRef struct {
	aucA, seA, aucB, seB, cov, diff, se, z, p, pLess, lo, hi, aucLoA, aucHiA float64
}

func checkDeLong(t *testing.T, name string, a, b []float64, y []bool, level float64, r delongRef) {
	t.Helper()
	got := DeLongPaired(a, b, y, level)
	single := DeLongAUC(a, y, level)
	for _, c := range []struct {
		what     string
		got, ref float64
	}{
		{"AUC A", got.AUCA, r.aucA}, {"SE A", got.A.SE, r.seA}, {"AUC B", got.AUCB, r.aucB}, {"SE B", got.B.SE, r.seB},
		{"cov", got.Corr * got.A.SE * got.B.SE, r.cov}, {"diff", got.Diff, r.diff}, {"SE diff", got.SE, r.se},
		{"z", got.Z, r.z}, {"p", got.P, r.p}, {"p less", got.PLess, r.pLess}, {"diff lo", got.Interval.Lo, r.lo},
		{"diff hi", got.Interval.Hi, r.hi}, {"single AUC", single.AUC, r.aucA}, {"single SE", single.SE, r.seA},
		{"AUC lo", single.Interval.Lo, r.aucLoA}, {"AUC hi", single.Interval.Hi, r.aucHiA},
	} {
		if math.Abs(c.got-c.ref) > 1e-9 {
			t.Errorf("%s: %s %.15g, reference %.15g", name, c.what, c.got, c.ref)
		}
	}
}

func TestDeLongAgainstTheDefinition(t *testing.T) {
	y := []bool{true, false, true, true, false, false, true, false, false, false, true, false}
	a := []float64{0.9, 0.3, 0.7, 0.7, 0.7, 0.1, 0.4, 0.5, 0.2, 0.3, 0.8, 0.6}
	b := []float64{0.6, 0.6, 0.9, 0.2, 0.4, 0.3, 0.5, 0.1, 0.5, 0.7, 0.8, 0.2}
	checkDeLong(t, "twelve leads with ties", a, b, y, 0.95, delongRef{
		aucA: 0.8857142857142857, seA: 0.09982978711065062, aucB: 0.7285714285714285, seB: 0.16629209609746878,
		cov: -8.503401360544262e-05, diff: 0.15714285714285714, se: 0.1943942273995257, z: 0.8083720347307009,
		p: 0.4188764456687185, pLess: 0.7905617771656408,
		lo: -0.22386282736270258, hi: 0.5381485416484169,
		aucLoA: 0.6900514983931095, aucHiA: 1.0,
	})

	set, err := LoadPairedTestSet("parallel_test_set.csv")
	if err != nil {
		t.Fatal(err)
	}
	prod, base, conv := split(set)
	checkDeLong(t, "the test set, v4.1.0 against v4.0.0", prod, base, conv, 0.90, delongRef{
		aucA: 0.6437595129375951, seA: 0.02188996708600183, aucB: 0.6228420652086838, seB: 0.021703322691866783,
		cov: 0.00039467340576874327, diff: 0.020917447728911354, se: 0.012682983219891784, z: 1.6492529688208346,
		p: 0.09909582043083669, pLess: 0.9504520897845816,
		lo: 5.5796779107691874e-05, hi: 0.041779098678715015,
		aucLoA: 0.6077537211823367, aucHiA: 0.6797653046928536,
	})
	// The AUC is Compute's, exactly.
	rows := make([]Row, len(set))
	for i, l := range set {
		rows[i] = Row{Score: l.Production, Converted: l.Converted}
	}
	st, _ := Compute(rows)
	if d := DeLongAUC(prod, conv, 0.95); d.AUC != st.AUC || d.Positives != 152 || d.Negatives != len(set)-152 {
		t.Errorf("DeLong AUC %v (%d/%d), Compute %v", d.AUC, d.Positives, d.Negatives, st.AUC)
	}
}

func split(set []PairedLead) (prod, base []float64, conv []bool) {
	for _, l := range set {
		prod = append(prod, l.Production)
		base = append(base, l.Baseline)
		conv = append(conv, l.Converted)
	}
	return
}

func TestDeLongUndefined(t *testing.T) {
	if e := DeLongAUC([]float64{1, 2}, []bool{false, false}, 0.95); !math.IsNaN(e.AUC) || !math.IsNaN(e.Interval.Hi) {
		t.Errorf("one class: %+v, want NaN", e)
	}
	if e := DeLongAUC([]float64{3, 1, 2}, []bool{true, false, false}, 0.95); e.AUC != 1 || !math.IsNaN(e.SE) {
		t.Errorf("one positive: %+v, want AUC 1 and no SE", e)
	}
	// The same score twice: difference 0, no test.
	s := []float64{0.1, 0.4, 0.35, 0.8}
	p := DeLongPaired(s, s, []bool{false, true, false, true}, 0.95)
	if p.Diff != 0 || p.SE != 0 || !math.IsNaN(p.Z) {
		t.Errorf("identical scores: %+v", p)
	}
}

// The interval's coverage on a simulated case: binormal scores with a
// known AUC, samples of the validator's size (40 positives, 1,000
// negatives). 2,000 samples: the 95% interval should hold the true AUC in
// 95% ± 1.5% of them (3 Monte-Carlo standard errors, 0.5 points each).
func TestDeLongCoverage(t *testing.T) {
	const mu = 0.5 // positives ~ N(mu, 1), negatives ~ N(0, 1): AUC = Φ(mu/√2)
	trueAUC := 0.5 * math.Erfc(-mu/math.Sqrt2/math.Sqrt2)
	rng := rand.New(rand.NewPCG(1, 2))
	const samples, m, n = 2000, 40, 1000
	covered := 0
	s := make([]float64, m+n)
	y := make([]bool, m+n)
	for range samples {
		for i := range s {
			y[i] = i < m
			s[i] = rng.NormFloat64()
			if y[i] {
				s[i] += mu
			}
		}
		if DeLongAUC(s, y, 0.95).Interval.Contains(trueAUC) {
			covered++
		}
	}
	if c := float64(covered) / samples; math.Abs(c-0.95) > 0.015 {
		t.Errorf("coverage %.3f, want 0.95 ± 0.015", c)
	}
}
