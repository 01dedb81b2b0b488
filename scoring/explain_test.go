package scoring

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// The tables and the recursion must give the same float32s: the tables are
// filled by the recursion itself and summed in the same order.
func TestExplainTablesEqualRecursionBitForBit(t *testing.T) {
	for name, c := range batchModels(t) {
		t.Run(name, func(t *testing.T) {
			m := c.m
			if m.explain == nil {
				t.Skipf("depth %d: no tables", m.maxDepth)
			}
			nf := len(m.features)
			table, walk := make([]float64, nf+1), make([]float64, nf+1)
			for i, x := range c.rows {
				if err := m.Contributions(x, table); err != nil {
					t.Fatal(err)
				}
				m.contributionsWalk(x, walk)
				for j := range table {
					if math.Float64bits(table[j]) != math.Float64bits(walk[j]) {
						t.Fatalf("row %d (%v) value %d: table %v, recursion %v", i, x, j, table[j], walk[j])
					}
				}
			}
			t.Logf("%d rows, depth %d: equal bit for bit", len(c.rows), m.batch.depth)
		})
	}
}

// ExplainBatch must give every row what Score and Contributions give it,
// whatever the batch size, for models with tables and without.
func TestExplainBatchEqualsOneRowMethods(t *testing.T) {
	for name, c := range batchModels(t) {
		t.Run(name, func(t *testing.T) {
			m := c.m
			nf := len(m.features)
			rows := c.rows[:min(len(c.rows), 1500)]
			wantS := make([]float64, len(rows))
			wantC := make([]float64, len(rows)*(nf+1))
			for i, x := range rows {
				wantS[i] = m.Score(x)
				if err := m.Contributions(x, wantC[i*(nf+1):(i+1)*(nf+1)]); err != nil {
					t.Fatal(err)
				}
			}
			gotS := make([]float64, len(rows))
			gotC := make([]float64, len(rows)*(nf+1))
			for _, size := range []int{1, 3, 4, 5, 64, len(rows)} {
				clear(gotS)
				clear(gotC)
				for i := 0; i < len(rows); i += size {
					j := min(i+size, len(rows))
					if err := m.ExplainBatch(rows[i:j], gotS[i:j], gotC[i*(nf+1):j*(nf+1)]); err != nil {
						t.Fatal(err)
					}
				}
				for i := range wantS {
					if math.Float64bits(gotS[i]) != math.Float64bits(wantS[i]) {
						t.Fatalf("batches of %d: row %d: score %v, Score %v", size, i, gotS[i], wantS[i])
					}
				}
				for i := range wantC {
					if math.Float64bits(gotC[i]) != math.Float64bits(wantC[i]) {
						t.Fatalf("batches of %d: row %d value %d: %v, Contributions %v", size, i/(nf+1), i%(nf+1), gotC[i], wantC[i])
					}
				}
			}
			// Contributions alone.
			if err := m.ExplainBatch(rows[:5], nil, gotC[:5*(nf+1)]); err != nil {
				t.Fatal(err)
			}
			for i := range 5 * (nf + 1) {
				if gotC[i] != wantC[i] {
					t.Fatalf("nil scores: value %d differs", i)
				}
			}
		})
	}
}

