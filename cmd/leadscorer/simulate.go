package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/service"
	"github.com/leadscorer/leadscorer/validation"
)

// runSimulate is `leadscorer validate simulate`: how often and how soon
// the checklist's criteria read literally and the configured evidence rule
// roll a model version back, in simulated parallel-validation periods
// (validation.SimulateRollback; docs/VALIDATION.md).
func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: leadscorer validate simulate [flags]

Simulates parallel-validation periods of weekly cohorts drawn from a labelled
test set, for a version performing as validated, with no skill and degraded to
a top-decile lift of 1.3, and prints how often the literal rules and the
configured evidence rule (the rollback_* settings) roll it back, with
Monte-Carlo standard errors and the rule's targets (docs/VALIDATION.md).

flags:
`)
		fs.PrintDefaults()
	}
	periods := fs.Int("periods", 2000, "simulated periods per scenario (the standard error of a share p is sqrt(p(1-p)/periods))")
	weeks := fs.Int("weeks", 8, "complete weeks in a period (1..52)")
	leadsPerWeek := fs.Int("leads-per-week", 370, "contacted leads in a weekly cohort")
	seed := fs.Uint64("seed", 1, "random seed: the same seed gives the same table")
	testSet := fs.String("test-set", "", "CSV of labelled leads scored by both versions (contact_date, baseline score, production score, converted 0 or 1); default: the embedded test set")
	format := fs.String("format", "table", "output: table or json")
	cfgFlags := config.Bind(fs, 0, rollbackRuleKeys...)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *periods < 1 || *periods > 1_000_000:
		return fmt.Errorf("validate simulate: --periods must be in 1..1000000, not %d", *periods)
	case *weeks < 1 || *weeks > 52:
		return fmt.Errorf("validate simulate: --weeks must be in 1..52, not %d", *weeks)
	case *leadsPerWeek < 10 || *leadsPerWeek > 1_000_000:
		return fmt.Errorf("validate simulate: --leads-per-week must be in 10..1000000, not %d", *leadsPerWeek)
	case *format != "table" && *format != "json":
		return fmt.Errorf("validate simulate: --format must be table or json, not %q", *format)
	}
	cfg, err := cfgFlags.Load(os.Getenv)
	if err != nil {
		return err
	}
	pool, name := []validation.PairedLead(nil), validation.ParallelTestSetName
	if *testSet == "" {
		pool, err = validation.ParallelTestSet()
	} else {
		pool, err = validation.LoadPairedTestSet(*testSet)
		name = *testSet
	}
	if err != nil {
		return err
	}
	if len(pool) < 100 {
		return fmt.Errorf("validate simulate: the test set has %d leads; resampling needs at least 100", len(pool))
	}
	fmt.Fprintf(stderr, "simulating %d periods of %d weeks for each of 3 scenarios...\n", *periods, *weeks)
	tab, err := validation.SimulateRollbackContext(ctx, validation.SimConfig{Leads: pool, Periods: *periods, Weeks: *weeks,
		LeadsPerWeek: *leadsPerWeek, Seed: *seed, Rule: service.RollbackRule(cfg)})
	if err != nil {
		return err
	}
	tab.TestSet = name
	if *format == "table" {
		return tab.Write(stdout)
	}
	out := struct {
		validation.Table
		Targets []validation.TargetCheck `json:"targets"`
	}{tab, append(tab.Check("evidence"), tab.Check("literal")...)}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return errors.Join(errors.New("validate simulate: JSON"), err)
	}
	return nil
}
