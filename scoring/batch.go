package scoring

import (
	"fmt"
	"math"
	"slices"
)

// The batch engine scores (and, for trees of depth at most 3, explains)
// four rows per pass through the trees of a shallow ensemble, with integer
// arithmetic in place of float comparisons:
//
//   - At load, each feature's distinct split thresholds are sorted. A row's
//     value v of the feature becomes its rank, the number of thresholds <= v,
//     and float32(v) < t_j (the j-th threshold) exactly when rank <= j. A
//     missing value takes rank 0 where the split sends it left and rank
//     len(thresholds) where it sends it right, so it goes its default way at
//     every split; each feature has a slot for each of the two.
//   - Four rows' ranks of a slot sit in one uint64, 16 bits each. A split is
//     "left when rank <= j": c - ranks, with c holding j + 2^g in every lane,
//     leaves bit g of each lane set exactly for the rows that go left (no
//     lane borrows from the next, ranks and j being below 2^13). So a split
//     costs one load, one subtraction and one AND for four rows.
//   - A depth-2 tree's three splits give each row a 3-bit pattern, which
//     indexes the tree's eight leaf values directly (each leaf stored once
//     per pattern leading to it) and, when explaining, the tree's table of
//     SHAP values (explain.go). Trees of other depths walk their split bits
//     per row.
//
// Each row keeps its own float32 sum, adding one leaf per tree in tree
// order, exactly as the single-row walk and XGBoost's CPU predictor do:
// interleaving rows changes which row's addition the CPU does next, never
// the order of one row's additions, so every sum is the same float32.
// Four independent sums also let the CPU overlap the additions, where one
// row's sum is a chain of one dependent addition per tree.

const (
	batchLanes     = 4       // rows per pass, one 16-bit lane each
	batchMaxFeat   = 127     // feature slots 0..126 (missing left) and 128..254 (missing right)
	batchRight     = 128     // slot of feature f with missing values right: batchRight+f
	batchZeroSlot  = 127     // always rank 0: padding splits, which send everything left
	batchMaxThresh = 1 << 13 // distinct thresholds per feature, below the guard bits
	laneOnes       = 0x0001_0001_0001_0001
)

// batchRanks holds one block of rows as ranks, indexed by slot: row k's in
// bits 16k..16k+15.
type batchRanks [256]uint64

// tree2 is one depth-2 tree of the batch layout, one cache line.
type tree2 struct {
	c    [3]uint64  // split h (heap order): (j + 2^(13+h)) in every lane
	slot [3]uint8   // the split's feature slot in batchRanks
	_    [5]uint8   //
	leaf [8]float32 // by pattern: bit h set when the row goes left at split h
}

// batchSplit is one split of a tree of another depth (guard bit 15).
type batchSplit struct {
	c    uint64
	slot uint8
	_    [7]uint8
}

type batchEngine struct {
	depth  int
	thr    [][]float32 // per feature: its distinct split thresholds, ascending
	trees2 []tree2     // depth 2
	splits []batchSplit
	leaves []float32 // other depths: per tree 2^depth-1 splits and 2^depth leaves
}

// buildBatch fills m.batch from the flat layout when every feature has few
// enough thresholds; otherwise m.batch stays nil and rows are scored one at
// a time.
func (m *XGBoost) buildBatch() {
	f := m.flat
	if f == nil || len(m.features) > batchMaxFeat {
		return
	}
	nf := len(m.features)
	e := &batchEngine{depth: f.depth, thr: make([][]float32, nf)}
	isPad := func(sp flatSplit) bool { return math.IsInf(float64(sp.thr), 1) }
	for _, sp := range f.splits {
		if !isPad(sp) {
			feat := int(sp.idx) % flatMaxFeatures
			e.thr[feat] = append(e.thr[feat], sp.thr)
		}
	}
	for i, t := range e.thr {
		slices.Sort(t)
		e.thr[i] = slices.Clip(slices.Compact(t))
		if len(e.thr[i]) >= batchMaxThresh {
			return
		}
	}
	// enc places a flat split in the batch layout: c and the slot.
	enc := func(sp flatSplit, guard uint) (uint64, uint8) {
		if isPad(sp) {
			return laneOnes << guard, batchZeroSlot // j = 0, rank 0: left
		}
		feat := int(sp.idx) % flatMaxFeatures
		slot := uint8(feat)
		if int(sp.idx) >= flatMaxFeatures { // missing goes right
			slot += batchRight
		}
		j, _ := slices.BinarySearch(e.thr[feat], sp.thr)
		return (uint64(j) + 1<<guard) * laneOnes, slot
	}
	ns, nl := 1<<f.depth-1, 1<<f.depth
	ntrees := len(f.leaves) / nl
	if f.depth == 2 {
		e.trees2 = make([]tree2, ntrees)
		for t := range e.trees2 {
			tr := &e.trees2[t]
			for h := range 3 {
				tr.c[h], tr.slot[h] = enc(f.splits[t*ns+h], uint(13+h))
			}
			lv := f.leaves[t*nl:]
			for p := range 8 {
				l0, l1, l2 := p&1 != 0, p&2 != 0, p&4 != 0
				switch {
				case l0 && l1:
					tr.leaf[p] = lv[0]
				case l0:
					tr.leaf[p] = lv[1]
				case l2:
					tr.leaf[p] = lv[2]
				default:
					tr.leaf[p] = lv[3]
				}
			}
		}
	} else {
		e.splits = make([]batchSplit, len(f.splits))
		for i, sp := range f.splits {
			e.splits[i].c, e.splits[i].slot = enc(sp, 15)
		}
		e.leaves = f.leaves
	}
	m.batch = e
}

