package scoring

import "math"

// Shallow ensembles (every tree at most flatMaxDepth deep, like the depth-2
// v4 models) are also laid out as perfect binary trees of one depth d: per
// tree, 2^d-1 split nodes in heap order, then 2^d leaf values. A shallower
// branch is padded with splits every value takes to the left (threshold
// +Inf, missing left) and copies of its leaf, so every row takes exactly d
// steps per tree and the next node's index is computed, not branched to:
// with no unpredictable branches the CPU overlaps many trees at once, and
// a 671-tree model fits the L1 cache. The arithmetic is unchanged:
// float32(x) < threshold goes left, a missing value follows default_left,
// leaf values are summed in float32 in tree order.
const flatMaxDepth = 4

// flatSplit is one split node of the flat layout, 8 bytes. It reads the
// row's value from a flatRow: the feature's copy where a missing value is
// -Inf when missing values go left, or the copy where it is +Inf when they
// go right, so that one comparison with the (finite) threshold sends every
// value, missing or not, where XGBoost sends it.
type flatSplit struct {
	thr float32
	idx uint16 // index into a flatRow
	_   uint16
}

// flatMaxFeatures bounds the per-row float32 copies kept on the stack.
const flatMaxFeatures = 256

// flatRow holds a row as float32 twice: [0, flatMaxFeatures) with missing
// values as -Inf, [flatMaxFeatures, 2*flatMaxFeatures) with them as +Inf.
type flatRow [2 * flatMaxFeatures]float32

func newFlatSplit(thr float32, feat int32, missLeft bool) flatSplit {
	idx := uint16(feat)
	if !missLeft {
		idx += flatMaxFeatures
	}
	return flatSplit{thr: thr, idx: idx}
}

// fill copies the row into r.
func (r *flatRow) fill(x []float64, nf int) {
	_ = x[nf-1]
	negInf, posInf := float32(math.Inf(-1)), float32(math.Inf(1))
	for i := range nf {
		v := float32(x[i])
		lo, hi := v, v
		if v != v {
			lo, hi = negInf, posInf
		}
		r[i], r[i+flatMaxFeatures] = lo, hi
	}
}

// left is 1 when the row goes to sp's left child, 0 otherwise.
func (r *flatRow) left(sp *flatSplit) int {
	return int(lessU8(r[sp.idx&(2*flatMaxFeatures-1)], sp.thr))
}

// finiteSplits reports whether every split threshold is finite, which the
// flat comparison needs (XGBoost's thresholds are midpoints of data values).
func (m *XGBoost) finiteSplits() bool {
	for i := range m.nodes {
		n := &m.nodes[i]
		if n.feat >= 0 && (math.IsInf(float64(n.value), 0) || n.value != n.value) {
			return false
		}
	}
	return true
}

type flatTrees struct {
	depth  int
	splits []flatSplit // (2^depth - 1) per tree
	leaves []float32   // 2^depth per tree
}

// buildFlat fills m.flat when the model qualifies; otherwise m.flat stays
// nil and the node walk serves.
func (m *XGBoost) buildFlat() {
	if m.maxDepth > flatMaxDepth || len(m.features) > flatMaxFeatures || !m.finiteSplits() {
		return
	}
	d := max(m.maxDepth, 1)
	ns, nl := 1<<d-1, 1<<d
	f := &flatTrees{depth: d, splits: make([]flatSplit, 0, ns*len(m.roots)), leaves: make([]float32, 0, nl*len(m.roots))}
	for _, root := range m.roots {
		splits := make([]flatSplit, ns)
		leaves := make([]float32, nl)
		var fill func(node int32, heap, level int)
		fill = func(node int32, heap, level int) {
			n := &m.nodes[node]
			if level == d { // a leaf at full depth
				leaves[heap-ns] = n.value
				return
			}
			if n.feat < 0 { // a leaf above full depth: pad
				// Any value but +Inf goes left, and both sides hold the leaf.
				splits[heap] = newFlatSplit(float32(math.Inf(1)), 0, true)
				fill(node, 2*heap+1, level+1)
				fill(node, 2*heap+2, level+1)
				return
			}
			splits[heap] = newFlatSplit(n.value, n.feat, n.miss == n.left)
			fill(n.left, 2*heap+1, level+1)
			fill(n.left+1, 2*heap+2, level+1)
		}
		fill(root, 0, 0)
		f.splits = append(f.splits, splits...)
		f.leaves = append(f.leaves, leaves...)
	}
	m.flat = f
}

// flatMargin is margin for the flat layout.
func (m *XGBoost) flatMargin(x []float64) float32 {
	f := m.flat
	var row flatRow
	row.fill(x, len(m.features))
	d := f.depth
	sum := m.baseMargin
	splits, leaves := f.splits, f.leaves
	if d == 2 { // the v4 models: all three splits at once, then the leaf
		for len(splits) >= 3 && len(leaves) >= 4 {
			s := (*[3]flatSplit)(splits)
			r0 := 1 - row.left(&s[0])
			r1 := 1 - row.left(&s[1])
			r2 := 1 - row.left(&s[2])
			// Right at the root: node 2 decides, else node 1.
			sum += (*[4]float32)(leaves)[(2*r0+r1+(r2-r1)*r0)&3]
			splits, leaves = splits[3:], leaves[4:]
		}
		return sum
	}
	ns, nl := 1<<d-1, 1<<d
	for len(leaves) >= nl && len(splits) >= ns {
		s := splits[:ns:ns]
		h := 0
		for range d {
			h = 2*h + 2 - row.left(&s[h])
		}
		sum += leaves[h-ns]
		splits, leaves = splits[ns:], leaves[nl:]
	}
	return sum
}

// lessU8 is a < b as 0 or 1, compiled to a flag set rather than a branch;
// false when either is NaN.
func lessU8(a, b float32) uint8 {
	var r uint8
	if a < b {
		r = 1
	}
	return r
}
