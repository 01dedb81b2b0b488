package validation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"

	"gonum.org/v1/gonum/stat/distuv"
)

// Scenario is how the production version performs during a simulated
// parallel-validation period.
//
// Its scores are degraded through a Gaussian copula: each lead of the pool
// has the normal score z = Φ⁻¹((rank - 1/2) / n) of its production score,
// and a simulated lead scores Rho x z + sqrt(1 - Rho²) x ε with ε a fresh
// standard normal. Rho 1 keeps the scores as validated, 0 leaves no skill
// (lift 1, AUC 1/2); in between the ranking loses signal smoothly while
// the conversions (the labels) and the baseline's scores stay what they
// were. Every figure the rules use depends only on ranks, so the scale of
// the degraded score does not matter.
type Scenario struct {
	Name string
	Rho  float64
	// Lift and AUC are the scenario's expected top-decile lift and AUC on
	// the pool (ExpectedLift, and the mean AUC of large draws).
	Lift, AUC float64
}

// SimConfig configures SimulateRollback.
type SimConfig struct {
	// Leads is the pool resampled with replacement: the test set's leads
	// with both versions' scores and labels.
	Leads []PairedLead
	// Periods simulated per scenario (default 2,000), each Weeks complete
	// weeks long (default 8) of LeadsPerWeek leads (default 370).
	Periods, Weeks, LeadsPerWeek int
	Seed                         uint64
	Rule                         EvidenceRule
	Literal                      LiteralRule
	// Scenarios; default DefaultScenarios(Leads).
	Scenarios []Scenario
	// Workers simulating periods at once (default GOMAXPROCS); the table
	// does not depend on it.
	Workers int
}

// SimRow is one rule in one scenario.
type SimRow struct {
	Scenario string  `json:"scenario"`
	Rule     string  `json:"rule"` // "literal" or "evidence"
	Lift     float64 `json:"lift"`
	AUC      float64 `json:"auc"`
	// Within[w-1] is the share of periods rolled back by the end of week w,
	// MCSE[w-1] its Monte-Carlo standard error.
	Within []float64 `json:"within"`
	MCSE   []float64 `json:"mcse"`
	// MedianWeek is the median week of the rollback over all periods; 0
	// when fewer than half roll back within the period.
	MedianWeek int `json:"median_week"`
	// ByCriterion is the share of periods in which each criterion fired
	// (at the rollback: several may fire at once).
	ByCriterion map[string]float64 `json:"by_criterion"`
}

// Table is the simulation's result.
type Table struct {
	Periods            int     `json:"periods"`
	Weeks              int     `json:"weeks"`
	LeadsPerWeek       int     `json:"leads_per_week"`
	Seed               uint64  `json:"seed"`
	ConversionsPerWeek float64 `json:"conversions_per_week"` // expected, from the pool's rate
	// TestSet names the test set resampled (set by the caller; ""
	// unnamed), PoolLeads and PoolConversions count it.
	TestSet         string `json:"test_set,omitempty"`
	PoolLeads       int    `json:"pool_leads"`
	PoolConversions int    `json:"pool_conversions"`
	// Literal and Rule are the rules compared, in words.
	Literal string   `json:"literal_rule"`
	Rule    string   `json:"rule"`
	Rows    []SimRow `json:"rows"`
}

// Row returns the row of a scenario and rule ("literal", "evidence").
func (t Table) Row(scenario, rule string) *SimRow {
	for i := range t.Rows {
		if t.Rows[i].Scenario == scenario && t.Rows[i].Rule == rule {
			return &t.Rows[i]
		}
	}
	return nil
}

// MCSE is the Monte-Carlo standard error of a share p estimated from the
// table's periods.
func (t Table) MCSE(p float64) float64 { return math.Sqrt(p * (1 - p) / float64(t.Periods)) }

// Scenario names of DefaultScenarios.
const (
	ScenarioValidated = "as validated"
	ScenarioNoSkill   = "no skill (lift 1.0)"
	ScenarioBoundary  = "degraded to lift 1.3"
)

// DefaultScenarios are the production version as validated, with no skill
// left, and degraded to a top-decile lift of 1.3 (below the checklist's
// 1.5, the case the lift criterion exists for).
func DefaultScenarios(pool []PairedLead) []Scenario {
	return []Scenario{
		{Name: ScenarioValidated, Rho: 1},
		{Name: ScenarioNoSkill, Rho: 0},
		{Name: ScenarioBoundary, Rho: RhoForLift(pool, 1.3)},
	}
}

