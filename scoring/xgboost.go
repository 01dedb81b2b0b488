package scoring

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
)

// XGBoost is a gradient-boosted tree model read from XGBoost's JSON format
// (Booster.save_model("x.json"), XGBoost 1.0 and later). It is immutable
// after loading and safe for concurrent use.
//
// Evaluation follows XGBoost's CPU predictor exactly: every input is
// rounded to float32, a node sends the row left when float32(x) <
// split_condition, a missing (NaN) input follows the node's default_left
// direction, the margin starts at base_score turned into a margin and adds
// one float32 leaf value per tree, in tree order, in float32 arithmetic,
// and a logistic objective's probability is XGBoost's float32 sigmoid with
// the exp of the C library XGBoost runs on (glibc's expf: expf.go).
type XGBoost struct {
	features   []string
	objective  string
	baseScore  float32 // as stored: a probability for logistic objectives
	baseMargin float32 // baseScore through the objective's inverse link
	transform  func(margin float32) float32

	// nodes holds every reachable node of every tree. Within a tree the
	// children of a node sit side by side (right = left+1), laid out
	// breadth first, so a row walks a few adjacent cache lines per tree.
	nodes []node
	roots []int32 // index in nodes of each tree's root, in tree order

	// Explanation data, parallel to nodes; read only by TreeSHAP.
	cover     []float32 // sum_hessian of the node
	mean      []float32 // cover-weighted mean leaf value below the node
	treeFeat  []int32   // distinct split features of tree t: treeFeat[featStart[t]:featStart[t+1]]
	featStart []int32
	maxDepth  int         // deepest leaf over all trees, root = 0
	shapStart []int32     // per tree: offset of its TreeSHAP table in shapTable, -1 if none
	shapTable []float32   // per tree, per hot pattern: the values of the tree's features
	tabSplits []flatSplit // internal nodes of the table trees, tree t's at tabSplits[tabStart[t]:tabStart[t+1]]
	tabStart  []int32

	bestIteration int // learner attribute best_iteration, -1 when absent

	flat  *flatTrees   // the same trees as perfect trees, when shallow; see flat.go
	batch *batchEngine // the flat trees for four rows at a time; see batch.go
	// TreeSHAP tables of every tree, when the batch engine serves a model of
	// depth <= 3; see explain.go. Otherwise shapStart and the fields after
	// it hold tables for the small trees of a deeper model (treeshap.go).
	explain *explainTables

	scratch sync.Pool // *shapScratch
}

// node is one tree node, 16 bytes.
type node struct {
	value float32 // split condition; the leaf value on a leaf
	feat  int32   // split feature index; -1 on a leaf
	left  int32   // index of the left child; the right child is left+1
	miss  int32   // index of the child a missing value goes to
}

// xgbModelJSON is the part of XGBoost's JSON model schema the scorer reads.
type xgbModelJSON struct {
	Learner struct {
		Attributes        map[string]string `json:"attributes"`
		FeatureNames      []string          `json:"feature_names"`
		FeatureTypes      []string          `json:"feature_types"`
		GradientBooster   json.RawMessage   `json:"gradient_booster"`
		LearnerModelParam struct {
			BaseScore  string `json:"base_score"`
			NumClass   string `json:"num_class"`
			NumFeature string `json:"num_feature"`
			NumTarget  string `json:"num_target"`
		} `json:"learner_model_param"`
		Objective struct {
			Name string `json:"name"`
		} `json:"objective"`
	} `json:"learner"`
	Version []int `json:"version"`
}

type xgbBoosterJSON struct {
	Name  string `json:"name"`
	Model struct {
		TreeInfo []int          `json:"tree_info"`
		Trees    []xgbTreeJSON  `json:"trees"`
		Param    map[string]any `json:"gbtree_model_param"`
	} `json:"model"`
}

type xgbTreeJSON struct {
	LeftChildren    []int32       `json:"left_children"`
	RightChildren   []int32       `json:"right_children"`
	SplitIndices    []int32       `json:"split_indices"`
	SplitConditions []jsonFloat32 `json:"split_conditions"`
	DefaultLeft     []jsonBool    `json:"default_left"`
	SumHessian      []float32     `json:"sum_hessian"`
	SplitType       []int         `json:"split_type"`
	Categories      []int         `json:"categories"`
	CategoriesNodes []int         `json:"categories_nodes"`
	TreeParam       struct {
		SizeLeafVector string `json:"size_leaf_vector"`
	} `json:"tree_param"`
}

// jsonFloat32 is a float32 that also accepts the "NaN", "Infinity" and
// "-Infinity" strings quoteNonFinite turns XGBoost's bare non-finite
// numbers into.
type jsonFloat32 float32

