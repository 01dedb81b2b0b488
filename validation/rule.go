package validation

import (
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"
)

// The deployment checklist's rollback criteria: roll the production
// version back to the baseline when its top-decile lift is below 1.5x for 2
// consecutive weeks, its AUC below 0.59 ("below the v4.0.0 baseline") or
// its top-decile conversion below 5%. The thresholds are the checklist's;
// how they are judged is the rule's (EvidenceRule, LiteralRule).
const (
	RollbackTopDecileLift       = 1.5  // a ratio
	RollbackLiftWeeks           = 2    // consecutive weeks (judged windows)
	RollbackAUC                 = 0.59 // ROC AUC
	RollbackTopDecileConversion = 0.05 // a fraction
)

// Criterion names, as the validator's metrics label them.
const (
	CriterionLift       = "top_decile_lift"
	CriterionAUC        = "auc"
	CriterionConversion = "top_decile_conversion"
)

// Statuses of a criterion in a Verdict.
const (
	StatusFired        = "fired"
	StatusNotFired     = "not_fired"
	StatusInsufficient = "insufficient" // too little data to judge
)

// RuleWeek is one complete week (every lead's label final) of the
// production version: its labelled leads, each with the production
// version's score and the baseline version's score of the same lead (NaN
// when the baseline did not score it).
type RuleWeek struct {
	Key   string // "2025-W36"
	Leads []PairedLead
}

// RuleInput is what a rollback rule judges: the production version's
// complete weeks since its promotion, consecutive calendar weeks oldest
// first (a week without labelled leads is present with no leads), and
// the leads contacted since the promotion whose label is not final yet
// (contacted less than 43 days ago and not converted, or in a week not yet
// complete). Pending leads are never judged: in a week still open the
// conversions are known before the non-conversions, so counting its
// converted leads and leaving out its pending ones would inflate every rate.
type RuleInput struct {
	Weeks   []RuleWeek
	Pending int
}

// Verdict is a rule's judgement of the latest complete week.
type Verdict struct {
	Rule string // which rule judged, in words
	// Window is the pooled evidence window of the latest judgement: its
	// first and last week, leads and conversions (EvidenceRule); the latest
	// judged week (LiteralRule).
	From, To    string
	Leads       int
	Conversions int
	Pending     int // from the input: leads not yet labelled, not judged
	Criteria    []CriterionVerdict
	Fired       bool
}

// CriterionVerdict is one criterion's judgement.
type CriterionVerdict struct {
	Name      string  // CriterionLift, CriterionAUC, CriterionConversion
	Rule      string  // the criterion in words
	Status    string  // StatusFired, StatusNotFired, StatusInsufficient
	Estimate  float64 // the figure over the window; NaN when undefined
	Interval  Interval
	Threshold float64
	// Conversions in the window and the fewest it needs to be judged.
	Conversions, Needs int
	// FiresAt is what it would take to fire with this much data: the
	// largest estimate that would fire (NaN when none would, e.g. a
	// top decile too small for any count to be evidence of a rate below 5%).
	FiresAt float64
	// Paired is the AUC criterion's comparison of the production version
	// with the baseline on the same leads (nil for the others, and when
	// the baseline scored too few of them).
	Paired *PairedAUC
	// Previous is the lift criterion's previous judged window (the second
	// of the 2 consecutive ones); nil when there is none.
	Previous *CriterionVerdict
	Detail   string // the judgement in words
}

// Fired reports whether the criterion fired.
func (c CriterionVerdict) Fired() bool { return c.Status == StatusFired }

// Reasons are the fired criteria in words.
func (v Verdict) Reasons() []string {
	var out []string
	for _, c := range v.Criteria {
		if c.Fired() {
			out = append(out, c.Detail)
		}
	}
	return out
}

