package scoring

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Loaders read files an operator (or an attacker with write access to the
// models folder) supplies. On any input they must return an error or a
// model that scores without panicking, and allocate in proportion to the
// input, not to a size the input claims.

// allocBound is the most a loader may allocate for an input of n bytes:
// a generous constant plus a linear factor (JSON decoding holds several
// copies of what it reads).
func allocBound(n int) uint64 { return 16<<20 + 64*uint64(n) }

// allocated runs fn and returns the bytes it allocated.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// exercise scores and explains m on a few vectors, including NaN and
// infinities, which must not panic.
func exercise(t *testing.T, m Model) {
	t.Helper()
	n := len(m.FeatureNames())
	if n > 1<<16 {
		t.Fatalf("model claims %d features", n)
	}
	contrib := make([]float64, n+1)
	for _, v := range []float64{0, math.NaN(), math.Inf(1), math.Inf(-1), -1e300, 1e300} {
		x := make([]float64, n)
		for i := range x {
			x[i] = v
		}
		_ = m.Score(x)
		_ = m.Contributions(x, contrib)
	}
	if b, ok := m.(BatchModel); ok && n > 0 {
		rows := make([][]float64, 6)
		for i, v := range []float64{0, math.NaN(), math.Inf(1), math.Inf(-1), -1e300, 1e300} {
			rows[i] = make([]float64, n)
			for j := range rows[i] {
				rows[i][j] = v
			}
		}
		scores := make([]float64, len(rows))
		b.ScoreBatch(rows, scores)
		_ = b.ExplainBatch(rows, scores, make([]float64, len(rows)*(n+1)))
	}
}

func seedFiles(f *testing.F, paths ...string) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzLoadXGBoostJSON(f *testing.F) {
	seedFiles(f, "testdata/xgboost/logistic.json")
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"learner":{"learner_model_param":{"num_feature":"99999999999","base_score":"[5E-1]"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m *XGBoost
		var err error
		if a := allocated(func() { m, err = LoadXGBoostJSON(bytes.NewReader(data)) }); a > allocBound(len(data)) {
			t.Fatalf("%d input bytes allocated %d bytes", len(data), a)
		}
		if err == nil {
			exercise(t, m)
		}
	})
}

func FuzzLoadLightGBM(f *testing.F) {
	seedFiles(f, "testdata/lightgbm/lg_dart_breast_cancer.model")
	f.Add([]byte("tree\nversion=v3\nnum_class=1\nnum_tree_per_iteration=1\nmax_feature_idx=999999999\nfeature_names=a\n\nend of trees\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Model
		var err error
		if a := allocated(func() { m, err = LoadLightGBM(bytes.NewReader(data)) }); a > allocBound(len(data)) {
			t.Fatalf("%d input bytes allocated %d bytes", len(data), a)
		}
		if err == nil {
			exercise(t, m)
		}
	})
}

// FuzzLoadRegistry writes a registry and one model file to a temporary
// folder and loads them. "SHA256" in the registry text is replaced by the
// model's real digest, so the fuzzer reaches past the checksum check.
func FuzzLoadRegistry(f *testing.F) {
	model, err := os.ReadFile("testdata/fuzz/tiny-model.json")
	if err != nil {
		f.Fatal(err)
	}
	registry, err := os.ReadFile("testdata/fuzz/tiny-registry.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(registry, model)
	f.Add([]byte(`{"versions":[],"history":[]}`), model)
	f.Add(bytes.Replace(registry, []byte(`"production"`), []byte(`"archived"`), 1), []byte("not a model"))
	f.Fuzz(func(t *testing.T, registry, model []byte) {
		dir := t.TempDir()
		sum := sha256.Sum256(model)
		registry = bytes.ReplaceAll(registry, []byte("SHA256"), []byte(hex.EncodeToString(sum[:])))
		if err := os.WriteFile(filepath.Join(dir, "registry.json"), registry, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "model.json"), model, 0o600); err != nil {
			t.Fatal(err)
		}
		var r *Registry
		if a := allocated(func() { r, err = LoadRegistry(filepath.Join(dir, "registry.json")) }); a > allocBound(len(registry)+len(model)) {
			t.Fatalf("%d input bytes allocated %d bytes", len(registry)+len(model), a)
		}
		if err != nil {
			return
		}
		p := r.Production()
		if p == nil {
			t.Fatal("a registry that loads has no production version")
		}
		for _, v := range r.Serving() {
			if v.Model == nil {
				t.Fatalf("serving version %s has no model", v.Name)
			}
			exercise(t, v.Model)
			for _, s := range []float64{math.NaN(), -1, 0, 0.5, 1, 2} {
				if pc := v.Percentile(s); pc < 1 || pc > 100 {
					t.Fatalf("%s: percentile of %v is %d, want 1..100", v.Name, s, pc)
				}
			}
		}
	})
}

// The registry seed must load, or FuzzLoadRegistry would only ever explore
// the refusals.
func TestFuzzRegistrySeedLoads(t *testing.T) {
	dir := t.TempDir()
	model, err := os.ReadFile("testdata/fuzz/tiny-model.json")
	if err != nil {
		t.Fatal(err)
	}
	registry, err := os.ReadFile("testdata/fuzz/tiny-registry.json")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(model)
	registry = bytes.ReplaceAll(registry, []byte("SHA256"), []byte(hex.EncodeToString(sum[:])))
	for name, b := range map[string][]byte{"registry.json": registry, "model.json": model} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r, err := LoadRegistry(filepath.Join(dir, "registry.json"))
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Production(); p == nil || p.Model == nil {
		t.Fatal("no production model loaded")
	}
}
