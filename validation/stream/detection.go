package stream

import (
	"context"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strings"

	"github.com/leadscorer/leadscorer/validation"
)

// DetectionPeriods is how many periods per scenario the report's detection
// curve simulates: enough for a Monte-Carlo standard error of at most 2.2
// points per share (0.5/sqrt(500)), few enough for a few CPU-seconds.
const DetectionPeriods = 500

// DetectionSeed is the detection curve's seed: the same rule gives the
// same curve in every report.
const DetectionSeed = 1

// DetectionCurve simulates how often and how soon rule, and the checklist's
// criteria read literally, roll a version back (validation.SimulateRollback
// on the embedded test set, 8-week periods of 370 leads a week, the
// default scenarios), periods periods per scenario on every CPU.
func DetectionCurve(ctx context.Context, rule validation.EvidenceRule, periods int) (*validation.Table, error) {
	return detectionCurve(ctx, rule, periods, 0)
}

func detectionCurve(ctx context.Context, rule validation.EvidenceRule, periods, workers int) (*validation.Table, error) {
	pool, err := validation.ParallelTestSet()
	if err != nil {
		return nil, err
	}
	t, err := validation.SimulateRollbackContext(ctx, validation.SimConfig{Leads: pool, Periods: periods, Seed: DetectionSeed,
		Rule: rule, Workers: workers})
	if err != nil {
		return nil, err
	}
	t.TestSet = validation.ParallelTestSetName
	return &t, nil
}

// maxMCSE is the largest Monte-Carlo standard error of the table's shares.
func maxMCSE(t *validation.Table) float64 {
	m := 0.0
	for _, r := range t.Rows {
		for _, p := range r.Within {
			m = math.Max(m, t.MCSE(p))
		}
	}
	return m
}

// detectionChart draws the share of simulated periods rolled back by the
// end of each week: one line per scenario and rule (the scenario's colour;
// solid the evidence rule, dashed the literal rules), the targets as
// markers, and the Monte-Carlo error in words.
func detectionChart(t *validation.Table) template.HTML {
	const W, H, left, right, top, bottom = 700, 300, 44, 190, 12, 58
	var scenarios []string
	for _, r := range t.Rows {
		if !slices.Contains(scenarios, r.Scenario) {
			scenarios = append(scenarios, r.Scenario)
		}
	}
	color := func(scenario string) string {
		for i, s := range scenarios {
			if s == scenario {
				return palette[i%len(palette)]
			}
		}
		return "#888"
	}
	plotW := float64(W - left - right)
	x := func(week int) float64 {
		if t.Weeks <= 1 {
			return float64(left) + plotW/2
		}
		return float64(left) + plotW*float64(week-1)/float64(t.Weeks-1)
	}
	y := func(p float64) float64 { return top + (H-top-bottom)*(1-p) }
	esc := template.HTMLEscapeString
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" id="detection-chart" data-periods="%d" data-weeks="%d" data-leads-per-week="%d" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="simulated detection curve">`,
		t.Periods, t.Weeks, t.LeadsPerWeek, W, H, W, H)
	for _, p := range []float64{0, 0.25, 0.5, 0.75, 1} {
		fmt.Fprintf(&b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" font-size="10" text-anchor="end">%g%%</text>`,
			left, float64(left)+plotW, y(p), y(p), left-4, y(p)+3, 100*p)
	}
	for w := 1; w <= t.Weeks; w++ {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%d</text>`, x(w), H-bottom+13, w)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle">complete weeks since the promotion</text>`, float64(left)+plotW/2, H-bottom+27)
	for _, r := range t.Rows {
		dash, width := ` stroke-dasharray="6 4"`, 1.5
		if r.Rule == "evidence" {
			dash, width = "", 2.5
		}
		vals := make([]string, len(r.Within))
		pts := make([]string, len(r.Within))
		for i, p := range r.Within {
			vals[i] = fmt.Sprint(p)
			pts[i] = fmt.Sprintf("%.1f,%.1f", x(i+1), y(p))
		}
		fmt.Fprintf(&b, `<polyline class="detection" data-scenario="%s" data-rule="%s" data-within="%s" points="%s" fill="none" stroke="%s" stroke-width="%g"%s><title>%s, %s rule</title></polyline>`,
			esc(r.Scenario), esc(r.Rule), strings.Join(vals, ","), strings.Join(pts, " "), color(r.Scenario), width, dash, esc(r.Scenario), esc(r.Rule))
		for i, p := range r.Within {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s, %s rule: %.1f%% ± %.1f rolled back within %d weeks</title></circle>`,
				x(i+1), y(p), color(r.Scenario), esc(r.Scenario), esc(r.Rule), 100*p, 100*t.MCSE(p), i+1)
		}
	}
	// The targets: at most or at least a share by a week.
	for _, tg := range validation.Targets {
		if tg.Week > t.Weeks || !slices.Contains(scenarios, tg.Scenario) {
			continue
		}
		sign := "≥"
		if tg.AtMost {
			sign = "≤"
		}
		fmt.Fprintf(&b, `<g class="target" data-scenario="%s" data-week="%d" data-bound="%g"><line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="4"/><text x="%.1f" y="%.1f" font-size="10" fill="%s">%s%g%%</text><title>target: %s, %s %g%%</title></g>`,
			esc(tg.Scenario), tg.Week, tg.Bound, x(tg.Week)-7, x(tg.Week)+7, y(tg.Bound), y(tg.Bound), color(tg.Scenario),
			x(tg.Week)+9, y(tg.Bound)+4, color(tg.Scenario), sign, 100*tg.Bound, esc(tg.Name), sign, 100*tg.Bound)
	}
	// Legend.
	lx := float64(W-right) + 16
	for i, s := range scenarios {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="12" height="12" fill="%s"/><text x="%.1f" y="%d" font-size="11">%s</text>`,
			lx, top+18*i, color(s), lx+18, top+18*i+10, esc(s))
	}
	ly := top + 18*len(scenarios) + 12
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#333" stroke-width="2.5"/><text x="%.1f" y="%d" font-size="11">evidence rule</text>`, lx, lx+24, ly, ly, lx+30, ly+4)
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#333" stroke-width="1.5" stroke-dasharray="6 4"/><text x="%.1f" y="%d" font-size="11">literal rules</text>`, lx, lx+24, ly+18, ly+18, lx+30, ly+22)
	fmt.Fprintf(&b, `<text class="mc-error" x="%d" y="%d" font-size="11">%d simulated periods per scenario, %d leads a week: each point ± at most %.1f points (Monte-Carlo standard error)</text></svg>`,
		left, H-6, t.Periods, t.LeadsPerWeek, 100*maxMCSE(t))
	return template.HTML(b.String())
}
