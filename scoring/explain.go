package scoring

import (
	"fmt"
	"unsafe"
)

// Explaining shallow trees from tables.
//
// What a tree's path-dependent TreeSHAP values depend on. XGBoost's
// TreeShap (treeshap.go) visits every node of the tree for every row: at
// an internal node it sends the "one" fraction (the feature is in the
// coalition) only to the child the row takes, the hot child, and the
// "zero" fraction to both children in proportion to their covers. So the
// values are a function of the hot child at each internal node, and of
// nothing else in the row. All internal nodes count, not only those on the
// row's own path: for a coalition that holds the feature of a node off the
// path but not the feature of the node where the path turned away, the
// expectation reaches that node through the zero fraction and follows the
// row's direction there. (TestTableKeyNeedsOffPathNodes shows two rows
// reaching the same leaf with different values.)
//
// The minimal key is smaller only where a feature repeats on a path: a
// node with an ancestor splitting on the same feature that sends the row
// the other way sees that feature's one fraction already zero (XGBoost
// unwinds the ancestor's split and passes its fractions on), so both its
// children get one fraction 0 (each child's zero fraction is its own share
// of the cover, whichever is hot) and its own direction cannot matter. The
// minimal key is therefore the directions at the internal nodes not below
// such a turned-away ancestor: at most one bit per internal node, and
// exactly one per internal node when no feature repeats on a path. Some
// combinations of bits cannot occur (two splits on one feature constrain
// each other), but missing values, which follow each node's default
// direction, make most of them reachable.
//
// The tables use a simple superset of that key that the scoring pass
// computes anyway: the direction at every split of the tree's flat layout
// (flat.go), 2^(2^d-1) patterns for depth d (8 for depth 2, 128 for depth
// 3; a padded split always goes left, so its bit only duplicates entries).
// Each entry is computed at load by treeShap itself, float32 for float32,
// and holds only the values of the tree's own features; the tree's bias
// share (its expected value, the same for every row) is summed over the
// trees once at load. A row's values are then one lookup per tree and an
// addition per feature of the tree, in tree order: the same float32
// additions in the same order as XGBoost's loop over trees, so the result
// is the recursion's, bit for bit.

// maxExplainDepth bounds the trees explained from tables: depth 3 is 128
// patterns per tree.
const maxExplainDepth = 3

// explainTables holds the per-pattern TreeSHAP values of every tree.
type explainTables struct {
	bias float32 // sum of the trees' expected values, in tree order, plus the base margin

	// Depth 2, parallel to batchEngine.trees2.
	trees2 []explainTree2

	// Other depths: tree t's features are feats[fstart[t]:fstart[t+1]], and
	// its values for pattern p start at vals[vstart[t]+p*nfeat].
	vals   []float32
	vstart []int32
	feats  []uint8
	fstart []int32
}

// explainTree2 is one depth-2 tree for explaining: its splits and leaves
// (a copy of the batch engine's, so that one pass reads one array, with
// every split's guard bit at 15: pattern2) and its
// table: per pattern (tree2.leaf's index), the values of its three
// features. A tree with fewer names trashSlot for the others, where the
// row adds zeros nobody reads: the same work for every tree, no branch.
type explainTree2 struct {
	tree2
	vals [8][3]float32
	feat [3]uint8
	_    [5]uint8
}

const trashSlot = batchMaxFeat // not a feature: there are at most batchMaxFeat

