package validation

import (
	"context"
	"errors"
	"flag"
	"math"
	"os"
	"reflect"
	"testing"
)

var tradeOff = flag.Bool("tradeoff", false, "TestRollbackTradeOff: print the confidence and volume trade-off tables (a minute)")

// simPeriods is the number of periods of the table's simulation: the
// Monte-Carlo standard error of a share p is sqrt(p(1-p)/2000), 0.49
// points at p = 5% and 0.67 points at p = 90%.
const simPeriods = 2000

func simTable(t *testing.T) Table {
	t.Helper()
	pool, err := ParallelTestSet()
	if err != nil {
		t.Fatal(err)
	}
	return SimulateRollback(SimConfig{Leads: pool, Periods: simPeriods, Seed: 1})
}

// The table of docs/VALIDATION.md, which `leadscorer validate simulate`
// prints with its defaults (the same simulation); also
//
//	go test ./validation -run TestRollbackSimulationTable -v
//
// The evidence rule meets the three targets at the demo's volume; the
// literal rules roll a model that performs as validated back in most
// periods.
func TestRollbackSimulationTable(t *testing.T) {
	tab := simTable(t)
	if testing.Verbose() {
		_ = tab.Write(os.Stdout)
	}
	if tab.PoolLeads != 3437 || tab.PoolConversions != 152 {
		t.Errorf("the simulation resampled %d leads, %d converted: want the test set's 3437 and 152", tab.PoolLeads, tab.PoolConversions)
	}
	f, n3, l6 := tab.TargetsMet("evidence")
	if f > TargetFalseRollback {
		t.Errorf("evidence rule: false rollbacks in %.1f%% ± %.1f of periods, target <= %.0f%%", 100*f, 100*tab.MCSE(f), 100*TargetFalseRollback)
	}
	// At 370 leads a week this target is on the edge: 90.0% ± 0.7 at this
	// seed, 90.9% at seed 2 (TestRollbackTradeOff). Held to within 2
	// Monte-Carlo standard errors of it; about 450 leads a week meet it
	// with a margin (docs/VALIDATION.md).
	if n3 < TargetNoSkillWithin3-2*tab.MCSE(TargetNoSkillWithin3) {
		t.Errorf("evidence rule: no skill rolled back within 3 weeks in %.1f%% ± %.1f, target >= %.0f%%", 100*n3, 100*tab.MCSE(n3), 100*TargetNoSkillWithin3)
	}
	if l6 < TargetLift13Within6 {
		t.Errorf("evidence rule: lift 1.3 rolled back within 6 weeks in %.1f%% ± %.1f, target >= %.0f%%", 100*l6, 100*tab.MCSE(l6), 100*TargetLift13Within6)
	}
	lf, _, _ := tab.TargetsMet("literal")
	if lf < 0.9 {
		t.Errorf("literal rules: false rollbacks in %.1f%% of periods; docs/VALIDATION.md says over 90%%", 100*lf)
	}
	for _, sc := range []struct {
		name      string
		lift, auc float64
	}{{ScenarioValidated, 1.97, 0.644}, {ScenarioNoSkill, 1.0, 0.5}, {ScenarioBoundary, 1.3, 0.54}} {
		r := tab.Row(sc.name, "evidence")
		if r == nil || math.Abs(r.Lift-sc.lift) > 0.01 || math.Abs(r.AUC-sc.auc) > 0.01 {
			t.Errorf("scenario %s: %+v, want lift %.2f and AUC about %.2f", sc.name, r, sc.lift, sc.auc)
		}
	}
}