// EvidenceRule fires a rollback criterion only on evidence that the
// production version is past the checklist's threshold.
//
// At each complete week it pools the latest WindowWeeks weeks since the
// promotion (fewer right after it) and judges each criterion when the pool
// holds at least MinConversions conversions; below that the criterion says
// "too little data to judge". A criterion fires when the one-sided upper
// confidence bound, at Confidence, is below the threshold:
//
//   - top-decile conversion: Wilson's upper bound < 5%;
//   - top-decile lift: the upper bound of LiftInterval < 1.5, in the pooled
//     windows ending at this week and at the week before (the checklist's
//     2 consecutive weeks, as 2 consecutive judgements);
//   - AUC: DeLong's upper bound < 0.59, or DeLong's paired test on the same
//     leads says the production version ranks worse than the baseline it
//     would roll back to (upper bound of AUC(production) - AUC(baseline)
//     < 0).
type EvidenceRule struct {
	WindowWeeks    int // pooled complete weeks (default 8)
	MinConversions int // a window needs this many conversions to be judged (default 25)
	// Confidence is the one-sided confidence of the top-decile bounds and
	// of the paired comparison (default 0.95); AUCConfidence that of the
	// absolute AUC bound (default 0.85). The AUC carries most of the
	// detection (it uses every lead, the top-decile figures a tenth of
	// them), so the period's false-rollback budget goes mostly to it:
	// docs/VALIDATION.md gives the simulation behind the choice.
	Confidence    float64
	AUCConfidence float64
}

// DefaultEvidenceRule is the rule the validator uses.
var DefaultEvidenceRule = EvidenceRule{WindowWeeks: 8, MinConversions: 25, Confidence: 0.95, AUCConfidence: 0.85}

// WithDefaults fills the zero fields with DefaultEvidenceRule's.
func (r EvidenceRule) WithDefaults() EvidenceRule {
	if r.WindowWeeks <= 0 {
		r.WindowWeeks = DefaultEvidenceRule.WindowWeeks
	}
	if r.MinConversions <= 0 {
		r.MinConversions = DefaultEvidenceRule.MinConversions
	}
	if !(r.Confidence > 0.5 && r.Confidence < 1) {
		r.Confidence = DefaultEvidenceRule.Confidence
	}
	if !(r.AUCConfidence > 0.5 && r.AUCConfidence < 1) {
		r.AUCConfidence = DefaultEvidenceRule.AUCConfidence
	}
	return r
}

// String describes the rule.
func (r EvidenceRule) String() string {
	r = r.WithDefaults()
	return fmt.Sprintf("evidence rule: latest %d complete weeks pooled, >= %d conversions, one-sided %g%% upper bounds (AUC %g%%)",
		r.WindowWeeks, r.MinConversions, 100*r.Confidence, 100*r.AUCConfidence)
}

// windowEval is one pooled window's figures.
type windowEval struct {
	from, to              string
	leads, conversions    int
	topN, topConverted    int
	conversion, lift, auc CriterionVerdict
	judged                bool
}

// Judge judges the latest complete week of in.
func (r EvidenceRule) Judge(in RuleInput) Verdict {
	r = r.WithDefaults()
	var cur, prev *windowEval
	if n := len(in.Weeks); n > 0 {
		c := r.window(in.Weeks, n, true)
		cur = &c
		if n > 1 {
			p := r.window(in.Weeks, n-1, true)
			prev = &p
		}
	}
	return r.verdict(cur, prev, in.Pending)
}

// Window returns the weeks of the window the latest judgement pools.
func (r EvidenceRule) Window(in RuleInput) []RuleWeek {
	r = r.WithDefaults()
	return in.Weeks[max(0, len(in.Weeks)-r.WindowWeeks):]
}

// level is the two-sided level whose upper end is the one-sided bound.
func (r EvidenceRule) level() float64 { return twoSided(r.Confidence) }

// twoSided is 2c - 1, rounded to 1e-9 so that 0.95 gives 0.9 and not
// 0.8999999999999999.
func twoSided(c float64) float64 { return math.Round((2*c-1)*1e9) / 1e9 }

