package scoring

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The committed models must score and explain their own test sets exactly
// as XGBoost did when they were trained (make models writes
// testdata/parity/<version>/ next to models/): every score and every SHAP
// value the same float32, bit for bit. The files hold the shortest decimal
// that reads back as XGBoost's float32, so they are read as float32.
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
			m := v.Model.(*XGBoost)
			dir := filepath.Join("..", "testdata", "parity", v.Name)
			header, rows := readParityCSV(t, filepath.Join(dir, "features.csv"))
			if strings.Join(header, ",") != strings.Join(v.Features, ",") {
				t.Fatalf("features.csv header %v, want the version's features %v", header, v.Features)
			}
			_, preds := readParityCSV32(t, filepath.Join(dir, "predictions.csv"))
			ch, contribs := readParityCSV32(t, filepath.Join(dir, "contribs.csv"))
			if want := strings.Join(append(append([]string(nil), v.Features...), "bias"), ","); strings.Join(ch, ",") != want {
				t.Fatalf("contribs.csv header %v, want features then bias", ch)
			}
			if len(preds) != len(rows) || len(contribs) != len(rows) || len(rows) == 0 {
				t.Fatalf("%d feature rows, %d predictions, %d contribution rows", len(rows), len(preds), len(contribs))
			}
			var scoreDiffs []string
			maxScore := 0.0
			for i, x := range rows {
				got, want := float32(m.Score(x)), preds[i][0]
				maxScore = math.Max(maxScore, math.Abs(float64(got)-float64(want)))
				if math.Float32bits(got) != math.Float32bits(want) {
					scoreDiffs = append(scoreDiffs, fmt.Sprintf("row %d: score %v, XGBoost %v (%+d ulp; margin %v)",
						i, got, want, int64(math.Float32bits(got))-int64(math.Float32bits(want)), m.Margin(x)))
				}
			}
			maxShap, shapDiffs := contributionDiffs(t, m.Contributions, rows, contribs)
			t.Logf("%s: %d rows, %d scores and %d SHAP values differ from XGBoost's float32 (max |score diff| %.3g, max |shap diff| %.3g)",
				v.Name, len(rows), len(scoreDiffs), len(shapDiffs), maxScore, maxShap)
			if len(scoreDiffs) > 0 {
				t.Errorf("%d of %d scores differ from XGBoost's, first ones:\n%s", len(scoreDiffs), len(rows), strings.Join(scoreDiffs[:min(10, len(scoreDiffs))], "\n"))
			}
			if len(shapDiffs) > 0 {
				t.Errorf("%d SHAP values differ from XGBoost's, first ones:\n%s", len(shapDiffs), strings.Join(shapDiffs[:min(10, len(shapDiffs))], "\n"))
			}
		})
	}
	if checked < 2 {
		t.Errorf("%d XGBoost versions checked, want both v4.0.0 and v4.1.0", checked)
	}
}

// contributionDiffs explains every row with explain and lists the values
// whose float32 differs from want's.
func contributionDiffs(t *testing.T, explain func(x, out []float64) error, rows [][]float64, want [][]float32) (maxDiff float64, diffs []string) {
	t.Helper()
	out := make([]float64, len(want[0]))
	for i, x := range rows {
		if err := explain(x, out); err != nil {
			t.Fatal(err)
		}
		for j, v := range out {
			maxDiff = math.Max(maxDiff, math.Abs(v-float64(want[i][j])))
			if math.Float32bits(float32(v)) != math.Float32bits(want[i][j]) {
				diffs = append(diffs, fmt.Sprintf("row %d column %d: %v, XGBoost %v", i, j, float32(v), want[i][j]))
			}
		}
	}
	return maxDiff, diffs
}

// readCSV reads a CSV file with a header row.
func readCSV(t testing.TB, path string) (header []string, rows [][]string) {
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
	if len(recs) == 0 {
		t.Fatalf("%s: no header", path)
	}
	return recs[0], recs[1:]
}

// readParityCSV32 reads a CSV of float32 values written as the shortest
// decimal that reads back as each.
func readParityCSV32(t *testing.T, path string) ([]string, [][]float32) {
	t.Helper()
	header, recs := readCSV(t, path)
	var rows [][]float32
	for i, rec := range recs {
		row := make([]float32, len(rec))
		for j, s := range rec {
			v, err := strconv.ParseFloat(s, 32)
			if err != nil {
				t.Fatalf("%s row %d column %q: %v", path, i+1, header[j], err)
			}
			row[j] = float32(v)
		}
		rows = append(rows, row)
	}
	return header, rows
}

// readParityCSV reads a numeric CSV with a header; an empty cell is NaN.
func readParityCSV(t testing.TB, path string) ([]string, [][]float64) {
	t.Helper()
	header, recs := readCSV(t, path)
	var rows [][]float64
	for i, rec := range recs {
		row := make([]float64, len(rec))
		for j, s := range rec {
			if s == "" {
				row[j] = math.NaN()
				continue
			}
			var err error
			if row[j], err = strconv.ParseFloat(s, 64); err != nil {
				t.Fatalf("%s row %d column %q: %v", path, i+1, header[j], err)
			}
		}
		rows = append(rows, row)
	}
	return header, rows
}
