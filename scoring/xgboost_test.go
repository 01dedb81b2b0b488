package scoring

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// xgbCase is a model from testdata/xgboost with the outputs XGBoost itself
// computed for its rows (scripts/make_scoring_testdata.py).
type xgbCase struct {
	features []string
	rows     [][]float64
	margin   []float64
	pred     []float64
	contribs [][]float64 // features then bias
}

func loadXGBCase(t testing.TB, name string) (*XGBoost, *xgbCase) {
	t.Helper()
	m := loadXGBFile(t, filepath.Join("testdata", "xgboost", name+".json"))
	header, rows := readParityCSV(t, filepath.Join("testdata", "xgboost", name+".csv"))
	nf := len(m.FeatureNames())
	if len(header) != 2*nf+3 {
		t.Fatalf("%s.csv: %d columns, want %d", name, len(header), 2*nf+3)
	}
	c := &xgbCase{features: header[:nf]}
	for _, v := range rows {
		c.rows = append(c.rows, v[:nf])
		c.margin = append(c.margin, v[nf])
		c.pred = append(c.pred, v[nf+1])
		c.contribs = append(c.contribs, v[nf+2:])
	}
	return m, c
}

func loadXGBFile(t testing.TB, path string) *XGBoost {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadXGBoostJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

var parityModels = []string{"logistic", "logitraw", "reg_logistic", "squarederror", "v41like"}

// The evaluator must reproduce XGBoost 1.7.4's own outputs: scores and
// margins bit for bit, every SHAP value within 1e-5.
func TestXGBoostMatchesXGBoostPredictions(t *testing.T) {
	for _, name := range parityModels {
		t.Run(name, func(t *testing.T) {
			m, c := loadXGBCase(t, name)
			if got, want := m.FeatureNames(), c.features; strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("feature names %v, want %v", got, want)
			}
			out := make([]float64, len(c.features)+1)
			var maxScore, maxMargin, maxShap float64
			exact := 0
			for i, x := range c.rows {
				s := m.Score(x)
				maxScore = math.Max(maxScore, math.Abs(s-c.pred[i]))
				if s == c.pred[i] {
					exact++
				}
				maxMargin = math.Max(maxMargin, math.Abs(m.Margin(x)-c.margin[i]))
				if err := m.Contributions(x, out); err != nil {
					t.Fatal(err)
				}
				sum := 0.0
				for j, v := range out {
					maxShap = math.Max(maxShap, math.Abs(v-c.contribs[i][j]))
					sum += v
				}
				if d := math.Abs(sum - c.margin[i]); d > 1e-4 {
					t.Errorf("row %d: contributions sum to %v, margin is %v", i, sum, c.margin[i])
				}
			}
			t.Logf("%d rows: max |score diff| %.3g (%d bit-exact), max |margin diff| %.3g, max |shap diff| %.3g",
				len(c.rows), maxScore, exact, maxMargin, maxShap)
			if maxScore != 0 || maxMargin != 0 {
				t.Errorf("max |score diff| %g, max |margin diff| %g, want 0: XGBoost's float32, bit for bit", maxScore, maxMargin)
			}
			if maxShap > 1e-5 {
				t.Errorf("max |shap diff| %g, want <= 1e-5", maxShap)
			}
		})
	}
}

// The test rows must be able to tell XGBoost's float32 split rule apart
// from a float64 x <= t or x < t rule (the leaves bug), otherwise the
// parity test above proves less than it claims.
func TestParityRowsCatchFloat64Splits(t *testing.T) {
	m, c := loadXGBCase(t, "logistic")
	naive := func(x []float64, le bool) float64 {
		sum := float64(m.baseMargin)
		for _, i := range m.roots {
			for m.nodes[i].feat >= 0 {
				n := m.nodes[i]
				v := x[n.feat]
				switch {
				case math.IsNaN(v):
					i = n.miss
				case v < float64(n.value) || (le && v == float64(n.value)):
					i = n.left
				default:
					i = n.left + 1
				}
			}
			sum += float64(m.nodes[i].value)
		}
		return sum
	}
	for _, rule := range []struct {
		name string
		le   bool
	}{{"x < t in float64", false}, {"x <= t in float64", true}} {
		wrong := 0
		for i, x := range c.rows {
			if math.Abs(naive(x, rule.le)-c.margin[i]) > 1e-5 {
				wrong++
			}
		}
		if wrong == 0 {
			t.Errorf("no test row separates XGBoost's rule from %s", rule.name)
		}
		t.Logf("%s gets %d of %d rows wrong", rule.name, wrong, len(c.rows))
	}
}

// XGBoost 2.x and 3.x write base_score as "[5E-1]"; SHAP's TreeExplainer
// failed on it. Both forms must give the same model.
func TestBaseScoreBracketFormScoresIdentically(t *testing.T) {
	for _, name := range []string{"logistic", "logitraw", "squarederror"} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "xgboost", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			m, c := loadXGBCase(t, name)
			loc := baseScoreRE.FindSubmatch(raw)
			if loc == nil {
				t.Fatal("model has no base_score")
			}
			old := string(loc[0])
			bracket := `"base_score":"[` + string(loc[1]) + `]"`
			m2, err := LoadXGBoostJSON(bytes.NewReader(bytes.Replace(raw, []byte(old), []byte(bracket), 1)))
			if err != nil {
				t.Fatalf("loading with %s: %v", bracket, err)
			}
			a, b := make([]float64, len(c.features)+1), make([]float64, len(c.features)+1)
			for i, x := range c.rows {
				if s1, s2 := m.Score(x), m2.Score(x); s1 != s2 {
					t.Fatalf("row %d: %s scores %v, %s scores %v", i, old, s1, bracket, s2)
				}
				if err := m.Contributions(x, a); err != nil {
					t.Fatal(err)
				}
				if err := m2.Contributions(x, b); err != nil {
					t.Fatal(err)
				}
				for j := range a {
					if a[j] != b[j] {
						t.Fatalf("row %d contribution %d: %v vs %v", i, j, a[j], b[j])
					}
				}
			}
		})
	}
}

