package synth

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/leadscorer/leadscorer/features"
)

// Record is one line of the features file: exactly one of Advisor and Firm
// is set. The file is JSON lines, each {"advisor": {...}} or {"firm": {...}}
// with the JSON fields of features.Advisor and features.Firm.
type Record struct {
	Advisor *features.Advisor `json:"advisor,omitempty"`
	Firm    *features.Firm    `json:"firm,omitempty"`
}

// WriteFeatures writes the firms, then the advisors, as JSON lines: the
// file the Redis loader reads.
func WriteFeatures(w io.Writer, advisors []features.Advisor, firms []features.Firm) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	for i := range firms {
		if err := enc.Encode(Record{Firm: &firms[i]}); err != nil {
			return fmt.Errorf("synth: write firm %d: %w", firms[i].CRD, err)
		}
	}
	for i := range advisors {
		if err := enc.Encode(Record{Advisor: &advisors[i]}); err != nil {
			return fmt.Errorf("synth: write advisor %d: %w", advisors[i].CRD, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("synth: write features: %w", err)
	}
	return nil
}

// ReadFeatures reads a features file, calling fn for every record in order.
// A line that is not exactly one advisor or one firm is an error naming the
// line; an error from fn stops the read and is returned.
func ReadFeatures(r io.Reader, fn func(Record) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return fmt.Errorf("synth: features line %d: %w", line, err)
		}
		if (rec.Advisor == nil) == (rec.Firm == nil) {
			return fmt.Errorf("synth: features line %d: want exactly one of \"advisor\" and \"firm\"", line)
		}
		if err := fn(rec); err != nil {
			return fmt.Errorf("synth: features line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("synth: read features: %w", err)
	}
	return nil
}
