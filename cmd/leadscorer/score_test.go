package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The scoring package's test model and XGBoost's own outputs for it.
var (
	scoreTestModel = filepath.Join("..", "..", "scoring", "testdata", "xgboost", "logistic.json")
	scoreTestRows  = filepath.Join("..", "..", "scoring", "testdata", "xgboost", "logistic.csv")
	scoreTestLGBM  = filepath.Join("..", "..", "scoring", "testdata", "lightgbm", "lg_dart_breast_cancer.model")
)

func readCSV(t *testing.T, b []byte) ([]string, []map[string]string) {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("output is not CSV: %v\n%s", err, b)
	}
	var rows []map[string]string
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = rec[i]
		}
		rows = append(rows, m)
	}
	return recs[0], rows
}

// reversedColumns returns the CSV file with its columns in reverse order:
// the command must find features by name, not position.
func reversedColumns(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w := csv.NewWriter(&out)
	for _, rec := range recs {
		for i, j := 0, len(rec)-1; i < j; i, j = i+1, j-1 {
			rec[i], rec[j] = rec[j], rec[i]
		}
		_ = w.Write(rec)
	}
	w.Flush()
	return out.Bytes()
}

func num(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return v
}

func TestScoreWithModelFileMatchesXGBoost(t *testing.T) {
	in := reversedColumns(t, scoreTestRows)
	var stdout, stderr bytes.Buffer
	err := runScore(context.Background(), []string{"--model", scoreTestModel, "--explain"}, bytes.NewReader(in), &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	header, rows := readCSV(t, stdout.Bytes())
	inHeader, _ := readCSV(t, in)
	if got := strings.Join(header[:len(inHeader)], ","); got != strings.Join(inHeader, ",") {
		t.Fatalf("input columns not kept first and in order: %s", got)
	}
	features := []string{"tenure_months", "mobility_3yr", "is_wirehouse", "has_email", "firm_net_change_12mo", "days_since_last_move", "experience_years"}
	wantTail := []string{"score"}
	for _, f := range features {
		wantTail = append(wantTail, "shap_"+f)
	}
	wantTail = append(wantTail, "shap_bias")
	if got := strings.Join(header[len(inHeader):], ","); got != strings.Join(wantTail, ",") {
		t.Fatalf("added columns %s, want %s", got, strings.Join(wantTail, ","))
	}
	if len(rows) < 100 {
		t.Fatalf("%d rows out", len(rows))
	}
	for i, r := range rows {
		if d := math.Abs(num(t, r["score"]) - num(t, r["prediction"])); d > 1e-6 {
			t.Fatalf("row %d: score %s, XGBoost %s", i+1, r["score"], r["prediction"])
		}
		for _, f := range append(features, "bias") {
			if d := math.Abs(num(t, r["shap_"+f]) - num(t, r["contrib_"+f])); d > 1e-5 {
				t.Fatalf("row %d: shap_%s %s, XGBoost %s", i+1, f, r["shap_"+f], r["contrib_"+f])
			}
		}
	}
}

// writeScoreRegistry writes a registry with the test model as production
// and returns its path and cut points.
func writeScoreRegistry(t *testing.T) (string, []float64) {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(scoreTestModel)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	cuts := make([]float64, 99)
	for k := range cuts {
		cuts[k] = float64(k+1) / 100
	}
	reg := map[string]any{
		"versions": []any{map[string]any{
			"version": "v4.1.0", "role": "production", "format": "xgboost-json", "path": "model.json",
			"sha256":     hex.EncodeToString(sum[:]),
			"features":   []string{"tenure_months", "mobility_3yr", "is_wirehouse", "has_email", "firm_net_change_12mo", "days_since_last_move", "experience_years"},
			"thresholds": map[string]any{"deprioritize_percentile": 20, "upgrade_percentile": 80},
			"reference":  map[string]any{"cut_points": cuts},
		}},
		"history": []any{},
	}
	rb, _ := json.Marshal(reg)
	p := filepath.Join(dir, "registry.json")
	if err := os.WriteFile(p, rb, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, cuts
}

func TestScoreWithRegistryAddsPercentileAndDeprioritize(t *testing.T) {
	reg, cuts := writeScoreRegistry(t)
	var stdout, stderr bytes.Buffer
	if err := runScore(context.Background(), []string{"--registry", reg, "--input", scoreTestRows}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	_, rows := readCSV(t, stdout.Bytes())
	low := 0
	for i, r := range rows {
		s := num(t, r["score"])
		want := 1
		for _, c := range cuts {
			if s >= c {
				want++
			}
		}
		if got := r["percentile"]; got != strconv.Itoa(want) {
			t.Fatalf("row %d score %v: percentile %s, want %d", i+1, s, got, want)
		}
		if got, wantD := r["deprioritize"], strconv.FormatBool(want <= 20); got != wantD {
			t.Fatalf("row %d percentile %d: deprioritize %s, want %s", i+1, want, got, wantD)
		}
		if want <= 20 {
			low++
		}
	}
	if low == 0 || low == len(rows) {
		t.Fatalf("%d of %d rows deprioritized: the test does not exercise both outcomes", low, len(rows))
	}
}

func TestScoreRefuses(t *testing.T) {
	reg, _ := writeScoreRegistry(t)
	good := "tenure_months,mobility_3yr,is_wirehouse,has_email,firm_net_change_12mo,days_since_last_move,experience_years,lead_id\n" +
		"12,1,0,1,-3,400,7.5,00Q1\n"
	for _, tc := range []struct {
		name    string
		args    []string
		input   string
		wantErr string
	}{
		{"missing feature columns", []string{"--model", scoreTestModel},
			"tenure_months,mobility_3yr,is_wirehouse,has_email,experience_years\n1,2,0,1,3\n",
			"missing feature columns firm_net_change_12mo, days_since_last_move"},
		{"non-numeric cell", []string{"--model", scoreTestModel},
			good + "12,two,0,1,-3,400,7.5,00Q2\n", `input row 2 column "mobility_3yr": "two" is not a number`},
		{"rows of uneven length", []string{"--model", scoreTestModel}, good + "1,2\n", "wrong number of fields"},
		{"empty input", []string{"--model", scoreTestModel}, "", "input: empty"},
		{"neither model nor registry", nil, good, "--model or --registry is required"},
		{"both model and registry", []string{"--model", scoreTestModel, "--registry", reg}, good, "exclude each other"},
		{"version without registry", []string{"--model", scoreTestModel, "--version", "v4.1.0"}, good, "--version needs --registry"},
		{"unknown version", []string{"--registry", reg, "--version", "v9"}, good, `--version "v9" is not in`},
		{"unknown format", []string{"--model", scoreTestModel, "--format", "onnx"}, good, `--format "onnx" is not`},
		{"explain a model that cannot", []string{"--model", scoreTestLGBM, "--format", "lightgbm-text", "--explain"}, good, "--explain: scoring: model cannot compute feature contributions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runScore(context.Background(), tc.args, strings.NewReader(tc.input), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestScoreEmptyCellIsMissing(t *testing.T) {
	in := "tenure_months,mobility_3yr,is_wirehouse,has_email,firm_net_change_12mo,days_since_last_move,experience_years\n" +
		",,,,,,\n" +
		"NaN,NaN,NaN,NaN,NaN,NaN,NaN\n"
	var stdout, stderr bytes.Buffer
	if err := runScore(context.Background(), []string{"--model", scoreTestModel}, strings.NewReader(in), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	_, rows := readCSV(t, stdout.Bytes())
	// XGBoost's score for an all-missing row is in the test data's last row.
	b, _ := os.ReadFile(scoreTestRows)
	_, ref := readCSV(t, b)
	want := ref[len(ref)-1]
	if want["tenure_months"] != "" {
		t.Fatal("the test data's last row is not all missing")
	}
	for i, r := range rows {
		if math.Abs(num(t, r["score"])-num(t, want["prediction"])) > 1e-6 {
			t.Errorf("row %d: score %s, XGBoost scores an all-missing row %s", i+1, r["score"], want["prediction"])
		}
	}
}
