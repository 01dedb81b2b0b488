package scoring

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"

	"github.com/dmitryikh/leaves"
	"github.com/dmitryikh/leaves/transformation"
	"github.com/dmitryikh/leaves/util"
)

// lightGBM is a LightGBM text model (formats v2 and v3) evaluated by
// github.com/dmitryikh/leaves. leaves computes the raw sum of the trees;
// the objective's transformation is applied here so that scoring a row
// allocates nothing.
type lightGBM struct {
	ens       *leaves.Ensemble // raw predictions
	features  []string
	transform func(float64) float64
	buf       sync.Pool // *[1]float64 handed to leaves
}

// LoadLightGBM reads a LightGBM text model. Multi-class models and
// objectives other than binary, regression and the exponential-link ones
// (poisson, gamma, tweedie) are refused. LightGBM models cannot be
// explained: their Contributions returns ErrNoContributions.
func LoadLightGBM(r io.Reader) (Model, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("lightgbm: reading model: %w", err)
	}
	names, err := lgCheckTrees(raw)
	if err != nil {
		return nil, fmt.Errorf("lightgbm: %w", err)
	}
	ens, err := lgEnsemble(raw)
	if err != nil {
		return nil, fmt.Errorf("lightgbm: %w", err)
	}
	if n := ens.NOutputGroups(); n != 1 {
		return nil, fmt.Errorf("lightgbm: num_class: multi-class models (%d classes) are unsupported", n)
	}
	m := &lightGBM{ens: ens.EnsembleWithRawPredictions(), features: names}
	switch tr := ens.Transformation().Type(); tr {
	case transformation.Raw:
		m.transform = func(x float64) float64 { return x }
	case transformation.Logistic:
		m.transform = func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	case transformation.Exponential:
		m.transform = math.Exp
	default:
		return nil, fmt.Errorf("lightgbm: objective: transformation %s is unsupported", tr.Name())
	}
	if len(m.features) != ens.NFeatures() {
		return nil, fmt.Errorf("lightgbm: feature_names: %d names for %d features", len(m.features), ens.NFeatures())
	}
	m.buf.New = func() any { return new([1]float64) }
	return m, nil
}

// lgEnsemble parses raw with leaves, whose parser indexes slices with
// numbers read from the file and panics on a malformed tree (found by
// FuzzLoadLightGBM): the panic becomes an error, so a corrupt model file is
// refused like any other instead of crashing a registry reload.
func lgEnsemble(raw []byte) (ens *leaves.Ensemble, err error) {
	defer func() {
		if p := recover(); p != nil {
			ens, err = nil, fmt.Errorf("malformed model: %v", p)
		}
	}()
	return leaves.LGEnsembleFromReader(bufio.NewReader(bytes.NewReader(raw)), true)
}

// lgParams is the parameter block leaves' reader returns (its type is
// unexported).
type lgParams interface {
	ToInt(key string) (int, error)
	ToInt32Slice(key string) ([]int32, error)
	ToUint32Slice(key string) ([]uint32, error)
	ToFloat64Slice(key string) ([]float64, error)
}

// lgCheckTrees reads raw as leaves does (its own parameter reader, the same
// count of trees) and checks what leaves' Predict relies on and its parser
// does not: every split names a feature the model has, and every child is a
// leaf of the tree or an internal node other than the root with no other
// parent. Without it a split on feature 70 of 30 panics when a row is
// scored (found by FuzzLoadLightGBM), a node that is the child of two makes
// leaves' walk loop for ever, and a claimed num_leaves with no nodes behind
// it makes leaves allocate its size. It runs before leaves parses, and
// returns the feature names of the header.
func lgCheckTrees(raw []byte) ([]string, error) {
	rd := bufio.NewReader(bytes.NewReader(raw))
	header, err := util.ReadParamsUntilBlank(rd)
	if err != nil {
		return nil, fmt.Errorf("reading header: %w", err)
	}
	names, err := header.ToString("feature_names")
	if err != nil {
		return nil, fmt.Errorf("feature_names: missing from the model header")
	}
	maxFeature, err := header.ToInt("max_feature_idx")
	if err != nil {
		return nil, err
	}
	if maxFeature < 1 {
		// leaves counts no features at all below 1 and would then index
		// rows it has not checked.
		return nil, fmt.Errorf("max_feature_idx: %d; models of fewer than two features are unsupported", maxFeature)
	}
	sizes, err := header.ToStrSlice("tree_sizes")
	if err != nil {
		return nil, err
	}
	for i := range sizes {
		tree, err := util.ReadParamsUntilBlank(rd)
		if err != nil {
			return nil, fmt.Errorf("reading tree %d: %w", i, err)
		}
		if err := lgCheckTree(&tree, maxFeature+1); err != nil {
			return nil, fmt.Errorf("tree %d: %w", i, err)
		}
	}
	return strings.Fields(names), nil
}

func lgCheckTree(p lgParams, nFeatures int) error {
	nLeaves, err := p.ToInt("num_leaves")
	if err != nil {
		return err
	}
	values, err := p.ToFloat64Slice("leaf_value")
	if err != nil {
		return err
	}
	if nLeaves < 1 || len(values) != nLeaves {
		return fmt.Errorf("num_leaves: %d, with %d leaf values", nLeaves, len(values))
	}
	if nLeaves == 1 {
		return nil
	}
	nodes := nLeaves - 1
	features, err := p.ToUint32Slice("split_feature")
	if err != nil {
		return err
	}
	left, err := p.ToInt32Slice("left_child")
	if err != nil {
		return err
	}
	right, err := p.ToInt32Slice("right_child")
	if err != nil {
		return err
	}
	if len(features) != nodes || len(left) != nodes || len(right) != nodes {
		return fmt.Errorf("num_leaves: %d leaves need %d nodes; split_feature, left_child and right_child have %d, %d and %d",
			nLeaves, nodes, len(features), len(left), len(right))
	}
	hasParent := make([]bool, nodes)
	for i := range nodes {
		if int64(features[i]) >= int64(nFeatures) {
			return fmt.Errorf("split_feature: node %d splits on feature %d of %d", i, features[i], nFeatures)
		}
		for _, c := range [2]int32{left[i], right[i]} {
			switch {
			case c < 0 && int(^c) >= nLeaves:
				return fmt.Errorf("left_child, right_child: node %d has leaf %d of %d", i, ^c, nLeaves)
			case c < 0:
			case c == 0 || int(c) >= nodes:
				return fmt.Errorf("left_child, right_child: node %d has child %d, not a node other than the root of %d", i, c, nodes)
			case hasParent[c]:
				return fmt.Errorf("left_child, right_child: node %d is the child of two nodes", c)
			default:
				hasParent[c] = true
			}
		}
	}
	return nil
}

func (m *lightGBM) FeatureNames() []string { return m.features }

// Score returns the model's output after its objective's transformation.
// NaN marks a missing value. len(x) must be len(FeatureNames()).
func (m *lightGBM) Score(x []float64) float64 {
	out := m.buf.Get().(*[1]float64)
	out[0] = 0
	_ = m.ens.Predict(x, 0, out[:]) // errors only on a wrong length or leaf-index mode, both excluded at load
	v := out[0]
	m.buf.Put(out)
	return m.transform(v)
}

// Contributions returns ErrNoContributions: leaves has no TreeSHAP.
func (m *lightGBM) Contributions(x []float64, out []float64) error {
	return ErrNoContributions
}
