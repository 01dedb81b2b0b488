package scoring

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The committed models must score and explain their own test sets exactly
// as XGBoost did when they were trained (make models writes
// testdata/parity/<version>/ next to models/).
func TestCommittedModelsMatchTheirParityFiles(t *testing.T) {
	reg, err := LoadRegistry(filepath.Join("..", "models", "registry.json"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, v := range reg.Versions {
		if v.Model == nil || v.Format != FormatXGBoostJSON {
			continue
		}
		checked++
		t.Run(v.Name, func(t *testing.T) {
			dir := filepath.Join("..", "testdata", "parity", v.Name)
			header, rows := readParityCSV(t, filepath.Join(dir, "features.csv"))
			if strings.Join(header, ",") != strings.Join(v.Features, ",") {
				t.Fatalf("features.csv header %v, want the version's features %v", header, v.Features)
			}
			_, preds := readParityCSV(t, filepath.Join(dir, "predictions.csv"))
			ch, contribs := readParityCSV(t, filepath.Join(dir, "contribs.csv"))
			if want := strings.Join(append(append([]string(nil), v.Features...), "bias"), ","); strings.Join(ch, ",") != want {
				t.Fatalf("contribs.csv header %v, want features then bias", ch)
			}
			if len(preds) != len(rows) || len(contribs) != len(rows) || len(rows) == 0 {
				t.Fatalf("%d feature rows, %d predictions, %d contribution rows", len(rows), len(preds), len(contribs))
			}
			out := make([]float64, len(v.Features)+1)
			var maxScore, maxShap float64
			for i, x := range rows {
				maxScore = math.Max(maxScore, math.Abs(v.Model.Score(x)-preds[i][0]))
				if err := v.Model.Contributions(x, out); err != nil {
					t.Fatal(err)
				}
				for j := range out {
					maxShap = math.Max(maxShap, math.Abs(out[j]-contribs[i][j]))
				}
			}
			t.Logf("%s: %d rows, max |score diff| %.3g, max |shap diff| %.3g", v.Name, len(rows), maxScore, maxShap)
			if maxScore > 1e-6 {
				t.Errorf("max |score diff| %g, want <= 1e-6", maxScore)
			}
			if maxShap > 1e-5 {
				t.Errorf("max |shap diff| %g, want <= 1e-5", maxShap)
			}
		})
	}
	if checked < 2 {
		t.Errorf("%d XGBoost versions checked, want both v4.0.0 and v4.1.0", checked)
	}
}

// readParityCSV reads a numeric CSV with a header; an empty cell is NaN.
func readParityCSV(t *testing.T, path string) ([]string, [][]float64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var rows [][]float64
	for i, rec := range recs[1:] {
		row := make([]float64, len(rec))
		for j, s := range rec {
			if s == "" {
				row[j] = math.NaN()
				continue
			}
			if row[j], err = strconv.ParseFloat(s, 64); err != nil {
				t.Fatalf("%s row %d column %q: %v", path, i+1, recs[0][j], err)
			}
		}
		rows = append(rows, row)
	}
	return recs[0], rows
}
