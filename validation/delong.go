package validation

import (
	"cmp"
	"math"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"
)

// AUCEstimate is a ROC AUC with DeLong's variance and a normal interval.
type AUCEstimate struct {
	AUC       float64  `json:"auc"`
	SE        float64  `json:"se"` // sqrt of DeLong's variance
	Interval  Interval `json:"interval"`
	Positives int      `json:"positives"`
	Negatives int      `json:"negatives"`
}

// PairedAUC compares two scores of the same leads (two model versions, A
// and B), DeLong's test for two correlated ROC curves.
type PairedAUC struct {
	A, B AUCEstimate `json:"-"`
	AUCA float64     `json:"auc_a"`
	AUCB float64     `json:"auc_b"`
	// Diff is AUCA - AUCB, SE its standard error from DeLong's covariance
	// matrix: sqrt(var A + var B - 2 cov(A, B)).
	Diff float64 `json:"diff"`
	SE   float64 `json:"se"`
	// Corr is the correlation of the two AUC estimates: the higher it is,
	// the smaller SE is than for two independent samples.
	Corr float64 `json:"corr"`
	// Z is Diff / SE; P the two-sided p-value 2 Φ(-|Z|); PLess the
	// one-sided p-value against "A is not worse than B", Φ(Z).
	Z        float64  `json:"z"`
	P        float64  `json:"p"`
	PLess    float64  `json:"p_less"`
	Interval Interval `json:"interval"` // of Diff
}

// DeLongAUC is the ROC AUC of scores against converted with DeLong's
// variance (DeLong, DeLong & Clarke-Pearson 1988, Biometrics 44:837-845),
// computed with Sun & Xu's midrank algorithm (2014, IEEE Signal Processing
// Letters 21:1389-1393) in O(n log n):
//
//	Tz = midranks of all scores, Tx of the m positives' among themselves,
//	Ty of the n negatives' among themselves;
//	V10_i = (Tz_i - Tx_i) / n    for each positive i  (share of negatives it beats, ties 1/2)
//	V01_j = 1 - (Tz_j - Ty_j) / m for each negative j (share of positives that beat it)
//	AUC = mean V10 = mean V01;  var = s²(V10)/m + s²(V01)/n
//
// with s² the sample variances (denominators m-1 and n-1), as pROC's
// var(roc, method = "delong") does. The interval is AUC ± z SE clamped to
// [0, 1] (pROC's ci.auc). AUC is NaN when a class is absent; SE and the
// interval also when a class has a single lead (no variance to estimate).
func DeLongAUC(scores []float64, converted []bool, level float64) AUCEstimate {
	p := delong([][]float64{scores}, converted)
	e := AUCEstimate{AUC: p.auc[0], SE: math.Sqrt(p.cov[0][0]), Positives: p.m, Negatives: p.n}
	e.Interval = NormalInterval(e.AUC, e.SE, level, 0, 1)
	if math.IsNaN(e.SE) {
		e.Interval = nanInterval(level)
	}
	return e
}

// DeLongPaired is DeLong's test comparing the AUCs of two scores of the
// same leads, a and b (DeLong et al. 1988): the difference, its standard
// error from the 2x2 covariance of the structural components V10, V01 of
// both scores, z, p-values and a normal interval. Paired leads make the two
// AUCs correlated, and the test uses that: a difference too small to see
// between two independent samples of this size can be clear on the same
// leads. pROC's roc.test(..., method = "delong", paired = TRUE) computes the
// same z. A figure is NaN where DeLongAUC's would be, and Z, P when the two
// scores rank the leads identically (SE 0).
func DeLongPaired(a, b []float64, converted []bool, level float64) PairedAUC {
	p := delong([][]float64{a, b}, converted)
	r := PairedAUC{AUCA: p.auc[0], AUCB: p.auc[1], Diff: p.auc[0] - p.auc[1]}
	r.A = AUCEstimate{AUC: p.auc[0], SE: math.Sqrt(p.cov[0][0]), Positives: p.m, Negatives: p.n}
	r.B = AUCEstimate{AUC: p.auc[1], SE: math.Sqrt(p.cov[1][1]), Positives: p.m, Negatives: p.n}
	for _, e := range []*AUCEstimate{&r.A, &r.B} {
		e.Interval = NormalInterval(e.AUC, e.SE, level, 0, 1)
		if math.IsNaN(e.SE) {
			e.Interval = nanInterval(level)
		}
	}
	v := p.cov[0][0] + p.cov[1][1] - 2*p.cov[0][1]
	r.SE = math.Sqrt(math.Max(v, 0))
	r.Corr = p.cov[0][1] / math.Sqrt(p.cov[0][0]*p.cov[1][1])
	r.Z, r.P, r.PLess = math.NaN(), math.NaN(), math.NaN()
	r.Interval = nanInterval(level)
	if r.SE > 0 {
		r.Z = r.Diff / r.SE
		r.P = 2 * distuv.UnitNormal.CDF(-math.Abs(r.Z))
		r.PLess = distuv.UnitNormal.CDF(r.Z)
		r.Interval = NormalInterval(r.Diff, r.SE, level, -1, 1)
	}
	return r
}

