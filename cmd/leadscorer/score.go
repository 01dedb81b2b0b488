package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/leadscorer/leadscorer/scoring"
)

func init() {
	register("score", "score a CSV of feature rows offline with a model file or a registry version", runScore)
}

const scoreUsage = `usage: leadscorer score (--model FILE [--format F] | --registry FILE [--version V]) [--input FILE] [--explain]

Reads a CSV whose header names the model's features (any order; other
columns are kept) and writes it to stdout with a score column; with a
registry also percentile and deprioritize; with --explain one shap_<feature>
column per model feature and shap_bias (they sum to the margin). An empty
cell is a missing value.

`

// runScore is the score subcommand.
func runScore(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("score", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, scoreUsage); fs.PrintDefaults() }
	modelPath := fs.String("model", "", "model file to score with (instead of --registry)")
	format := fs.String("format", scoring.FormatXGBoostJSON, "format of --model: xgboost-json or lightgbm-text")
	registryPath := fs.String("registry", "", "registry file (models/registry.json) to take the model from (instead of --model)")
	versionName := fs.String("version", "", "registry version to score with; default the production version")
	input := fs.String("input", "-", "CSV file to score; - reads stdin")
	explain := fs.Bool("explain", false, "add one shap_<feature> column per model feature and shap_bias")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("score: unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var (
		model   scoring.Model
		version *scoring.Version
	)
	switch {
	case *modelPath != "" && *registryPath != "":
		return errors.New("score: --model and --registry exclude each other")
	case *modelPath != "":
		if set["version"] {
			return errors.New("score: --version needs --registry")
		}
		m, err := loadModelFile(*modelPath, *format)
		if err != nil {
			return fmt.Errorf("score: --model %s: %w", *modelPath, err)
		}
		model = m
	case *registryPath != "":
		if set["format"] {
			return errors.New("score: --format applies to --model; a registry names each version's format")
		}
		reg, err := scoring.LoadRegistry(*registryPath)
		if err != nil {
			return fmt.Errorf("score: %w", err)
		}
		version = reg.Production()
		if *versionName != "" {
			v, ok := reg.Version(*versionName)
			if !ok {
				return fmt.Errorf("score: --version %q is not in %s", *versionName, *registryPath)
			}
			version = v
		}
		if version.Model == nil {
			return fmt.Errorf("score: --version %q is %s; its model is not loaded", version.Name, version.Role)
		}
		model = version.Model
	default:
		fs.Usage()
		return errors.New("score: --model or --registry is required")
	}

	features := model.FeatureNames()
	contrib := make([]float64, len(features)+1)
	if *explain {
		probe := make([]float64, len(features))
		for i := range probe {
			probe[i] = math.NaN()
		}
		if err := model.Contributions(probe, contrib); err != nil {
			return fmt.Errorf("score: --explain: %w", err)
		}
	}

	in := stdin
	if *input != "-" {
		f, err := os.Open(*input)
		if err != nil {
			return fmt.Errorf("score: --input: %w", err)
		}
		defer f.Close()
		in = f
	}
	r := csv.NewReader(in)
	r.ReuseRecord = true
	header, err := r.Read()
	if err == io.EOF {
		return errors.New("score: input: empty, want a header row naming the features")
	}
	if err != nil {
		return fmt.Errorf("score: input: %w", err)
	}
	header = append([]string(nil), header...)
	cols, err := featureColumns(header, features)
	if err != nil {
		return fmt.Errorf("score: input: %w", err)
	}

	w := csv.NewWriter(stdout)
	out := append([]string(nil), header...)
	out = append(out, "score")
	if version != nil {
		out = append(out, "percentile", "deprioritize")
	}
	if *explain {
		for _, f := range features {
			out = append(out, "shap_"+f)
		}
		out = append(out, "shap_bias")
	}
	if err := w.Write(out); err != nil {
		return fmt.Errorf("score: writing: %w", err)
	}

	x := make([]float64, len(features))
	for row := 1; ; row++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("score: input: %w", err)
		}
		if row%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("score: %w", err)
			}
		}
		for i, c := range cols {
			s := strings.TrimSpace(rec[c])
			if s == "" {
				x[i] = math.NaN()
				continue
			}
			if x[i], err = strconv.ParseFloat(s, 64); err != nil {
				return fmt.Errorf("score: input row %d column %q: %q is not a number", row, header[c], rec[c])
			}
		}
		score := model.Score(x)
		out = append(out[:0], rec...)
		out = append(out, formatFloat(score))
		if version != nil {
			p := version.Percentile(score)
			out = append(out, strconv.Itoa(p), strconv.FormatBool(version.Deprioritize(p)))
		}
		if *explain {
			if err := model.Contributions(x, contrib); err != nil {
				return fmt.Errorf("score: input row %d: explaining: %w", row, err)
			}
			for _, v := range contrib {
				out = append(out, formatFloat(v))
			}
		}
		if err := w.Write(out); err != nil {
			return fmt.Errorf("score: writing: %w", err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("score: writing: %w", err)
	}
	return nil
}

func loadModelFile(path, format string) (scoring.Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	switch format {
	case scoring.FormatXGBoostJSON:
		return scoring.LoadXGBoostJSON(f)
	case scoring.FormatLightGBMText:
		return scoring.LoadLightGBM(f)
	default:
		return nil, fmt.Errorf("--format %q is not %s or %s", format, scoring.FormatXGBoostJSON, scoring.FormatLightGBMText)
	}
}

// featureColumns finds the column of every model feature in the header.
func featureColumns(header, features []string) ([]int, error) {
	at := map[string]int{}
	for i, h := range header {
		if _, dup := at[h]; dup {
			return nil, fmt.Errorf("column %q appears twice in the header", h)
		}
		at[h] = i
	}
	cols := make([]int, len(features))
	var missing []string
	for i, f := range features {
		c, ok := at[f]
		if !ok {
			missing = append(missing, f)
		}
		cols[i] = c
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing feature columns %s (the model needs %s)", strings.Join(missing, ", "), strings.Join(features, ", "))
	}
	return cols, nil
}

// formatFloat writes the shortest text that reads back as exactly v.
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
