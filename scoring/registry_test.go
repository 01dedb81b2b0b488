package scoring

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// registryFixture writes model files into a temporary folder and returns
// the folder and a valid registry document for them, as generic JSON so
// that tests can break any field.
func registryFixture(t *testing.T) (string, map[string]any) {
	t.Helper()
	dir := t.TempDir()
	copyFile := func(src, dst string) string {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, dst)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:])
	}
	xgbSum := copyFile(filepath.Join("testdata", "xgboost", "logistic.json"), "v4.1.0/model.json")
	xgbSum2 := copyFile(filepath.Join("testdata", "xgboost", "logistic.json"), "v4.0.0/model.json")
	lgbSum := copyFile(filepath.Join("testdata", "lightgbm", "genlin_fmtp_gamma_AvgClaimAmount.model"), "lgb/model.txt")
	m := loadXGBFile(t, filepath.Join("testdata", "xgboost", "logistic.json"))
	lgbFeatures := []string{"VehBrand", "VehPower", "VehGas", "Region", "Area", "VehAge", "DrivAge", "BonusMalus", "Density"}

	cuts := make([]any, NumCutPoints)
	for k := range cuts {
		cuts[k] = 0.3 + 0.003*float64(k)
	}
	version := func(name, role, format, path, sum string, features []string) map[string]any {
		fs := make([]any, len(features))
		for i, f := range features {
			fs[i] = f
		}
		return map[string]any{
			"version": name, "role": role, "format": format, "path": path, "sha256": sum,
			"features":             fs,
			"feature_descriptions": map[string]any{},
			"metrics":              map[string]any{"test_auc": 0.62, "best_iteration": 223},
			"thresholds":           map[string]any{"deprioritize_percentile": 20, "upgrade_percentile": 80},
			"reference":            map[string]any{"cut_points": slices.Clone(cuts)},
		}
	}
	v41 := version("v4.1.0", "shadow", "xgboost-json", "v4.1.0/model.json", xgbSum, m.FeatureNames())
	v41["feature_descriptions"] = map[string]any{"mobility_3yr": "moved firms {value} times in 3 years"}
	doc := map[string]any{
		"versions": []any{
			version("v4.0.0", "production", "xgboost-json", "v4.0.0/model.json", xgbSum2, m.FeatureNames()),
			v41,
			version("lgb", "shadow", "lightgbm-text", "lgb/model.txt", lgbSum, lgbFeatures),
			version("v3.0.0", "archived", "xgboost-json", "v3.0.0/gone.json", strings.Repeat("ab", 32), []string{"a"}),
		},
		"history": []any{
			map[string]any{"time": "2025-12-30T00:00:00Z", "action": "register", "version": "v4.1.0", "reason": "trained"},
		},
	}
	return dir, doc
}

func writeRegistry(t *testing.T, dir string, doc map[string]any) string {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "registry.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func versionDoc(doc map[string]any, i int) map[string]any {
	return doc["versions"].([]any)[i].(map[string]any)
}

func TestLoadRegistryLoadsServingModels(t *testing.T) {
	dir, doc := registryFixture(t)
	r, err := LoadRegistry(writeRegistry(t, dir, doc))
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Production(); p == nil || p.Name != "v4.0.0" {
		t.Fatalf("Production() = %+v, want v4.0.0", p)
	}
	var serving []string
	for _, v := range r.Serving() {
		serving = append(serving, v.Name)
		if v.Model == nil {
			t.Errorf("serving version %s has no model", v.Name)
		}
	}
	if want := []string{"v4.0.0", "v4.1.0", "lgb"}; !slices.Equal(serving, want) {
		t.Errorf("Serving() = %v, want %v (production first, then shadows in file order)", serving, want)
	}
	v, ok := r.Version("v3.0.0")
	if !ok || v.Model != nil {
		t.Errorf("archived version: found %v, model %v; want found, no model (its file is not read)", ok, v.Model)
	}
	if _, ok := r.Version("v9"); ok {
		t.Error("Version(v9) found a version that does not exist")
	}
	v, _ = r.Version("v4.1.0")
	want := loadXGBFile(t, filepath.Join("testdata", "xgboost", "logistic.json"))
	_, c := loadXGBCase(t, "logistic")
	for _, x := range c.rows[:20] {
		if a, b := v.Model.Score(x), want.Score(x); a != b {
			t.Fatalf("registry model scores %v, the file scores %v", a, b)
		}
	}
	if v.Thresholds.DeprioritizePercentile != 20 || v.Thresholds.UpgradePercentile != 80 || len(v.CutPoints) != 99 || v.Metrics["best_iteration"] != 223 {
		t.Errorf("fields not read: %+v", v)
	}
}

