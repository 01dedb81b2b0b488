// Package validation measures how well a model's scores rank leads that
// convert: lift by decile, ROC AUC, AUC-PR (average precision), conversion
// rates and deprioritization efficiency, as docs/METRICS.md defines them.
//
// The offline `leadscorer evaluate` command and any streaming validator use
// this one implementation, so a figure means the same thing wherever it is
// reported. Everything here is a pure function of the rows given; nothing is
// shared between calls, so any number of goroutines may call it at once.
package validation

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Row is one labelled lead: the model's score and whether the lead converted
// (a call was scheduled within the label window).
type Row struct {
	Score     float64
	Converted bool
}

// Stats are the performance figures of one score over one population.
//
// Rates are fractions (0.035 is 3.5%); DeprioritizationEfficiency is in
// points (11.7 means 11.7 percentage points). A figure that is undefined for
// the population given is NaN; docs/METRICS.md lists when.
type Stats struct {
	N         int // rows
	Positives int // rows that converted

	ConversionRate float64 // Positives / N

	// AUC is the exact ROC AUC, ties counting one half: the probability that
	// a random converted row outscores a random unconverted one. NaN when
	// either class is absent.
	AUC float64
	// AUCPR is the average precision, as scikit-learn's
	// average_precision_score computes it. NaN when no row converted.
	AUCPR float64

	// Index 0 is decile 1, the lowest scores; index 9 is decile 10.
	CountByDecile      [10]int
	PositivesByDecile  [10]int
	ConversionByDecile [10]float64 // 0 for an empty decile
	// LiftByDecile is the decile's conversion rate over ConversionRate:
	// 0 for an empty decile, NaN for every decile when no row converted.
	LiftByDecile [10]float64

	TopDecileConversion float64 // ConversionByDecile[9]

	// The bottom 20% are the rows whose percentile is <= 20, the leads the
	// business does not call.
	Bottom20Count     int
	Bottom20Positives int
	// Bottom20Conversion is Bottom20Positives / Bottom20Count; NaN when no
	// row has a percentile <= 20 (all scores tied, for example).
	Bottom20Conversion float64
	// DeprioritizationEfficiency is 100 x (share of rows in the bottom 20%
	// minus share of conversions in it): skipping 20% of leads and losing
	// 8.3% of conversions is 11.7. NaN when no row converted.
	DeprioritizationEfficiency float64
}

// Deprioritized is the highest percentile of the rows the business does
// not call.
const Deprioritized = 20

// Errors of Compute that callers may branch on.
var (
	ErrNoRows   = errors.New("validation: no rows")
	ErrNaNScore = errors.New("validation: score is NaN")
)

