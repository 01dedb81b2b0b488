package checklist

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/scoring"
	"github.com/leadscorer/leadscorer/validation"
)

const (
	committedRegistry = "../models/registry.json"
	committedHoldout  = "../testdata/holdout/test.csv"
	committedParity   = "../testdata/parity"
)

// fixture is a copy of the committed registry and models, to break.
type fixture struct {
	path    string
	holdout *Holdout
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	path, err := scoring.CopyRegistry(committedRegistry, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h, err := ReadHoldout(committedHoldout, "label")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{path: path, holdout: h}
}

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // numbers written back exactly as read
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// editRegistry rewrites the registry file through edit of its JSON.
func (f *fixture) editRegistry(t *testing.T, edit func(doc map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	doc := decodeJSON(t, b)
	edit(doc)
	if b, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func versionJSON(doc map[string]any, name string) map[string]any {
	for _, v := range doc["versions"].([]any) {
		if m := v.(map[string]any); m["version"] == name {
			return m
		}
	}
	return nil
}

// editModel rewrites a version's XGBoost model through edit of its JSON and
// registers the result: the registry's sha256 follows the new file.
func (f *fixture) editModel(t *testing.T, version string, edit func(model map[string]any)) {
	t.Helper()
	path := filepath.Join(filepath.Dir(f.path), version, "model.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := decodeJSON(t, b)
	edit(doc)
	if b, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	f.writeModel(t, version, b)
}

func (f *fixture) writeModel(t *testing.T, version string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(filepath.Dir(f.path), version, "model.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	f.editRegistry(t, func(doc map[string]any) { versionJSON(doc, version)["sha256"] = hex.EncodeToString(sum[:]) })
}

func (f *fixture) check(t *testing.T, version, baseline string) scoring.CheckResult {
	t.Helper()
	r, err := scoring.ReadRegistry(f.path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Check(Options{Registry: r, RegistryPath: f.path, Version: version, Baseline: baseline,
		Holdout: f.holdout, ParityDir: committedParity, Time: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC), By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range res.Gates {
		names = append(names, g.Name)
	}
	if !slices.Equal(names, GateNames) {
		t.Fatalf("gates %v, want every gate in order %v", names, GateNames)
	}
	return res
}

func gate(res scoring.CheckResult, name string) scoring.Gate {
	for _, g := range res.Gates {
		if g.Name == name {
			return g
		}
	}
	return scoring.Gate{}
}

// assertFails checks that exactly the named gates fail.
func assertFails(t *testing.T, res scoring.CheckResult, want ...string) {
	t.Helper()
	if got := res.Failed(); !slices.Equal(got, want) {
		var b strings.Builder
		_ = WriteText(&b, "version", res)
		t.Fatalf("failed gates %v, want %v\n%s", got, want, b.String())
	}
	if res.Passed != (len(want) == 0) {
		t.Fatalf("passed = %v with failed gates %v", res.Passed, want)
	}
}

func model(m map[string]any) map[string]any {
	return m["learner"].(map[string]any)["gradient_booster"].(map[string]any)["model"].(map[string]any)
}

// The committed candidate passes every gate, and the figures are the
// trainer's own (models/v4.1.0/metrics.json): test AUC 0.6438, top-decile
// lift 1.972, train AUC 0.6969 - 0.6438.
func TestCommittedCandidatePassesEveryGate(t *testing.T) {
	f := newFixture(t)
	res := f.check(t, "v4.1.0", "")
	assertFails(t, res)
	if res.Baseline != "v4.0.0" || res.HoldoutRows != 3437 || res.HoldoutConversions != 152 {
		t.Fatalf("baseline %q, %d rows, %d conversions; want v4.0.0, 3437, 152", res.Baseline, res.HoldoutRows, res.HoldoutConversions)
	}
	for _, w := range []struct {
		gate string
		want float64
		tol  float64
	}{
		{GateAUCVsBaseline, 0.6438, 0.00005},
		{GateTopDecileLift, 1.972, 0.00005},
		{GateOverfitting, 0.6969 - 0.6438, 0.0001},
	} {
		g := gate(res, w.gate)
		if g.Value == nil || math.Abs(*g.Value-w.want) > w.tol {
			t.Errorf("%s = %v, want the trainer's %v", w.gate, g.Value, w.want)
		}
	}
	if g := gate(res, GateParity); !g.Pass || g.Value == nil || *g.Value != 0 || g.Figure != "0" {
		t.Errorf("parity: %+v, want every score equal to XGBoost's prediction bit for bit", g)
	}
	if g := gate(res, GateAUCVsBaseline); !strings.Contains(g.Detail, "v4.0.0 0.6228") {
		t.Errorf("AUC detail %q does not give the baseline's 0.6228", g.Detail)
	}
	var b strings.Builder
	if err := WriteText(&b, "v4.1.0", res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"top_decile_lift     1.97x", "> 1.50x", "10 of 10 gates passed"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
}

// A real model that misses the checklist: v4.0.0's top-decile lift is
// 1.38x on the holdout, and against v4.1.0 its AUC is lower.
func TestCommittedBaselineFailsLiftAndAUC(t *testing.T) {
	f := newFixture(t)
	res := f.check(t, "v4.0.0", "v4.1.0")
	assertFails(t, res, GateAUCVsBaseline, GateTopDecileLift)
	if g := gate(res, GateTopDecileLift); g.Figure != "1.38x" {
		t.Errorf("v4.0.0 lift %s, want the trainer's 1.38x", g.Figure)
	}
	// Without a baseline the AUC gate cannot pass.
	f.editRegistry(t, func(doc map[string]any) {
		doc["versions"] = []any{versionJSON(doc, "v4.0.0")}
	})
	res = f.check(t, "v4.0.0", "")
	if g := gate(res, GateAUCVsBaseline); g.Pass || !strings.Contains(g.Detail, "no baseline") {
		t.Errorf("no baseline: %+v", g)
	}
}

// Overfit: v4.1.0 plus twenty trees that memorise the converted leads of
// its training rows (an exact days_since_last_move each). On the training
// rows its AUC is near 1, the figure training records; on the holdout it
// ranks as v4.1.0 does, so only the overfitting gate fails.
func TestGateOverfittingFailsOnAMemorisingModel(t *testing.T) {
	f := newFixture(t)
	r, err := scoring.ReadRegistry(f.path)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := r.Version("v4.1.0")
	days := slices.Index(v.Features, "days_since_last_move")
	train, err := f.holdout.Matrix(v.Features)
	if err != nil {
		t.Fatal(err)
	}
	train = train[:600]
	var memorised []float64
	for i, row := range train {
		if f.holdout.Converted[i] {
			row[days] = 100.6 + float64(len(memorised)) // a value no holdout lead has
			memorised = append(memorised, row[days])
		}
	}
	if len(memorised) < 10 {
		t.Fatalf("%d converted training rows", len(memorised))
	}
	f.editModel(t, "v4.1.0", func(m map[string]any) {
		gb := model(m)
		trees := gb["trees"].([]any)
		info := gb["tree_info"].([]any)
		for _, d := range memorised {
			lo := math.Floor(d) + 0.5
			trees = append(trees, map[string]any{
				"id":               len(trees),
				"left_children":    []int{1, -1, 3, -1, -1},
				"right_children":   []int{2, -1, 4, -1, -1},
				"split_indices":    []int{days, 0, days, 0, 0},
				"split_conditions": []float64{lo, 0, lo + 0.25, 3, 0},
				"default_left":     []int{1, 0, 1, 0, 0},
				"sum_hessian":      []float64{100, 90, 10, 1, 9},
				"split_type":       []int{0, 0, 0, 0, 0},
				"categories":       []int{}, "categories_nodes": []int{}, "categories_segments": []int{}, "categories_sizes": []int{},
				"base_weights": []float64{0, 0, 0, 3, 0}, "loss_changes": []float64{1, 0, 1, 0, 0}, "parents": []int{2147483647, 0, 0, 2, 2},
				"tree_param": map[string]any{"num_deleted": "0", "num_feature": "22", "num_nodes": "5", "size_leaf_vector": "0"},
			})
			info = append(info, 0)
		}
		gb["trees"], gb["tree_info"] = trees, info
		gb["gbtree_model_param"].(map[string]any)["num_trees"] = json.Number(jsonInt(len(trees)))
	})
	// Training records the model's AUC on its training rows.
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(f.path), "v4.1.0", "model.json"))
	m, err := scoring.LoadXGBoostJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]validation.Row, len(train))
	for i, x := range train {
		rows[i] = validation.Row{Score: m.Score(x), Converted: f.holdout.Converted[i]}
	}
	st, err := validation.Compute(rows)
	if err != nil || st.AUC < 0.99 {
		t.Fatalf("train AUC of the memorising model %v (%v), want ~1", st.AUC, err)
	}
	f.editRegistry(t, func(doc map[string]any) {
		versionJSON(doc, "v4.1.0")["metrics"].(map[string]any)["train_auc"] = st.AUC
	})
	res := f.check(t, "v4.1.0", "")
	assertFails(t, res, GateOverfitting)
	g := gate(res, GateOverfitting)
	if g.Value == nil || math.Abs(*g.Value-(st.AUC-0.6438)) > 0.0001 {
		t.Errorf("gap %v, want train %.4f - test 0.6438", g.Value, st.AUC)
	}
}

func jsonInt(n int) string { b, _ := json.Marshal(n); return string(b) }

// Wrong features: a model trained on a feature our feature code does not
// compute (industry_tenure_months, removed from v4.1.0), registered as such;
// the registry and the model disagreeing on the order; the model having a
// feature more than the registry.
func TestGateFeaturesFailsOnWrongFeatures(t *testing.T) {
	rename := func(m map[string]any) {
		names := m["learner"].(map[string]any)["feature_names"].([]any)
		names[11] = "industry_tenure_months" // was experience_years
	}
	t.Run("a feature our code does not compute", func(t *testing.T) {
		f := newFixture(t)
		f.editModel(t, "v4.1.0", rename)
		f.editRegistry(t, func(doc map[string]any) {
			v := versionJSON(doc, "v4.1.0")
			v["features"].([]any)[11] = "industry_tenure_months"
			delete(v["feature_descriptions"].(map[string]any), "experience_years")
		})
		if _, err := scoring.LoadRegistry(f.path); err != nil {
			t.Fatalf("the registry should load (model and registry agree): %v", err)
		}
		res := f.check(t, "v4.1.0", "")
		g := gate(res, GateFeatures)
		if g.Pass || !strings.Contains(g.Detail, "not computed by our feature code: industry_tenure_months") {
			t.Fatalf("features gate %+v", g)
		}
		// The holdout, computed by our feature code, has no such column:
		// the figures cannot be measured.
		if g := gate(res, GateTopDecileLift); g.Pass || !strings.Contains(g.Detail, "industry_tenure_months") {
			t.Errorf("lift gate %+v", g)
		}
	})
	t.Run("registry and model in another order", func(t *testing.T) {
		f := newFixture(t)
		f.editRegistry(t, func(doc map[string]any) {
			fs := versionJSON(doc, "v4.1.0")["features"].([]any)
			fs[0], fs[1] = fs[1], fs[0]
		})
		res := f.check(t, "v4.1.0", "")
		g := gate(res, GateFeatures)
		if g.Pass || !strings.Contains(g.Detail, "order differs: position 0 is mobility_3yr in the registry, tenure_months in the model") {
			t.Fatalf("features gate %+v", g)
		}
	})
	t.Run("the model has a feature the registry lacks", func(t *testing.T) {
		f := newFixture(t)
		f.editModel(t, "v4.1.0", rename)
		res := f.check(t, "v4.1.0", "")
		g := gate(res, GateFeatures)
		if g.Pass || !strings.Contains(g.Detail, "the model has features the registry lacks: industry_tenure_months") ||
			!strings.Contains(g.Detail, "the registry lists features the model lacks: experience_years") {
			t.Fatalf("features gate %+v", g)
		}
	})
}

// Broken explanations: v4.1.0 saved without its node statistics
// (sum_hessian 0 everywhere, as some converters write it). It scores
// exactly as before, but TreeSHAP weights paths by cover: the values no
// longer add up to the margin.
func TestGateExplanationsFailsWithoutNodeCovers(t *testing.T) {
	f := newFixture(t)
	f.editModel(t, "v4.1.0", func(m map[string]any) {
		for _, tr := range model(m)["trees"].([]any) {
			h := tr.(map[string]any)["sum_hessian"].([]any)
			for i := range h {
				h[i] = json.Number("0")
			}
		}
	})
	res := f.check(t, "v4.1.0", "")
	assertFails(t, res, GateExplanations)
}

// Parity: v4.1.0 with one leaf value changed after training and registered
// as is. Every other gate passes (the change is small), but its scores are
// no longer the trainer's.
func TestGateParityFailsOnAModelEditedAfterTraining(t *testing.T) {
	f := newFixture(t)
	f.moveFirstLeaf(t, "v4.1.0", 0.02)
	res := f.check(t, "v4.1.0", "")
	assertFails(t, res, GateParity)
	if g := gate(res, GateParity); g.Value == nil || *g.Value < 1 || !strings.Contains(g.Detail, "largest difference") {
		t.Errorf("parity %+v", g)
	}
}

// A difference far below any tolerance still fails: one leaf of v4.1.0
// moved by 3e-7 changes some scores by a few float32 ulps (well within the
// 1e-6 the gate allowed before scoring was exact).
func TestGateParityFailsOnAnyDifferentBit(t *testing.T) {
	f := newFixture(t)
	f.moveFirstLeaf(t, "v4.1.0", 3e-7)
	res := f.check(t, "v4.1.0", "")
	assertFails(t, res, GateParity)
	g := gate(res, GateParity)
	if g.Value == nil || *g.Value < 1 {
		t.Fatalf("parity %+v: want rows that differ", g)
	}
	i := strings.Index(g.Detail, "largest difference ")
	if i < 0 {
		t.Fatalf("parity detail %q gives no largest difference", g.Detail)
	}
	d, err := strconv.ParseFloat(g.Detail[i+len("largest difference "):], 64)
	if err != nil || d >= 1e-6 {
		t.Fatalf("largest difference %q: want one below the old tolerance 1e-6", g.Detail[i:])
	}
}

func jsonFloat(x float64) string { b, _ := json.Marshal(x); return string(b) }

// Drifted distribution: v4.1.0 registered with a reference distribution
// that is not its scores' (v4.0.0's cut points, copied with the entry): its
// scores on the holdout crowd the reference's top and bottom deciles.
func TestGateScoreDistributionFailsAgainstAnotherReference(t *testing.T) {
	f := newFixture(t)
	f.editRegistry(t, func(doc map[string]any) {
		versionJSON(doc, "v4.1.0")["reference"] = versionJSON(doc, "v4.0.0")["reference"]
	})
	res := f.check(t, "v4.1.0", "")
	assertFails(t, res, GateScoreDistribution)
	if g := gate(res, GateScoreDistribution); g.Value == nil || *g.Value < 0.25 {
		t.Errorf("PSI %+v, want a major shift", g)
	}
	// A per-version threshold in the registry moves the limit.
	f.editRegistry(t, func(doc map[string]any) {
		versionJSON(doc, "v4.1.0")["gate_thresholds"].(map[string]any)["max_psi"] = 5
	})
	assertFails(t, f.check(t, "v4.1.0", ""))
}

// The model file: missing, changed after registration, or not a model we
// can evaluate.
func TestModelFileGates(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		f := newFixture(t)
		if err := os.Remove(filepath.Join(filepath.Dir(f.path), "v4.1.0", "model.json")); err != nil {
			t.Fatal(err)
		}
		res := f.check(t, "v4.1.0", "")
		if slices.ContainsFunc(res.Gates, func(g scoring.Gate) bool { return g.Pass && g.Name != GateFeatures }) ||
			gate(res, GateModelFile).Figure != "missing" {
			t.Fatalf("with no model file every gate should fail: %+v", res.Gates)
		}
	})
	t.Run("changed after registration", func(t *testing.T) {
		f := newFixture(t)
		p := filepath.Join(filepath.Dir(f.path), "v4.1.0", "model.json")
		b, _ := os.ReadFile(p)
		if err := os.WriteFile(p, append(b, ' '), 0o644); err != nil {
			t.Fatal(err)
		}
		res := f.check(t, "v4.1.0", "")
		assertFails(t, res, GateModelSHA256)
		if g := gate(res, GateModelSHA256); !strings.Contains(g.Detail, "changed after registration") {
			t.Errorf("%+v", g)
		}
	})
	t.Run("not a model our evaluator scores", func(t *testing.T) {
		f := newFixture(t)
		b, err := os.ReadFile("../scoring/testdata/xgboost/refuse_dart.json")
		if err != nil {
			t.Fatal(err)
		}
		f.writeModel(t, "v4.1.0", b)
		res := f.check(t, "v4.1.0", "")
		if g := gate(res, GateModelLoads); g.Pass || !strings.Contains(g.Detail, "dart") {
			t.Fatalf("%+v", g)
		}
		if g := gate(res, GateParity); g.Pass || !strings.Contains(g.Detail, "does not load") {
			t.Fatalf("%+v", g)
		}
	})
}

func TestReadHoldoutRefusesUnlabelledRows(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, csv, err string }{
		{"no label column", "a,b\n1,2\n", `no label column "label"`},
		{"pending lead", "label,a\n1,2\n,3\n", `row 3: label "" is not 0 or 1`},
		{"duplicate column", "label,a,a\n1,2,3\n", `column "a" twice`},
	} {
		p := filepath.Join(dir, "h.csv")
		if err := os.WriteFile(p, []byte(tc.csv), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadHoldout(p, "label"); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}
	p := filepath.Join(dir, "h.csv")
	_ = os.WriteFile(p, []byte("label,a,b\n1,,x\n0,2,3\n"), 0o644)
	h, err := ReadHoldout(p, "label")
	if err != nil {
		t.Fatal(err)
	}
	if h.Rows() != 2 || h.Conversions() != 1 {
		t.Fatalf("%d rows, %d conversions", h.Rows(), h.Conversions())
	}
	x, err := h.Matrix([]string{"a"})
	if err != nil || !math.IsNaN(x[0][0]) || x[1][0] != 2 {
		t.Fatalf("%v %v: want an empty cell as NaN", x, err)
	}
	if _, err := h.Matrix([]string{"b"}); err == nil || !strings.Contains(err.Error(), `row 2, column b: "x" is not a number`) {
		t.Fatalf("%v", err)
	}
	if _, err := h.Matrix([]string{"c", "d"}); err == nil || !strings.Contains(err.Error(), "lacks feature columns: c, d") {
		t.Fatalf("%v", err)
	}
}

// The AUC comparison is DeLong's paired test on the same leads: its
// one-sided p-value that v4.1.0 ranks no better than v4.0.0 is
// Φ(-diff/SE), 0.05 on the holdout. The checklist asks only for a higher
// AUC; max_auc_p asks for significance, and v4.1.0's advantage on 152
// conversions is significant at 10% but not at 1%.
func TestGateAUCReportsDeLongAndCanRequireSignificance(t *testing.T) {
	f := newFixture(t)
	h := f.holdout
	r, err := scoring.ReadRegistry(f.path)
	if err != nil {
		t.Fatal(err)
	}
	score := func(name string) []float64 {
		v, _ := r.Version(name)
		b, _ := os.ReadFile(filepath.Join(filepath.Dir(f.path), v.Path))
		m, err := scoring.LoadXGBoostJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		x, err := h.Matrix(v.Features)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float64, len(x))
		for i := range x {
			out[i] = m.Score(x[i])
		}
		return out
	}
	cmp := CompareAUC(score("v4.1.0"), score("v4.0.0"), h.Converted)
	want := 0.5 * math.Erfc(cmp.Diff/cmp.SE/math.Sqrt2) // Φ(-z)
	if math.Abs(cmp.PNotBetter-want) > 1e-12 || math.Abs(cmp.Diff-(cmp.Candidate-cmp.Baseline)) > 1e-12 || !(cmp.SE > 0.005 && cmp.SE < 0.03) {
		t.Fatalf("comparison %+v, p want %v", cmp, want)
	}
	if math.Abs(cmp.PNotBetter-0.05) > 0.002 {
		t.Errorf("p %v, want about 0.05 on the committed holdout", cmp.PNotBetter)
	}
	if g := gate(f.check(t, "v4.1.0", ""), GateAUCVsBaseline); !g.Pass || !strings.Contains(g.Detail, "DeLong's paired test: difference +0.0209") {
		t.Fatalf("%+v", g)
	}
	for _, tc := range []struct {
		maxP float64
		pass bool
	}{{0.1, true}, {0.01, false}} {
		f.editRegistry(t, func(doc map[string]any) {
			versionJSON(doc, "v4.1.0")["gate_thresholds"].(map[string]any)["max_auc_p"] = tc.maxP
		})
		g := gate(f.check(t, "v4.1.0", ""), GateAUCVsBaseline)
		if g.Pass != tc.pass || !strings.HasPrefix(g.Threshold, fmt.Sprintf("DeLong p <= %g, > v4.0.0", tc.maxP)) {
			t.Errorf("max_auc_p %g: %+v, want pass %v", tc.maxP, g, tc.pass)
		}
	}
}

// moveFirstLeaf adds delta to the value of the first leaf of version's
// first tree, after training.
func (f *fixture) moveFirstLeaf(t *testing.T, version string, delta float64) {
	t.Helper()
	f.editModel(t, version, func(m map[string]any) {
		tr := model(m)["trees"].([]any)[0].(map[string]any)
		left := tr["left_children"].([]any)
		cond := tr["split_conditions"].([]any)
		for i, l := range left {
			if l.(json.Number) == "-1" {
				x, _ := cond[i].(json.Number).Float64()
				cond[i] = json.Number(jsonFloat(x + delta))
				return
			}
		}
		t.Fatalf("%s: no leaf in the first tree", version)
	})
}
