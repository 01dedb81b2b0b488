package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/leadscorer/leadscorer/validation"
)

func init() {
	register("evaluate", "measure scores against conversion labels: lift by decile, AUC, AUC-PR and the checklist targets", runEvaluate)
}

const evaluateUsage = `usage: leadscorer evaluate --label COLUMN --score NAME=COLUMN [--score NAME=COLUMN ...] [--input FILE] [--format table|json]

Reads a CSV with a header, one row per lead: a label column (0/1 or
true/false: did the lead convert) and one or more score columns, and reports
for each score the figures docs/METRICS.md defines: lift by decile (decile 1
= lowest scores), ROC AUC, AUC-PR, top-decile and bottom-20% conversion and
deprioritization efficiency, with the deployment checklist's targets
(top-decile lift >= 2.0x, AUC >= 0.60, bottom-20% conversion < 2%,
efficiency >= 11 points). Other columns are ignored.

--format json writes one object keyed by NAME, each with n, positives, auc,
auc_pr, lift_by_decile (10 numbers, decile 1 first), top_decile_conversion,
bottom20_conversion (fractions) and deprioritization_efficiency (points);
an undefined figure is null.

`

// evaluateScores is the repeatable --score NAME=COLUMN flag.
type evaluateScores []evaluateScore

type evaluateScore struct{ name, column string }

func (s *evaluateScores) String() string {
	parts := make([]string, len(*s))
	for i, e := range *s {
		parts[i] = e.name + "=" + e.column
	}
	return strings.Join(parts, ",")
}

func (s *evaluateScores) Set(v string) error {
	name, column, ok := strings.Cut(v, "=")
	name, column = strings.TrimSpace(name), strings.TrimSpace(column)
	if !ok || name == "" || column == "" {
		return fmt.Errorf("%q is not NAME=COLUMN", v)
	}
	for _, e := range *s {
		if e.name == name {
			return fmt.Errorf("score name %q given twice", name)
		}
	}
	*s = append(*s, evaluateScore{name: name, column: column})
	return nil
}

// runEvaluate is the evaluate subcommand.
func runEvaluate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("evaluate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, evaluateUsage); fs.PrintDefaults() }
	input := fs.String("input", "-", "CSV file to read; - reads stdin")
	label := fs.String("label", "", "column holding the conversion label, 0/1 or true/false (required)")
	var scores evaluateScores
	fs.Var(&scores, "score", "NAME=COLUMN: report the score in COLUMN as NAME; repeat to compare scores side by side (at least one)")
	format := fs.String("format", "table", "output format: table or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("evaluate: %w", err)
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("evaluate: unexpected arguments %q", fs.Args())
	case *label == "":
		fs.Usage()
		return errors.New("evaluate: --label is required")
	case len(scores) == 0:
		fs.Usage()
		return errors.New("evaluate: at least one --score NAME=COLUMN is required")
	case *format != "table" && *format != "json":
		return fmt.Errorf("evaluate: --format %q is not table or json", *format)
	}

	in := stdin
	if *input != "-" {
		f, err := os.Open(*input)
		if err != nil {
			return fmt.Errorf("evaluate: --input: %w", err)
		}
		defer f.Close()
		in = f
	}
	rows, err := evaluateRead(ctx, in, *label, scores)
	if err != nil {
		return fmt.Errorf("evaluate: input: %w", err)
	}
	stats := make([]validation.Stats, len(scores))
	for i, s := range scores {
		if stats[i], err = validation.Compute(rows[i]); err != nil {
			return fmt.Errorf("evaluate: --score %s: %w", s.name, err)
		}
	}
	if *format == "json" {
		err = evaluateJSON(stdout, scores, stats)
	} else {
		err = evaluateTable(stdout, scores, stats)
	}
	if err != nil {
		return fmt.Errorf("evaluate: writing: %w", err)
	}
	return nil
}

// evaluateRead reads the label and every score column, one []Row per score.
// Errors name the data row (1 = the first after the header), its line in
// the file and the column.
func evaluateRead(ctx context.Context, in io.Reader, label string, scores evaluateScores) ([][]validation.Row, error) {
	r := csv.NewReader(in)
	r.ReuseRecord = true
	header, err := r.Read()
	if err == io.EOF {
		return nil, errors.New("empty, want a header row naming the columns")
	}
	if err != nil {
		return nil, err
	}
	header = append([]string(nil), header...) // the reader reuses its record
	at := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if _, dup := at[h]; dup {
			return nil, fmt.Errorf("column %q appears twice in the header", h)
		}
		at[h] = i
	}
	labelCol, ok := at[label]
	if !ok {
		return nil, fmt.Errorf("--label column %q is not in the header (%s)", label, strings.Join(header, ", "))
	}
	scoreCols := make([]int, len(scores))
	for i, s := range scores {
		c, ok := at[s.column]
		if !ok {
			return nil, fmt.Errorf("--score %s: column %q is not in the header (%s)", s.name, s.column, strings.Join(header, ", "))
		}
		scoreCols[i] = c
	}

	rows := make([][]validation.Row, len(scores))
	for row := 1; ; row++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if row%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		line, _ := r.FieldPos(labelCol)
		converted, err := evaluateLabel(rec[labelCol])
		if err != nil {
			return nil, fmt.Errorf("row %d (line %d) column %q: %w", row, line, header[labelCol], err)
		}
		for i, c := range scoreCols {
			v, err := strconv.ParseFloat(strings.TrimSpace(rec[c]), 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("row %d (line %d) column %q: score %q is not a finite number", row, line, header[c], rec[c])
			}
			rows[i] = append(rows[i], validation.Row{Score: v, Converted: converted})
		}
	}
	if len(rows[0]) == 0 {
		return nil, errors.New("no rows after the header")
	}
	return rows, nil
}