// normalScores are the pool's production scores as normal scores
// Φ⁻¹((midrank - 1/2) / n).
func normalScores(pool []PairedLead) []float64 {
	s := make([]float64, len(pool))
	for i, l := range pool {
		s[i] = l.Production
	}
	r := midranks(s)
	z := make([]float64, len(pool))
	for i := range r {
		z[i] = distuv.UnitNormal.Quantile((r[i] - 0.5) / float64(len(pool)))
	}
	return z
}

// ExpectedLift is the top-decile lift the pool has in expectation under a
// degradation rho: a lead with normal score z is in the top decile of
// rho z + sqrt(1-rho²) ε (a standard normal, so above c = Φ⁻¹(0.9)) with
// probability 1 - Φ((c - rho z) / sqrt(1 - rho²)); the lift is the
// conversion rate of the pool weighted by that probability over the pool's
// rate. At rho 1 it is the lift of the top 10% by score.
func ExpectedLift(pool []PairedLead, rho float64) float64 {
	z := normalScores(pool)
	c := distuv.UnitNormal.Quantile(0.9)
	s := math.Sqrt(1 - rho*rho)
	var w, wy, y float64
	for i, l := range pool {
		p := 0.0
		switch {
		case s == 0 && z[i] > c:
			p = 1
		case s > 0:
			p = 1 - distuv.UnitNormal.CDF((c-rho*z[i])/s)
		}
		w += p
		if l.Converted {
			wy += p
			y++
		}
	}
	return (wy / w) / (y / float64(len(pool)))
}