func (f *jsonFloat32) UnmarshalJSON(p []byte) error {
	s := string(p)
	if len(s) >= 2 && s[0] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := strconv.ParseFloat(s, 32) // accepts NaN, Infinity, -Infinity
	if err != nil {
		return fmt.Errorf("want a number, got %s", p)
	}
	*f = jsonFloat32(v)
	return nil
}

// quoteNonFinite quotes the bare NaN, Infinity and -Infinity tokens
// XGBoost's JSON writer emits (categorical splits have NaN conditions),
// which encoding/json rejects. Text inside strings is left alone.
func quoteNonFinite(b []byte) []byte {
	var out []byte
	inString, escaped := false, false
	last := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		if c == '"' {
			inString = true
			continue
		}
		for _, tok := range [...]string{"NaN", "Infinity", "-Infinity"} {
			if c == tok[0] && len(b)-i >= len(tok) && string(b[i:i+len(tok)]) == tok {
				out = append(out, b[last:i]...)
				out = append(out, '"')
				out = append(out, tok...)
				out = append(out, '"')
				i += len(tok) - 1
				last = i + 1
				break
			}
		}
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

// jsonBool accepts the 0/1 integers XGBoost writes for default_left as well
// as JSON booleans.
type jsonBool bool

func (b *jsonBool) UnmarshalJSON(p []byte) error {
	switch string(p) {
	case "1", "true":
		*b = true
	case "0", "false":
		*b = false
	default:
		return fmt.Errorf("want 0, 1, true or false, got %s", p)
	}
	return nil
}

// LoadXGBoostJSON reads a model saved by XGBoost as JSON. It refuses, with
// an error naming what is unsupported, anything it cannot score exactly:
// boosters other than gbtree (dart, gblinear), multi-class or multi-target
// models, categorical splits, vector leaves, and objectives other than
// binary:logistic, binary:logitraw, reg:logistic and reg:squarederror.
func LoadXGBoostJSON(r io.Reader) (*XGBoost, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("xgboost: reading model: %w", err)
	}
	var doc xgbModelJSON
	if err := json.Unmarshal(quoteNonFinite(raw), &doc); err != nil {
		return nil, fmt.Errorf("xgboost: decoding model JSON: %w", err)
	}
	l := &doc.Learner
	if l.GradientBooster == nil {
		return nil, errors.New("xgboost: learner.gradient_booster: missing (not an XGBoost JSON model)")
	}
	var gb xgbBoosterJSON
	if err := json.Unmarshal(l.GradientBooster, &gb); err != nil {
		return nil, fmt.Errorf("xgboost: learner.gradient_booster: %w", err)
	}
	if gb.Name != "gbtree" {
		return nil, fmt.Errorf("xgboost: learner.gradient_booster.name: booster %q is unsupported (only gbtree)", gb.Name)
	}
	p := &l.LearnerModelParam
	if n, err := paramInt(p.NumClass, 0); err != nil {
		return nil, fmt.Errorf("xgboost: learner_model_param.num_class: %w", err)
	} else if n > 1 {
		return nil, fmt.Errorf("xgboost: learner_model_param.num_class: multi-class models (%d classes) are unsupported", n)
	}
	if n, err := paramInt(p.NumTarget, 1); err != nil {
		return nil, fmt.Errorf("xgboost: learner_model_param.num_target: %w", err)
	} else if n > 1 {
		return nil, fmt.Errorf("xgboost: learner_model_param.num_target: multi-target models (%d targets) are unsupported", n)
	}
	nfeat, err := paramInt(p.NumFeature, -1)
	if err != nil || nfeat < 1 {
		return nil, fmt.Errorf("xgboost: learner_model_param.num_feature: want a positive integer, got %q", p.NumFeature)
	}

	m := &XGBoost{objective: l.Objective.Name, bestIteration: -1}
	if m.baseScore, err = parseBaseScore(p.BaseScore); err != nil {
		return nil, fmt.Errorf("xgboost: learner_model_param.base_score: %w", err)
	}
	switch m.objective {
	case "binary:logistic", "reg:logistic":
		m.transform = sigmoid32
		m.baseMargin, err = logit32(m.baseScore)
	case "binary:logitraw":
		// XGBoost keeps binary:logitraw's base_score as a margin: its
		// ProbToMargin is the identity (checked against XGBoost 1.7.4).
		m.transform = identity32
		m.baseMargin = m.baseScore
	case "reg:squarederror":
		m.transform = identity32
		m.baseMargin = m.baseScore
	default:
		return nil, fmt.Errorf("xgboost: learner.objective.name: objective %q is unsupported (want binary:logistic, binary:logitraw, reg:logistic or reg:squarederror)", m.objective)
	}
	if err != nil {
		return nil, fmt.Errorf("xgboost: learner_model_param.base_score: %w", err)
	}

	switch {
	case len(l.FeatureNames) == 0:
		for i := range nfeat {
			m.features = append(m.features, "f"+strconv.Itoa(i))
		}
	case len(l.FeatureNames) != nfeat:
		return nil, fmt.Errorf("xgboost: learner.feature_names: %d names for num_feature %d", len(l.FeatureNames), nfeat)
	default:
		m.features = append([]string(nil), l.FeatureNames...)
	}
	for i, t := range l.FeatureTypes {
		if t == "c" {
			return nil, fmt.Errorf("xgboost: learner.feature_types: feature %q is categorical; categorical features are unsupported", m.features[i])
		}
	}
	if s, ok := l.Attributes["best_iteration"]; ok {
		if m.bestIteration, err = strconv.Atoi(s); err != nil {
			return nil, fmt.Errorf("xgboost: learner.attributes.best_iteration: %w", err)
		}
	}

	trees := gb.Model.Trees
	if len(trees) == 0 {
		return nil, errors.New("xgboost: gradient_booster.model.trees: model has no trees")
	}
	for i, g := range gb.Model.TreeInfo {
		if g != 0 {
			return nil, fmt.Errorf("xgboost: gradient_booster.model.tree_info[%d]: output group %d (multi-output models are unsupported)", i, g)
		}
	}
	for i := range trees {
		if err := m.addTree(&trees[i], nfeat); err != nil {
			return nil, fmt.Errorf("xgboost: gradient_booster.model.trees[%d]: %w", i, err)
		}
	}
	m.featStart = append(m.featStart, int32(len(m.treeFeat)))
	m.buildFlat()
	m.buildBatch()
	m.buildExplain()
	m.buildShapTables()
	m.scratch.New = func() any { return m.newScratch() }
	return m, nil
}

