package featurestore

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/leadscorer/leadscorer/features"
)

// maxLine bounds one line of a population file: a firm with tens of
// thousands of arrival and departure days still fits.
const maxLine = 16 << 20

// Summary says what Load wrote.
type Summary struct {
	Advisors int
	Firms    int
	Lines    int // lines read, blank ones included
	Elapsed  time.Duration
}

func (s Summary) String() string {
	return fmt.Sprintf("loaded %d advisors and %d firms from %d lines in %.2fs",
		s.Advisors, s.Firms, s.Lines, s.Elapsed.Seconds())
}

// populationLine is one line of a population file: exactly one of the two.
type populationLine struct {
	Advisor *features.Advisor `json:"advisor"`
	Firm    *features.Firm    `json:"firm"`
}

// Load reads a population file, JSON lines each holding either
// {"advisor": {...}} or {"firm": {...}} with the json fields of
// features.Advisor and features.Firm, and writes the records to s in
// pipelined chunks. Blank lines are skipped.
//
// A line that is not valid JSON, has unknown fields, holds neither or both
// records, or a record that cannot be stored, stops the load with an error
// naming the line number; the chunks before it are already written (a load
// is idempotent, so fixing the file and loading again is safe).
//
// When progress is not nil it is called after each chunk is written, with
// the bytes of r read so far (of the file as given, before any gunzipping)
// and what was written; the command that called Load draws it.
func Load(ctx context.Context, s *Store, r io.Reader, progress func(read int64, sum Summary)) (Summary, error) {
	start := time.Now()
	var sum Summary
	if progress == nil {
		progress = func(int64, Summary) {}
	}

	// A gzip file (the population ships one) is read as is; progress counts
	// the bytes of the file either way.
	cr := &countingReader{r: r}
	br := bufio.NewReaderSize(cr, 64<<10)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return sum, fmt.Errorf("featurestore: load: gzip: %w", err)
		}
		defer gz.Close()
		src = gz
	}
	sc := bufio.NewScanner(src)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	advisors := make([]features.Advisor, 0, putChunk)
	firms := make([]features.Firm, 0, putChunk)

	flush := func() error {
		if err := s.PutAdvisors(ctx, advisors); err != nil {
			return err
		}
		if err := s.PutFirms(ctx, firms); err != nil {
			return err
		}
		sum.Advisors += len(advisors)
		sum.Firms += len(firms)
		advisors, firms = advisors[:0], firms[:0]
		progress(cr.n, sum)
		return nil
	}

	for sc.Scan() {
		sum.Lines++
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		rec, err := parseLine(line)
		if err != nil {
			sum.Elapsed = time.Since(start)
			return sum, fmt.Errorf("featurestore: load line %d: %w", sum.Lines, err)
		}
		if rec.Advisor != nil {
			advisors = append(advisors, *rec.Advisor)
		} else {
			firms = append(firms, *rec.Firm)
		}
		if len(advisors)+len(firms) >= putChunk {
			if err := flush(); err != nil {
				sum.Elapsed = time.Since(start)
				return sum, fmt.Errorf("featurestore: load before line %d: %w", sum.Lines+1, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		sum.Elapsed = time.Since(start)
		return sum, fmt.Errorf("featurestore: load line %d: %w", sum.Lines+1, err)
	}
	err := flush()
	sum.Elapsed = time.Since(start)
	if err != nil {
		return sum, fmt.Errorf("featurestore: load at end of input: %w", err)
	}
	return sum, nil
}

func parseLine(line []byte) (populationLine, error) {
	var rec populationLine
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return rec, err
	}
	if dec.More() {
		return rec, errors.New("more than one JSON value on the line")
	}
	switch {
	case rec.Advisor != nil && rec.Firm != nil:
		return rec, errors.New(`both "advisor" and "firm" on one line`)
	case rec.Advisor != nil:
		return rec, ValidateAdvisor(rec.Advisor)
	case rec.Firm != nil:
		return rec, ValidateFirm(rec.Firm)
	}
	return rec, errors.New(`want {"advisor": {...}} or {"firm": {...}}`)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
