package stream

import (
	"fmt"
	"math"
	"time"

	"github.com/leadscorer/leadscorer/validation"
)

// The deployment checklist's rollback criteria, evaluated per ISO week on
// the production version.
const (
	RollbackTopDecileLift       = 1.5  // below it for RollbackLiftWeeks consecutive weeks
	RollbackLiftWeeks           = 2    // consecutive ISO weeks
	RollbackAUC                 = 0.59 // below it in a week
	RollbackTopDecileConversion = 0.05 // below it in a week (a fraction)
)

// Criterion names, the label values of the criterion gauge.
const (
	CriterionLift       = "top_decile_lift"
	CriterionAUC        = "auc"
	CriterionConversion = "top_decile_conversion"
)

// Criteria is the production version's verdict: the rollback criteria on
// its complete ISO weeks since its promotion, and the checklist targets as
// status over the same weeks taken together.
type Criteria struct {
	Version string     `json:"version"`
	Since   *time.Time `json:"since,omitempty"` // its promotion; nil: all data
	// Weeks are the complete ISO weeks considered, oldest first.
	Weeks []WeekFigures `json:"weeks"`
	Rules []Rule        `json:"rules"`
	// Fired: at least one rule fired; Reasons says which, in words.
	Fired   bool     `json:"fired"`
	Reasons []string `json:"reasons"`
	Targets []Target `json:"targets"`
}

// WeekFigures are one complete week of the production version.
type WeekFigures struct {
	Week                string `json:"week"`
	Labelled            int    `json:"labelled"`
	Conversions         int    `json:"conversions"`
	Evaluated           bool   `json:"evaluated"` // enough conversions to judge
	TopDecileLift       Num    `json:"top_decile_lift"`
	AUC                 Num    `json:"auc"`
	TopDecileConversion Num    `json:"top_decile_conversion"`
}

// Rule is one rollback criterion.
type Rule struct {
	Name  string `json:"name"`
	Rule  string `json:"rule"`
	Week  string `json:"week"`  // the week it was judged on; "" when no week could be
	Value Num    `json:"value"` // the figure of that week
	Fired bool   `json:"fired"`
}

// Target is one checklist target as status.
type Target struct {
	Target   string `json:"target"`
	Value    Num    `json:"value"`
	Measured string `json:"measured"`
	Pass     bool   `json:"pass"`
}

func (rep *Report) criteria(opts Options) Criteria {
	c := Criteria{Version: rep.Production, Reasons: []string{}}
	if c.Version == "" {
		return c
	}
	var since time.Time
	for _, v := range rep.Versions {
		if v.Version == c.Version && v.PromotedAt != nil {
			since = *v.PromotedAt
			c.Since = v.PromotedAt
		}
	}
	// A week counts when it starts at or after the promotion: in a week
	// straddling it, some leads were called on the previous version's
	// ranking.
	var evaluated []WeekFigures
	var pooled []Performance
	for _, w := range rep.Windows {
		if w.Kind != KindWeek || !w.Complete || w.Start.Before(since) {
			continue
		}
		p := w.perf(c.Version)
		if p == nil || p.Labelled == 0 {
			continue
		}
		wf := WeekFigures{Week: w.Key, Labelled: p.Labelled, Conversions: p.Conversions,
			Evaluated: p.Conversions >= opts.MinWeekConversions, TopDecileLift: p.TopDecileLift,
			AUC: p.AUC, TopDecileConversion: p.TopDecileConversion}
		c.Weeks = append(c.Weeks, wf)
		if wf.Evaluated {
			evaluated = append(evaluated, wf)
			pooled = append(pooled, *p)
		}
	}
	lift := Rule{Name: CriterionLift, Rule: fmt.Sprintf("top-decile lift below %.1fx for %d consecutive weeks", RollbackTopDecileLift, RollbackLiftWeeks), Value: Num(math.NaN())}
	auc := Rule{Name: CriterionAUC, Rule: fmt.Sprintf("AUC below %.2f", RollbackAUC), Value: Num(math.NaN())}
	conv := Rule{Name: CriterionConversion, Rule: fmt.Sprintf("top-decile conversion below %g%%", 100*RollbackTopDecileConversion), Value: Num(math.NaN())}
	if n := len(evaluated); n > 0 {
		last := evaluated[n-1]
		auc.Week, auc.Value, auc.Fired = last.Week, last.AUC, float64(last.AUC) < RollbackAUC
		conv.Week, conv.Value, conv.Fired = last.Week, last.TopDecileConversion, float64(last.TopDecileConversion) < RollbackTopDecileConversion
		lift.Week, lift.Value = last.Week, last.TopDecileLift
		if n >= RollbackLiftWeeks {
			run := evaluated[n-RollbackLiftWeeks:]
			fired := true
			have := map[string]bool{}
			for _, w := range c.Weeks {
				have[w.Week] = true
			}
			for i, w := range run {
				fired = fired && float64(w.TopDecileLift) < RollbackTopDecileLift
				if i > 0 && !consecutiveWeeks(run[i-1].Week, w.Week, have) {
					fired = false
				}
			}
			lift.Fired = fired
		}
	}
	c.Rules = []Rule{lift, auc, conv}
	for _, r := range c.Rules {
		if r.Fired {
			c.Fired = true
			c.Reasons = append(c.Reasons, fmt.Sprintf("%s %s: %s in %s", c.Version, r.Rule, fmtNum(r.Value, r.Name), r.Week))
		}
	}
	// Targets: the production version's since-promotion window when there
	// is one, else its latest evaluated week.
	var stats validation.Stats
	found := false
	for _, w := range rep.Windows {
		if w.Kind == KindPromotion && w.Key == "since "+c.Version+" promotion" {
			if p := w.perf(c.Version); p != nil && p.Labelled > 0 {
				stats, found = p.Stats(), true
			}
		}
	}
	if !found && len(pooled) > 0 {
		stats = pooled[len(pooled)-1].Stats()
		found = true
	}
	if found {
		for _, ch := range validation.Checks(stats) {
			c.Targets = append(c.Targets, Target{Target: ch.Target, Value: Num(ch.Value), Measured: ch.Measured(), Pass: ch.Pass})
		}
	}
	return c
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

// consecutiveWeeks reports whether judged ISO week b follows judged week a:
// every calendar week between them has labelled leads (have) but too few
// conversions to judge, so it neither confirms nor breaks the run. A week
// without any labelled lead breaks it.
func consecutiveWeeks(a, b string, have map[string]bool) bool {
	ta, errA := parseISOWeek(a)
	tb, errB := parseISOWeek(b)
	if errA != nil || errB != nil || !tb.After(ta) {
		return false
	}
	for t := ta.AddDate(0, 0, 7); t.Before(tb); t = t.AddDate(0, 0, 7) {
		if !have[isoWeekKey(t)] {
			return false
		}
	}
	return true
}

// parseISOWeek returns the Monday starting ISO week "2025-W36".
func parseISOWeek(s string) (time.Time, error) {
	var y, w int
	if _, err := fmt.Sscanf(s, "%d-W%d", &y, &w); err != nil {
		return time.Time{}, fmt.Errorf("week %q: %w", s, err)
	}
	// January 4th is always in week 1.
	jan4 := time.Date(y, 1, 4, 0, 0, 0, 0, time.UTC)
	return weekStart(jan4).AddDate(0, 0, 7*(w-1)), nil
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