// addTree validates one tree and appends its reachable nodes, breadth
// first with siblings adjacent.
func (m *XGBoost) addTree(t *xgbTreeJSON, nfeat int) error {
	n := len(t.LeftChildren)
	if n == 0 {
		return errors.New("tree has no nodes")
	}
	for _, c := range []struct {
		name string
		len  int
	}{
		{"right_children", len(t.RightChildren)},
		{"split_indices", len(t.SplitIndices)},
		{"split_conditions", len(t.SplitConditions)},
		{"default_left", len(t.DefaultLeft)},
		{"sum_hessian", len(t.SumHessian)},
	} {
		if c.len != n {
			return fmt.Errorf("%s: %d entries for %d nodes", c.name, c.len, n)
		}
	}
	if len(t.Categories) > 0 || len(t.CategoriesNodes) > 0 {
		return errors.New("categories: categorical splits are unsupported")
	}
	for i, st := range t.SplitType {
		if st != 0 {
			return fmt.Errorf("split_type[%d]: categorical splits are unsupported", i)
		}
	}
	for i, c := range t.SplitConditions {
		if c != c {
			return fmt.Errorf("split_conditions[%d]: NaN", i)
		}
	}
	if s := t.TreeParam.SizeLeafVector; s != "" && s != "0" && s != "1" {
		return fmt.Errorf("tree_param.size_leaf_vector: vector leaves (%s) are unsupported", s)
	}

	base := int32(len(m.nodes))
	m.featStart = append(m.featStart, int32(len(m.treeFeat)))
	m.roots = append(m.roots, base)
	src := []int32{0}   // src[k] is the JSON node id laid out at base+k
	depth := []int32{0} // depth of the node at base+k
	seen := make([]bool, n)
	seen[0] = true
	m.nodes = append(m.nodes, node{})
	m.cover = append(m.cover, 0)
	for k := 0; k < len(src); k++ {
		s, dst := src[k], base+int32(k)
		m.cover[dst] = t.SumHessian[s]
		l, r := t.LeftChildren[s], t.RightChildren[s]
		if l == -1 {
			if r != -1 {
				return fmt.Errorf("node %d: left child -1 but right child %d", s, r)
			}
			m.nodes[dst] = node{value: float32(t.SplitConditions[s]), feat: -1, left: -1, miss: -1}
			m.maxDepth = max(m.maxDepth, int(depth[k]))
			continue
		}
		for _, c := range [2]int32{l, r} {
			if c <= 0 || int(c) >= n {
				return fmt.Errorf("node %d: child %d out of range 1..%d", s, c, n-1)
			}
			if seen[c] {
				return fmt.Errorf("node %d: child %d reached twice", s, c)
			}
			seen[c] = true
		}
		f := t.SplitIndices[s]
		if f < 0 || int(f) >= nfeat {
			return fmt.Errorf("split_indices[%d]: feature %d out of range 0..%d", s, f, nfeat-1)
		}
		left := base + int32(len(src))
		miss := left
		if !t.DefaultLeft[s] {
			miss = left + 1
		}
		m.nodes[dst] = node{value: float32(t.SplitConditions[s]), feat: f, left: left, miss: miss}
		src = append(src, l, r)
		depth = append(depth, depth[k]+1, depth[k]+1)
		m.nodes = append(m.nodes, node{}, node{})
		m.cover = append(m.cover, 0, 0)
		if !containsInt32(m.treeFeat[m.featStart[len(m.featStart)-1]:], f) {
			m.treeFeat = append(m.treeFeat, f)
		}
	}
	// Mean values bottom up, as XGBoost's FillNodeMeanValue computes them
	// (float32): children always sit after their parent.
	m.mean = append(m.mean, make([]float32, len(src))...)
	for k := len(src) - 1; k >= 0; k-- {
		i := base + int32(k)
		nd := m.nodes[i]
		if nd.feat < 0 {
			m.mean[i] = nd.value
			continue
		}
		v := float32(m.mean[nd.left] * m.cover[nd.left])
		v += float32(m.mean[nd.left+1] * m.cover[nd.left+1])
		m.mean[i] = v / m.cover[i]
	}
	return nil
}

