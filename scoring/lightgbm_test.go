package scoring

import (
	"bufio"
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// readTSV reads a file of whitespace-separated numbers, one row a line.
func readTSV(t *testing.T, path string) [][]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var row []float64
		for _, s := range strings.Fields(sc.Text()) {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			row = append(row, v)
		}
		if len(row) > 0 {
			rows = append(rows, row)
		}
	}
	return rows
}

// LightGBM models go through leaves; its predictions must equal the ones
// LightGBM recorded, for both text format versions.
func TestLightGBMMatchesLightGBMPredictions(t *testing.T) {
	for _, tc := range []struct {
		name, model, rows, truth string
		features                 int
	}{
		{"v2 binary sigmoid (dart)", "lg_dart_breast_cancer.model", "breast_cancer_test.tsv", "lg_dart_breast_cancer_true_predictions.txt", 30},
		{"v3 gamma (exponential link)", "genlin_fmtp_gamma_AvgClaimAmount.model", "genlin_fmtp_gamma_AvgClaimAmount_features.tsv", "genlin_fmtp_gamma_AvgClaimAmount_true_predictions.txt", 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join("testdata", "lightgbm")
			b, err := os.ReadFile(filepath.Join(dir, tc.model))
			if err != nil {
				t.Fatal(err)
			}
			m, err := LoadLightGBM(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if n := len(m.FeatureNames()); n != tc.features {
				t.Fatalf("%d feature names, want %d", n, tc.features)
			}
			rows, truth := readTSV(t, filepath.Join(dir, tc.rows)), readTSV(t, filepath.Join(dir, tc.truth))
			if len(rows) != len(truth) || len(rows) == 0 {
				t.Fatalf("%d rows, %d predictions", len(rows), len(truth))
			}
			maxRel := 0.0
			for i, x := range rows {
				got, want := m.Score(x), truth[i][0]
				maxRel = math.Max(maxRel, math.Abs(got-want)/math.Max(1, math.Abs(want)))
			}
			t.Logf("%d rows: max relative diff %.3g", len(rows), maxRel)
			if maxRel > 1e-6 {
				t.Errorf("max relative diff %g, want <= 1e-6", maxRel)
			}
			if n := testing.AllocsPerRun(100, func() { m.Score(rows[0]) }); n != 0 {
				t.Errorf("Score: %v allocations per row, want 0", n)
			}
			if err := m.Contributions(rows[0], make([]float64, tc.features+1)); !errors.Is(err, ErrNoContributions) {
				t.Errorf("Contributions error %v, want ErrNoContributions", err)
			}
		})
	}
}

func TestLoadLightGBMRefuses(t *testing.T) {
	dart, err := os.ReadFile(filepath.Join("testdata", "lightgbm", "lg_dart_breast_cancer.model"))
	if err != nil {
		t.Fatal(err)
	}
	// tree0 replaces old by new in the model's first tree.
	tree0 := func(old, new string) string {
		head, trees, _ := strings.Cut(string(dart), "Tree=0\n")
		first, rest, _ := strings.Cut(trees, "Tree=1\n")
		if !strings.Contains(first, old) {
			t.Fatalf("tree 0 has no %q", old)
		}
		return head + "Tree=0\n" + strings.Replace(first, old, new, 1) + "Tree=1\n" + rest
	}
	for _, tc := range []struct {
		name, model, wantErr string
	}{
		{"not a LightGBM model", "hello\n", "lightgbm:"},
		{"unknown format version", strings.Replace(string(dart), "version=v2", "version=v9", 1), "lightgbm:"},
		{"no feature_names line", strings.Replace(string(dart), "feature_names=", "feature_namez=", 1), "feature_names: missing"},
		// Each of these loaded before lgCheckTrees; scoring the first panicked
		// (FuzzLoadLightGBM's finding), the next two could send leaves' walk
		// round in a loop or past its nodes, the last allocated its claim.
		{"split on a feature the model lacks", tree0("split_feature=22 27", "split_feature=70 27"), "split_feature: node 0 splits on feature 70 of 30"},
		{"leaf the tree lacks", tree0("-9 -10\n", "-9 -11\n"), "node 8 has leaf 10 of 10"},
		{"node with two parents", tree0("8 -6 -1\n", "8 -6 6\n"), "node 6 is the child of two nodes"},
		{"root as a child", tree0("8 -6 -1\n", "8 -6 0\n"), "node 8 has child 0"},
		{"fewer than two features", strings.Replace(string(dart), "max_feature_idx=29", "max_feature_idx=0", 1), "max_feature_idx: 0; models of fewer than two features are unsupported"},
		{"num_leaves with nothing behind it", tree0("num_leaves=10\n", "num_leaves=1000000000\n"), "num_leaves: 1000000000, with 10 leaf values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadLightGBM(strings.NewReader(tc.model))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