// fillRanks writes rows (1 to batchLanes of them) into r as ranks. A block
// of fewer rows repeats its last row in the spare lanes.
func (e *batchEngine) fillRanks(r *batchRanks, rows [][]float64) {
	nf, last := len(e.thr), len(rows)-1
	x0, x1 := rows[0][:nf], rows[min(1, last)][:nf]
	x2, x3 := rows[min(2, last)][:nf], rows[min(3, last)][:nf]
	for f, thr := range e.thr {
		v0, v1, v2, v3 := float32(x0[f]), float32(x1[f]), float32(x2[f]), float32(x3[f])
		var r0, r1, r2, r3 int // thresholds <= v; 0 for NaN
		if len(thr) <= 8 {
			for _, t := range thr {
				r0 += int(lessEqU8(t, v0))
				r1 += int(lessEqU8(t, v1))
				r2 += int(lessEqU8(t, v2))
				r3 += int(lessEqU8(t, v3))
			}
		} else {
			r0, r1, r2, r3 = rank4(thr, v0, v1, v2, v3)
		}
		lo := uint64(r0) | uint64(r1)<<16 | uint64(r2)<<32 | uint64(r3)<<48
		nan := uint64(nanU8(v0)) | uint64(nanU8(v1))<<16 | uint64(nanU8(v2))<<32 | uint64(nanU8(v3))<<48
		r[f] = lo                                   // missing values rank 0: left everywhere
		r[f+batchRight] = lo + nan*uint64(len(thr)) // and len(thr): right everywhere
	}
}

// fillRank1 writes one row into lane 0 of r (the other lanes are left as
// they are: nobody reads them).
func (e *batchEngine) fillRank1(r *batchRanks, x []float64) {
	x = x[:len(e.thr)]
	for f, thr := range e.thr {
		v := float32(x[f])
		var rk int
		if len(thr) <= 8 {
			for _, t := range thr {
				rk += int(lessEqU8(t, v))
			}
		} else {
			rk = rankSearch(thr, v)
		}
		r[f] = uint64(rk)
		r[f+batchRight] = uint64(rk) + uint64(nanU8(v))*uint64(len(thr))
	}
}

// rankSearch is the number of thresholds <= v (0 for NaN), by a binary
// search whose steps depend only on len(thr).
func rankSearch(thr []float32, v float32) int {
	base, n := 0, len(thr)
	for n > 1 {
		half := n >> 1
		base += half & -int(lessEqU8(thr[base+half], v))
		n -= half
	}
	return base + int(lessEqU8(thr[base], v))
}

// rank4 is the number of thresholds <= v for four values at once, by
// binary searches whose steps depend only on len(thr) (no branch on the
// data), interleaved so that their loads overlap.
func rank4(thr []float32, v0, v1, v2, v3 float32) (b0, b1, b2, b3 int) {
	n := len(thr)
	for n > 1 {
		half := n >> 1
		b0 += half & -int(lessEqU8(thr[b0+half], v0))
		b1 += half & -int(lessEqU8(thr[b1+half], v1))
		b2 += half & -int(lessEqU8(thr[b2+half], v2))
		b3 += half & -int(lessEqU8(thr[b3+half], v3))
		n -= half
	}
	b0 += int(lessEqU8(thr[b0], v0))
	b1 += int(lessEqU8(thr[b1], v1))
	b2 += int(lessEqU8(thr[b2], v2))
	b3 += int(lessEqU8(thr[b3], v3))
	return b0, b1, b2, b3
}

// nanU8 is 1 for NaN, 0 otherwise, without a branch.
func nanU8(v float32) uint8 {
	var r uint8
	if v != v {
		r = 1
	}
	return r
}

// lessEqU8 is a <= b as 0 or 1, without a branch; false when either is NaN.
func lessEqU8(a, b float32) uint8 {
	var r uint8
	if a <= b {
		r = 1
	}
	return r
}