// delongParts are the AUCs and DeLong covariance of k scores.
type delongParts struct {
	m, n int // positives, negatives
	auc  []float64
	cov  [][]float64
}

func delong(scores [][]float64, converted []bool) delongParts {
	k := len(scores)
	var pos, neg []int
	for i, c := range converted {
		if c {
			pos = append(pos, i)
		} else {
			neg = append(neg, i)
		}
	}
	m, n := len(pos), len(neg)
	out := delongParts{m: m, n: n, auc: make([]float64, k), cov: make([][]float64, k)}
	for r := range out.cov {
		out.cov[r] = make([]float64, k)
		for c := range out.cov[r] {
			out.cov[r][c] = math.NaN()
		}
		out.auc[r] = math.NaN()
	}
	if m == 0 || n == 0 {
		return out
	}
	v10 := make([][]float64, k)
	v01 := make([][]float64, k)
	for r, s := range scores {
		v10[r] = make([]float64, m)
		v01[r] = make([]float64, n)
		out.auc[r] = structural(s, converted, v10[r], v01[r])
	}
	for a := range k {
		for b := range k {
			s10, s01 := math.NaN(), math.NaN()
			if m > 1 {
				s10 = covariance(v10[a], v10[b], out.auc[a], out.auc[b])
			}
			if n > 1 {
				s01 = covariance(v01[a], v01[b], out.auc[a], out.auc[b])
			}
			out.cov[a][b] = s10/float64(m) + s01/float64(n)
		}
	}
	return out
}

// covariance is the sample covariance of x and y with known means.
func covariance(x, y []float64, mx, my float64) float64 {
	s := 0.0
	for i := range x {
		s += (x[i] - mx) * (y[i] - my)
	}
	return s / float64(len(x)-1)
}

// structural fills DeLong's structural components of score s, v10 for the
// positives and v01 for the negatives (in index order), and returns the
// AUC. One sort gives the three sets of midranks: a tie group of the
// combined order holds, in order, the tie groups of the positives and of
// the negatives at that score.
func structural(s []float64, converted []bool, v10, v01 []float64) float64 {
	m, n := len(v10), len(v01)
	type item struct {
		v float64
		i int32
	}
	items := make([]item, len(s))
	for i, x := range s {
		items[i] = item{x, int32(i)}
	}
	slices.SortFunc(items, func(a, b item) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return int(a.i - b.i)
	})
	var posBelow, negBelow int // positives, negatives below the group
	var sumTz float64
	pi, ni := 0, 0 // positives, negatives seen in index order
	// Ranks within each class: a lead's rank among positives (negatives)
	// in index order needs their order, so keep per-index results and
	// place them by a running count of each class by index.
	posIdx := make([]int32, len(s))
	for i, c := range converted {
		if c {
			posIdx[i] = int32(pi)
			pi++
		} else {
			posIdx[i] = int32(ni)
			ni++
		}
	}
	for lo := 0; lo < len(items); {
		hi := lo + 1
		for hi < len(items) && items[hi].v == items[lo].v {
			hi++
		}
		gp := 0
		for _, it := range items[lo:hi] {
			if converted[it.i] {
				gp++
			}
		}
		gn := hi - lo - gp
		tz := float64(lo+hi+1) / 2
		tx := float64(2*posBelow+gp+1) / 2
		ty := float64(2*negBelow+gn+1) / 2
		for _, it := range items[lo:hi] {
			if converted[it.i] {
				v10[posIdx[it.i]] = (tz - tx) / float64(n)
				sumTz += tz
			} else {
				v01[posIdx[it.i]] = 1 - (tz-ty)/float64(m)
			}
		}
		posBelow += gp
		negBelow += gn
		lo = hi
	}
	return (sumTz - float64(m)*float64(m+1)/2) / (float64(m) * float64(n))
}

// midranks returns the 1-based ranks of x, tied values sharing the mean of
// their ranks.
func midranks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(x[a], x[b]) })
	r := make([]float64, len(x))
	for lo := 0; lo < len(idx); {
		hi := lo + 1
		for hi < len(idx) && x[idx[hi]] == x[idx[lo]] {
			hi++
		}
		mid := float64(lo+hi+1) / 2 // mean of ranks lo+1..hi
		for _, i := range idx[lo:hi] {
			r[i] = mid
		}
		lo = hi
	}
	return r
}