// evaluateLabel reads a label cell: 1 or true converted, 0 or false did not.
func evaluateLabel(cell string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(cell)) {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, fmt.Errorf("label %q is not 0, 1, true or false", cell)
}

// evaluateFloat is a figure in the JSON output: null when undefined (NaN),
// since JSON has no NaN.
type evaluateFloat float64

func (f evaluateFloat) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(f))
}

// evaluateResult is one score's object in the JSON output.
type evaluateResult struct {
	N                          int               `json:"n"`
	Positives                  int               `json:"positives"`
	AUC                        evaluateFloat     `json:"auc"`
	AUCPR                      evaluateFloat     `json:"auc_pr"`
	LiftByDecile               [10]evaluateFloat `json:"lift_by_decile"`
	TopDecileConversion        evaluateFloat     `json:"top_decile_conversion"`
	Bottom20Conversion         evaluateFloat     `json:"bottom20_conversion"`
	DeprioritizationEfficiency evaluateFloat     `json:"deprioritization_efficiency"`
}

func evaluateJSON(w io.Writer, scores evaluateScores, stats []validation.Stats) error {
	out := make(map[string]evaluateResult, len(scores))
	for i, s := range stats {
		res := evaluateResult{
			N:                          s.N,
			Positives:                  s.Positives,
			AUC:                        evaluateFloat(s.AUC),
			AUCPR:                      evaluateFloat(s.AUCPR),
			TopDecileConversion:        evaluateFloat(s.TopDecileConversion),
			Bottom20Conversion:         evaluateFloat(s.Bottom20Conversion),
			DeprioritizationEfficiency: evaluateFloat(s.DeprioritizationEfficiency),
		}
		for d, l := range s.LiftByDecile {
			res.LiftByDecile[d] = evaluateFloat(l)
		}
		out[scores[i].name] = res
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// evaluateTable writes the lift table with one column per score, the
// summary figures, then the checklist targets with PASS or FAIL.
func evaluateTable(w io.Writer, scores evaluateScores, stats []validation.Stats) error {
	// Figures align right; labels are padded to one width so that they
	// read left-aligned in every section.
	const labelWidth = 40
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(label string, cell func(s validation.Stats) string) {
		fmt.Fprintf(tw, "%-*s\t", labelWidth, label)
		for _, s := range stats {
			fmt.Fprint(tw, cell(s), "\t")
		}
		fmt.Fprintln(tw)
	}
	figure := func(format string, v float64) string {
		if math.IsNaN(v) {
			return "n/a"
		}
		return fmt.Sprintf(format, v)
	}
	header := func(title string) {
		fmt.Fprintf(tw, "%-*s\t", labelWidth, title)
		for _, s := range scores {
			fmt.Fprint(tw, s.name, "\t")
		}
		fmt.Fprintln(tw)
	}

	fmt.Fprintln(tw, "lift by decile (decile 1 = lowest scores; conversion rate of the decile / overall rate)")
	header("decile")
	for d := range 10 {
		row(strconv.Itoa(d+1), func(s validation.Stats) string {
			if s.CountByDecile[d] == 0 {
				return "empty"
			}
			return figure("%.2fx", s.LiftByDecile[d])
		})
	}
	fmt.Fprintln(tw)
	header("")
	row("rows", func(s validation.Stats) string { return strconv.Itoa(s.N) })
	row("conversions", func(s validation.Stats) string {
		return fmt.Sprintf("%d (%.2f%%)", s.Positives, 100*s.ConversionRate)
	})
	row("AUC", func(s validation.Stats) string { return figure("%.3f", s.AUC) })
	row("AUC-PR", func(s validation.Stats) string { return figure("%.4f", s.AUCPR) })
	row("top-decile conversion", func(s validation.Stats) string { return figure("%.2f%%", 100*s.TopDecileConversion) })
	row("bottom-20% conversion", func(s validation.Stats) string { return figure("%.2f%%", 100*s.Bottom20Conversion) })
	row("deprioritization efficiency (points)", func(s validation.Stats) string {
		return figure("%.1f", s.DeprioritizationEfficiency)
	})
	fmt.Fprintln(tw)

	header("checklist target")
	for t := range validation.Checks(validation.Stats{}) {
		label := validation.Checks(stats[0])[t].Target
		row(label, func(s validation.Stats) string {
			c := validation.Checks(s)[t]
			verdict := "FAIL"
			if c.Pass {
				verdict = "PASS"
			}
			return verdict + " " + c.Measured()
		})
	}
	return tw.Flush()
}