// buildExplain fills m.explain when the batch engine serves the model and
// its trees are at most maxExplainDepth deep.
func (m *XGBoost) buildExplain() {
	e := m.batch
	if e == nil || e.depth > maxExplainDepth {
		return
	}
	d := e.depth
	ns := 1<<d - 1
	if d != 2 { // bound the tables as treeshap.go bounds its own
		n := 0
		for t := range m.roots {
			n += (1 << ns) * int(m.featStart[t+1]-m.featStart[t])
		}
		if n > maxTableFloats {
			return
		}
	}
	ex := &explainTables{}
	s := m.newScratch().(*shapScratch)
	for t, root := range m.roots {
		ex.bias += m.mean[root]
		// The real internal node at each split of the flat layout, -1 for
		// padding.
		at := make([]int32, ns)
		var place func(node int32, heap, level int)
		place = func(node int32, heap, level int) {
			if level == d {
				return
			}
			n := &m.nodes[node]
			if n.feat < 0 {
				at[heap] = -1
				place(node, 2*heap+1, level+1)
				place(node, 2*heap+2, level+1)
				return
			}
			at[heap] = node
			place(n.left, 2*heap+1, level+1)
			place(n.left+1, 2*heap+2, level+1)
		}
		place(root, 0, 0)
		feats := m.treeFeat[m.featStart[t]:m.featStart[t+1]]
		// values of pattern p into dst, one per feature of the tree.
		values := func(p int, dst []float32) {
			for h, node := range at {
				if node >= 0 {
					s.hot[node] = m.nodes[node].left + int32(1-p>>h&1)
				}
			}
			m.treeShap(s, root, 0, 0, 1, 1, -1)
			for j, f := range feats {
				dst[j] = s.tree[f]
				s.tree[f] = 0
			}
		}
		if d == 2 {
			xt := explainTree2{tree2: e.trees2[t]}
			for h := range xt.c { // guard bit 15 for all three: pattern2
				xt.c[h] += laneOnes<<15 - laneOnes<<(13+h)
			}
			for j := range xt.feat {
				xt.feat[j] = trashSlot
				if j < len(feats) {
					xt.feat[j] = uint8(feats[j])
				}
			}
			for p := range xt.vals {
				values(p, xt.vals[p][:len(feats)])
			}
			ex.trees2 = append(ex.trees2, xt)
			continue
		}
		ex.fstart = append(ex.fstart, int32(len(ex.feats)))
		for _, f := range feats {
			ex.feats = append(ex.feats, uint8(f))
		}
		ex.vstart = append(ex.vstart, int32(len(ex.vals)))
		for p := range 1 << ns {
			n := len(ex.vals)
			ex.vals = append(ex.vals, make([]float32, len(feats))...)
			values(p, ex.vals[n:])
		}
	}
	if d != 2 {
		ex.fstart = append(ex.fstart, int32(len(ex.feats)))
	}
	ex.bias += m.baseMargin
	m.explain = ex
}

// bytes is the memory the tables hold.
func (ex *explainTables) bytes() int {
	return len(ex.trees2)*int(unsafe.Sizeof(explainTree2{})) + len(ex.vals)*4 + len(ex.vstart)*4 + len(ex.feats) + len(ex.fstart)*4
}

// ExplainTableBytes returns the memory, in bytes, that the model keeps to
// explain rows quickly: the per-pattern TreeSHAP tables of its trees (see
// explain.go), or the older per-tree tables of small trees in a deeper
// model, 0 when it has neither. It is fixed at load; the service can log
// it with the model.
func (m *XGBoost) ExplainTableBytes() int {
	if m.explain != nil {
		return m.explain.bytes()
	}
	return len(m.shapTable)*4 + len(m.tabSplits)*8 + len(m.shapStart)*4 + len(m.tabStart)*4
}

// explainBlock scores and explains one block of rows (1 to batchLanes)
// from the tables: row k's score in scores[k] (margins before the
// objective's transformation) and its values in out[k*(nf+1):].
func (m *XGBoost) explainBlock(r *batchRanks, rows [][]float64, margins *[batchLanes]float32, out []float64) {
	e, ex := m.batch, m.explain
	nf := len(m.features)
	e.fillRanks(r, rows)
	var phi [batchLanes][256]float32 // indexed by a uint8: no bounds checks
	s0, s1, s2, s3 := m.baseMargin, m.baseMargin, m.baseMargin, m.baseMargin
	if e.depth == 2 {
		g := guard
		xts := ex.trees2
		for i := range xts {
			xt := &xts[i]
			p := pattern2(&xt.tree2, r, g)
			lo, hi := uint32(p), uint32(p>>32)
			p0, p1, p2, p3 := lo>>13&7, lo>>29, hi>>13&7, hi>>29
			s0 += xt.leaf[p0]
			s1 += xt.leaf[p1]
			s2 += xt.leaf[p2]
			s3 += xt.leaf[p3]
			f0, f1, f2 := xt.feat[0], xt.feat[1], xt.feat[2]
			v := &xt.vals[p0]
			phi[0][f0] += v[0]
			phi[0][f1] += v[1]
			phi[0][f2] += v[2]
			v = &xt.vals[p1]
			phi[1][f0] += v[0]
			phi[1][f1] += v[1]
			phi[1][f2] += v[2]
			v = &xt.vals[p2]
			phi[2][f0] += v[0]
			phi[2][f1] += v[1]
			phi[2][f2] += v[2]
			v = &xt.vals[p3]
			phi[3][f0] += v[0]
			phi[3][f1] += v[1]
			phi[3][f2] += v[2]
		}
	} else {
		d := e.depth
		ns, nl := 1<<d-1, 1<<d
		for t := range len(e.leaves) / nl {
			sp, lv := e.splits[t*ns:(t+1)*ns], e.leaves[t*nl:(t+1)*nl]
			feats := ex.feats[ex.fstart[t]:ex.fstart[t+1]]
			vals := ex.vals[ex.vstart[t]:]
			for k := range batchLanes {
				// The row's direction at every split, and its leaf.
				pat, h := 0, 0
				for i := range sp {
					left := int((sp[i].c - r[sp[i].slot]) >> (16*k + 15) & 1)
					pat |= left << i
				}
				for range d {
					h = 2*h + 2 - (pat >> h & 1)
				}
				leaf := lv[h-ns]
				switch k {
				case 0:
					s0 += leaf
				case 1:
					s1 += leaf
				case 2:
					s2 += leaf
				default:
					s3 += leaf
				}
				row := vals[pat*len(feats):]
				for j, f := range feats {
					phi[k][f] += row[j]
				}
			}
		}
	}
	margins[0], margins[1], margins[2], margins[3] = s0, s1, s2, s3
	for k := range rows {
		o := out[k*(nf+1) : (k+1)*(nf+1)]
		for f := range nf {
			o[f] = float64(phi[k][f])
		}
		o[nf] = float64(ex.bias)
	}
}

