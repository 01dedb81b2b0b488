package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/internal/testenv"
	"github.com/leadscorer/leadscorer/validation"
)

// validate is a group: alone it runs the validator, whose --help names the
// simulate action; an unknown action is refused rather than taken for the
// validator's arguments.
func TestValidateHelpListsSimulate(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"validate", "--help"}, nil, &out, &errb); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("validate --help: %v", err)
	}
	help := out.String() + errb.String()
	for _, want := range []string{"leadscorer validate simulate [flags]", "  -auto-rollback", "  -rollback-confidence"} {
		if !strings.Contains(help, want) {
			t.Errorf("validate --help lacks %q:\n%s", want, help)
		}
	}
	out.Reset()
	errb.Reset()
	if err := run(context.Background(), []string{"validate", "simulate", "--help"}, nil, &out, &errb); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("validate simulate --help: %v", err)
	}
	help = out.String() + errb.String()
	for _, want := range []string{"  -periods", "  -weeks", "  -leads-per-week", "  -seed", "  -test-set", "  -format", "  -rollback-auc-confidence"} {
		if !strings.Contains(help, want) {
			t.Errorf("validate simulate --help lacks %s:\n%s", want, help)
		}
	}
	if strings.Contains(help, "  -brokers") || strings.Contains(help, "  -auto-rollback") {
		t.Errorf("validate simulate --help lists settings it does not use:\n%s", help)
	}
	err := run(context.Background(), []string{"validate", "simualte"}, nil, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), `unknown action "simualte"`) {
		t.Errorf("validate simualte: %v, want an unknown action", err)
	}
}

type simOutput struct {
	validation.Table
	Targets []validation.TargetCheck `json:"targets"`
}

func simulate(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"validate", "simulate"}, args...), nil, &out, &errb)
	return out.String(), err
}

// validate simulate runs the simulation with the rollback settings, on the
// embedded test set by default (no file of the source tree is read), and
// prints the table or JSON with the targets.
func TestValidateSimulate(t *testing.T) {
	t.Chdir(t.TempDir()) // no parallel_test_set.csv within reach
	js, err := simulate(t, "--periods", "30", "--weeks", "3", "--seed", "7", "--format", "json", "--rollback-auc-confidence", "0.9")
	if err != nil {
		t.Fatal(err)
	}
	var got simOutput
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	if got.Periods != 30 || got.Weeks != 3 || got.LeadsPerWeek != 370 || got.Seed != 7 {
		t.Errorf("table of %d periods, %d weeks, %d leads, seed %d: want the flags' 30, 3, 370, 7", got.Periods, got.Weeks, got.LeadsPerWeek, got.Seed)
	}
	if got.PoolLeads != 3437 || got.TestSet != validation.ParallelTestSetName {
		t.Errorf("test set %q of %d leads, want the embedded one of 3437", got.TestSet, got.PoolLeads)
	}
	if !strings.Contains(got.Rule, "(AUC 90%)") {
		t.Errorf("rule %q does not have the configured AUC confidence", got.Rule)
	}
	if len(got.Rows) != 6 {
		t.Fatalf("%d rows, want 3 scenarios x 2 rules", len(got.Rows))
	}
	for _, r := range got.Rows {
		if len(r.Within) != 3 || len(r.MCSE) != 3 {
			t.Errorf("%s %s: %d weeks of shares, %d standard errors; want 3", r.Scenario, r.Rule, len(r.Within), len(r.MCSE))
		}
	}
	if len(got.Targets) != 6 || got.Targets[0].Simulated || !got.Targets[1].Simulated {
		t.Errorf("targets %+v: want 3 per rule, the 8-week one not simulated in 3 weeks, the 3-week one simulated", got.Targets)
	}

	// The same seed, the same table; the table format says the same.
	again, err := simulate(t, "--periods", "30", "--weeks", "3", "--seed", "7", "--format", "json", "--rollback-auc-confidence", "0.9")
	if err != nil || again != js {
		t.Errorf("a second run with the same seed differs (%v)", err)
	}
	txt, err := simulate(t, "--periods", "30", "--weeks", "3", "--seed", "7", "--rollback-auc-confidence", "0.9")
	if err != nil {
		t.Fatal(err)
	}
	noSkill := got.Row(validation.ScenarioNoSkill, "evidence")
	want := fmt.Sprintf("%5.1f%% ± %.1f", 100*noSkill.Within[2], 100*noSkill.MCSE[2])
	for _, w := range []string{"30 periods of 3 weeks x 370 leads", "rolled back within 3 wk", want, "not simulated", "(AUC 90%)"} {
		if !strings.Contains(txt, w) {
			t.Errorf("table lacks %q:\n%s", w, txt)
		}
	}
}

// --test-set replaces the embedded test set; a bad one is refused.
func TestValidateSimulateTestSetFile(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString("contact_date,score_v4.0.0,score_v4.1.0,converted\n")
	for i := range 300 {
		conv := 0
		if i%10 == 0 {
			conv = 1
		}
		fmt.Fprintf(&b, "2025-09-01,%g,%g,%d\n", rng.Float64(), rng.Float64()+0.3*float64(conv), conv)
	}
	file := filepath.Join(dir, "set.csv")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	txt, err := simulate(t, "--periods", "5", "--weeks", "2", "--test-set", file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(txt, "test set: "+file+", 300 leads, 30 converted") {
		t.Errorf("the table does not say it resampled %s:\n%s", file, txt)
	}
	short := filepath.Join(dir, "short.csv")
	if err := os.WriteFile(short, []byte("contact_date,a,b,converted\n2025-09-01,0.1,0.2,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--test-set", short}, "resampling needs at least 100"},
		{[]string{"--test-set", filepath.Join(dir, "missing.csv")}, "missing.csv"},
		{[]string{"--format", "yaml"}, "--format must be table or json"},
		{[]string{"--weeks", "0"}, "--weeks must be in 1..52"},
		{[]string{"--rollback-confidence", "1.2"}, "rollback_confidence (from flag --rollback-confidence)"},
	} {
		if _, err := simulate(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validate simulate %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// report --html plots the detection curve of the configured rule (even
// before there is data to judge); without --html nothing is simulated.
func TestReportHTMLHasTheDetectionCurve(t *testing.T) {
	k := testenv.NewKafka(t)
	cfg := config.Default()
	k.Configure(cfg)
	out := filepath.Join(t.TempDir(), "report.html")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"report", "--brokers", strings.Join(k.Brokers, ","), "--schema-registry", k.RegistryURL,
		"--topic-shadow", cfg.TopicShadow, "--topic-outcomes", cfg.TopicOutcomes,
		"--registry", "../../models/registry.json", "--html", out, "--rollback-auc-confidence", "0.9"}, nil, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<svg class="chart" id="detection-chart" data-periods="500"`, `(AUC 90%); solid lines)`,
		`data-scenario="as validated" data-rule="evidence"`, `class="mc-error"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the HTML report lacks %s", want)
		}
	}
}
