package scoring

import "fmt"

// This file computes exact path-dependent TreeSHAP values (Lundberg et al.,
// "Consistent Individualized Feature Attribution for Tree Ensembles",
// algorithm 2) with the arithmetic of XGBoost's RegTree::TreeShap and
// CPUPredictor::PredictContribution: float32 throughout, node covers from
// sum_hessian, one value per feature plus the bias (the expected value of
// every tree plus the base margin), per-tree values summed into the row's
// values in tree order. The result equals Booster.predict(pred_contribs=True).

// pathElem is one feature on the unique path from the root to a node.
type pathElem struct {
	feat    int32   // feature index; -1 for the root's placeholder
	zero    float32 // fraction of zero paths (feature not in the coalition) flowing through
	one     float32 // fraction of one paths (feature in the coalition) flowing through
	pweight float32 // permutation weight
}

// Trees with few internal nodes are explained by table: a tree's TreeSHAP
// values depend on the row only through which child is "hot" at each
// internal node, so for a tree of k internal nodes the values of all 2^k
// hot patterns are computed at load, by the same float32 code, and a row
// costs k comparisons and a lookup. A v4.1.0 tree (depth 2) has 3 internal
// nodes: 8 patterns. Larger trees run the recursion per row.
const (
	maxTableInternal = 7       // 128 patterns per tree at most
	maxTableFloats   = 1 << 22 // 16 MiB of tables per model at most
)

// buildShapTables fills shapStart and shapTable for every tree small
// enough; the others get shapStart -1. A model that explain.go's tables
// serve needs none.
func (m *XGBoost) buildShapTables() {
	s := m.newScratch().(*shapScratch)
	m.shapStart = make([]int32, len(m.roots))
	for t := range m.shapStart {
		m.shapStart[t] = -1
	}
	m.tabStart = make([]int32, len(m.roots)+1)
	if m.explain != nil || len(m.features) > flatMaxFeatures || !m.finiteSplits() {
		return // the table path reads the row as a flatRow (flat.go)
	}
	defer func() { m.tabStart[len(m.roots)] = int32(len(m.tabSplits)) }()
	for t, root := range m.roots {
		m.shapStart[t] = -1
		m.tabStart[t] = int32(len(m.tabSplits))
		lo, hi := root, m.treeEnd(t)
		var internal []int32
		for i := lo; i < hi; i++ {
			if m.nodes[i].feat >= 0 {
				internal = append(internal, i)
			}
		}
		feats := m.treeFeat[m.featStart[t]:m.featStart[t+1]]
		size := (1 << len(internal)) * len(feats)
		if len(internal) > maxTableInternal || len(m.shapTable)+size > maxTableFloats {
			continue
		}
		m.shapStart[t] = int32(len(m.shapTable))
		for _, i := range internal {
			n := &m.nodes[i]
			m.tabSplits = append(m.tabSplits, newFlatSplit(n.value, n.feat, n.miss == n.left))
		}
		for pat := range 1 << len(internal) {
			for j, i := range internal {
				s.hot[i] = m.nodes[i].left + int32(pat>>j&1)
			}
			m.treeShap(s, root, 0, 0, 1, 1, -1)
			for _, f := range feats {
				m.shapTable = append(m.shapTable, s.tree[f])
				s.tree[f] = 0
			}
		}
	}
}

// treeEnd is one past the last node of tree t.
func (m *XGBoost) treeEnd(t int) int32 {
	if t+1 < len(m.roots) {
		return m.roots[t+1]
	}
	return int32(len(m.nodes))
}

// hotChild is the child row x follows at internal node n.
func hotChild(x []float64, n *node) int32 {
	v := float32(x[n.feat])
	switch {
	case v < n.value:
		return n.left
	case v != v:
		return n.miss
	default:
		return n.left + 1
	}
}

// shapScratch is the per-call working memory of Contributions, pooled so
// that explaining a row allocates nothing.
type shapScratch struct {
	path []pathElem // room for every level's copy of the unique path
	phi  []float32  // row totals, len(features)+1
	tree []float32  // one tree's values, len(features)+1, kept zero between trees
	hot  []int32    // per node: the child the row follows
}

func (m *XGBoost) newScratch() any {
	d := m.maxDepth + 2
	return &shapScratch{
		path: make([]pathElem, d*(d+1)/2),
		phi:  make([]float32, len(m.features)+1),
		tree: make([]float32, len(m.features)+1),
		hot:  make([]int32, len(m.nodes)),
	}
}

// Contributions writes the TreeSHAP value of every feature of row x into
// out[:len(FeatureNames())] and the bias into the last element; the values
// sum to the margin (before the objective's transformation). NaN marks a
// missing value. It allocates nothing. Shallow models are explained from
// tables (explain.go), others by the recursion; the values are the same
// float32s either way, XGBoost's pred_contribs.
func (m *XGBoost) Contributions(x []float64, out []float64) error {
	nf := len(m.features)
	if len(out) != nf+1 {
		return fmt.Errorf("xgboost: contributions: out has %d elements, want %d (features + bias)", len(out), nf+1)
	}
	if len(x) < nf {
		return fmt.Errorf("xgboost: contributions: row has %d values, want %d", len(x), nf)
	}
	if m.explain != nil {
		m.explainOne(x, out)
		return nil
	}
	m.contributionsWalk(x, out)
	return nil
}

