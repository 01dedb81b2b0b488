package validation_test

import (
	"bufio"
	"encoding/csv"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/internal/synth"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/leadscorer/leadscorer/validation"
)

var updateTestSet = flag.Bool("update-testset", false, "regenerate parallel_test_set.csv from the population and the committed models")

const testSetFile = "parallel_test_set.csv"

// TestParallelTestSet checks the committed test set the rollback
// simulation resamples (embedded in the binary): the population's labelled test leads (September and
// October 2025) scored by both committed models as of first contact. Its
// v4.0.0 and v4.1.0 columns are the parity predictions the trainer wrote
// (testdata/parity), row for row, and its AUCs are the models' test AUCs in
// models/*/metrics.json: the file is the test set, with its labels.
//
// go test ./validation -run TestParallelTestSet -update-testset rewrites it.
func TestParallelTestSet(t *testing.T) {
	if *updateTestSet {
		writeTestSet(t)
	}
	set, err := validation.LoadPairedTestSet(testSetFile)
	if err != nil {
		t.Fatal(err)
	}
	// What the production binary resamples is this file.
	embedded, err := validation.ParallelTestSet()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(embedded, set) {
		t.Errorf("the embedded test set (%d leads) is not %s (%d leads); after -update-testset, run the test again", len(embedded), testSetFile, len(set))
	}
	for _, v := range []struct {
		version string
		score   func(validation.PairedLead) float64
		auc     float64 // metrics.json test_auc, 4 decimals
	}{
		{"v4.0.0", func(l validation.PairedLead) float64 { return l.Baseline }, 0.6228},
		{"v4.1.0", func(l validation.PairedLead) float64 { return l.Production }, 0.6438},
	} {
		parity := readColumn(t, filepath.Join("..", "testdata", "parity", v.version, "predictions.csv"))
		if len(parity) != len(set) {
			t.Fatalf("%s: %d parity predictions, %d rows in the test set", v.version, len(parity), len(set))
		}
		rows := make([]validation.Row, len(set))
		for i, l := range set {
			// The parity file holds XGBoost's float32 predictions; the
			// scorer's own evaluator agrees to within 1e-6 (scoring's
			// parity tests).
			if got := v.score(l); math.Abs(got-parity[i]) > 1e-6 {
				t.Fatalf("%s row %d: score %v, parity prediction %v", v.version, i, got, parity[i])
			}
			rows[i] = validation.Row{Score: v.score(l), Converted: l.Converted}
		}
		st, err := validation.Compute(rows)
		if err != nil {
			t.Fatal(err)
		}
		if st.Positives != 152 || math.Abs(st.AUC-v.auc) > 0.00005 {
			t.Errorf("%s: %d positives, AUC %.5f; metrics.json has 152 and %.4f", v.version, st.Positives, st.AUC, v.auc)
		}
	}
}

func readColumn(t *testing.T, path string) []float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []float64
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		x, err := strconv.ParseFloat(sc.Text(), 32)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, float64(float32(x)))
	}
	return out
}

// writeTestSet scores the population's labelled test leads with both
// committed models, as the trainer's export does (features as of first
// contact), and writes them with their labels.
func writeTestSet(t *testing.T) {
	pop, err := synth.Generate(synth.Options{Seed: synth.DefaultSeed})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := scoring.LoadRegistry(filepath.Join("..", "models", "registry.json"))
	if err != nil {
		t.Fatal(err)
	}
	type model struct {
		v      *scoring.Version
		layout features.Layout
		x      []float64
	}
	var ms []model
	for _, name := range []string{"v4.0.0", "v4.1.0"} {
		v, ok := reg.Version(name)
		if !ok || v.Model == nil {
			t.Fatalf("registry lacks %s", name)
		}
		layout, err := features.NewLayout(v.Features)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, model{v, layout, make([]float64, len(v.Features))})
	}
	f, err := os.Create(testSetFile)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"contact_date", "score_v4.0.0", "score_v4.1.0", "converted"})
	var vals features.Values
	for i := range pop.Leads {
		l := &pop.Leads[i]
		if l.Split != synth.Test || !l.Labelled {
			continue
		}
		pop.Derive(l, &vals)
		rec := []string{l.Contact.Format("2006-01-02")}
		for _, m := range ms {
			m.layout.Fill(&vals, m.x)
			rec = append(rec, strconv.FormatFloat(m.v.Model.Score(m.x), 'g', -1, 64))
		}
		rec = append(rec, fmt.Sprint(b2i(l.Converted)))
		_ = w.Write(rec)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
