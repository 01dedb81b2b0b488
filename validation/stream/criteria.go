package stream

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/leadscorer/leadscorer/scoring"
	"github.com/leadscorer/leadscorer/validation"
)

// The deployment checklist's rollback thresholds (package validation's).
const (
	RollbackTopDecileLift       = validation.RollbackTopDecileLift
	RollbackLiftWeeks           = validation.RollbackLiftWeeks
	RollbackAUC                 = validation.RollbackAUC
	RollbackTopDecileConversion = validation.RollbackTopDecileConversion
)

// Criterion names, the label values of the criterion gauges.
const (
	CriterionLift       = validation.CriterionLift
	CriterionAUC        = validation.CriterionAUC
	CriterionConversion = validation.CriterionConversion
)

// Criteria is the production version's verdict: the rollback criteria
// judged by the evidence rule (validation.EvidenceRule) on its complete ISO
// weeks since its promotion, and the checklist targets as status over the
// same period.
type Criteria struct {
	Version string `json:"version"`
	// Baseline is the version a rollback returns to, compared with the
	// production version on the same leads ("" when there is none).
	Baseline string     `json:"baseline"`
	Since    *time.Time `json:"since,omitempty"` // its promotion; nil: all data
	// Decision is the rule in words.
	Decision string `json:"decision"`
	// Window is the pooled window the rule judged: its first and last
	// week, leads and conversions.
	Window RuleWindow `json:"window"`
	// Pending counts the leads contacted since the promotion whose label
	// is not final yet (inside their 43 days, not converted, or in a week
	// not complete): not judged.
	Pending int `json:"pending"`
	// Weeks are the complete ISO weeks since the promotion, oldest first,
	// each with its own figures (for reading: the rule judges them pooled).
	Weeks  []WeekFigures `json:"weeks"`
	Rules  []Rule        `json:"rules"`
	Paired *Paired       `json:"paired,omitempty"`
	// Fired: at least one rule fired; Reasons says which, in words.
	Fired   bool     `json:"fired"`
	Reasons []string `json:"reasons"`
	Targets []Target `json:"targets"`
}

// RuleWindow is the pooled window a verdict is about.
type RuleWindow struct {
	From        string `json:"from"`
	To          string `json:"to"`
	Leads       int    `json:"leads"`
	Conversions int    `json:"conversions"`
}

// WeekFigures are one complete week of the production version.
type WeekFigures struct {
	Week                string `json:"week"`
	Labelled            int    `json:"labelled"`
	Conversions         int    `json:"conversions"`
	InWindow            bool   `json:"in_window"` // pooled in the judged window
	TopDecileLift       Num    `json:"top_decile_lift"`
	AUC                 Num    `json:"auc"`
	TopDecileConversion Num    `json:"top_decile_conversion"`
}

// Bounds is a confidence interval; Hi is also the one-sided upper bound
// at (1+Level)/2.
type Bounds struct {
	Lo    Num     `json:"lo"`
	Hi    Num     `json:"hi"`
	Level float64 `json:"level"`
}

func bounds(iv validation.Interval) Bounds {
	return Bounds{Lo: Num(iv.Lo), Hi: Num(iv.Hi), Level: iv.Level}
}

// Rule is one rollback criterion's verdict.
type Rule struct {
	Name string `json:"name"`
	Rule string `json:"rule"`
	// From and Week are the first and last week of the window judged;
	// "" when no week could be.
	From  string `json:"from"`
	Week  string `json:"week"`
	Value Num    `json:"value"` // the estimate over the window
	// Interval: Interval.Hi below Threshold is the evidence that fires.
	Interval  Bounds  `json:"interval"`
	Threshold float64 `json:"threshold"`
	// Status is "fired", "not_fired" or "insufficient" (too little data
	// to judge: fewer than Needs conversions in the window).
	Status      string `json:"status"`
	Conversions int    `json:"conversions"`
	Needs       int    `json:"needs"`
	// FiresAt is what it would take to fire with this much data: the
	// largest estimate that would; null when none would.
	FiresAt Num `json:"fires_at"`
	// Previous is the lift criterion's window before (2 consecutive
	// judgements).
	Previous *Rule  `json:"previous,omitempty"`
	Detail   string `json:"detail"`
	Fired    bool   `json:"fired"`
}