var baseScoreRE = regexp.MustCompile(`"base_score":"([^"\[\]]+)"`)

func TestParseBaseScore(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    float32
		wantErr string
	}{
		{"5E-1", 0.5, ""},
		{"[5E-1]", 0.5, ""},
		{"[ 2.5E0 ]", 2.5, ""},
		{"0.3", 0.3, ""},
		{"[5E-1,5E-1]", 0, "multi-target"},
		{"", 0, "empty"},
		{"[]", 0, "empty"},
		{"half", 0, "not a number"},
	} {
		got, err := parseBaseScore(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseBaseScore(%q) error %v, want one containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseBaseScore(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// editModel returns the logistic test model with one edit applied to its
// decoded JSON.
func editModel(t *testing.T, edit func(learner map[string]any)) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "xgboost", "logistic.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc["learner"].(map[string]any))
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func firstTree(l map[string]any) map[string]any {
	return l["gradient_booster"].(map[string]any)["model"].(map[string]any)["trees"].([]any)[0].(map[string]any)
}

func TestLoadXGBoostJSONRefusesWhatItCannotScoreExactly(t *testing.T) {
	file := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "xgboost", "refuse_"+name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name    string
		model   []byte
		wantErr string
	}{
		{"multi-class softprob model", file("multiclass"), "num_class: multi-class models (3 classes) are unsupported"},
		{"multi-target regression", file("multitarget"), "num_target: multi-target models (2 targets) are unsupported"},
		{"dart booster", file("dart"), `booster "dart" is unsupported`},
		{"gblinear booster", file("gblinear"), `booster "gblinear" is unsupported`},
		{"categorical splits", file("categorical"), "categorical"},
		{"count:poisson objective", file("poisson"), `objective "count:poisson" is unsupported`},
		{"bad JSON", []byte(`{"learner": {`), "decoding model JSON"},
		{"JSON that is not a model", []byte(`{"hello": 1}`), "gradient_booster: missing"},
		{"logistic base_score outside (0, 1)", editModel(t, func(l map[string]any) {
			l["learner_model_param"].(map[string]any)["base_score"] = "1.5E0"
		}), "base_score: 1.5 is not a probability"},
		{"base_score not a number", editModel(t, func(l map[string]any) {
			l["learner_model_param"].(map[string]any)["base_score"] = "x"
		}), `base_score: not a number: "x"`},
		{"feature_names shorter than num_feature", editModel(t, func(l map[string]any) {
			l["feature_names"] = []any{"a", "b"}
		}), "feature_names: 2 names for num_feature 7"},
		{"child index out of range", editModel(t, func(l map[string]any) {
			firstTree(l)["left_children"].([]any)[0] = 9999
		}), "trees[0]: node 0: child 9999 out of range"},
		{"child reached twice (cycle)", editModel(t, func(l map[string]any) {
			tr := firstTree(l)
			tr["right_children"].([]any)[0] = tr["left_children"].([]any)[0]
		}), "trees[0]: node 0: child 1 reached twice"},
		{"split on a feature the model lacks", editModel(t, func(l map[string]any) {
			firstTree(l)["split_indices"].([]any)[0] = 40
		}), "trees[0]: split_indices[0]: feature 40 out of range 0..6"},
		{"arrays of different lengths", editModel(t, func(l map[string]any) {
			tr := firstTree(l)
			tr["sum_hessian"] = tr["sum_hessian"].([]any)[1:]
		}), "trees[0]: sum_hessian:"},
		{"categorical feature type", editModel(t, func(l map[string]any) {
			l["feature_types"] = []any{"float", "c", "float", "float", "float", "float", "float"}
		}), `feature "mobility_3yr" is categorical`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadXGBoostJSON(bytes.NewReader(tc.model))
			if err == nil {
				t.Fatalf("loaded; want an error containing %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestScoreAndContributionsAllocateNothing(t *testing.T) {
	m, c := loadXGBCase(t, "v41like")
	out := make([]float64, len(c.features)+1)
	x := c.rows[0]
	if n := testing.AllocsPerRun(200, func() { m.Score(x) }); n != 0 {
		t.Errorf("Score: %v allocations per row, want 0", n)
	}
	if n := testing.AllocsPerRun(200, func() { _ = m.Contributions(x, out) }); n != 0 {
		t.Errorf("Contributions: %v allocations per row, want 0", n)
	}
}

func TestContributionsRejectsWrongOutLength(t *testing.T) {
	m, c := loadXGBCase(t, "logistic")
	err := m.Contributions(c.rows[0], make([]float64, len(c.features)))
	if err == nil || !strings.Contains(err.Error(), "want 8 (features + bias)") {
		t.Fatalf("error %v, want one about the out length", err)
	}
}

// Contributions share pooled scratch; concurrent callers must each get
// their own row's values.
func TestContributionsConcurrentCallersGetTheirOwnRows(t *testing.T) {
	m, c := loadXGBCase(t, "v41like")
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]float64, len(c.features)+1)
			for k := range 200 {
				i := (g*37 + k) % len(c.rows)
				if err := m.Contributions(c.rows[i], out); err != nil {
					errs <- err.Error()
					return
				}
				for j, v := range out {
					if math.Abs(v-c.contribs[i][j]) > 1e-5 {
						errs <- "row " + strconv.Itoa(i) + " got another row's values"
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
