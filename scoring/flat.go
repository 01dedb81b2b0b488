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

// flatSplit is one split node of the flat layout, 8 bytes.
type flatSplit struct {
	thr      float32
	feat     uint8 // indexes a [256] array: no bounds check
	missLeft uint8 // 1 when a missing value goes left
	_        [2]uint8
}

// flatMaxFeatures bounds the per-row float32 copy kept on the stack.
const flatMaxFeatures = 256

type flatTrees struct {
	depth  int
	splits []flatSplit // (2^depth - 1) per tree
	leaves []float32   // 2^depth per tree
}

// buildFlat fills m.flat when the model qualifies; otherwise m.flat stays
// nil and the node walk serves.
func (m *XGBoost) buildFlat() {
	if m.maxDepth > flatMaxDepth || len(m.features) > flatMaxFeatures {
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
				splits[heap] = flatSplit{thr: float32(math.Inf(1)), missLeft: 1}
				fill(node, 2*heap+1, level+1)
				fill(node, 2*heap+2, level+1)
				return
			}
			ml := uint8(0)
			if n.miss == n.left {
				ml = 1
			}
			splits[heap] = flatSplit{thr: n.value, feat: uint8(n.feat), missLeft: ml}
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
	var xf [flatMaxFeatures]float32
	var miss [flatMaxFeatures]uint8
	nf := len(m.features)
	_ = x[nf-1]
	for i := range nf {
		v := float32(x[i])
		xf[i] = v
		if v != v {
			miss[i] = 1
		}
	}
	d := f.depth
	sum := m.baseMargin
	splits, leaves := f.splits, f.leaves
	if d == 2 { // the v4 models: all three splits at once, then the leaf
		for len(splits) >= 3 && len(leaves) >= 4 {
			s := (*[3]flatSplit)(splits)
			r0 := 1 - int(lessU8(xf[s[0].feat], s[0].thr)|miss[s[0].feat]&s[0].missLeft)
			r1 := 1 - int(lessU8(xf[s[1].feat], s[1].thr)|miss[s[1].feat]&s[1].missLeft)
			r2 := 1 - int(lessU8(xf[s[2].feat], s[2].thr)|miss[s[2].feat]&s[2].missLeft)
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
			n := &s[h]
			left := lessU8(xf[n.feat], n.thr) | miss[n.feat]&n.missLeft
			h = 2*h + 2 - int(left)
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
