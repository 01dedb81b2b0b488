package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Labelled score files and the figures scikit-learn (AUC, AUC-PR) and the
// generating script (the rest) computed for them.
var evaluateTestdata = filepath.Join("..", "..", "validation", "testdata")

// evaluateExpected is one score column in validation/testdata/<name>.json.
type evaluateExpected struct {
	N                          int          `json:"n"`
	Positives                  int          `json:"positives"`
	AUC                        *float64     `json:"auc"`
	AUCPR                      *float64     `json:"auc_pr"`
	LiftByDecile               [10]*float64 `json:"lift_by_decile"`
	TopDecileConversion        *float64     `json:"top_decile_conversion"`
	Bottom20Conversion         *float64     `json:"bottom20_conversion"`
	DeprioritizationEfficiency *float64     `json:"deprioritization_efficiency"`
}

func readEvaluateExpected(t *testing.T, name string) map[string]evaluateExpected {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(evaluateTestdata, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]evaluateExpected
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	return want
}

func runEvaluateCapture(args []string, stdin string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	err := runEvaluate(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func sameFigure(got, want *float64, tol float64) bool {
	if got == nil || want == nil {
		return got == nil && want == nil
	}
	return math.Abs(*got-*want) <= tol
}

func TestEvaluateJSONMatchesScikitLearn(t *testing.T) {
	for _, name := range []string{"realistic", "all_equal"} {
		t.Run(name, func(t *testing.T) {
			want := readEvaluateExpected(t, name)
			args := []string{"--input", filepath.Join(evaluateTestdata, name+".csv"), "--label", "converted", "--format", "json"}
			for col := range want {
				args = append(args, "--score", "m_"+col+"="+col)
			}
			stdout, stderr, err := runEvaluateCapture(args, "")
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}

			// The keys are the contract: exactly these, no more.
			var raw map[string]map[string]json.RawMessage
			if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
				t.Fatalf("output is not a JSON object of objects: %v\n%s", err, stdout)
			}
			wantKeys := []string{"auc", "auc_pr", "bottom20_conversion", "deprioritization_efficiency", "lift_by_decile", "n", "positives", "top_decile_conversion"}
			if len(raw) != len(want) {
				t.Errorf("%d score objects, want %d", len(raw), len(want))
			}
			for n, obj := range raw {
				var keys []string
				for k := range obj {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				if !slices.Equal(keys, wantKeys) {
					t.Errorf("%s: keys %v, want %v", n, keys, wantKeys)
				}
			}

			var got map[string]evaluateExpected
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatal(err)
			}
			for col, w := range want {
				g, ok := got["m_"+col]
				if !ok {
					t.Errorf("no object for m_%s", col)
					continue
				}
				if g.N != w.N || g.Positives != w.Positives {
					t.Errorf("%s: n %d positives %d, want %d %d", col, g.N, g.Positives, w.N, w.Positives)
				}
				for _, f := range []struct {
					name      string
					got, want *float64
					tol       float64
				}{
					{"auc", g.AUC, w.AUC, 1e-9},
					{"auc_pr", g.AUCPR, w.AUCPR, 1e-9},
					{"top_decile_conversion", g.TopDecileConversion, w.TopDecileConversion, 1e-12},
					{"bottom20_conversion", g.Bottom20Conversion, w.Bottom20Conversion, 1e-12},
					{"deprioritization_efficiency", g.DeprioritizationEfficiency, w.DeprioritizationEfficiency, 1e-9},
				} {
					if !sameFigure(f.got, f.want, f.tol) {
						t.Errorf("%s %s = %v, want %v", col, f.name, fig(f.got), fig(f.want))
					}
				}
				for d := range 10 {
					if !sameFigure(g.LiftByDecile[d], w.LiftByDecile[d], 1e-12) {
						t.Errorf("%s decile %d lift = %v, want %v", col, d+1, fig(g.LiftByDecile[d]), fig(w.LiftByDecile[d]))
					}
				}
			}
		})
	}
}

func fig(p *float64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

func TestEvaluateTableShowsEachScoreSideBySide(t *testing.T) {
	want := readEvaluateExpected(t, "realistic")
	stdout, stderr, err := runEvaluateCapture([]string{
		"--input", filepath.Join(evaluateTestdata, "realistic.csv"), "--label", "converted",
		"--score", "v4.0.0=v40", "--score", "v4.1.0=v41",
	}, "")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	lines := strings.Split(stdout, "\n")
	find := func(prefix string) []string {
		t.Helper()
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(strings.TrimSpace(l), prefix) {
				return f
			}
		}
		t.Fatalf("no line starting %q in\n%s", prefix, stdout)
		return nil
	}
	if f := find("decile"); !slices.Equal(f, []string{"decile", "v4.0.0", "v4.1.0"}) {
		t.Errorf("lift table header %v", f)
	}
	for d := range 10 {
		f := find(fmt.Sprintf("%d ", d+1))
		wantRow := []string{fmt.Sprint(d + 1), fmt.Sprintf("%.2fx", *want["v40"].LiftByDecile[d]), fmt.Sprintf("%.2fx", *want["v41"].LiftByDecile[d])}
		if !slices.Equal(f, wantRow) {
			t.Errorf("decile %d row %v, want %v", d+1, f, wantRow)
		}
	}
	if f, w := find("AUC "), []string{"AUC", fmt.Sprintf("%.3f", *want["v40"].AUC), fmt.Sprintf("%.3f", *want["v41"].AUC)}; !slices.Equal(f, w) {
		t.Errorf("AUC row %v, want %v", f, w)
	}
	// The script's figures decide each verdict against the checklist.
	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "FAIL"
	}
	for _, tc := range []struct {
		prefix string
		pass   func(evaluateExpected) bool
	}{
		{"top-decile lift >= 2.0x", func(e evaluateExpected) bool { return *e.LiftByDecile[9] >= 2 }},
		{"AUC >= 0.60", func(e evaluateExpected) bool { return *e.AUC >= 0.6 }},
		{"bottom-20% conversion < 2%", func(e evaluateExpected) bool { return *e.Bottom20Conversion < 0.02 }},
		{"deprioritization efficiency >= 11 points", func(e evaluateExpected) bool { return *e.DeprioritizationEfficiency >= 11 }},
	} {
		f := find(tc.prefix)
		n := len(f)
		if n < 4 || f[n-4] != verdict(tc.pass(want["v40"])) || f[n-2] != verdict(tc.pass(want["v41"])) {
			t.Errorf("%q row %v, want %s for v4.0.0 and %s for v4.1.0", tc.prefix, f, verdict(tc.pass(want["v40"])), verdict(tc.pass(want["v41"])))
		}
	}
}