// RhoForLift is the degradation whose ExpectedLift is lift (bisection).
func RhoForLift(pool []PairedLead, lift float64) float64 {
	lo, hi := 0.0, 1.0
	for range 60 {
		mid := (lo + hi) / 2
		if ExpectedLift(pool, mid) < lift {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// SimulateRollback runs Periods parallel-validation periods per scenario at
// the given volume and reports, for the evidence rule and the literal
// rule, how often and how soon each rolls the production version back.
//
// A period is Weeks weekly cohorts of LeadsPerWeek leads drawn with
// replacement from the pool (the production score degraded as the scenario
// says). Week w is judged with weeks 1..w complete: time is counted in
// cohorts of contacted leads, and the rollback comes 43 days (the label
// window) after the end of its week for either rule. The same seed gives
// the same table, whatever the number of CPUs.
func SimulateRollback(cfg SimConfig) Table {
	t, _ := SimulateRollbackContext(context.Background(), cfg)
	return t
}

// SimulateRollbackContext is SimulateRollback, stopping with ctx's error
// when ctx ends first. An empty pool is an error.
func SimulateRollbackContext(ctx context.Context, cfg SimConfig) (Table, error) {
	if len(cfg.Leads) == 0 {
		return Table{}, errors.New("simulation: no leads to resample")
	}
	if cfg.Periods <= 0 {
		cfg.Periods = 2000
	}
	if cfg.Weeks <= 0 {
		cfg.Weeks = 8
	}
	if cfg.LeadsPerWeek <= 0 {
		cfg.LeadsPerWeek = 370
	}
	if cfg.Scenarios == nil {
		cfg.Scenarios = DefaultScenarios(cfg.Leads)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	rule := cfg.Rule.WithDefaults()
	z := normalScores(cfg.Leads)
	conversions := 0
	for _, l := range cfg.Leads {
		if l.Converted {
			conversions++
		}
	}
	rate := float64(conversions) / float64(len(cfg.Leads))
	t := Table{Periods: cfg.Periods, Weeks: cfg.Weeks, LeadsPerWeek: cfg.LeadsPerWeek, Seed: cfg.Seed,
		ConversionsPerWeek: rate * float64(cfg.LeadsPerWeek), PoolLeads: len(cfg.Leads), PoolConversions: conversions,
		Literal: cfg.Literal.String(), Rule: rule.String()}

	for si, sc := range cfg.Scenarios {
		if sc.Lift == 0 {
			sc.Lift = ExpectedLift(cfg.Leads, sc.Rho)
		}
		if sc.AUC == 0 {
			sc.AUC = expectedAUC(cfg.Leads, z, sc.Rho, cfg.Seed)
		}
		type outcome struct {
			week     [2]int // first rollback week per rule (0: none)
			criteria [2][]string
		}
		results := make([]outcome, cfg.Periods)
		var wg sync.WaitGroup
		next := make(chan int)
		for range cfg.Workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for p := range next {
					if ctx.Err() != nil {
						continue // drain: the table is not returned
					}
					rng := rand.New(rand.NewPCG(cfg.Seed, uint64(si)<<32|uint64(p)))
					var o outcome
					weeks := make([]RuleWeek, 0, cfg.Weeks)
					lws := make([]literalWeek, 0, cfg.Weeks)
					var prev *windowEval
					for w := 1; w <= cfg.Weeks && (o.week[0] == 0 || o.week[1] == 0); w++ {
						week := RuleWeek{Key: fmt.Sprint("week ", w), Leads: drawWeek(rng, cfg.Leads, z, sc.Rho, cfg.LeadsPerWeek)}
						weeks = append(weeks, week)
						lws = append(lws, cfg.Literal.week(week))
						if o.week[0] == 0 {
							if v := cfg.Literal.verdict(lws, 0); v.Fired {
								o.week[0], o.criteria[0] = w, firedNames(v)
							}
						}
						cur := rule.window(weeks, len(weeks), false)
						if o.week[1] == 0 {
							if v := rule.verdict(&cur, prev, 0); v.Fired {
								o.week[1], o.criteria[1] = w, firedNames(v)
							}
						}
						prev = &cur
					}
					results[p] = o
				}
			}()
		}
		for p := range cfg.Periods {
			next <- p
		}
		close(next)
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return Table{}, err
		}

		for ri, name := range []string{"literal", "evidence"} {
			row := SimRow{Scenario: sc.Name, Rule: name, Lift: sc.Lift, AUC: sc.AUC, Within: make([]float64, cfg.Weeks),
				MCSE: make([]float64, cfg.Weeks), ByCriterion: map[string]float64{}}
			var weeks []int
			for _, o := range results {
				wk := o.week[ri]
				if wk == 0 {
					weeks = append(weeks, math.MaxInt) // not within the period
					continue
				}
				weeks = append(weeks, wk)
				for w := wk; w <= cfg.Weeks; w++ {
					row.Within[w-1]++
				}
				for _, c := range o.criteria[ri] {
					row.ByCriterion[c]++
				}
			}
			for w := range row.Within {
				row.Within[w] /= float64(cfg.Periods)
				row.MCSE[w] = t.MCSE(row.Within[w])
			}
			for c := range row.ByCriterion {
				row.ByCriterion[c] /= float64(cfg.Periods)
			}
			slices.Sort(weeks)
			if m := weeks[(len(weeks)-1)/2]; m != math.MaxInt {
				row.MedianWeek = m
			}
			t.Rows = append(t.Rows, row)
		}
	}
	return t, nil
}

func firedNames(v Verdict) []string {
	var out []string
	for _, c := range v.Criteria {
		if c.Fired() {
			out = append(out, c.Name)
		}
	}
	return out
}

// drawWeek draws n leads from the pool, the production score degraded by
// rho (kept as is at rho 1).
func drawWeek(rng *rand.Rand, pool []PairedLead, z []float64, rho float64, n int) []PairedLead {
	out := make([]PairedLead, n)
	s := math.Sqrt(1 - rho*rho)
	for i := range out {
		k := rng.IntN(len(pool))
		out[i] = pool[k]
		if rho < 1 {
			out[i].Production = rho*z[k] + s*rng.NormFloat64()
		}
	}
	return out
}

// expectedAUC is the mean AUC of the degraded production score over 20
// draws of the pool's size.
func expectedAUC(pool []PairedLead, z []float64, rho float64, seed uint64) float64 {
	rng := rand.New(rand.NewPCG(seed, 0xa0c))
	sum := 0.0
	const draws = 20
	rows := make([]Row, len(pool))
	for range draws {
		for i, l := range drawWeek(rng, pool, z, rho, len(pool)) {
			rows[i] = Row{Score: l.Production, Converted: l.Converted}
		}
		st, _ := Compute(rows)
		sum += st.AUC
	}
	return sum / draws
}

// Targets of the rollback rule (the issue "Rollback on evidence, not
// noise"): over an 8-week period at most 5% false rollbacks of a version
// performing as validated; at least 90% rolled back within 3 weeks at no
// skill, and 80% within 6 weeks at lift 1.3.
const (
	TargetFalseRollback  = 0.05
	TargetNoSkillWithin3 = 0.90
	TargetLift13Within6  = 0.80
)

// Target is one of the targets of the rollback rule: the share of periods
// of a scenario rolled back within Week weeks, at most or at least Bound.
type Target struct {
	Name     string  `json:"name"`
	Scenario string  `json:"scenario"`
	Week     int     `json:"week"`
	Bound    float64 `json:"bound"`
	AtMost   bool    `json:"at_most"` // the share must be at most Bound (else at least)
}

// Targets are the rule's three targets.
var Targets = []Target{
	{Name: "false rollbacks of a version as validated, within 8 weeks", Scenario: ScenarioValidated, Week: 8, Bound: TargetFalseRollback, AtMost: true},
	{Name: "no skill rolled back within 3 weeks", Scenario: ScenarioNoSkill, Week: 3, Bound: TargetNoSkillWithin3},
	{Name: "lift 1.3 rolled back within 6 weeks", Scenario: ScenarioBoundary, Week: 6, Bound: TargetLift13Within6},
}

// TargetCheck is one rule's figure for a target.
type TargetCheck struct {
	Target
	Rule string `json:"rule"` // "literal" or "evidence"
	// Simulated is false when the table's periods are shorter than the
	// target's week or lack its scenario; the rest is then zero.
	Simulated bool    `json:"simulated"`
	Value     float64 `json:"value"`
	MCSE      float64 `json:"mcse"`
	Met       bool    `json:"met"`
	// Margin is how far Value is on the right side of Bound, in
	// Monte-Carlo standard errors (negative: short of it). Within about 2,
	// another seed may give the other verdict.
	Margin float64 `json:"margin_se"`
}

// Check returns the rule's figures for the targets.
func (t Table) Check(rule string) []TargetCheck {
	var out []TargetCheck
	for _, tg := range Targets {
		c := TargetCheck{Target: tg, Rule: rule}
		if r := t.Row(tg.Scenario, rule); r != nil && tg.Week <= len(r.Within) {
			c.Simulated = true
			c.Value = r.Within[tg.Week-1]
			c.MCSE = t.MCSE(c.Value)
			se := c.MCSE
			if se == 0 { // a share of 0 or 1: the error at the bound
				se = t.MCSE(tg.Bound)
			}
			d := c.Value - tg.Bound
			if tg.AtMost {
				d = -d
			}
			c.Met, c.Margin = d >= 0, d/se
		}
		out = append(out, c)
	}
	return out
}

// Write prints the table: per scenario and rule the share of periods
// rolled back within the period, within 3 and 6 weeks (the targets'
// weeks), each with its Monte-Carlo standard error, the median week of
// the rollback and the criteria that fired; then each rule's targets, met
// or not.
func (t Table) Write(w io.Writer) error {
	fmt.Fprintf(w, "%d periods of %d weeks x %d leads (about %.1f conversions a week), seed %d\n",
		t.Periods, t.Weeks, t.LeadsPerWeek, t.ConversionsPerWeek, t.Seed)
	name := ""
	if t.TestSet != "" {
		name = t.TestSet + ", "
	}
	fmt.Fprintf(w, "test set: %s%d leads, %d converted\n%s\n%s\n\n", name, t.PoolLeads, t.PoolConversions, t.Literal, t.Rule)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\tlift\tAUC\trule\trolled back within %d wk\twithin 3 wk\twithin 6 wk\tmedian week\tby criterion\n", t.Weeks)
	for _, r := range t.Rows {
		var crit []string
		for _, c := range []string{CriterionLift, CriterionAUC, CriterionConversion} {
			if x := r.ByCriterion[c]; x > 0 {
				crit = append(crit, fmt.Sprintf("%s %.1f%%", c, 100*x))
			}
		}
		med := fmt.Sprintf("> %d", t.Weeks)
		if r.MedianWeek > 0 {
			med = fmt.Sprint(r.MedianWeek)
		}
		at := func(week int) string {
			if week > len(r.Within) {
				return "-"
			}
			p := r.Within[week-1]
			return fmt.Sprintf("%5.1f%% ± %.1f", 100*p, 100*t.MCSE(p))
		}
		fmt.Fprintf(tw, "%s\t%.2fx\t%.3f\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.Lift, r.AUC, r.Rule, at(t.Weeks), at(3), at(6), med, strings.Join(crit, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n± is the Monte-Carlo standard error of the share (%d periods).\n", t.Periods)
	fmt.Fprintf(w, "\ntargets (a margin within 2 standard errors is Monte-Carlo noise: another seed may say otherwise)\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, rule := range []string{"evidence", "literal"} {
		for _, c := range t.Check(rule) {
			cmp := "at least"
			if c.AtMost {
				cmp = "at most"
			}
			if !c.Simulated {
				fmt.Fprintf(tw, "  %s\tnot simulated\t%s (%s %g%%): the periods are shorter or the scenario is missing\n", rule, c.Name, cmp, 100*c.Bound)
				continue
			}
			verdict := "NOT MET"
			if c.Met {
				verdict = "met"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s: %.1f%% ± %.1f, %s %g%% (%+.1f standard errors)\n", rule, verdict, c.Name, 100*c.Value, 100*c.MCSE, cmp, 100*c.Bound, c.Margin)
		}
	}
	return tw.Flush()
}

// TargetsMet reports, for one rule, the figures the targets are about
// (zero when not simulated).
func (t Table) TargetsMet(rule string) (falseRollback, noSkill3, lift13w6 float64) {
	c := t.Check(rule)
	return c[0].Value, c[1].Value, c[2].Value
}
