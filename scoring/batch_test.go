package scoring

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// batchModels are every XGBoost model of the test data and the committed
// versions, with rows to score: their own test rows, then random rows
// built from the model's thresholds (values on, just below and just above
// each, and missing ones), which reach every branch.
func batchModels(t testing.TB) map[string]struct {
	m    *XGBoost
	rows [][]float64
} {
	t.Helper()
	out := map[string]struct {
		m    *XGBoost
		rows [][]float64
	}{}
	for _, name := range parityModels {
		m, c := loadXGBCase(t, name)
		out[name] = struct {
			m    *XGBoost
			rows [][]float64
		}{m, append(c.rows, randomRows(m, 2000, 1)...)}
	}
	reg, err := LoadRegistry(filepath.Join("..", "models", "registry.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range reg.Versions {
		m := v.Model.(*XGBoost)
		_, rows := readParityCSV(&testing.T{}, filepath.Join("..", "testdata", "parity", v.Name, "features.csv"))
		out[v.Name] = struct {
			m    *XGBoost
			rows [][]float64
		}{m, append(rows, randomRows(m, 2000, 2)...)}
	}
	return out
}

// randomRows draws n rows whose values sit on, next to and between the
// model's split thresholds, a quarter of them missing.
func randomRows(m *XGBoost, n int, seed uint64) [][]float64 {
	rng := rand.New(rand.NewPCG(seed, 42))
	thr := make([][]float32, len(m.features))
	for _, nd := range m.nodes {
		if nd.feat >= 0 {
			thr[nd.feat] = append(thr[nd.feat], nd.value)
		}
	}
	rows := make([][]float64, n)
	for i := range rows {
		x := make([]float64, len(m.features))
		for f := range x {
			switch {
			case rng.IntN(4) == 0 || len(thr[f]) == 0:
				x[f] = math.NaN()
			default:
				t := thr[f][rng.IntN(len(thr[f]))]
				switch rng.IntN(4) {
				case 0:
					x[f] = float64(t)
				case 1:
					x[f] = float64(math.Nextafter32(t, float32(math.Inf(-1))))
				case 2:
					x[f] = float64(math.Nextafter32(t, float32(math.Inf(1))))
				default:
					x[f] = float64(t) + rng.NormFloat64()*math.Max(1, math.Abs(float64(t)))
				}
			}
		}
		rows[i] = x
	}
	return rows
}

// ScoreBatch must give every row the float64 Score gives it, bit for bit,
// whatever the batch size and the row's place in its block of four.
func TestScoreBatchEqualsScoreBitForBit(t *testing.T) {
	for name, c := range batchModels(t) {
		t.Run(name, func(t *testing.T) {
			m := c.m
			if m.batch == nil {
				t.Fatalf("no batch layout (depth %d)", m.maxDepth)
			}
			want := make([]float64, len(c.rows))
			for i, x := range c.rows {
				want[i] = m.Score(x)
			}
			got := make([]float64, len(c.rows))
			for _, size := range []int{1, 2, 3, 4, 5, 7, 8, 9, 64, len(c.rows)} {
				clear(got)
				for i := 0; i < len(c.rows); i += size {
					j := min(i+size, len(c.rows))
					m.ScoreBatch(c.rows[i:j], got[i:j])
				}
				for i := range want {
					if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
						t.Fatalf("batches of %d: row %d (%v): ScoreBatch %v, Score %v", size, i, c.rows[i], got[i], want[i])
					}
				}
			}
			t.Logf("%d rows, depth %d: equal bit for bit", len(c.rows), m.batch.depth)
		})
	}
}

// Score and the batch engine are checked against the node walk, the
// original evaluator, so a mistake shared by both would still show.
func TestScoreBatchEqualsNodeWalk(t *testing.T) {
	for name, c := range batchModels(t) {
		t.Run(name, func(t *testing.T) {
			m := c.m
			got := make([]float64, len(c.rows))
			m.ScoreBatch(c.rows, got)
			flat, batch := m.flat, m.batch
			m.flat, m.batch = nil, nil
			defer func() { m.flat, m.batch = flat, batch }()
			for i, x := range c.rows {
				if want := m.Score(x); math.Float64bits(got[i]) != math.Float64bits(want) {
					t.Fatalf("row %d: batch %v, node walk %v", i, got[i], want)
				}
			}
		})
	}
}

func TestScoreBatchAllocatesNothing(t *testing.T) {
	m, c := loadXGBCase(t, "v41like")
	rows := c.rows[:64]
	out := make([]float64, len(rows))
	if n := testing.AllocsPerRun(100, func() { m.ScoreBatch(rows, out) }); n != 0 {
		t.Errorf("ScoreBatch: %v allocations per call, want 0", n)
	}
}

func TestScoreBatchPanicsOnShortOutput(t *testing.T) {
	m, c := loadXGBCase(t, "logistic")
	defer func() {
		if r := recover(); r == nil || fmt.Sprint(r) != "xgboost: ScoreBatch: 1 scores for 2 rows" {
			t.Errorf("recovered %v, want the short-output panic", r)
		}
	}()
	m.ScoreBatch(c.rows[:2], make([]float64, 1))
}

// LightGBM models are not batch models: callers loop over Score, which
// the batch engine does not touch.
func TestLightGBMIsNotABatchModel(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "lightgbm", "lg_dart_breast_cancer.model"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadLightGBM(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.(BatchModel); ok {
		t.Error("a LightGBM model claims to be a BatchModel")
	}
	var x Model = loadXGBFile(t, filepath.Join("testdata", "xgboost", "v41like.json"))
	if _, ok := x.(BatchModel); !ok {
		t.Error("*XGBoost is not a BatchModel")
	}
}