// contributionsWalk is Contributions tree by tree: from shapTable for the
// trees that have one, by the recursion for the others.
func (m *XGBoost) contributionsWalk(x []float64, out []float64) {
	nf := len(m.features)
	s := m.scratch.Get().(*shapScratch)
	clear(s.phi)
	// The row as the table path reads it.
	var row flatRow
	if len(m.tabSplits) > 0 {
		row.fill(x, nf)
	}
	for t, root := range m.roots {
		lo, hi := root, m.treeEnd(t)
		feats := m.treeFeat[m.featStart[t]:m.featStart[t+1]]
		if off := m.shapStart[t]; off >= 0 {
			// The pattern: bit j set when the row goes right at the j-th
			// internal node; computed without branches.
			pat := 0
			for j, sp := range m.tabSplits[m.tabStart[t]:m.tabStart[t+1]] {
				pat |= (1 - row.left(&sp)) << j
			}
			vals := m.shapTable[int(off)+pat*len(feats):]
			for j, f := range feats {
				s.phi[f] += vals[j]
			}
		} else {
			for i := lo; i < hi; i++ {
				if n := &m.nodes[i]; n.feat >= 0 {
					s.hot[i] = hotChild(x, n)
				}
			}
			m.treeShap(s, root, 0, 0, 1, 1, -1)
			for _, f := range feats {
				s.phi[f] += s.tree[f]
				s.tree[f] = 0
			}
		}
		s.phi[nf] += m.mean[root] // the tree's expected value, XGBoost's per-tree bias
	}
	s.phi[nf] += m.baseMargin
	for i, v := range s.phi {
		out[i] = float64(v)
	}
	m.scratch.Put(s)
}

// treeShap is XGBoost's RegTree::TreeShap with condition == 0, adding one
// tree's values into s.tree; s.hot holds the row's child at every internal
// node. The unique
// path of the node starts at s.path[parent+depth+1]; the parent's path, of
// depth+1 elements, starts at s.path[parent].
func (m *XGBoost) treeShap(s *shapScratch, ni int32, parent, depth int, zeroFrac, oneFrac float32, parentFeat int32) {
	start := parent + depth + 1
	path := s.path[start : start+depth+1]
	copy(path, s.path[parent:parent+depth+1])
	extendPath(path, depth, zeroFrac, oneFrac, parentFeat)

	n := &m.nodes[ni]
	if n.feat < 0 {
		for i := 1; i <= depth; i++ {
			w := unwoundPathSum(path, depth, i)
			el := &path[i]
			s.tree[el.feat] += float32(float32(w*(el.one-el.zero)) * n.value)
		}
		return
	}

	hot := s.hot[ni]
	cold := n.left
	if hot == n.left {
		cold = n.left + 1
	}
	w := m.cover[ni]
	hotZero := m.cover[hot] / w
	coldZero := m.cover[cold] / w
	inZero, inOne := float32(1), float32(1)

	// A feature split on again below: undo its earlier split so it can be
	// redone for this node.
	k := 0
	for ; k <= depth; k++ {
		if path[k].feat == n.feat {
			break
		}
	}
	if k != depth+1 {
		inZero, inOne = path[k].zero, path[k].one
		unwindPath(path, depth, k)
		depth--
	}
	m.treeShap(s, hot, start, depth+1, hotZero*inZero, inOne, n.feat)
	m.treeShap(s, cold, start, depth+1, coldZero*inZero, 0, n.feat)
}

func extendPath(path []pathElem, depth int, zeroFrac, oneFrac float32, feat int32) {
	path[depth] = pathElem{feat: feat, zero: zeroFrac, one: oneFrac}
	if depth == 0 {
		path[depth].pweight = 1
	}
	d1 := float32(depth + 1)
	for i := depth - 1; i >= 0; i-- {
		path[i+1].pweight += float32(float32(oneFrac*path[i].pweight)*float32(i+1)) / d1
		path[i].pweight = float32(float32(zeroFrac*path[i].pweight)*float32(depth-i)) / d1
	}
}

func unwindPath(path []pathElem, depth, k int) {
	one, zero := path[k].one, path[k].zero
	next := path[depth].pweight
	d1 := float32(depth + 1)
	for i := depth - 1; i >= 0; i-- {
		if one != 0 {
			tmp := path[i].pweight
			path[i].pweight = float32(next*d1) / (float32(i+1) * one)
			next = tmp - float32(float32(path[i].pweight*zero)*float32(depth-i))/d1
		} else {
			path[i].pweight = float32(path[i].pweight*d1) / (zero * float32(depth-i))
		}
	}
	for i := k; i < depth; i++ {
		path[i].feat = path[i+1].feat
		path[i].zero = path[i+1].zero
		path[i].one = path[i+1].one
	}
}

func unwoundPathSum(path []pathElem, depth, k int) float32 {
	one, zero := path[k].one, path[k].zero
	next := path[depth].pweight
	d1 := float32(depth + 1)
	var total float32
	for i := depth - 1; i >= 0; i-- {
		switch {
		case one != 0:
			tmp := float32(next*d1) / (float32(i+1) * one)
			total += tmp
			next = path[i].pweight - float32(float32(tmp*zero)*(float32(depth-i)/d1))
		case zero != 0:
			total += (path[i].pweight / zero) / (float32(depth-i) / d1)
		}
	}
	return total
}
