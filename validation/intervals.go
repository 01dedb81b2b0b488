package validation

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Interval is a two-sided confidence interval [Lo, Hi] at confidence Level
// (0.90 is a 90% interval). Its Hi is also the one-sided upper bound at
// level (1+Level)/2: the upper end of a 90% two-sided interval is a 95%
// upper bound. Lo and Hi are NaN when the interval is undefined (no data).
type Interval struct {
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Level float64 `json:"level"`
}

func nanInterval(level float64) Interval {
	return Interval{Lo: math.NaN(), Hi: math.NaN(), Level: level}
}

// Contains reports whether x is in [Lo, Hi].
func (iv Interval) Contains(x float64) bool { return iv.Lo <= x && x <= iv.Hi }

// zTwoSided is the standard normal quantile z with P(|Z| <= z) = level.
func zTwoSided(level float64) float64 { return distuv.UnitNormal.Quantile(0.5 + level/2) }

// Wilson is the Wilson score interval for a binomial proportion of
// successes out of n, at confidence level (0.95 for a 95% interval):
//
//	centre = (p + z²/2n) / (1 + z²/n)
//	half   = z / (1 + z²/n) x sqrt(p(1-p)/n + z²/4n²)
//
// with p = successes/n and z the two-sided normal quantile. Unlike the Wald
// interval p ± z sqrt(p(1-p)/n) it stays inside [0, 1], is not degenerate at
// 0 or n successes and keeps close to its nominal coverage at the small
// counts of a weekly top decile (Wilson 1927, JASA 22:209-212; Brown, Cai &
// DasGupta 2001, Statistical Science 16:101-133). NaN bounds when n is 0.
// It equals scipy's binomtest(k, n).proportion_ci(level, method="wilson").
func Wilson(successes, n int, level float64) Interval {
	if n <= 0 || successes < 0 || successes > n {
		return nanInterval(level)
	}
	z := zTwoSided(level)
	nn := float64(n)
	p := float64(successes) / nn
	z2 := z * z
	den := 1 + z2/nn
	centre := (p + z2/(2*nn)) / den
	half := z / den * math.Sqrt(p*(1-p)/nn+z2/(4*nn*nn))
	lo, hi := math.Max(0, centre-half), math.Min(1, centre+half)
	// Exactly 0 or 1 at the ends, without rounding crumbs.
	if successes == 0 {
		lo = 0
	}
	if successes == n {
		hi = 1
	}
	return Interval{Lo: lo, Hi: hi, Level: level}
}

// ClopperPearson is the exact (Clopper & Pearson 1934, Biometrika 26:404-413)
// interval for a binomial proportion: the bounds are Beta quantiles,
//
//	Lo = Beta(α/2; k, n-k+1)   (0 when k = 0)
//	Hi = Beta(1-α/2; k+1, n-k) (1 when k = n)
//
// with α = 1-level. Its coverage is at least the nominal level everywhere,
// so it is wider than Wilson's. It equals scipy's
// binomtest(k, n).proportion_ci(level, method="exact"). NaN bounds when n is 0.
func ClopperPearson(successes, n int, level float64) Interval {
	if n <= 0 || successes < 0 || successes > n {
		return nanInterval(level)
	}
	alpha := 1 - level
	k := float64(successes)
	nn := float64(n)
	iv := Interval{Lo: 0, Hi: 1, Level: level}
	if successes > 0 {
		iv.Lo = distuv.Beta{Alpha: k, Beta: nn - k + 1}.Quantile(alpha / 2)
	}
	if successes < n {
		iv.Hi = distuv.Beta{Alpha: k + 1, Beta: nn - k}.Quantile(1 - alpha/2)
	}
	return iv
}

