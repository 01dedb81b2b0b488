package scoring

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Targets for a v4.1.0-shaped model (22 features, 223 depth-2 trees):
// Score <= 1 us with 0 allocations, Contributions <= 20 us.

func BenchmarkScore(b *testing.B) {
	for _, name := range []string{"v41like", "logistic", "squarederror"} {
		b.Run(name, func(b *testing.B) {
			m, c := loadXGBCase(b, name)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m.Score(c.rows[i%len(c.rows)])
				i++
			}
		})
	}
	b.Run("lightgbm_breast_cancer", func(b *testing.B) {
		raw, err := os.ReadFile(filepath.Join("testdata", "lightgbm", "lg_dart_breast_cancer.model"))
		if err != nil {
			b.Fatal(err)
		}
		m, err := LoadLightGBM(bytes.NewReader(raw))
		if err != nil {
			b.Fatal(err)
		}
		x := make([]float64, len(m.FeatureNames()))
		for i := range x {
			x[i] = float64(i)
		}
		b.ReportAllocs()
		for b.Loop() {
			m.Score(x)
		}
	})
}

func BenchmarkContributions(b *testing.B) {
	for _, name := range []string{"v41like", "logistic"} {
		b.Run(name, func(b *testing.B) {
			m, c := loadXGBCase(b, name)
			out := make([]float64, len(c.features)+1)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_ = m.Contributions(c.rows[i%len(c.rows)], out)
				i++
			}
		})
	}
}

func BenchmarkLoadXGBoostJSON(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "xgboost", "v41like.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadXGBoostJSON(bytes.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
	}
}
