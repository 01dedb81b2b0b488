package validation

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
)

// BootstrapEstimate is a figure with its bootstrap distribution summed up.
type BootstrapEstimate struct {
	Estimate float64 `json:"estimate"` // the figure on the data itself
	// Interval is the percentile interval: the (1-level)/2 and (1+level)/2
	// quantiles of the replicates (Efron & Tibshirani 1993, An Introduction
	// to the Bootstrap, ch. 13).
	Interval Interval `json:"interval"`
	SE       float64  `json:"se"` // standard deviation of the replicates
	// Replicates is how many replicates had the figure defined (a resample
	// without a conversion has no lift); the quantiles are of those.
	Replicates int `json:"replicates"`
}

// BootstrapLift is the top-decile lift of rows with a percentile bootstrap
// interval: B resamples of the leads with replacement, each ranked and cut
// into deciles afresh (docs/METRICS.md's definitions, ties kept together),
// so the interval also carries the randomness of which leads fall in the
// top decile. The same seed gives the same result. Cost: one sort, then
// O(n) per replicate.
func BootstrapLift(rows []Row, b int, level float64, seed uint64) BootstrapEstimate {
	n := len(rows)
	order := sortedOrder(n, func(i int) float64 { return rows[i].Score })
	conv := func(i int) bool { return rows[i].Converted }
	ones := make([]int, n)
	for i := range ones {
		ones[i] = 1
	}
	est := BootstrapEstimate{Estimate: weightedTopLiftFn(order, func(i int) float64 { return rows[i].Score }, conv, ones)}
	rng := rand.New(rand.NewPCG(seed, 0xb0075))
	w := make([]int, n)
	reps := make([]float64, 0, b)
	for range b {
		resample(rng, w)
		if x := weightedTopLiftFn(order, func(i int) float64 { return rows[i].Score }, conv, w); !math.IsNaN(x) {
			reps = append(reps, x)
		}
	}
	summarize(&est, reps, level)
	return est
}

// PairedBootstrapLiftDiff is the difference in top-decile lift between the
// production and the baseline scores of the same leads, production minus
// baseline, with a paired percentile bootstrap: each replicate resamples
// leads, and both versions are ranked on the same resample. When the two
// scores agree on many leads their lifts move together from resample to
// resample, and the difference varies much less than two independent
// bootstraps would say. The same seed gives the same result.
func PairedBootstrapLiftDiff(leads []PairedLead, b int, level float64, seed uint64) BootstrapEstimate {
	n := len(leads)
	prod := func(i int) float64 { return leads[i].Production }
	base := func(i int) float64 { return leads[i].Baseline }
	conv := func(i int) bool { return leads[i].Converted }
	op, ob := sortedOrder(n, prod), sortedOrder(n, base)
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	est := BootstrapEstimate{Estimate: weightedTopLiftFn(op, prod, conv, w) - weightedTopLiftFn(ob, base, conv, w)}
	rng := rand.New(rand.NewPCG(seed, 0xb0075))
	reps := make([]float64, 0, b)
	for range b {
		resample(rng, w)
		d := weightedTopLiftFn(op, prod, conv, w) - weightedTopLiftFn(ob, base, conv, w)
		if !math.IsNaN(d) {
			reps = append(reps, d)
		}
	}
	summarize(&est, reps, level)
	return est
}

// resample draws len(w) indexes with replacement and counts them in w.
func resample(rng *rand.Rand, w []int) {
	clear(w)
	for range w {
		w[rng.IntN(len(w))]++
	}
}

func summarize(est *BootstrapEstimate, reps []float64, level float64) {
	est.Replicates = len(reps)
	est.Interval = nanInterval(level)
	est.SE = math.NaN()
	if len(reps) < 2 {
		return
	}
	slices.Sort(reps)
	est.Interval = Interval{Lo: quantile(reps, (1-level)/2), Hi: quantile(reps, (1+level)/2), Level: level}
	mean := 0.0
	for _, x := range reps {
		mean += x
	}
	mean /= float64(len(reps))
	ss := 0.0
	for _, x := range reps {
		ss += (x - mean) * (x - mean)
	}
	est.SE = math.Sqrt(ss / float64(len(reps)-1))
}

// quantile of sorted x, linear between order statistics (type 7, the
// default of R and numpy).
func quantile(x []float64, q float64) float64 {
	h := q * float64(len(x)-1)
	lo := int(math.Floor(h))
	if lo >= len(x)-1 {
		return x[len(x)-1]
	}
	return x[lo] + (h-float64(lo))*(x[lo+1]-x[lo])
}

// sortedOrder returns 0..n-1 ordered by ascending score.
func sortedOrder(n int, score func(int) float64) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(score(a), score(b)) })
	return idx
}

// weightedTopLiftFn is the top-decile lift of the multiset holding lead i
// w[i] times, as Compute would give on it: walking tie groups in ascending
// score order, a group's percentile is ceil(100 x weight at or below it /
// total weight), and decile 10 holds the percentiles above 90.
func weightedTopLiftFn(order []int, score func(int) float64, conv func(int) bool, w []int) float64 {
	total, positives := 0, 0
	for _, i := range order {
		total += w[i]
		if conv(i) {
			positives += w[i]
		}
	}
	if total == 0 || positives == 0 {
		return math.NaN()
	}
	topN, topPos, below := 0, 0, 0
	for lo := 0; lo < len(order); {
		hi := lo + 1
		for hi < len(order) && score(order[hi]) == score(order[lo]) {
			hi++
		}
		gw, gp := 0, 0
		for _, i := range order[lo:hi] {
			gw += w[i]
			if conv(i) {
				gp += w[i]
			}
		}
		below += gw
		if gw > 0 && percentile(below, total) > 90 {
			topN += gw
			topPos += gp
		}
		lo = hi
	}
	if topN == 0 {
		return 0
	}
	return (float64(topPos) / float64(topN)) / (float64(positives) / float64(total))
}