func TestEvaluateReadsStdinAndTrueFalseLabels(t *testing.T) {
	// Two of four convert; the converted ones score highest: lift of decile
	// 10 (the top row alone) = 1 / 0.5 = 2, AUC 1.
	in := "id,won,s\na,false,0.1\nb,FALSE,0.2\nc,true,0.3\nd,True,0.4\n"
	stdout, stderr, err := runEvaluateCapture([]string{"--label", "won", "--score", "m=s", "--format", "json"}, in)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var got map[string]evaluateExpected
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	m := got["m"]
	if m.Positives != 2 || *m.AUC != 1 || *m.LiftByDecile[9] != 2 {
		t.Errorf("positives %d, AUC %v, top lift %v; want 2, 1, 2", m.Positives, fig(m.AUC), fig(m.LiftByDecile[9]))
	}
}

func TestEvaluateRefuses(t *testing.T) {
	good := "id,y,s\na,0,0.1\nb,1,0.9\n"
	missing := filepath.Join(t.TempDir(), "absent.csv")
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		want  string // in the error
	}{
		{"the label column must be named", []string{"--score", "m=s"}, good, "--label is required"},
		{"at least one score is needed", []string{"--label", "y"}, good, "at least one --score"},
		{"a score is NAME=COLUMN", []string{"--label", "y", "--score", "s"}, good, `"s" is not NAME=COLUMN`},
		{"a score needs a name", []string{"--label", "y", "--score", "=s"}, good, `"=s" is not NAME=COLUMN`},
		{"a score name is given once", []string{"--label", "y", "--score", "m=s", "--score", "m=id"}, good, `score name "m" given twice`},
		{"the format is table or json", []string{"--label", "y", "--score", "m=s", "--format", "csv"}, good, `--format "csv" is not table or json`},
		{"no stray arguments", []string{"--label", "y", "--score", "m=s", "extra"}, good, "unexpected arguments"},
		{"the input file must exist", []string{"--input", missing, "--label", "y", "--score", "m=s"}, "", "--input: open"},
		{"the input needs a header", []string{"--label", "y", "--score", "m=s"}, "", "empty, want a header row"},
		{"the input needs rows", []string{"--label", "y", "--score", "m=s"}, "id,y,s\n", "no rows after the header"},
		{"a header names a column once", []string{"--label", "y", "--score", "m=s"}, "y,s,y\n0,1,0\n", `column "y" appears twice`},
		{"the label column must exist", []string{"--label", "label", "--score", "m=s"}, good, `--label column "label" is not in the header`},
		{"every score column must exist", []string{"--label", "y", "--score", "m=s", "--score", "n=t"}, good, `--score n: column "t" is not in the header`},
		{"a label is 0, 1, true or false", []string{"--label", "y", "--score", "m=s"}, "id,y,s\na,0,0.1\nb,yes,0.2\n", `row 2 (line 3) column "y": label "yes" is not 0, 1, true or false`},
		{"an empty label is not 0", []string{"--label", "y", "--score", "m=s"}, "id,y,s\na,,0.1\n", `row 1 (line 2) column "y": label ""`},
		{"a score is a number", []string{"--label", "y", "--score", "m=s"}, "id,y,s\na,0,0.1\nb,1,high\n", `row 2 (line 3) column "s": score "high" is not a finite number`},
		{"an empty score is not a number", []string{"--label", "y", "--score", "m=s"}, "id,y,s\na,0,\n", `row 1 (line 2) column "s": score ""`},
		{"a NaN score is refused", []string{"--label", "y", "--score", "m=s"}, "id,y,s\na,0,NaN\n", `column "s": score "NaN" is not a finite number`},
		{"an infinite score is refused", []string{"--label", "y", "--score", "m=s"}, "id,y,s\na,0,+Inf\n", `column "s": score "+Inf" is not a finite number`},
		{"the second score column is checked too", []string{"--label", "y", "--score", "m=s", "--score", "n=id"}, good, `column "id": score "a"`},
		{"every row has every column", []string{"--label", "y", "--score", "m=s"}, "id,y,s\na,0\n", "wrong number of fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, _, err := runEvaluateCapture(tc.args, tc.stdin)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "evaluate: ") {
				t.Errorf("error %q does not name the command", err)
			}
			if stdout != "" {
				t.Errorf("wrote %q to stdout on error", stdout)
			}
		})
	}
}

func TestEvaluateHelpIsNotAnError(t *testing.T) {
	_, stderr, err := runEvaluateCapture([]string{"--help"}, "")
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr, "usage: leadscorer evaluate") {
		t.Errorf("--help: error %v, stderr %q", err, stderr)
	}
}
