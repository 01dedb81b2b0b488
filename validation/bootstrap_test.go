package validation

import (
	"math"
	"math/rand/v2"
	"testing"
)

func testSetRows(t *testing.T) ([]PairedLead, []Row, []Row) {
	t.Helper()
	set, err := LoadPairedTestSet("parallel_test_set.csv")
	if err != nil {
		t.Fatal(err)
	}
	prod := make([]Row, len(set))
	base := make([]Row, len(set))
	for i, l := range set {
		prod[i] = Row{Score: l.Production, Converted: l.Converted}
		base[i] = Row{Score: l.Baseline, Converted: l.Converted}
	}
	return set, prod, base
}

func TestBootstrapIsSeededAndEstimatesComputesLift(t *testing.T) {
	set, prod, base := testSetRows(t)
	a := BootstrapLift(prod, 300, 0.9, 7)
	b := BootstrapLift(prod, 300, 0.9, 7)
	c := BootstrapLift(prod, 300, 0.9, 8)
	if a != b {
		t.Errorf("same seed, different results: %+v %+v", a, b)
	}
	if a == c {
		t.Errorf("seeds 7 and 8 gave the same result %+v", a)
	}
	sp, _ := Compute(prod)
	sb, _ := Compute(base)
	if a.Estimate != sp.LiftByDecile[9] || a.Replicates != 300 || !a.Interval.Contains(a.Estimate) {
		t.Errorf("bootstrap %+v; Compute's top-decile lift %v", a, sp.LiftByDecile[9])
	}
	d := PairedBootstrapLiftDiff(set, 300, 0.9, 7)
	if d2 := PairedBootstrapLiftDiff(set, 300, 0.9, 7); d != d2 {
		t.Errorf("paired: same seed, different results")
	}
	if want := sp.LiftByDecile[9] - sb.LiftByDecile[9]; math.Abs(d.Estimate-want) > 1e-12 {
		t.Errorf("paired estimate %v, want %v", d.Estimate, want)
	}
}

// The bootstrap lift interval and the closed-form one (LiftInterval, which
// holds the ranking fixed) agree on the test set to within a tenth of the
// lift.
func TestBootstrapLiftAgreesWithLiftInterval(t *testing.T) {
	_, prod, _ := testSetRows(t)
	st, _ := Compute(prod)
	lift, iv := LiftInterval(st.PositivesByDecile[9], st.CountByDecile[9], st.Positives, st.N, 0.9)
	bs := BootstrapLift(prod, 2000, 0.9, 1)
	if math.Abs(bs.Interval.Lo-iv.Lo) > 0.1*lift || math.Abs(bs.Interval.Hi-iv.Hi) > 0.1*lift {
		t.Errorf("bootstrap %+v, closed form %+v (lift %.3f)", bs.Interval, iv, lift)
	}
}

// Coverage on a simulated case with a known lift: score u ~ U(0, 1), a lead
// converts with probability 0.02 (1 + 2u), so the top decile (u > 0.9)
// converts at 0.02 x 2.9 against 0.02 x 2 overall: lift 1.45. Samples of
// 3,000 leads (about 120 conversions); the 90% interval must hold 1.45 in
// 90% ± 6.5% of 200 samples (3 Monte-Carlo standard errors of 2.1 points).
func TestBootstrapLiftCoverage(t *testing.T) {
	const samples, n, trueLift = 200, 3000, 1.45
	rng := rand.New(rand.NewPCG(3, 4))
	rows := make([]Row, n)
	covered := 0
	for s := range samples {
		for i := range rows {
			u := rng.Float64()
			rows[i] = Row{Score: u, Converted: rng.Float64() < 0.02*(1+2*u)}
		}
		if BootstrapLift(rows, 400, 0.9, uint64(s)).Interval.Contains(trueLift) {
			covered++
		}
	}
	if c := float64(covered) / samples; math.Abs(c-0.9) > 0.065 {
		t.Errorf("coverage %.3f, want 0.90 ± 0.065", c)
	}
}

// Paired beats unpaired when the scores agree: on the test set, v4.1.0 and
// v4.0.0 rank many of the same leads on top, and the paired bootstrap's
// standard error of the lift difference is well below what two independent
// bootstraps give, sqrt(se1² + se2²). With a score unrelated to the
// other, pairing gains nothing.
func TestPairedBootstrapSmallerThanUnpaired(t *testing.T) {
	set, prod, base := testSetRows(t)
	paired := PairedBootstrapLiftDiff(set, 1000, 0.9, 11)
	unpaired := math.Hypot(BootstrapLift(prod, 1000, 0.9, 12).SE, BootstrapLift(base, 1000, 0.9, 13).SE)
	if !(paired.SE < 0.85*unpaired) {
		t.Errorf("paired SE %.4f, unpaired %.4f: pairing should gain on correlated scores", paired.SE, unpaired)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	noise := make([]PairedLead, len(set))
	noiseRows := make([]Row, len(set))
	for i, l := range set {
		noise[i] = PairedLead{Production: l.Production, Baseline: rng.Float64(), Converted: l.Converted}
		noiseRows[i] = Row{Score: noise[i].Baseline, Converted: l.Converted}
	}
	pairedNoise := PairedBootstrapLiftDiff(noise, 1000, 0.9, 11)
	unpairedNoise := math.Hypot(BootstrapLift(prod, 1000, 0.9, 12).SE, BootstrapLift(noiseRows, 1000, 0.9, 13).SE)
	if r := pairedNoise.SE / unpairedNoise; r < 0.85 || r > 1.15 {
		t.Errorf("independent scores: paired SE %.4f, unpaired %.4f, want about equal", pairedNoise.SE, unpairedNoise)
	}
	t.Logf("correlated: paired SE %.4f, unpaired %.4f; independent: paired %.4f, unpaired %.4f", paired.SE, unpaired, pairedNoise.SE, unpairedNoise)
}