// Compute returns the statistics of rows. It fails on an empty slice and on
// a NaN score (naming the row's index); ±Inf scores are ordered as usual.
// rows is not modified. Cost: one sort of a copy, O(n log n) time and O(n) memory.
func Compute(rows []Row) (Stats, error) {
	n := len(rows)
	if n == 0 {
		return Stats{}, ErrNoRows
	}
	for i, r := range rows {
		if math.IsNaN(r.Score) {
			return Stats{}, fmt.Errorf("row %d: %w", i, ErrNaNScore)
		}
	}
	sorted := slices.Clone(rows)
	slices.SortFunc(sorted, func(a, b Row) int { return cmp.Compare(a.Score, b.Score) })

	var s Stats
	s.N = n
	// One pass over tie groups in ascending score order gives the deciles
	// (through the percentiles) and the Mann-Whitney U statistic; a second,
	// descending pass gives average precision.
	var (
		negBelow int64 // unconverted rows scoring strictly below the group
		twiceU   int64 // 2 x U, an integer so that no rounding creeps in
	)
	for lo := 0; lo < n; {
		hi := lo + 1
		for hi < n && sorted[hi].Score == sorted[lo].Score {
			hi++
		}
		pos := 0
		for _, r := range sorted[lo:hi] {
			if r.Converted {
				pos++
			}
		}
		neg := hi - lo - pos
		// Each positive beats every negative below and ties (one half)
		// every negative in its group.
		twiceU += int64(pos) * (2*negBelow + int64(neg))
		negBelow += int64(neg)

		p := percentile(hi, n)
		d := Decile(p) - 1
		s.CountByDecile[d] += hi - lo
		s.PositivesByDecile[d] += pos
		if p <= Deprioritized {
			s.Bottom20Count += hi - lo
			s.Bottom20Positives += pos
		}
		s.Positives += pos
		lo = hi
	}

	P, N := int64(s.Positives), int64(n-s.Positives)
	s.ConversionRate = float64(s.Positives) / float64(n)
	s.AUC = math.NaN()
	if P > 0 && N > 0 {
		s.AUC = float64(twiceU) / float64(2*P*N)
	}
	s.AUCPR = averagePrecision(sorted, s.Positives)

	for d := range s.CountByDecile {
		if s.CountByDecile[d] > 0 {
			s.ConversionByDecile[d] = float64(s.PositivesByDecile[d]) / float64(s.CountByDecile[d])
		}
		switch {
		case s.Positives == 0:
			s.LiftByDecile[d] = math.NaN()
		case s.CountByDecile[d] > 0:
			s.LiftByDecile[d] = s.ConversionByDecile[d] / s.ConversionRate
		}
	}
	s.TopDecileConversion = s.ConversionByDecile[9]
	s.Bottom20Conversion = math.NaN()
	if s.Bottom20Count > 0 {
		s.Bottom20Conversion = float64(s.Bottom20Positives) / float64(s.Bottom20Count)
	}
	s.DeprioritizationEfficiency = math.NaN()
	if s.Positives > 0 {
		s.DeprioritizationEfficiency = 100 * (float64(s.Bottom20Count)/float64(n) - float64(s.Bottom20Positives)/float64(s.Positives))
	}
	return s, nil
}

// averagePrecision is scikit-learn's average_precision_score: walking the
// distinct scores from the highest down, each threshold adds (its gain in
// recall) x (its precision), where a threshold takes all rows tied at it at
// once. sorted holds the rows by ascending score.
func averagePrecision(sorted []Row, positives int) float64 {
	if positives == 0 {
		return math.NaN()
	}
	var (
		ap     float64
		tp, fp int
	)
	for hi := len(sorted); hi > 0; {
		lo := hi - 1
		for lo > 0 && sorted[lo-1].Score == sorted[hi-1].Score {
			lo--
		}
		gained := 0
		for _, r := range sorted[lo:hi] {
			if r.Converted {
				gained++
			}
		}
		tp += gained
		fp += hi - lo - gained
		if gained > 0 {
			ap += float64(gained) / float64(positives) * (float64(tp) / float64(tp+fp))
		}
		hi = lo
	}
	return ap
}

// Percentiles returns each score's percentile within scores:
// ceil(100 x (scores <= it) / n), so tied scores share a percentile and the
// highest score has 100. A NaN score has no percentile (0) and is not
// counted in n. Cost: one sort, O(n log n).
func Percentiles(scores []float64) []int {
	out := make([]int, len(scores))
	idx := make([]int, 0, len(scores))
	for i, v := range scores {
		if !math.IsNaN(v) {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(scores[a], scores[b]) })
	n := len(idx)
	for lo := 0; lo < n; {
		hi := tieEnd(idx, lo, scores)
		p := percentile(hi, n)
		for _, i := range idx[lo:hi] {
			out[i] = p
		}
		lo = hi
	}
	return out
}

// Decile returns the decile 1..10 of a percentile 1..100: decile d holds
// the percentiles in (10(d-1), 10d].
func Decile(percentile int) int { return (percentile + 9) / 10 }

// percentile is ceil(100 x atOrBelow / n) in integers.
func percentile(atOrBelow, n int) int { return (100*atOrBelow + n - 1) / n }

// tieEnd returns the end of the run of equal scores starting at lo.
func tieEnd(idx []int, lo int, scores []float64) int {
	hi := lo + 1
	for hi < len(idx) && scores[idx[hi]] == scores[idx[lo]] {
		hi++
	}
	return hi
}