// RiskRatio is the ratio of two conversion rates, (x1/n1) / (x2/n2), with
// the Katz log interval (Katz, Baptista, Azen & Pike 1978, Biometrics
// 34:469-474):
//
//	log RR ± z sqrt(1/x1 - 1/n1 + 1/x2 - 1/n2)
//
// the interval scipy.stats.contingency.relative_risk(x1, n1, x2, n2)
// .confidence_interval(level) gives. When x1 or x2 is 0 the log is
// undefined: then 0.5 is added to every cell of the 2x2 table (x+0.5
// converted, n-x+0.5 not) before the interval is taken (Haldane's
// correction) for the other bound, while the estimate stays the plain
// ratio and the bound on its side is exact: Lo = 0 when x1 = 0, Hi = +Inf
// when x2 = 0. NaN
// when a group is empty or both rates are 0.
func RiskRatio(x1, n1, x2, n2 int, level float64) (float64, Interval) {
	if n1 <= 0 || n2 <= 0 || x1 < 0 || x2 < 0 || x1 > n1 || x2 > n2 || x1+x2 == 0 {
		return math.NaN(), nanInterval(level)
	}
	est := (float64(x1) / float64(n1)) / (float64(x2) / float64(n2))
	a, m1, b, m2 := float64(x1), float64(n1), float64(x2), float64(n2)
	if x1 == 0 || x2 == 0 {
		a, b, m1, m2 = a+0.5, b+0.5, m1+1, m2+1
	}
	logRR := math.Log((a / m1) / (b / m2))
	se := math.Sqrt(1/a - 1/m1 + 1/b - 1/m2)
	z := zTwoSided(level)
	iv := Interval{Lo: math.Exp(logRR - z*se), Hi: math.Exp(logRR + z*se), Level: level}
	if x1 == 0 {
		iv.Lo = 0
	}
	if x2 == 0 {
		iv.Hi = math.Inf(1)
	}
	return est, iv
}

// LiftInterval is the top-decile lift, (topConverted/topN) / (converted/n),
// with a confidence interval, given the window's leads in the top decile
// (topN, topConverted of them converted) and in all (n, converted).
//
// The top decile is part of the whole, so its rate and the overall rate are
// not independent; but with w = topN/n the top-decile share and RR the
// ratio of the top decile's rate to the rate of the other leads,
//
//	lift = RR / (w RR + 1 - w)
//
// is increasing in RR. The interval is RiskRatio's (top decile against the
// rest, two independent binomials given the ranking) mapped through that
// function, so it inherits its coverage and lies in [0, 1/w]. It is
// conditional on the ranking: it answers "did the leads this model put on
// top convert at lift times the rate?", for this window's leads. Bootstrap
// over leads (BootstrapLift) also varies the decile boundaries; on the
// figures the validator sees the two agree closely (see the tests). NaN when
// nothing converted.
func LiftInterval(topConverted, topN, converted, n int, level float64) (float64, Interval) {
	if n <= 0 || converted <= 0 || topN <= 0 || topN > n || topConverted > converted || converted > n {
		return math.NaN(), nanInterval(level)
	}
	lift := (float64(topConverted) / float64(topN)) / (float64(converted) / float64(n))
	if topN == n {
		return lift, Interval{Lo: 1, Hi: 1, Level: level} // the top decile is everyone
	}
	_, rr := RiskRatio(topConverted, topN, converted-topConverted, n-topN, level)
	w := float64(topN) / float64(n)
	f := func(r float64) float64 {
		if math.IsInf(r, 1) {
			return 1 / w
		}
		return r / (w*r + 1 - w)
	}
	return lift, Interval{Lo: f(rr.Lo), Hi: f(rr.Hi), Level: level}
}

// NormalInterval is estimate ± z x se, the interval of an asymptotically
// normal estimate (DeLong's AUC and AUC differences); clamped to [lo, hi].
func NormalInterval(estimate, se, level, lo, hi float64) Interval {
	z := zTwoSided(level)
	return Interval{Lo: math.Max(lo, estimate-z*se), Hi: math.Min(hi, estimate+z*se), Level: level}
}
