package stream

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current output")

// goldenReport is a fixed report: four weeks since "bad" was promoted over
// "good" (three complete, the fourth 10 days old and pending), "bad"
// ranking the converters lower than the others, a fixed detection curve
// (goldenDetection) and the post-deployment verdicts.
func goldenReport() *Report {
	s := NewState()
	rng := rand.New(rand.NewPCG(21, 22))
	start := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	// Three complete weeks of 250 leads, 12 converting: "good" ranks them
	// a little above the others, "bad" a little below.
	for w := range 3 {
		for i := range 250 {
			id := fmt.Sprintf("w%d-%d", w, i)
			contact := start.AddDate(0, 0, 7*w).Add(time.Duration(i%7)*day + time.Hour)
			converted := i < 12
			good, bad := rng.Float64(), rng.Float64()
			if converted {
				good, bad = 0.3+0.7*rng.Float64(), 0.7*rng.Float64()
			}
			pct := func(x float64) int { return min(max(int(100*x)+1, 1), 100) }
			s.AddShadow(shadow("s-"+id, id, contact.Add(-time.Hour), vs("good", good, pct(good)), vs("bad", bad, pct(bad))))
			s.AddOutcome(outcome("c-"+id, id, schemas.OutcomeContacted, contact))
			if converted {
				s.AddOutcome(outcome("k-"+id, id, schemas.OutcomeCallScheduled, contact.Add(3*day)))
			}
		}
	}
	for i := range 40 { // the open week: contacted, no outcome yet
		id := fmt.Sprint("open-", i)
		at := start.AddDate(0, 0, 21).Add(time.Duration(i%5) * day)
		s.AddShadow(shadow("s-"+id, id, at.Add(-time.Hour), vs("good", 0.5, 50), vs("bad", 0.5, 50)))
		s.AddOutcome(outcome("c-"+id, id, schemas.OutcomeContacted, at))
	}
	asOf := start.AddDate(0, 0, 21).Add(LabelWindow)
	reg, opts := testRegistry("bad", start, "bad", "good"), Options{Detection: goldenDetection()}
	rep := s.Report(asOf, reg, opts)
	rep.PostDeployment = PostDeployment(s, reg, asOf, opts)
	return rep
}

// The text report and the HTML page of goldenReport, byte for byte:
// go test ./validation/stream -run TestGolden -update rewrites them after
// a deliberate change (then read the diff).
func TestGoldenReports(t *testing.T) {
	rep := goldenReport()
	var txt, html bytes.Buffer
	if err := WriteTable(&txt, rep); err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(&html, rep, false); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		got  []byte
	}{{"report.golden.txt", txt.Bytes()}, {"report.golden.html", html.Bytes()}} {
		path := filepath.Join("testdata", f.name)
		if *update {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, f.got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(f.got, want) {
			t.Errorf("%s differs from the golden file; if the change is meant, run go test ./validation/stream -run TestGolden -update and read the diff.\ngot:\n%s", path, f.got)
		}
	}
	// What the golden files must show, so that -update cannot bless a
	// report that lost it.
	for _, want := range []string{"judged window 2025-W36..2025-W38", "40 leads pending", "FIRED", "paired on the same"} {
		if !bytes.Contains(txt.Bytes(), []byte(want)) {
			t.Errorf("text report lacks %q", want)
		}
	}
	for _, want := range []string{`<svg class="interval" data-criterion="auc"`, `data-criterion="auc_diff"`, `data-criterion="lift_diff"`, `id="pending" data-value="40"`,
		`<svg class="chart" id="detection-chart" data-periods="500"`, `data-scenario="no skill (lift 1.0)" data-rule="literal"`,
		`data-scenario="degraded to lift 1.3" data-rule="evidence"`, `each point ± at most 2.2 points (Monte-Carlo standard error)`} {
		if !bytes.Contains(html.Bytes(), []byte(want)) {
			t.Errorf("HTML report lacks %s", want)
		}
	}
}