// margin1 is the margin of the row in lane 0 of r.
func (e *batchEngine) margin1(r *batchRanks, base float32) float32 {
	sum := base
	if e.depth == 2 {
		g13, g14, g15 := guards[0], guards[1], guards[2]
		trees := e.trees2
		for i := range trees {
			t := &trees[i]
			sum += t.leaf[uint32(patternScore(t, r, g13, g14, g15))>>13&7]
		}
		return sum
	}
	d := e.depth
	ns, nl := 1<<d-1, 1<<d
	splits, leaves := e.splits, e.leaves
	for len(leaves) >= nl && len(splits) >= ns {
		s, lv := splits[:ns:ns], leaves[:nl:nl]
		h := 0
		for range d {
			sp := &s[h]
			h = 2*h + 2 - int((sp.c-r[sp.slot])>>15&1)
		}
		sum += lv[(h-ns)&(nl-1)]
		splits, leaves = splits[ns:], leaves[nl:]
	}
	return sum
}

// margins adds every tree's leaf to sums, one lane per row.
func (e *batchEngine) margins(r *batchRanks, sums *[batchLanes]float32) {
	if e.depth == 2 {
		e.margins2(r, sums)
		return
	}
	d := e.depth
	ns, nl := 1<<d-1, 1<<d
	splits, leaves := e.splits, e.leaves
	for len(leaves) >= nl && len(splits) >= ns {
		s, lv := splits[:ns:ns], leaves[:nl:nl]
		for k := range sums {
			h := 0
			for range d {
				sp := &s[h]
				left := int((sp.c - r[sp.slot]) >> (16*k + 15) & 1)
				h = 2*h + 2 - left
			}
			sums[k] += lv[(h-ns)&(nl-1)]
		}
		splits, leaves = splits[ns:], leaves[nl:]
	}
}

// patternScore is the four rows' 3-bit patterns at tree t, in bits 13..15
// of each lane: split h's guard bit is 13+h, so the three masked
// differences combine without shifts.
func patternScore(t *tree2, r *batchRanks, g13, g14, g15 uint64) uint64 {
	return (t.c[0]-r[t.slot[0]])&g13 | (t.c[1]-r[t.slot[1]])&g14 | (t.c[2]-r[t.slot[2]])&g15
}

// pattern2 is patternScore for trees whose three splits all use guard bit
// 15 (g = laneOnes<<15), shifted into place: one mask register instead of
// three, which the explaining loop, short of registers, needs.
func pattern2(t *tree2, r *batchRanks, g uint64) uint64 {
	return ((t.c[0]-r[t.slot[0]])&g)>>2 | ((t.c[1]-r[t.slot[1]])&g)>>1 | (t.c[2]-r[t.slot[2]])&g
}

// The guard masks as variables: the compiler keeps them in registers,
// where it would rebuild constants inside the loops.
var (
	guards        = [3]uint64{laneOnes << 13, laneOnes << 14, laneOnes << 15}
	guard  uint64 = laneOnes << 15
)

func (e *batchEngine) margins2(r *batchRanks, sums *[batchLanes]float32) {
	s0, s1, s2, s3 := sums[0], sums[1], sums[2], sums[3]
	g13, g14, g15 := guards[0], guards[1], guards[2]
	trees := e.trees2
	for i := range trees {
		t := &trees[i]
		p := patternScore(t, r, g13, g14, g15)
		lo, hi := uint32(p), uint32(p>>32)
		s0 += t.leaf[lo>>13&7]
		s1 += t.leaf[lo>>29]
		s2 += t.leaf[hi>>13&7]
		s3 += t.leaf[hi>>29]
	}
	sums[0], sums[1], sums[2], sums[3] = s0, s1, s2, s3
}

// ScoreBatch writes the score of rows[i] to scores[i], for every row: the
// same float64 that Score(rows[i]) returns, bit for bit. Rows go through
// the trees four at a time, which for shallow models costs a fraction of
// scoring them one by one. Every row must hold len(FeatureNames()) values
// (NaN = missing) and len(scores) must be at least len(rows); ScoreBatch
// panics otherwise, as Score does on a short row. It allocates nothing and,
// like every method of XGBoost, is safe for concurrent use: its working
// memory (about 2 KB) is on the calling goroutine's stack.
func (m *XGBoost) ScoreBatch(rows [][]float64, scores []float64) {
	if len(scores) < len(rows) {
		panic(fmt.Sprintf("xgboost: ScoreBatch: %d scores for %d rows", len(scores), len(rows)))
	}
	if m.batch == nil {
		for i, x := range rows {
			scores[i] = m.Score(x)
		}
		return
	}
	nf := len(m.features)
	var r batchRanks
	for len(rows) > 0 {
		n := min(len(rows), batchLanes)
		for _, x := range rows[:n] {
			_ = x[nf-1]
		}
		m.batch.fillRanks(&r, rows[:n])
		sums := [batchLanes]float32{m.baseMargin, m.baseMargin, m.baseMargin, m.baseMargin}
		m.batch.margins(&r, &sums)
		for k := range n {
			scores[k] = float64(m.transform(sums[k]))
		}
		rows, scores = rows[n:], scores[n:]
	}
}
