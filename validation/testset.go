package validation

import (
	"encoding/csv"
	"fmt"
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

// LoadPairedTestSet reads a CSV of paired leads: a header, then rows of
// contact_date, baseline score, production score, converted (0 or 1), as
// testdata/parallel_test_set.csv holds the population's test leads scored
// by v4.0.0 and v4.1.0.
func LoadPairedTestSet(path string) ([]PairedLead, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("test set %s: %w", path, err)
	}
	if len(recs) < 2 || len(recs[0]) != 4 {
		return nil, fmt.Errorf("test set %s: want a header and rows of 4 columns", path)
	}
	out := make([]PairedLead, 0, len(recs)-1)
	for i, r := range recs[1:] {
		base, err1 := strconv.ParseFloat(r[1], 64)
		prod, err2 := strconv.ParseFloat(r[2], 64)
		if err1 != nil || err2 != nil || (r[3] != "0" && r[3] != "1") {
			return nil, fmt.Errorf("test set %s: row %d: %q", path, i+2, r)
		}
		out = append(out, PairedLead{Production: prod, Baseline: base, Converted: r[3] == "1"})
	}
	return out, nil
}