// window evaluates the pool of the WindowWeeks weeks ending before end;
// explain adds what it would take to fire (FiresAt).
func (r EvidenceRule) window(weeks []RuleWeek, end int, explain bool) windowEval {
	start := max(0, end-r.WindowWeeks)
	var leads []PairedLead
	for _, w := range weeks[start:end] {
		leads = append(leads, w.Leads...)
	}
	e := windowEval{from: weeks[start].Key, to: weeks[end-1].Key, leads: len(leads)}
	level, aucLevel := r.level(), twoSided(r.AUCConfidence)
	zAUC := distuv.UnitNormal.Quantile(r.AUCConfidence)
	nan := math.NaN()
	e.conversion = CriterionVerdict{Name: CriterionConversion, Rule: fmt.Sprintf("top-decile conversion below %g%%", 100*RollbackTopDecileConversion),
		Threshold: RollbackTopDecileConversion, Needs: r.MinConversions, Estimate: nan, Interval: nanInterval(level), FiresAt: nan}
	e.lift = CriterionVerdict{Name: CriterionLift, Rule: fmt.Sprintf("top-decile lift below %.1fx for %d consecutive weeks", RollbackTopDecileLift, RollbackLiftWeeks),
		Threshold: RollbackTopDecileLift, Needs: r.MinConversions, Estimate: nan, Interval: nanInterval(level), FiresAt: nan}
	e.auc = CriterionVerdict{Name: CriterionAUC, Rule: fmt.Sprintf("AUC below %.2f, or below the baseline version's", RollbackAUC),
		Threshold: RollbackAUC, Needs: r.MinConversions, Estimate: nan, Interval: nanInterval(aucLevel), FiresAt: nan}
	if len(leads) == 0 {
		return e
	}
	rows := make([]Row, len(leads))
	for i, l := range leads {
		rows[i] = Row{Score: l.Production, Converted: l.Converted}
	}
	st, err := Compute(rows)
	if err != nil {
		return e
	}
	e.conversions = st.Positives
	e.topN, e.topConverted = st.CountByDecile[9], st.PositivesByDecile[9]
	for _, c := range []*CriterionVerdict{&e.conversion, &e.lift, &e.auc} {
		c.Conversions = st.Positives
	}
	e.judged = st.Positives >= r.MinConversions

	// Top-decile conversion: Wilson.
	e.conversion.Estimate = st.TopDecileConversion
	e.conversion.Interval = Wilson(e.topConverted, e.topN, level)
	if explain { // the largest count that fires (the bound grows with it)
		if k := largestFiring(e.topN, func(k int) bool { return Wilson(k, e.topN, level).Hi < RollbackTopDecileConversion }); k >= 0 {
			e.conversion.FiresAt = float64(k) / float64(e.topN)
		}
	}

	// Top-decile lift: the risk-ratio interval mapped.
	e.lift.Estimate, e.lift.Interval = LiftInterval(e.topConverted, e.topN, st.Positives, st.N, level)
	if explain {
		fires := func(k int) bool {
			_, iv := LiftInterval(k, e.topN, st.Positives, st.N, level)
			return iv.Hi < RollbackTopDecileLift
		}
		if k := largestFiring(min(e.topN, st.Positives), fires); k >= 0 {
			e.lift.FiresAt, _ = LiftInterval(k, e.topN, st.Positives, st.N, level)
		}
	}

	// AUC: DeLong, and the paired comparison with the baseline on the
	// leads it scored.
	scores := make([]float64, len(leads))
	conv := make([]bool, len(leads))
	var pa, pb []float64
	var pc []bool
	for i, l := range leads {
		scores[i], conv[i] = l.Production, l.Converted
		if !math.IsNaN(l.Baseline) {
			pa, pb, pc = append(pa, l.Production), append(pb, l.Baseline), append(pc, l.Converted)
		}
	}
	var a AUCEstimate
	if countTrue(pc) >= r.MinConversions {
		p := DeLongPaired(pa, pb, pc, level)
		e.auc.Paired = &p
		if len(pa) == len(leads) {
			a = p.A // the same leads: no need to rank them again
		}
	}
	if a.Positives == 0 {
		a = DeLongAUC(scores, conv, aucLevel)
	}
	e.auc.Estimate, e.auc.Interval = a.AUC, NormalInterval(a.AUC, a.SE, aucLevel, 0, 1)
	if math.IsNaN(a.SE) {
		e.auc.Interval = nanInterval(aucLevel)
	}
	if a.SE > 0 {
		e.auc.FiresAt = RollbackAUC - zAUC*a.SE
	}
	return e
}