// explainOne is explainBlock for one row: its margin, and its values in
// out[:nf+1].
func (m *XGBoost) explainOne(x []float64, out []float64) float32 {
	e, ex := m.batch, m.explain
	nf := len(m.features)
	var r batchRanks
	if e.depth != 2 {
		var margins [batchLanes]float32
		m.explainBlock(&r, [][]float64{x}, &margins, out)
		return margins[0]
	}
	e.fillRank1(&r, x)
	var phi [256]float32
	sum := m.baseMargin
	g := guard
	xts := ex.trees2
	for i := range xts {
		xt := &xts[i]
		p := uint32(pattern2(&xt.tree2, &r, g)) >> 13 & 7
		sum += xt.leaf[p]
		v := &xt.vals[p]
		phi[xt.feat[0]] += v[0]
		phi[xt.feat[1]] += v[1]
		phi[xt.feat[2]] += v[2]
	}
	out = out[:nf+1]
	for f := range nf {
		out[f] = float64(phi[f])
	}
	out[nf] = float64(ex.bias)
	return sum
}

// ExplainBatch scores and explains rows: scores[i] is what Score(rows[i])
// returns and contribs[i*(n+1) : (i+1)*(n+1)], n = len(FeatureNames()),
// what Contributions(rows[i], ...) writes (the values of the features then
// the bias; they sum to the margin). Both are the same float64s the
// one-row methods give, bit for bit. scores may be nil when only the
// contributions are wanted. Shallow models (trees of depth at most 3) are
// explained from tables built at load, four rows per pass, in a fraction of
// the time of the TreeSHAP recursion; others row by row. It allocates
// nothing; its working memory (about 6 KB) is on the calling goroutine's
// stack, and it is safe for concurrent use.
func (m *XGBoost) ExplainBatch(rows [][]float64, scores, contribs []float64) error {
	nf := len(m.features)
	if len(contribs) != len(rows)*(nf+1) {
		return fmt.Errorf("xgboost: explain batch: contribs has %d elements, want %d (%d rows of %d features + bias)", len(contribs), len(rows)*(nf+1), len(rows), nf)
	}
	if scores != nil && len(scores) < len(rows) {
		return fmt.Errorf("xgboost: explain batch: %d scores for %d rows", len(scores), len(rows))
	}
	for i, x := range rows {
		if len(x) < nf {
			return fmt.Errorf("xgboost: explain batch: row %d has %d values, want %d", i, len(x), nf)
		}
	}
	if m.explain == nil {
		for i, x := range rows {
			if err := m.Contributions(x, contribs[i*(nf+1):(i+1)*(nf+1)]); err != nil {
				return err
			}
			if scores != nil {
				scores[i] = m.Score(x)
			}
		}
		return nil
	}
	if len(rows) == 1 {
		margin := m.explainOne(rows[0], contribs)
		if scores != nil {
			scores[0] = float64(m.transform(margin))
		}
		return nil
	}
	var r batchRanks
	for len(rows) > 0 {
		n := min(len(rows), batchLanes)
		var margins [batchLanes]float32
		m.explainBlock(&r, rows[:n], &margins, contribs)
		if scores != nil {
			for k := range n {
				scores[k] = float64(m.transform(margins[k]))
			}
			scores = scores[n:]
		}
		rows, contribs = rows[n:], contribs[n*(nf+1):]
	}
	return nil
}