// The recursion, which deeper models use, must also give XGBoost's
// pred_contribs on the committed models' parity rows, bit for bit.
func TestRecursionMatchesParityFiles(t *testing.T) {
	reg, err := LoadRegistry(filepath.Join("..", "models", "registry.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range reg.Versions {
		m := v.Model.(*XGBoost)
		dir := filepath.Join("..", "testdata", "parity", v.Name)
		_, rows := readParityCSV(t, filepath.Join(dir, "features.csv"))
		_, contribs := readParityCSV32(t, filepath.Join(dir, "contribs.csv"))
		walk := func(x, out []float64) error { m.contributionsWalk(x, out); return nil }
		maxDiff, diffs := contributionDiffs(t, walk, rows, contribs)
		t.Logf("%s: recursion: %d SHAP values differ from XGBoost's (max %.3g)", v.Name, len(diffs), maxDiff)
		if len(diffs) > 0 {
			t.Errorf("%s: %d values differ, first ones:\n%s", v.Name, len(diffs), strings.Join(diffs[:min(10, len(diffs))], "\n"))
		}
	}
}

// A model deeper than maxExplainDepth has no tables and is explained by the
// recursion (the test model squarederror is depth 4), still XGBoost's values.
func TestDeepModelFallsBackToRecursion(t *testing.T) {
	m, c := loadXGBCase(t, "squarederror")
	if m.maxDepth <= maxExplainDepth {
		t.Fatalf("test model has depth %d, want > %d", m.maxDepth, maxExplainDepth)
	}
	if m.explain != nil {
		t.Fatal("tables built for a model deeper than maxExplainDepth")
	}
	if m.batch == nil {
		t.Fatal("the depth-4 model should still score in batches")
	}
	nf := len(m.features)
	out := make([]float64, len(c.rows)*(nf+1))
	if err := m.ExplainBatch(c.rows, nil, out); err != nil {
		t.Fatal(err)
	}
	for i := range c.rows {
		for j := range nf + 1 {
			if d := math.Abs(out[i*(nf+1)+j] - c.contribs[i][j]); d > 1e-5 {
				t.Fatalf("row %d value %d: %v, XGBoost %v", i, j, out[i*(nf+1)+j], c.contribs[i][j])
			}
		}
	}
}

// ExplainTableBytes reports what the tables hold: for a depth-2 model, per
// tree its splits and leaves (64 bytes), 8 patterns of 3 float32 values and
// 3 feature bytes (and 5 of padding).
func TestExplainTableBytes(t *testing.T) {
	reg, err := LoadRegistry(filepath.Join("..", "models", "registry.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range reg.Versions {
		m := v.Model.(*XGBoost)
		want := m.NumTrees() * (64 + 8*3*4 + 8)
		if got := m.ExplainTableBytes(); got != want {
			t.Errorf("%s: ExplainTableBytes %d, want %d (%d trees of depth 2)", v.Name, got, want, m.NumTrees())
		}
		t.Logf("%s: %d trees, tables %d bytes", v.Name, m.NumTrees(), m.ExplainTableBytes())
	}
	m, _ := loadXGBCase(t, "logistic") // depth 3: 128 patterns per tree
	n := 0
	for tr := range m.NumTrees() {
		n += 128 * int(m.featStart[tr+1]-m.featStart[tr])
	}
	if got, min := m.ExplainTableBytes(), 4*n; got < min || got > min+8*m.NumTrees()+8*len(m.treeFeat)+8 {
		t.Errorf("depth-3 model: ExplainTableBytes %d, want %d values' worth plus the indexes", got, min)
	}
}

// In path-dependent TreeSHAP every internal node's direction counts, not
// only those on the row's path: some v4.1.0 tree has two patterns that
// reach the same leaf and give different values. (The table key has to be
// the whole pattern.)
func TestTableKeyNeedsOffPathNodes(t *testing.T) {
	reg, err := LoadRegistry(filepath.Join("..", "models", "registry.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := reg.Versions[len(reg.Versions)-1].Model.(*XGBoost)
	for i, tr := range m.batch.trees2 {
		_ = i
		v := &m.explain.trees2[i].vals
		// Patterns 0b011 and 0b111 both go left, left (leaf 0); they
		// differ only at split 2, on the other side of the root.
		if tr.leaf[0b011] == tr.leaf[0b111] && v[0b011] != v[0b111] && tr.c[2] != laneOnes<<15 {
			t.Logf("tree %d: same leaf, values %v and %v", i, v[0b011], v[0b111])
			return
		}
	}
	t.Error("no tree whose values depend on a node off the row's path")
}