// The registry is rewritten by promote and rollback, so it must marshal
// back to the field names of docs/REGISTRY.md without losing anything.
func TestRegistryMarshalsBackToTheDocumentedFields(t *testing.T) {
	dir, doc := registryFixture(t)
	r, err := LoadRegistry(writeRegistry(t, dir, doc))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	origJSON, _ := json.Marshal(doc)
	var orig map[string]any
	_ = json.Unmarshal(origJSON, &orig)
	e, _ := json.Marshal(orig)
	// Empty feature_descriptions are omitted on the way out; put them back.
	for i := range got["versions"].([]any) {
		g := versionDoc(got, i)
		if _, ok := g["feature_descriptions"]; !ok {
			g["feature_descriptions"] = map[string]any{}
		}
	}
	a, _ := json.Marshal(got)
	if string(a) != string(e) {
		t.Fatalf("round trip changed the registry:\n got %s\nwant %s", a, e)
	}
	// And the written file loads again.
	if err := os.WriteFile(filepath.Join(dir, "again.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRegistry(filepath.Join(dir, "again.json")); err != nil {
		t.Fatalf("reloading the marshalled registry: %v", err)
	}
}

func TestLoadRegistryRefusesAndNamesVersionAndField(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(dir string, doc map[string]any)
		wantErr string
	}{
		{"two production versions", func(_ string, d map[string]any) { versionDoc(d, 1)["role"] = "production" },
			`registry: role: 2 production versions ["v4.0.0" "v4.1.0"] (exactly one is required)`},
		{"no production version", func(_ string, d map[string]any) { versionDoc(d, 0)["role"] = "shadow" },
			"registry: role: no production version"},
		{"unknown role", func(_ string, d map[string]any) { versionDoc(d, 1)["role"] = "canary" },
			`registry: version "v4.1.0": role: "canary" is not production, shadow, deprecated or archived`},
		{"unknown format", func(_ string, d map[string]any) { versionDoc(d, 1)["format"] = "onnx" },
			`registry: version "v4.1.0": format: "onnx" is not xgboost-json or lightgbm-text`},
		{"duplicate version name", func(_ string, d map[string]any) { versionDoc(d, 1)["version"] = "v4.0.0" },
			`registry: version "v4.0.0": version: listed twice`},
		{"model file missing", func(_ string, d map[string]any) { versionDoc(d, 1)["path"] = "v4.1.0/nope.json" },
			`registry: version "v4.1.0": path: open `},
		{"absolute path", func(_ string, d map[string]any) { versionDoc(d, 1)["path"] = "/models/x.json" },
			`registry: version "v4.1.0": path: "/models/x.json" must be relative`},
		{"sha256 of another file", func(_ string, d map[string]any) { versionDoc(d, 1)["sha256"] = strings.Repeat("0", 64) },
			`registry: version "v4.1.0": sha256: file has `},
		{"sha256 not hex", func(_ string, d map[string]any) { versionDoc(d, 1)["sha256"] = "xyz" },
			`registry: version "v4.1.0": sha256: "xyz" is not 64 hex digits`},
		{"model file changed after registration", func(dir string, d map[string]any) {
			f, _ := os.OpenFile(filepath.Join(dir, "v4.1.0", "model.json"), os.O_APPEND|os.O_WRONLY, 0)
			_, _ = f.WriteString(" ")
			f.Close()
		}, `registry: version "v4.1.0": sha256: file has `},
		{"features differ from the model's feature_names", func(_ string, d map[string]any) {
			fs := versionDoc(d, 1)["features"].([]any)
			fs[0], fs[1] = fs[1], fs[0]
		}, `registry: version "v4.1.0": features: position 0 is "mobility_3yr" in the registry but "tenure_months" in the model`},
		{"one feature fewer than the model", func(_ string, d map[string]any) {
			v := versionDoc(d, 1)
			fs := v["features"].([]any)
			v["features"] = fs[:len(fs)-1]
		}, `registry: version "v4.1.0": features: position 6 is "" in the registry but "experience_years" in the model`},
		{"98 cut points", func(_ string, d map[string]any) {
			r := versionDoc(d, 1)["reference"].(map[string]any)
			r["cut_points"] = r["cut_points"].([]any)[1:]
		}, `registry: version "v4.1.0": reference.cut_points: 98 values, want 99`},
		{"cut points not ascending", func(_ string, d map[string]any) {
			r := versionDoc(d, 1)["reference"].(map[string]any)
			r["cut_points"].([]any)[50] = 0.1
		}, `registry: version "v4.1.0": reference.cut_points[50]: 0.1 is below cut_points[49]`},
		{"deprioritize threshold 0", func(_ string, d map[string]any) {
			versionDoc(d, 1)["thresholds"].(map[string]any)["deprioritize_percentile"] = 0
		}, `registry: version "v4.1.0": thresholds.deprioritize_percentile: 0 is outside 1..100`},
		{"upgrade threshold 101", func(_ string, d map[string]any) {
			versionDoc(d, 1)["thresholds"].(map[string]any)["upgrade_percentile"] = 101
		}, `registry: version "v4.1.0": thresholds.upgrade_percentile: 101 is outside 1..100`},
		{"deprioritize not below upgrade", func(_ string, d map[string]any) {
			versionDoc(d, 1)["thresholds"].(map[string]any)["deprioritize_percentile"] = 80
		}, `registry: version "v4.1.0": thresholds: deprioritize_percentile 80 is not below upgrade_percentile 80`},
		{"description of an unknown feature", func(_ string, d map[string]any) {
			versionDoc(d, 1)["feature_descriptions"] = map[string]any{"tenure": "x"}
		}, `registry: version "v4.1.0": feature_descriptions: "tenure" is not one of the features`},
		{"misspelt field", func(_ string, d map[string]any) { versionDoc(d, 1)["sha265"] = "x" },
			`unknown field "sha265"`},
		{"lightgbm model that is not one", func(dir string, d map[string]any) {
			b := []byte("not a model\n")
			_ = os.WriteFile(filepath.Join(dir, "lgb", "model.txt"), b, 0o644)
			s := sha256.Sum256(b)
			versionDoc(d, 2)["sha256"] = hex.EncodeToString(s[:])
		}, `registry: version "lgb": path lgb/model.txt: lightgbm:`},
		{"history entry without action", func(_ string, d map[string]any) {
			d["history"].([]any)[0].(map[string]any)["action"] = ""
		}, "registry: history[0]: action: missing"},
		{"no versions", func(_ string, d map[string]any) { d["versions"] = []any{} }, "registry: versions: none listed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, doc := registryFixture(t)
			tc.edit(dir, doc)
			_, err := LoadRegistry(writeRegistry(t, dir, doc))
			if err == nil {
				t.Fatalf("loaded; want an error containing %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q\nwant one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadRegistrySHA256MessageShowsBothSums(t *testing.T) {
	dir, doc := registryFixture(t)
	versionDoc(doc, 1)["sha256"] = strings.Repeat("0", 64)
	_, err := LoadRegistry(writeRegistry(t, dir, doc))
	b, _ := os.ReadFile(filepath.Join(dir, "v4.1.0", "model.json"))
	sum := sha256.Sum256(b)
	want := `registry: version "v4.1.0": sha256: file has ` + hex.EncodeToString(sum[:]) + ", registry says " + strings.Repeat("0", 64)
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant %s", err, want)
	}
}

// docs/REGISTRY.md: with cut_points[k-1] = sorted[floor(k*n/100)], the
// streamed percentile 1 + #{k : s >= cut_points[k]} of a reference row
// equals the batch percentile ceil(100 x #{rows <= s} / n).
func TestPercentileEqualsBatchPercentileOnTheReferencePopulation(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{100, 157, 1000, 3393} {
		scores := make([]float64, n)
		for i := range scores {
			scores[i] = math.Round(rng.Float64()*300) / 1000 // many ties, as a depth-2 model gives
		}
		sorted := slices.Clone(scores)
		sort.Float64s(sorted)
		v := &Version{CutPoints: make([]float64, NumCutPoints)}
		for k := 1; k <= NumCutPoints; k++ {
			v.CutPoints[k-1] = sorted[k*n/100]
		}
		for _, s := range scores {
			le := sort.SearchFloat64s(sorted, math.Nextafter(s, math.Inf(1)))
			want := int(math.Ceil(100 * float64(le) / float64(n)))
			if got := v.Percentile(s); got != want {
				t.Fatalf("n=%d score %v: Percentile %d, batch percentile %d", n, s, got, want)
			}
		}
		if got := v.Percentile(sorted[0] - 1); got != 1 {
			t.Errorf("below every reference score: percentile %d, want 1", got)
		}
		if got := v.Percentile(sorted[n-1] + 1); got != 100 {
			t.Errorf("above every reference score: percentile %d, want 100", got)
		}
	}
}

func TestDecileAndThresholds(t *testing.T) {
	for _, tc := range []struct{ p, decile int }{{1, 1}, {10, 1}, {11, 2}, {20, 2}, {21, 3}, {90, 9}, {91, 10}, {100, 10}} {
		if got := Decile(tc.p); got != tc.decile {
			t.Errorf("Decile(%d) = %d, want %d", tc.p, got, tc.decile)
		}
	}
	v := &Version{Thresholds: Thresholds{DeprioritizePercentile: 20, UpgradePercentile: 80}}
	for _, tc := range []struct {
		p                     int
		deprioritize, upgrade bool
	}{{1, true, false}, {20, true, false}, {21, false, false}, {79, false, false}, {80, false, true}, {100, false, true}} {
		if got := v.Deprioritize(tc.p); got != tc.deprioritize {
			t.Errorf("Deprioritize(%d) = %v, want %v (at or below 20)", tc.p, got, tc.deprioritize)
		}
		if got := v.Upgrade(tc.p); got != tc.upgrade {
			t.Errorf("Upgrade(%d) = %v, want %v (at or above 80)", tc.p, got, tc.upgrade)
		}
	}
}

func TestPhraseAlternatives(t *testing.T) {
	v := &Version{Descriptions: map[string]string{
		"flag":  "works at a wirehouse|not at a wirehouse",
		"count": "firm has {value} reps|firm has no reps|firm size unknown",
		"plain": "{value} years in the industry",
	}}
	for _, tc := range []struct {
		feature string
		value   float64
		want    string
	}{
		{"flag", 1, "works at a wirehouse"},
		{"flag", 0, "not at a wirehouse"},
		{"flag", math.NaN(), "works at a wirehouse"}, // no missing alternative: the first serves
		{"count", 40, "firm has 40 reps"},
		{"count", 0, "firm has no reps"},
		{"count", math.NaN(), "firm size unknown"},
		{"plain", 0, "0 years in the industry"},
		{"plain", math.NaN(), "unknown years in the industry"},
		{"undescribed", 2.5, "undescribed = 2.5"},
	} {
		if got := v.Phrase(tc.feature, tc.value); got != tc.want {
			t.Errorf("phrase(%s, %v) = %q, want %q", tc.feature, tc.value, got, tc.want)
		}
	}
}

func TestTopFactors(t *testing.T) {
	v := &Version{
		Features: []string{"tenure_months", "mobility_3yr", "experience_years", "has_email", "is_wirehouse"},
		Descriptions: map[string]string{
			"mobility_3yr":     "moved firms {value} times in 3 years",
			"experience_years": "{value} years in the industry",
			"tenure_months":    "{value} months at the firm",
			"is_wirehouse":     "works at a wirehouse|not at a wirehouse",
		},
	}
	x := []float64{math.NaN(), 2, 12.583333, 1, 0}
	contrib := []float64{0.1, -0.3, 0.3, 0.05, -0.1, 9 /* bias, never a factor */}
	for _, tc := range []struct {
		name string
		n    int
		want []Factor
	}{
		{"largest magnitude first, ties in feature order", 3, []Factor{
			{"mobility_3yr", 1, 2, -0.3, "moved firms 2 times in 3 years"},
			{"experience_years", 2, 12.583333, 0.3, "12.58 years in the industry"},
			{"tenure_months", 0, math.NaN(), 0.1, "unknown months at the firm"},
		}},
		{"a feature without a description", 5, []Factor{
			{"mobility_3yr", 1, 2, -0.3, "moved firms 2 times in 3 years"},
			{"experience_years", 2, 12.583333, 0.3, "12.58 years in the industry"},
			{"tenure_months", 0, math.NaN(), 0.1, "unknown months at the firm"},
			{"is_wirehouse", 4, 0, -0.1, "not at a wirehouse"},
			{"has_email", 3, 1, 0.05, "has_email = 1"},
		}},
		{"more room than features", 8, nil},
		{"no room", 0, []Factor{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := v.TopFactors(x, contrib, make([]Factor, tc.n))
			if tc.want == nil {
				if len(got) != len(v.Features) {
					t.Fatalf("%d factors, want %d", len(got), len(v.Features))
				}
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d factors %+v, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.Feature != w.Feature || g.Contribution != w.Contribution || g.Phrase != w.Phrase ||
					!(g.Value == w.Value || math.IsNaN(g.Value) && math.IsNaN(w.Value)) {
					t.Errorf("factor %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}