// The trade-off behind the default rule, printed with
//
//	go test ./validation -run TestRollbackTradeOff -tradeoff -v
//
// first the absolute AUC bound's confidence at the demo's volume, then the
// weekly volume at the default rule. It asserts only what the trade-off
// must show: more confidence, fewer false rollbacks and later detection;
// more leads, earlier detection.
func TestRollbackTradeOff(t *testing.T) {
	if !*tradeOff {
		t.Skip("run with -tradeoff")
	}
	pool, err := ParallelTestSet()
	if err != nil {
		t.Fatal(err)
	}
	scenarios := DefaultScenarios(pool)
	const periods = 2000
	type point struct{ f, n3, l6 float64 }
	run := func(rule EvidenceRule, volume int) point {
		tab := SimulateRollback(SimConfig{Leads: pool, Periods: periods, Seed: 2, Rule: rule, LeadsPerWeek: volume, Scenarios: scenarios})
		var p point
		p.f, p.n3, p.l6 = tab.TargetsMet("evidence")
		return p
	}
	t.Logf("AUC confidence at 370 leads a week (false rollback / no skill within 3 weeks / lift 1.3 within 6 weeks; %d periods)", periods)
	var prev *point
	for _, c := range []float64{0.75, 0.80, 0.85, 0.90, 0.95} {
		r := DefaultEvidenceRule
		r.AUCConfidence = c
		p := run(r, 370)
		t.Logf("  %.2f: %5.1f%%  %5.1f%%  %5.1f%%", c, 100*p.f, 100*p.n3, 100*p.l6)
		if prev != nil && !(p.f <= prev.f && p.n3 <= prev.n3) {
			t.Errorf("confidence %.2f: %+v after %+v, want fewer rollbacks", c, p, *prev)
		}
		prev = &p
	}
	t.Logf("weekly volume at the default rule")
	prev = nil
	for _, v := range []int{250, 370, 450, 550, 740} {
		p := run(DefaultEvidenceRule, v)
		t.Logf("  %d leads (%.0f conversions): %5.1f%%  %5.1f%%  %5.1f%%", v, 0.0442*float64(v), 100*p.f, 100*p.n3, 100*p.l6)
		if prev != nil && !(p.n3 >= prev.n3) {
			t.Errorf("volume %d: %+v after %+v, want earlier detection", v, p, *prev)
		}
		prev = &p
	}
}

// Check says which targets a table meets, by how many standard errors, and
// which its periods are too short to say.
func TestTargetCheck(t *testing.T) {
	tab := Table{Periods: 400, Weeks: 6, Rows: []SimRow{
		{Scenario: ScenarioValidated, Rule: "evidence", Within: []float64{0, 0, 0.01, 0.02, 0.03, 0.04}},
		{Scenario: ScenarioNoSkill, Rule: "evidence", Within: []float64{0.5, 0.8, 0.85, 0.95, 1, 1}},
		{Scenario: ScenarioBoundary, Rule: "evidence", Within: []float64{0.2, 0.4, 0.6, 0.7, 0.8, 0.8}},
	}}
	c := tab.Check("evidence")
	if len(c) != 3 {
		t.Fatalf("%d checks, want 3", len(c))
	}
	if c[0].Simulated {
		t.Errorf("false rollbacks within 8 weeks judged on 6-week periods: %+v", c[0])
	}
	// 85% of no-skill periods within 3 weeks, target 90%: short by
	// 0.05 / sqrt(0.85 x 0.15 / 400) = 2.8 standard errors.
	if n := c[1]; !n.Simulated || n.Met || n.Value != 0.85 || math.Abs(n.Margin+2.80) > 0.01 {
		t.Errorf("no skill: %+v, want not met, 2.8 standard errors short", n)
	}
	// 80% of lift-1.3 periods within 6 weeks: met exactly, margin 0.
	if b := c[2]; !b.Met || b.Margin != 0 {
		t.Errorf("lift 1.3: %+v, want met on the bound", b)
	}
	if l := tab.Check("literal"); l[1].Simulated || l[2].Simulated {
		t.Errorf("a rule the table lacks is simulated: %+v", l)
	}
	// A share of 1 has no standard error of its own: the margin is
	// counted in the bound's.
	tab.Rows[1].Within[2] = 1
	if n := tab.Check("evidence")[1]; !n.Met || math.Abs(n.Margin-0.1/math.Sqrt(0.9*0.1/400)) > 1e-9 {
		t.Errorf("no skill all rolled back: %+v", n)
	}
}

// A simulation stops when its context ends, and an empty pool is an
// error rather than a panic.
func TestSimulateRollbackStops(t *testing.T) {
	pool, err := ParallelTestSet()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := SimulateRollbackContext(ctx, SimConfig{Leads: pool, Periods: 100000, Seed: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled simulation: %v, want context.Canceled", err)
	}
	if _, err := SimulateRollbackContext(context.Background(), SimConfig{}); err == nil {
		t.Error("a simulation of no leads succeeded")
	}
}

// The table depends on the seed, not on how many workers simulate it.
func TestSimulationIndependentOfWorkers(t *testing.T) {
	pool, err := ParallelTestSet()
	if err != nil {
		t.Fatal(err)
	}
	cfg := SimConfig{Leads: pool, Periods: 30, Weeks: 4, Seed: 5, Workers: 1}
	one := SimulateRollback(cfg)
	cfg.Workers = 3
	if three := SimulateRollback(cfg); !reflect.DeepEqual(one, three) {
		t.Errorf("1 worker:\n%+v\n3 workers:\n%+v", one, three)
	}
	cfg.Seed = 6
	if other := SimulateRollback(cfg); reflect.DeepEqual(one, other) {
		t.Error("seeds 5 and 6 gave the same table")
	}
}
