package validation

import (
	"math"
	"testing"
)

// Reference values printed by scripts/validation_reference.py (run from the
// repository root: python3 scripts/validation_reference.py), which takes
// them from scipy: binomtest(k, n).proportion_ci(level, method="wilson" and
// "exact") and contingency.relative_risk(...).confidence_interval(level).

func TestWilsonAndClopperPearsonAgainstScipy(t *testing.T) {
	cases := [][7]float64{
		{0, 37, 0.9, 0.0, 0.06814019451020387, 0.0, 0.07777471100513794},
		{1, 35, 0.95, 0.005061491855444189, 0.14533087233613676, 0.0007231043763665849, 0.14917207965643178},
		{3, 37, 0.9, 0.03286858321504124, 0.18638401218539982, 0.022464520430583022, 0.19642893982446652},
		{12, 370, 0.95, 0.018648305703330027, 0.055825667591450384, 0.01686841475214237, 0.05596720356054953},
		{37, 37, 0.95, 0.9059421741627975, 1.0, 0.9051094125850101, 1.0},
		{152, 3437, 0.95, 0.03784512686099942, 0.05162178479560535, 0.03759625440545189, 0.05164155427042943},
		{5, 111, 0.9, 0.02209578650637587, 0.0896449700841313, 0.017914382898522617, 0.0923753581169136},
	}
	for _, c := range cases {
		k, n, level := int(c[0]), int(c[1]), c[2]
		w := Wilson(k, n, level)
		e := ClopperPearson(k, n, level)
		for _, got := range []struct {
			name     string
			got, ref float64
		}{{"wilson lo", w.Lo, c[3]}, {"wilson hi", w.Hi, c[4]}, {"exact lo", e.Lo, c[5]}, {"exact hi", e.Hi, c[6]}} {
			if math.Abs(got.got-got.ref) > 1e-9 {
				t.Errorf("%d of %d at %v: %s %.15g, scipy %.15g", k, n, level, got.name, got.got, got.ref)
			}
		}
		if w.Level != level || e.Level != level {
			t.Errorf("levels %v %v, want %v", w.Level, e.Level, level)
		}
	}
	for _, iv := range []Interval{Wilson(0, 0, 0.95), ClopperPearson(0, 0, 0.95), Wilson(3, 2, 0.95)} {
		if !math.IsNaN(iv.Lo) || !math.IsNaN(iv.Hi) {
			t.Errorf("interval of no data %+v, want NaN bounds", iv)
		}
	}
}

func TestRiskRatioAgainstScipy(t *testing.T) {
	cases := [][8]float64{
		{9, 37, 7, 333, 0.9, 11.571428571428571, 5.313015356425055, 25.201876938253154},
		{30, 344, 122, 3093, 0.95, 2.210970263057568, 1.5066070033602155, 3.2446347940917435},
		{4, 111, 45, 999, 0.9, 0.8, 0.3445837298413467, 1.857313461360085},
		{1, 35, 14, 335, 0.95, 0.6836734693877551, 0.0926495818107173, 5.044916594438658},
	}
	for _, c := range cases {
		rr, iv := RiskRatio(int(c[0]), int(c[1]), int(c[2]), int(c[3]), c[4])
		if math.Abs(rr-c[5]) > 1e-9 || math.Abs(iv.Lo-c[6]) > 1e-9 || math.Abs(iv.Hi-c[7]) > 1e-9 {
			t.Errorf("%v: RR %.15g [%.15g, %.15g], scipy %.15g [%.15g, %.15g]", c[:5], rr, iv.Lo, iv.Hi, c[5], c[6], c[7])
		}
	}
	// A zero count: the estimate is 0 with lower bound 0, the upper bound
	// (Haldane) finite.
	rr, iv := RiskRatio(0, 40, 15, 360, 0.9)
	if rr != 0 || !(iv.Lo == 0 && iv.Hi > 1 && iv.Hi < 10) {
		t.Errorf("0 of 40 against 15 of 360: RR %v %+v", rr, iv)
	}
}

func TestLiftIntervalIsTheRiskRatioIntervalMapped(t *testing.T) {
	// 9 of 37 top-decile leads converted, 16 of 370 in all: lift
	// (9/37)/(16/370) = 5.625. The bounds are the scipy risk-ratio bounds
	// of top decile (9 of 37) against the rest (7 of 333) through
	// RR / (w RR + 1 - w), w = 37/370.
	lift, iv := LiftInterval(9, 37, 16, 370, 0.9)
	if want := (9.0 / 37) / (16.0 / 370); math.Abs(lift-want) > 1e-12 {
		t.Fatalf("lift %v, want %v", lift, want)
	}
	w := 0.1
	f := func(r float64) float64 { return r / (w*r + 1 - w) }
	if math.Abs(iv.Lo-f(5.313015356425055)) > 1e-9 || math.Abs(iv.Hi-f(25.201876938253154)) > 1e-9 {
		t.Errorf("lift interval %+v, want [%v, %v]", iv, f(5.313015356425055), f(25.201876938253154))
	}
	if !(iv.Hi < 1/w) || !iv.Contains(lift) {
		t.Errorf("lift interval %+v must hold the estimate %v and stay below 1/w = 10", iv, lift)
	}
	// No top-decile conversion: lift 0 with lower bound 0; 0 of 37 does
	// not rule out a top-decile rate above the overall one.
	lift, iv = LiftInterval(0, 37, 16, 370, 0.9)
	if lift != 0 || iv.Lo != 0 || !(iv.Hi > 1 && iv.Hi < 10) {
		t.Errorf("0 top-decile conversions: lift %v %+v", lift, iv)
	}
	if l, iv := LiftInterval(0, 37, 0, 370, 0.9); !math.IsNaN(l) || !math.IsNaN(iv.Hi) {
		t.Errorf("no conversion: lift %v %+v, want NaN", l, iv)
	}
}