// Paired compares the production version with the baseline on the same
// leads of the judged window: DeLong's test of the AUC difference and a
// paired bootstrap of the top-decile lift difference.
type Paired struct {
	Production  string `json:"production"`
	Baseline    string `json:"baseline"`
	Leads       int    `json:"leads"` // scored by both
	Conversions int    `json:"conversions"`
	AUC         Num    `json:"auc"` // production's
	BaselineAUC Num    `json:"baseline_auc"`
	// AUCDiff is production minus baseline; its SE, z and one-sided
	// p-value against "production is not worse" (DeLong).
	AUCDiff         Num    `json:"auc_diff"`
	AUCDiffSE       Num    `json:"auc_diff_se"`
	Z               Num    `json:"z"`
	PWorse          Num    `json:"p_worse"`
	AUCDiffInterval Bounds `json:"auc_diff_interval"`
	// LiftDiff is production's top-decile lift minus the baseline's, with
	// a paired percentile bootstrap interval (LiftDiffResamples resamples
	// of the leads, a fixed seed: the same data give the same report).
	LiftDiff          Num    `json:"lift_diff"`
	LiftDiffInterval  Bounds `json:"lift_diff_interval"`
	LiftDiffResamples int    `json:"lift_diff_resamples"`
}

// bootstrapResamples is the paired bootstrap's resample count.
const bootstrapResamples = 1000

