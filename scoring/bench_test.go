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

// BenchmarkCommitted scores and explains the test-set rows of the committed
// models (v4.1.0 keeps the trees up to its early-stopping best iteration).
func BenchmarkCommitted(b *testing.B) {
	reg, err := LoadRegistry(filepath.Join("..", "models", "registry.json"))
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range reg.Serving() {
		t := &testing.T{}
		_, rows := readParityCSV(t, filepath.Join("..", "testdata", "parity", v.Name, "features.csv"))
		if len(rows) == 0 {
			b.Fatalf("%s: no parity rows", v.Name)
		}
		b.Run(v.Name+"/score", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				v.Model.Score(rows[i%len(rows)])
				i++
			}
		})
		b.Run(v.Name+"/explain", func(b *testing.B) {
			out := make([]float64, len(v.Features)+1)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_ = v.Model.Contributions(rows[i%len(rows)], out)
				i++
			}
		})
	}
}

// BenchmarkFlatVersusWalk compares the one-row evaluators on the committed
// models, in one run so all see the same machine load: the node walk, the
// flat layout (flat.go) and the rank engine Score uses (batch.go).
func BenchmarkFlatVersusWalk(b *testing.B) {
	reg, err := LoadRegistry(filepath.Join("..", "models", "registry.json"))
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range reg.Serving() {
		m := v.Model.(*XGBoost)
		_, rows := readParityCSV(&testing.T{}, filepath.Join("..", "testdata", "parity", v.Name, "features.csv"))
		flat, batch := m.flat, m.batch
		for _, mode := range []string{"walk", "flat", "ranks"} {
			b.Run(v.Name+"/"+mode, func(b *testing.B) {
				switch mode {
				case "walk":
					m.flat, m.batch = nil, nil
				case "flat":
					m.batch = nil
				}
				defer func() { m.flat, m.batch = flat, batch }()
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					m.Score(rows[i%len(rows)])
					i++
				}
			})
		}
	}
}

// batchSize is the rows per call of the batch benchmarks: a plausible
// batch of events whose feature vectors missed the pipeline's memo.
const batchSize = 64

// BenchmarkCommittedBatch scores the committed models' test rows in
// batches of batchSize, in the file's order (the test set's time order:
// distinct rows, nothing repeated within a batch), and reports the time per
// row. What flatters it: the model and the rows stay in the cache between
// calls, where in the service the Kafka and Redis work between batches
// evicts some of them.
func BenchmarkCommittedBatch(b *testing.B) {
	reg, err := LoadRegistry(filepath.Join("..", "models", "registry.json"))
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range reg.Serving() {
		m := v.Model.(*XGBoost)
		_, rows := readParityCSV(&testing.T{}, filepath.Join("..", "testdata", "parity", v.Name, "features.csv"))
		rows = rows[:len(rows)/batchSize*batchSize]
		scores := make([]float64, batchSize)
		b.Run(v.Name+"/score", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m.ScoreBatch(rows[i:i+batchSize], scores)
				i = (i + batchSize) % len(rows)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/row")
		})
		b.Run(v.Name+"/explain", func(b *testing.B) { // scores and contributions
			contribs := make([]float64, batchSize*(len(v.Features)+1))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := m.ExplainBatch(rows[i:i+batchSize], scores, contribs); err != nil {
					b.Fatal(err)
				}
				i = (i + batchSize) % len(rows)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/row")
		})
	}
}
