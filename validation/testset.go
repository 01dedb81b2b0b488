package validation

import (
	"bytes"
	_ "embed" // the test set the rollback simulation resamples
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
)

// PairedLead is one labelled lead scored by two model versions: the
// production version and the baseline it would be rolled back to (v4.1.0
// and v4.0.0 in the deployment checklist).
type PairedLead struct {
	Production float64
	Baseline   float64
	Converted  bool
}

// parallelTestSet is parallel_test_set.csv, embedded: `leadscorer validate
// simulate` and the report's detection curve resample it, and the
// production binary must not read the source tree at run time. It is
// about 180 KB.
//
//go:embed parallel_test_set.csv
var parallelTestSet []byte

// ParallelTestSetName names the embedded test set in output.
const ParallelTestSetName = "embedded validation/parallel_test_set.csv"

// ParallelTestSet returns the embedded test set: the population's 3,437
// labelled September-October 2025 test leads scored by v4.0.0 (baseline)
// and v4.1.0 (production) as of first contact.
func ParallelTestSet() ([]PairedLead, error) {
	return ReadPairedTestSet(bytes.NewReader(parallelTestSet), "parallel_test_set.csv")
}

// LoadPairedTestSet reads a test set file (ReadPairedTestSet).
func LoadPairedTestSet(path string) ([]PairedLead, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadPairedTestSet(f, path)
}

// ReadPairedTestSet reads a CSV of paired leads: a header, then rows of
// contact_date, baseline score, production score, converted (0 or 1), as
// parallel_test_set.csv holds the population's test leads scored by v4.0.0
// and v4.1.0. name is the source, for errors.
func ReadPairedTestSet(r io.Reader, name string) ([]PairedLead, error) {
	recs, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("test set %s: %w", name, err)
	}
	if len(recs) < 2 || len(recs[0]) != 4 {
		return nil, fmt.Errorf("test set %s: want a header and rows of 4 columns", name)
	}
	out := make([]PairedLead, 0, len(recs)-1)
	for i, r := range recs[1:] {
		base, err1 := strconv.ParseFloat(r[1], 64)
		prod, err2 := strconv.ParseFloat(r[2], 64)
		if err1 != nil || err2 != nil || (r[3] != "0" && r[3] != "1") {
			return nil, fmt.Errorf("test set %s: row %d: %q", name, i+2, r)
		}
		out = append(out, PairedLead{Production: prod, Baseline: base, Converted: r[3] == "1"})
	}
	return out, nil
}