// ruleInput builds the evidence rule's input from the labelled leads: the
// production version's complete ISO weeks since since, as consecutive
// calendar weeks (a week without a labelled lead is present and empty),
// each lead with its production and baseline scores; pending counts the
// leads contacted since then that are not yet final or are in a week not
// yet complete.
func ruleInput(leads []labelled, production, baseline string, since, now time.Time) (validation.RuleInput, []time.Time) {
	var in validation.RuleInput
	byWeek := map[time.Time][]validation.PairedLead{}
	var first time.Time
	for _, l := range leads {
		pt, ok := l.byVersion[production]
		if !ok || l.contact.Before(since) {
			continue
		}
		w := weekStart(l.contact)
		if weekStart(l.contact).Before(since) { // a week straddling the promotion
			continue
		}
		complete := !now.Before(w.AddDate(0, 0, 7).Add(LabelWindow))
		if l.status == labelPending || !complete {
			in.Pending++
			continue
		}
		b := math.NaN()
		if bp, ok := l.byVersion[baseline]; ok && baseline != "" {
			b = bp.score
		}
		byWeek[w] = append(byWeek[w], validation.PairedLead{Production: pt.score, Baseline: b, Converted: l.status == labelConverted})
		if first.IsZero() || w.Before(first) {
			first = w
		}
	}
	var weeks []time.Time
	if first.IsZero() {
		return in, nil
	}
	for w := first; !now.Before(w.AddDate(0, 0, 7).Add(LabelWindow)); w = w.AddDate(0, 0, 7) {
		// Sorted leads: the verdict must not depend on map order.
		ls := byWeek[w]
		slices.SortFunc(ls, func(a, b validation.PairedLead) int {
			return cmp.Or(cmp.Compare(a.Production, b.Production), cmp.Compare(a.Baseline, b.Baseline), boolCmp(a.Converted, b.Converted))
		})
		in.Weeks = append(in.Weeks, validation.RuleWeek{Key: isoWeekKey(w), Leads: ls})
		weeks = append(weeks, w)
	}
	return in, weeks
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// baselineOf is the version a rollback of production would return to: the
// latest demoted version still in the registry and not archived (as
// scoring.Registry.Rollback chooses), else the first other serving version.
func baselineOf(reg *scoring.Registry, production string) string {
	if reg == nil {
		return ""
	}
	for i := len(reg.History) - 1; i >= 0; i-- {
		h := reg.History[i]
		if h.Action != scoring.ActionDemote || h.Version == production {
			continue
		}
		if v, ok := reg.Version(h.Version); ok && v.Role != scoring.RoleArchived {
			return v.Name
		}
	}
	for _, v := range reg.Serving() {
		if v.Name != production {
			return v.Name
		}
	}
	return ""
}

func (rep *Report) criteria(opts Options, reg *scoring.Registry, leads []labelled) Criteria {
	c := Criteria{Version: rep.Production, Reasons: []string{}, Decision: opts.Rule.String()}
	if c.Version == "" {
		return c
	}
	c.Baseline = baselineOf(reg, c.Version)
	var since time.Time
	for _, v := range rep.Versions {
		if v.Version == c.Version && v.PromotedAt != nil {
			since = *v.PromotedAt
			c.Since = v.PromotedAt
		}
	}
	in, _ := ruleInput(leads, c.Version, c.Baseline, since, rep.AsOf)
	verdict := opts.Rule.Judge(in)
	c.Pending = verdict.Pending
	c.Window = RuleWindow{From: verdict.From, To: verdict.To, Leads: verdict.Leads, Conversions: verdict.Conversions}

	// Each week's own figures, for reading.
	inWindow := false
	for _, w := range rep.Windows {
		if w.Kind != KindWeek || !w.Complete || w.Start.Before(since) {
			continue
		}
		p := w.perf(c.Version)
		if p == nil || p.Labelled == 0 {
			continue
		}
		if w.Key == c.Window.From {
			inWindow = true
		}
		c.Weeks = append(c.Weeks, WeekFigures{Week: w.Key, Labelled: p.Labelled, Conversions: p.Conversions, InWindow: inWindow && c.Window.From != "",
			TopDecileLift: p.TopDecileLift, AUC: p.AUC, TopDecileConversion: p.TopDecileConversion})
		if w.Key == c.Window.To {
			inWindow = false
		}
	}

	for _, cv := range verdict.Criteria {
		r := rule(cv, c.Window)
		if cv.Previous != nil {
			p := rule(*cv.Previous, RuleWindow{})
			r.Previous = &p
		}
		c.Rules = append(c.Rules, r)
		if cv.Name == CriterionAUC && cv.Paired != nil {
			c.Paired = paired(c.Version, c.Baseline, *cv.Paired, in, opts.Rule)
		}
		if r.Fired {
			c.Fired = true
			c.Reasons = append(c.Reasons, fmt.Sprintf("%s %s", c.Version, cv.Detail))
		}
	}

	// Targets: the production version's since-promotion window when there
	// is one, else its latest complete week.
	var stats validation.Stats
	found := false
	for _, w := range rep.Windows {
		if w.Kind == KindPromotion && w.Key == "since "+c.Version+" promotion" {
			if p := w.perf(c.Version); p != nil && p.Labelled > 0 {
				stats, found = p.Stats(), true
			}
		}
	}
	if !found {
		if w := rep.Latest(KindWeek, true); w != nil {
			if p := w.perf(c.Version); p != nil && p.Labelled > 0 {
				stats, found = p.Stats(), true
			}
		}
	}
	if found {
		for _, ch := range validation.Checks(stats) {
			c.Targets = append(c.Targets, Target{Target: ch.Target, Value: Num(ch.Value), Measured: ch.Measured(), Pass: ch.Pass})
		}
	}
	return c
}

func rule(cv validation.CriterionVerdict, w RuleWindow) Rule {
	return Rule{Name: cv.Name, Rule: cv.Rule, From: w.From, Week: w.To, Value: Num(cv.Estimate), Interval: bounds(cv.Interval),
		Threshold: cv.Threshold, Status: cv.Status, Conversions: cv.Conversions, Needs: cv.Needs, FiresAt: Num(cv.FiresAt),
		Detail: cv.Detail, Fired: cv.Fired()}
}

// paired fills the comparison of the judged window: DeLong's from the
// verdict, and the paired bootstrap of the lift difference on the same
// leads.
func paired(production, baseline string, p validation.PairedAUC, in validation.RuleInput, r validation.EvidenceRule) *Paired {
	out := &Paired{Production: production, Baseline: baseline, Leads: p.A.Positives + p.A.Negatives, Conversions: p.A.Positives,
		AUC: Num(p.AUCA), BaselineAUC: Num(p.AUCB), AUCDiff: Num(p.Diff), AUCDiffSE: Num(p.SE), Z: Num(p.Z), PWorse: Num(p.PLess),
		AUCDiffInterval: bounds(p.Interval), LiftDiffResamples: bootstrapResamples}
	var leads []validation.PairedLead
	for _, w := range r.Window(in) {
		for _, l := range w.Leads {
			if !math.IsNaN(l.Baseline) {
				leads = append(leads, l)
			}
		}
	}
	bs := validation.PairedBootstrapLiftDiff(leads, bootstrapResamples, p.Interval.Level, 1)
	out.LiftDiff, out.LiftDiffInterval = Num(bs.Estimate), bounds(bs.Interval)
	return out
}

// Target is one checklist target as status.
type Target struct {
	Target   string `json:"target"`
	Value    Num    `json:"value"`
	Measured string `json:"measured"`
	Pass     bool   `json:"pass"`
}

func fmtNum(v Num, criterion string) string {
	f := float64(v)
	switch {
	case math.IsNaN(f):
		return "n/a"
	case criterion == CriterionLift:
		return fmt.Sprintf("%.2fx", f)
	case criterion == CriterionConversion:
		return fmt.Sprintf("%.2f%%", 100*f)
	default:
		return fmt.Sprintf("%.3f", f)
	}
}

func (w *Window) perf(version string) *Performance {
	for i := range w.Performance {
		if w.Performance[i].Version == version {
			return &w.Performance[i]
		}
	}
	return nil
}

// Latest returns the last window of a kind (the latest day or week, or the
// production version's since-promotion window); with complete set, the
// latest complete one. nil when there is none.
func (rep *Report) Latest(kind string, complete bool) *Window {
	for i := len(rep.Windows) - 1; i >= 0; i-- {
		w := &rep.Windows[i]
		if w.Kind != kind || complete && !w.Complete {
			continue
		}
		if kind == KindPromotion && w.Key != "since "+rep.Production+" promotion" {
			continue
		}
		return w
	}
	return nil
}
