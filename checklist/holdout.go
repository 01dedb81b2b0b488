package checklist

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// DefaultHoldout is the committed labelled holdout: the test set of the
// population export (September and October 2025), with every feature of
// both versions, written by scripts/train.py with the parity files.
const DefaultHoldout = "testdata/holdout/test.csv"

// DefaultParityDir holds the trainer's own predictions and contributions
// per version (<dir>/<version>/features.csv, predictions.csv).
const DefaultParityDir = "testdata/parity"

// Holdout is a labelled holdout: one row per lead, a 0/1 label and feature
// columns by name (an empty cell is a missing value).
type Holdout struct {
	Path      string
	SHA256    string // of the file
	Converted []bool
	header    []string
	cols      map[string]int
	records   [][]string // without the header
}

// ReadHoldout reads a CSV with a header, a label column (0 or 1 on every
// row: a holdout is labelled) and feature columns; other columns (lead_id,
// contact_at) are ignored unless a version names them.
func ReadHoldout(path, label string) (*Holdout, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("holdout: %w", err)
	}
	recs, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("holdout %s: %w", path, err)
	}
	if len(recs) < 2 {
		return nil, fmt.Errorf("holdout %s: want a header and at least one row", path)
	}
	sum := sha256.Sum256(b)
	h := &Holdout{Path: path, SHA256: hex.EncodeToString(sum[:]), header: recs[0], cols: map[string]int{}, records: recs[1:]}
	for i, c := range h.header {
		if _, dup := h.cols[c]; dup {
			return nil, fmt.Errorf("holdout %s: column %q twice", path, c)
		}
		h.cols[c] = i
	}
	li, ok := h.cols[label]
	if !ok {
		return nil, fmt.Errorf("holdout %s: no label column %q", path, label)
	}
	h.Converted = make([]bool, len(h.records))
	for i, r := range h.records {
		switch strings.TrimSpace(r[li]) {
		case "1", "1.0", "true":
			h.Converted[i] = true
		case "0", "0.0", "false":
		default:
			return nil, fmt.Errorf("holdout %s: row %d: label %q is not 0 or 1 (a holdout is labelled)", path, i+2, r[li])
		}
	}
	return h, nil
}

// Rows is the number of leads.
func (h *Holdout) Rows() int { return len(h.records) }

// Conversions is the number of leads that converted.
func (h *Holdout) Conversions() int {
	n := 0
	for _, c := range h.Converted {
		if c {
			n++
		}
	}
	return n
}

// errMissingColumns is wrapped by Matrix when the holdout lacks features.
var errMissingColumns = errors.New("holdout lacks feature columns")

// Matrix returns the rows with the named features in that order, NaN for
// an empty cell. It fails naming every feature the holdout lacks, or the
// first cell that is not a number.
func (h *Holdout) Matrix(features []string) ([][]float64, error) {
	idx := make([]int, len(features))
	var missing []string
	for j, f := range features {
		i, ok := h.cols[f]
		if !ok {
			missing = append(missing, f)
		}
		idx[j] = i
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s", errMissingColumns, strings.Join(missing, ", "))
	}
	out := make([][]float64, len(h.records))
	for r, rec := range h.records {
		row := make([]float64, len(features))
		for j, i := range idx {
			s := strings.TrimSpace(rec[i])
			if s == "" {
				row[j] = math.NaN()
				continue
			}
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("holdout %s: row %d, column %s: %q is not a number", h.Path, r+2, features[j], rec[i])
			}
			row[j] = x
		}
		out[r] = row
	}
	return out, nil
}