// largestFiring is the largest k in 0..n with fires(k), for fires true up
// to some k and false above it; -1 when fires(0) is false.
func largestFiring(n int, fires func(int) bool) int {
	if n < 0 || !fires(0) {
		return -1
	}
	lo, hi := 0, n+1 // fires(lo), !fires(hi) (hi = n+1: beyond the range)
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if fires(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

func countTrue(b []bool) int {
	n := 0
	for _, x := range b {
		if x {
			n++
		}
	}
	return n
}

func (r EvidenceRule) verdict(cur, prev *windowEval, pending int) Verdict {
	v := Verdict{Rule: r.String(), Pending: pending}
	if cur == nil {
		for _, c := range []CriterionVerdict{
			{Name: CriterionLift, Threshold: RollbackTopDecileLift},
			{Name: CriterionAUC, Threshold: RollbackAUC},
			{Name: CriterionConversion, Threshold: RollbackTopDecileConversion},
		} {
			c.Status, c.Needs = StatusInsufficient, r.MinConversions
			c.Estimate, c.FiresAt, c.Interval = math.NaN(), math.NaN(), nanInterval(r.level())
			c.Detail = fmt.Sprintf("%s: too little data to judge (no complete week since the promotion; %d leads pending)", c.Name, pending)
			v.Criteria = append(v.Criteria, c)
		}
		return v
	}
	v.From, v.To, v.Leads, v.Conversions = cur.from, cur.to, cur.leads, cur.conversions
	window := cur.from
	if cur.to != cur.from {
		window += ".." + cur.to
	}
	insufficient := func(c *CriterionVerdict) bool {
		if cur.judged {
			return false
		}
		c.Status = StatusInsufficient
		c.Detail = fmt.Sprintf("%s: too little data to judge (%d conversions in %s, needs %d)", c.Rule, cur.conversions, window, r.MinConversions)
		return true
	}
	pct := func(x float64) string { return fmt.Sprintf("%.2f%%", 100*x) }
	bound := fmt.Sprintf("%g%% upper bound", 100*r.Confidence)

	lift := cur.lift
	if !insufficient(&lift) {
		now := lift.Interval.Hi < RollbackTopDecileLift
		if prev != nil && prev.judged {
			p := prev.lift
			p.Status = StatusNotFired
			if p.Interval.Hi < RollbackTopDecileLift {
				p.Status = StatusFired
			}
			lift.Previous = &p
		}
		lift.Status = StatusNotFired
		if now && lift.Previous != nil && lift.Previous.Fired() {
			lift.Status = StatusFired
		}
		lift.Detail = fmt.Sprintf("%s: top-decile lift %.2fx in %s (%d of %d top-decile leads converted), %s %.2fx", lift.Rule,
			lift.Estimate, window, cur.topConverted, cur.topN, bound, lift.Interval.Hi)
		if lift.Previous != nil {
			lift.Detail += fmt.Sprintf("; window before: %.2fx, bound %.2fx", lift.Previous.Estimate, lift.Previous.Interval.Hi)
		}
	}

	auc := cur.auc
	if !insufficient(&auc) {
		abs := auc.Interval.Hi < RollbackAUC
		worse := auc.Paired != nil && auc.Paired.Interval.Hi < 0
		auc.Status = StatusNotFired
		if abs || worse {
			auc.Status = StatusFired
		}
		auc.Detail = fmt.Sprintf("%s: AUC %.3f in %s, %g%% upper bound %.3f", auc.Rule, auc.Estimate, window, 100*r.AUCConfidence, auc.Interval.Hi)
		if p := auc.Paired; p != nil && p.SE > 0 {
			auc.Detail += fmt.Sprintf("; against the baseline on the same leads %+.3f (%s %+.3f, p = %.3f one-sided)", p.Diff, bound, p.Interval.Hi, p.PLess)
		}
	}

	conv := cur.conversion
	if !insufficient(&conv) {
		conv.Status = StatusNotFired
		if conv.Interval.Hi < RollbackTopDecileConversion {
			conv.Status = StatusFired
		}
		conv.Detail = fmt.Sprintf("%s: top-decile conversion %s in %s (%d of %d), %s %s", conv.Rule, pct(conv.Estimate), window,
			cur.topConverted, cur.topN, bound, pct(conv.Interval.Hi))
	}
	v.Criteria = []CriterionVerdict{lift, auc, conv}
	for _, c := range v.Criteria {
		v.Fired = v.Fired || c.Fired()
	}
	return v
}

// LiteralRule is the checklist read literally, as the validator judged it
// before EvidenceRule: each complete week with at least MinWeekConversions
// conversions (default 5) is judged on its own figures; AUC below 0.59 or
// top-decile conversion below 5% in the latest judged week fires, and lift
// below 1.5x in the latest 2 judged weeks (thinner weeks between them
// neither confirm nor break the run, an empty week breaks it). It is kept
// to measure what the evidence rule changes (SimulateRollback).
type LiteralRule struct {
	MinWeekConversions int
}

// String describes the rule.
func (r LiteralRule) String() string {
	return fmt.Sprintf("literal rule: each week with >= %d conversions judged on its own figures", r.minConv())
}

func (r LiteralRule) minConv() int {
	if r.MinWeekConversions <= 0 {
		return 5
	}
	return r.MinWeekConversions
}

type literalWeek struct {
	key    string
	leads  int
	stats  Stats
	judged bool
}

func (r LiteralRule) week(w RuleWeek) literalWeek {
	lw := literalWeek{key: w.Key, leads: len(w.Leads)}
	if len(w.Leads) == 0 {
		return lw
	}
	rows := make([]Row, len(w.Leads))
	for i, l := range w.Leads {
		rows[i] = Row{Score: l.Production, Converted: l.Converted}
	}
	lw.stats, _ = Compute(rows)
	lw.judged = lw.stats.Positives >= r.minConv()
	return lw
}

// Judge judges the latest judged week of in.
func (r LiteralRule) Judge(in RuleInput) Verdict {
	ws := make([]literalWeek, len(in.Weeks))
	for i, w := range in.Weeks {
		ws[i] = r.week(w)
	}
	return r.verdict(ws, in.Pending)
}

func (r LiteralRule) verdict(ws []literalWeek, pending int) Verdict {
	v := Verdict{Rule: r.String(), Pending: pending}
	nan := math.NaN()
	lift := CriterionVerdict{Name: CriterionLift, Rule: fmt.Sprintf("top-decile lift below %.1fx for %d consecutive weeks", RollbackTopDecileLift, RollbackLiftWeeks),
		Threshold: RollbackTopDecileLift, Estimate: nan, FiresAt: RollbackTopDecileLift, Status: StatusInsufficient, Needs: r.minConv()}
	auc := CriterionVerdict{Name: CriterionAUC, Rule: fmt.Sprintf("AUC below %.2f", RollbackAUC), Threshold: RollbackAUC, Estimate: nan,
		FiresAt: RollbackAUC, Status: StatusInsufficient, Needs: r.minConv()}
	conv := CriterionVerdict{Name: CriterionConversion, Rule: fmt.Sprintf("top-decile conversion below %g%%", 100*RollbackTopDecileConversion),
		Threshold: RollbackTopDecileConversion, Estimate: nan, FiresAt: RollbackTopDecileConversion, Status: StatusInsufficient, Needs: r.minConv()}
	last := -1
	for i := len(ws) - 1; i >= 0; i-- {
		if ws[i].judged {
			last = i
			break
		}
	}
	if last >= 0 {
		w := ws[last]
		v.From, v.To, v.Leads, v.Conversions = w.key, w.key, w.leads, w.stats.Positives
		for _, c := range []*CriterionVerdict{&lift, &auc, &conv} {
			c.Status, c.Conversions = StatusNotFired, w.stats.Positives
		}
		auc.Estimate, conv.Estimate, lift.Estimate = w.stats.AUC, w.stats.TopDecileConversion, w.stats.LiftByDecile[9]
		if auc.Estimate < RollbackAUC {
			auc.Status = StatusFired
		}
		if conv.Estimate < RollbackTopDecileConversion {
			conv.Status = StatusFired
		}
		// The judged week before, with only thin (not empty) weeks between.
		if lift.Estimate < RollbackTopDecileLift {
			for i := last - 1; i >= 0 && ws[i].leads > 0; i-- {
				if ws[i].judged {
					if ws[i].stats.LiftByDecile[9] < RollbackTopDecileLift {
						lift.Status = StatusFired
					}
					break
				}
			}
		}
		auc.Detail = fmt.Sprintf("%s: %.3f in %s", auc.Rule, auc.Estimate, w.key)
		conv.Detail = fmt.Sprintf("%s: %.2f%% in %s", conv.Rule, 100*conv.Estimate, w.key)
		lift.Detail = fmt.Sprintf("%s: %.2fx in %s", lift.Rule, lift.Estimate, w.key)
	} else {
		for _, c := range []*CriterionVerdict{&lift, &auc, &conv} {
			c.Detail = fmt.Sprintf("%s: too little data to judge (no week with %d conversions)", c.Rule, r.minConv())
		}
	}
	v.Criteria = []CriterionVerdict{lift, auc, conv}
	for _, c := range v.Criteria {
		v.Fired = v.Fired || c.Fired()
	}
	return v
}

// Describe is the verdict in a few lines of text.
func (v Verdict) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s; window %s..%s: %d leads, %d conversions, %d pending\n", v.Rule, v.From, v.To, v.Leads, v.Conversions, v.Pending)
	for _, c := range v.Criteria {
		fmt.Fprintf(&b, "  %-12s %s\n", c.Status, c.Detail)
	}
	return b.String()
}
