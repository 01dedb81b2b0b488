package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// The CSV readers of `score` and `evaluate` take files from outside. On any
// input they must fail with an error or write output of a size bounded by
// the input's (a row in, a row out with a fixed number of added columns):
// never panic, never hang, never grow without bound.

const fuzzModel = "../../models/v4.0.0/model.json"

// scoreOutputBound: every output row is its input row plus the score and,
// with --explain, one number (under 32 bytes formatted) per feature and
// the bias; there is one output row per input line at most, plus the
// header.
func scoreOutputBound(in []byte, explain bool, features int) int {
	rows := bytes.Count(in, []byte("\n")) + 2
	perRow := 32
	if explain {
		perRow += 32 * (features + 1)
	}
	// quoting can double a field's bytes
	return 2*len(in) + rows*perRow + 64*features + 4096
}

func FuzzScoreCSV(f *testing.F) {
	header := "tenure_bucket,experience_bucket,is_experience_missing,mobility_tier,firm_rep_count_at_contact,firm_net_change_12mo,firm_stability_tier,has_firm_data,is_wirehouse,is_broker_protocol,has_email,has_linkedin,mobility_x_heavy_bleeding,short_tenure_x_high_mobility"
	f.Add([]byte(header+"\n1,2,0,1,40,-3,2,1,0,1,1,0,0,0\n,,,,,,,,,,,,,\n"), false)
	f.Add([]byte("lead_id,"+header+"\n\"00Q,x\",1,2,0,1,40,-3,2,1,0,1,1,0,0,0\n"), true)
	f.Add([]byte(header+"\n1,NaN,Inf,-Inf,1e308,-1e-308,0x1p3,1_0,2,1,0,1,1,0\n"), true)
	f.Add([]byte("a,b\n1,2\n"), false)
	f.Add([]byte("\"unterminated\n"), false)
	if _, err := os.Stat(fuzzModel); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte, explain bool) {
		args := []string{"score", "--model", fuzzModel}
		if explain {
			args = append(args, "--explain")
		}
		var out, errs bytes.Buffer
		err := run(context.Background(), args, bytes.NewReader(in), &out, &errs)
		if bound := scoreOutputBound(in, explain, 14); out.Len() > bound {
			t.Fatalf("%d input bytes gave %d output bytes (bound %d)", len(in), out.Len(), bound)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "score: ") {
			t.Fatalf("error %q does not say which command failed", err)
		}
	})
}

func FuzzEvaluateCSV(f *testing.F) {
	f.Add([]byte("y,s\n1,0.9\n0,0.1\n0,0.2\n1,0.8\n"))
	f.Add([]byte("y,s\ntrue,0.9\nfalse,NaN\n"))
	f.Add([]byte("y,s\n2,0.5\n"))
	f.Add([]byte("s,y\n"))
	f.Add([]byte("y\n1\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out, errs bytes.Buffer
		err := run(context.Background(), []string{"evaluate", "--label", "y", "--score", "s=s", "--format", "json"}, bytes.NewReader(in), &out, &errs)
		// The report is a fixed set of figures whatever the rows.
		if out.Len() > 64<<10 {
			t.Fatalf("%d input bytes gave a %d-byte report", len(in), out.Len())
		}
		_ = err
	})
}
