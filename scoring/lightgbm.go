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
	ens, err := lgEnsemble(raw)
	if err != nil {
		return nil, fmt.Errorf("lightgbm: %w", err)
	}
	if n := ens.NOutputGroups(); n != 1 {
		return nil, fmt.Errorf("lightgbm: num_class: multi-class models (%d classes) are unsupported", n)
	}
	m := &lightGBM{ens: ens.EnsembleWithRawPredictions()}
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
	m.features, err = lightGBMFeatureNames(raw)
	if err != nil {
		return nil, err
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

// lightGBMFeatureNames reads the feature_names line of the model header
// (the lines before the first blank line).
func lightGBMFeatureNames(raw []byte) ([]string, error) {
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			break
		}
		if names, ok := strings.CutPrefix(line, "feature_names="); ok {
			return strings.Fields(names), nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("lightgbm: reading header: %w", err)
	}
	return nil, fmt.Errorf("lightgbm: feature_names: missing from the model header")
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