func containsInt32(s []int32, v int32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// paramInt parses one of XGBoost's string-encoded integer parameters; an
// absent one takes def.
func paramInt(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("want an integer, got %q", s)
	}
	return n, nil
}

// parseBaseScore reads base_score as XGBoost 1.x ("5E-1") and 2.x/3.x
// ("[5E-1]", one value per target) write it.
func parseBaseScore(s string) (float32, error) {
	v := strings.TrimSpace(s)
	if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		v = strings.TrimSpace(v[1 : len(v)-1])
		if strings.Contains(v, ",") {
			return 0, fmt.Errorf("one value per target in %q: multi-target models are unsupported", s)
		}
	}
	if v == "" {
		return 0, fmt.Errorf("empty value %q", s)
	}
	f, err := strconv.ParseFloat(v, 32)
	if err != nil {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	return float32(f), nil
}

// logit32 is XGBoost's ProbToMargin for logistic objectives,
// -logf(1.0f/p - 1.0f), in float32 with glibc's logf (libm.go).
func logit32(p float32) (float32, error) {
	if !(p > 0 && p < 1) {
		return 0, fmt.Errorf("%v is not a probability in (0, 1), which a logistic objective needs", p)
	}
	q := 1/p - 1
	return -logf32(q), nil
}

func identity32(x float32) float32 { return x }

// FeatureNames returns the model's ordered input features. The caller must
// not modify the slice.
func (m *XGBoost) FeatureNames() []string { return m.features }

// Objective returns the model's objective, e.g. "binary:logistic".
func (m *XGBoost) Objective() string { return m.objective }

// NumTrees returns the number of trees the model sums.
func (m *XGBoost) NumTrees() int { return len(m.roots) }

// BaseScore returns learner_model_param.base_score as stored (a probability
// for logistic objectives).
func (m *XGBoost) BaseScore() float64 { return float64(m.baseScore) }

// BestIteration returns the learner attribute best_iteration that XGBoost's
// early stopping records, and whether it is present. Score always sums
// every tree in the file, as XGBoost's Booster.predict does by default: a
// model meant to stop at its best iteration must be saved truncated.
func (m *XGBoost) BestIteration() (int, bool) { return m.bestIteration, m.bestIteration >= 0 }

// Score returns the model's output for one row after the objective's
// transformation: a probability for binary:logistic and reg:logistic, the
// margin for binary:logitraw and reg:squarederror. NaN marks a missing
// value. len(x) must be len(FeatureNames()); Score panics on a shorter row.
// It allocates nothing.
func (m *XGBoost) Score(x []float64) float64 {
	return float64(m.transform(m.margin(x)))
}

// Margin returns the untransformed sum of base margin and leaf values.
func (m *XGBoost) Margin(x []float64) float64 { return float64(m.margin(x)) }

func (m *XGBoost) margin(x []float64) float32 {
	if m.batch != nil {
		_ = x[len(m.features)-1]
		var r batchRanks
		m.batch.fillRank1(&r, x)
		return m.batch.margin1(&r, m.baseMargin)
	}
	if m.flat != nil {
		return m.flatMargin(x)
	}
	_ = x[len(m.features)-1]
	nodes := m.nodes
	sum := m.baseMargin
	for _, i := range m.roots {
		for {
			n := &nodes[i]
			if n.feat < 0 {
				sum += n.value
				break
			}
			v := float32(x[n.feat])
			switch {
			case v < n.value:
				i = n.left
			case v != v: // NaN: missing
				i = n.miss
			default:
				i = n.left + 1
			}
		}
	}
	return sum
}

var _ BatchModel = (*XGBoost)(nil)
