package stream

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/leadscorer/leadscorer/validation"
)

// Main returns the window the report leads with: all data.
func (rep *Report) Main() *Window { return rep.Latest(KindAll, false) }

// WriteTable writes the lift-by-decile table of every version side by side
// over all data, their AUC and conversion figures, and the production
// version's rollback criteria and targets.
func WriteTable(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "validation as of %s; production %s\n", rep.AsOf.Format(time.RFC3339), rep.Production)
	fmt.Fprintf(w, "records: %d shadow, %d outcomes (%d duplicates ignored), %d leads contacted\n\n",
		rep.Counts.ShadowRecords, rep.Counts.Outcomes, rep.Counts.Duplicates, rep.Counts.Contacted)
	win := rep.Main()
	if win == nil {
		_, err := fmt.Fprintln(w, "no data yet")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "decile\t")
	for _, p := range win.Performance {
		fmt.Fprintf(tw, "%s lift\t", p.Version)
	}
	fmt.Fprintln(tw)
	for d := 9; d >= 0; d-- {
		fmt.Fprintf(tw, "%d\t", d+1)
		for _, p := range win.Performance {
			fmt.Fprintf(tw, "%s\t", fmtF(p.LiftByDecile[d], "%.2fx"))
		}
		fmt.Fprintln(tw)
	}
	rows := []struct {
		name string
		get  func(*Performance) string
	}{
		{"labelled", func(p *Performance) string { return fmt.Sprint(p.Labelled) }},
		{"conversions", func(p *Performance) string { return fmt.Sprint(p.Conversions) }},
		{"pending", func(p *Performance) string { return fmt.Sprint(p.Pending) }},
		{"AUC", func(p *Performance) string { return fmtF(p.AUC, "%.4f") }},
		{"AUC-PR", func(p *Performance) string { return fmtF(p.AUCPR, "%.4f") }},
		{"top-decile conversion", func(p *Performance) string { return fmtPct(p.TopDecileConversion) }},
		{"bottom-20% conversion", func(p *Performance) string { return fmtPct(p.Bottom20Conversion) }},
		{"deprioritization efficiency", func(p *Performance) string { return fmtF(p.DeprioritizationEfficiency, "%.1f pts") }},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t", r.name)
		for i := range win.Performance {
			fmt.Fprintf(tw, "%s\t", r.get(&win.Performance[i]))
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprint(tw, "PSI vs reference\t")
	for _, d := range win.Drift {
		fmt.Fprintf(tw, "%s\t", fmtF(d.PSI, "%.3f"))
	}
	fmt.Fprintln(tw)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, a := range win.Agreement {
		fmt.Fprintf(w, "\ndeprioritize flags of %s and %s agree on %s of %d lead changes\n", a.Versions[0], a.Versions[1], fmtPct(a.FlagAgreement), a.Pairs)
	}
	c := rep.Criteria
	fmt.Fprintf(w, "\nrollback criteria for %s, judged on its complete ISO weeks since its promotion\n", c.Version)
	fmt.Fprintf(w, "  %s\n", c.Decision)
	window := "no complete week yet"
	if c.Window.From != "" {
		window = fmt.Sprintf("%s..%s: %d leads, %d conversions", c.Window.From, c.Window.To, c.Window.Leads, c.Window.Conversions)
	}
	fmt.Fprintf(w, "  judged window %s; %d leads pending (contacted since the promotion, label or week not final: not judged)\n", window, c.Pending)
	for _, wk := range c.Weeks {
		note := ""
		if wk.InWindow {
			note = "  (in the window)"
		}
		fmt.Fprintf(w, "  %s  %4d leads %3d conversions  lift %s  AUC %s  top-decile conversion %s%s\n", wk.Week, wk.Labelled, wk.Conversions,
			fmtF(wk.TopDecileLift, "%.2fx"), fmtF(wk.AUC, "%.3f"), fmtPct(wk.TopDecileConversion), note)
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  status\tcriterion\testimate\tinterval\tthreshold\tfires at or below")
	for _, r := range c.Rules {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", statusWord(r.Status), r.Rule, fmtNum(r.Value, r.Name), fmtBounds(r.Interval, r.Name),
			fmtNum(Num(r.Threshold), r.Name), fmtNum(r.FiresAt, r.Name))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range c.Rules {
		if r.Status == "insufficient" {
			fmt.Fprintf(w, "  %s\n", r.Detail)
		}
	}
	if p := c.Paired; p != nil {
		fmt.Fprintf(w, "  paired on the same %d leads, %s minus %s: AUC %s %s (DeLong, z %s, one-sided p of worse %s); top-decile lift %s %s (paired bootstrap, %d resamples)\n",
			p.Leads, p.Production, p.Baseline, fmtF(p.AUCDiff, "%+.3f"), fmtBounds(p.AUCDiffInterval, "diff"), fmtF(p.Z, "%.2f"), fmtF(p.PWorse, "%.3f"),
			fmtF(p.LiftDiff, "%+.2fx"), fmtBounds(p.LiftDiffInterval, "liftdiff"), p.LiftDiffResamples)
	}
	fmt.Fprintln(w, "targets (since promotion)")
	for _, t := range c.Targets {
		fmt.Fprintf(w, "  %-6s %s: %s\n", verdict(t.Pass, "pass", "FAIL"), t.Target, t.Measured)
	}
	if len(rep.PostDeployment) > 0 {
		fmt.Fprintln(w)
		if err := WritePostDeployment(w, rep.PostDeployment); err != nil {
			return err
		}
	}
	if c.Fired {
		fmt.Fprintf(w, "\nROLLBACK RECOMMENDED: %s\n", strings.Join(c.Reasons, "; "))
	}
	return nil
}

func statusWord(s string) string {
	switch s {
	case "fired":
		return "FIRED"
	case "not_fired":
		return "ok"
	}
	return "too little data"
}

// fmtBounds formats an interval in the criterion's unit, with its level.
func fmtBounds(b Bounds, criterion string) string {
	if math.IsNaN(float64(b.Lo)) || math.IsNaN(float64(b.Hi)) {
		return "n/a"
	}
	one := func(x Num) string {
		switch criterion {
		case "diff":
			return fmt.Sprintf("%+.3f", float64(x))
		case "liftdiff":
			return fmt.Sprintf("%+.2fx", float64(x))
		}
		return fmtNum(x, criterion)
	}
	return fmt.Sprintf("[%s, %s] (%g%%)", one(b.Lo), one(b.Hi), 100*b.Level)
}

func verdict(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fmtF(n Num, format string) string {
	if math.IsNaN(float64(n)) {
		return "n/a"
	}
	return fmt.Sprintf(format, float64(n))
}

func fmtPct(n Num) string {
	if math.IsNaN(float64(n)) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(n))
}

// Handler serves the report: GET /dashboard (the HTML page) and GET
// /dashboard.json (the Report). report returns the latest report, nil
// before the first evaluation (503).
func Handler(report func() *Report) http.Handler {
	mux := http.NewServeMux()
	get := func(w http.ResponseWriter) *Report {
		rep := report()
		if rep == nil {
			http.Error(w, "validation not evaluated yet: the state is still being rebuilt from the topics", http.StatusServiceUnavailable)
		}
		return rep
	}
	mux.HandleFunc("GET /dashboard", func(w http.ResponseWriter, r *http.Request) {
		if rep := get(w); rep != nil {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_ = WriteHTML(w, rep, true)
		}
	})
	mux.HandleFunc("GET /dashboard.json", func(w http.ResponseWriter, r *http.Request) {
		if rep := get(w); rep != nil {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(rep)
		}
	})
	return mux
}

// WriteHTML writes the report as one self-contained HTML page (inline CSS
// and SVG, no script, nothing fetched): summary figures, lift by decile of
// every version, score histograms against the reference, the decile
// transition heat map, the criteria and, when the report has one, the
// rule's simulated detection curve. live adds a refresh every 30s.
func WriteHTML(w io.Writer, rep *Report, live bool) error {
	return page.Execute(w, pageData{Rep: rep, Win: rep.Main(), Live: live})
}

type pageData struct {
	Rep  *Report
	Win  *Window
	Live bool
}

var palette = []string{"#4c78a8", "#f58518", "#54a24b", "#b279a2"}

var funcs = template.FuncMap{
	"f":   func(n Num, format string) string { return fmtF(n, format) },
	"pct": fmtPct,
	"raw": func(n Num) string {
		if math.IsNaN(float64(n)) {
			return "null"
		}
		return fmt.Sprint(float64(n))
	},
	"color":          func(i int) string { return palette[i%len(palette)] },
	"ruleValue":      func(r Rule) string { return fmtNum(r.Value, r.Name) },
	"num":            fmtNum,
	"threshold":      func(x float64) Num { return Num(x) },
	"bounds":         fmtBounds,
	"status":         statusWord,
	"intervalBar":    intervalBar,
	"postDeployment": PostDeploymentHTML,
	"liftChart":      liftChart,
	"histChart":      histChart,
	"heatMap":        heatMap,
	"detection":      detectionChart,
	"maxMCSE":        func(t *validation.Table) string { return fmt.Sprintf("%.1f", 100*maxMCSE(t)) },
	"time":           func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"versionsOf":     func(w *Window) []Performance { return w.Performance },
}

// liftChart draws grouped bars: per decile one bar per version, with a
// dashed line at lift 1.
func liftChart(win *Window) template.HTML {
	const W, H, left, bottom, top = 640, 260, 40, 30, 10
	maxLift := 2.0
	for _, p := range win.Performance {
		for _, x := range p.LiftByDecile {
			if f := float64(x); !math.IsNaN(f) && f > maxLift {
				maxLift = f
			}
		}
	}
	maxLift = math.Ceil(maxLift)
	y := func(v float64) float64 { return top + (H-top-bottom)*(1-v/maxLift) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" id="lift-chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="lift by decile">`, W, H, W, H)
	for v := 0.0; v <= maxLift; v++ {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" font-size="10" text-anchor="end">%gx</text>`, left, W, y(v), y(v), left-4, y(v)+3, v)
	}
	n := max(len(win.Performance), 1)
	slot := float64(W-left) / 10
	bw := (slot - 8) / float64(n)
	for d := range 10 {
		x0 := float64(left) + slot*float64(d) + 4
		for i, p := range win.Performance {
			v := float64(p.LiftByDecile[d])
			if math.IsNaN(v) {
				continue
			}
			fmt.Fprintf(&b, `<rect class="bar" data-version="%s" data-decile="%d" data-lift="%g" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s decile %d: %.2fx</title></rect>`,
				template.HTMLEscapeString(p.Version), d+1, v, x0+bw*float64(i), y(v), bw-1, y(0)-y(v), palette[i%len(palette)], template.HTMLEscapeString(p.Version), d+1, v)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle">%d</text>`, x0+slot/2-4, H-bottom+14, d+1)
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#333" stroke-dasharray="4 3"/>`, left, W, y(1), y(1))
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="middle">decile (1 = lowest scores)</text></svg>`, (W+left)/2, H-2)
	return template.HTML(b.String())
}

// intervalBar draws an estimate with its interval as an error bar on a
// short axis, and the threshold as a dashed line: the criterion fires when
// the whole bar's upper end is left of the line. name says the unit.
func intervalBar(name string, est Num, b Bounds, threshold float64) template.HTML {
	const W, H, pad = 220, 26, 8
	lo, hi, e := float64(b.Lo), float64(b.Hi), float64(est)
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="interval" data-criterion="%s" data-estimate="%s" data-lo="%s" data-hi="%s" data-threshold="%g" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="interval">`,
		template.HTMLEscapeString(name), rawNum(est), rawNum(b.Lo), rawNum(b.Hi), threshold, W, H, W, H)
	if math.IsNaN(lo) || math.IsNaN(hi) || math.IsNaN(e) {
		sb.WriteString(`<text x="4" y="16" font-size="11">no interval</text></svg>`)
		return template.HTML(sb.String())
	}
	axLo, axHi := math.Min(math.Min(lo, threshold), e), math.Max(math.Max(hi, threshold), e)
	if math.IsInf(axHi, 1) {
		axHi = math.Max(threshold, e) * 2
	}
	span := axHi - axLo
	if span <= 0 {
		span = 1
	}
	axLo, axHi = axLo-0.1*span, axHi+0.1*span
	x := func(v float64) float64 {
		v = math.Min(math.Max(v, axLo), axHi)
		return pad + (W-2*pad)*(v-axLo)/(axHi-axLo)
	}
	fmt.Fprintf(&sb, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#ddd"/>`, pad, W-pad, H/2, H/2)
	fmt.Fprintf(&sb, `<line class="threshold" x1="%.1f" x2="%.1f" y1="2" y2="%d" stroke="#c62828" stroke-dasharray="3 2"/>`, x(threshold), x(threshold), H-2)
	fmt.Fprintf(&sb, `<line class="bar" x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#4c78a8" stroke-width="3"/>`, x(lo), x(hi), H/2, H/2)
	fmt.Fprintf(&sb, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#4c78a8"/><line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#4c78a8"/>`,
		x(lo), x(lo), H/2-6, H/2+6, x(hi), x(hi), H/2-6, H/2+6)
	fmt.Fprintf(&sb, `<circle class="estimate" cx="%.1f" cy="%d" r="4" fill="#222"/></svg>`, x(e), H/2)
	return template.HTML(sb.String())
}

func rawNum(n Num) string {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "null"
	}
	return fmt.Sprint(f)
}

// histChart draws one version's live score shares per bin as bars and the
// reference shares as a step line.
func histChart(rep *Report, win *Window, i int) template.HTML {
	const W, H, left, bottom, top = 300, 180, 34, 28, 10
	info := rep.Versions[i]
	d := win.Drift[i]
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart hist" data-version="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="score histogram">`,
		template.HTMLEscapeString(info.Version), W, H, W, H)
	h := info.Histogram
	if len(h.Edges) == 0 || d.Scored == 0 {
		fmt.Fprintf(&b, `<text x="10" y="40" font-size="12">no scores or no reference</text></svg>`)
		return template.HTML(b.String())
	}
	share := make([]float64, len(d.Histogram))
	top1 := 0.0
	for k, c := range d.Histogram {
		share[k] = float64(c) / float64(d.Scored)
		top1 = max(top1, share[k], h.Reference[k])
	}
	bw := float64(W-left) / float64(len(share))
	y := func(v float64) float64 { return top + (H-top-bottom)*(1-v/top1) }
	for k, s := range share {
		fmt.Fprintf(&b, `<rect class="bin" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%.3f..%.3f: %.1f%% live, %.1f%% reference</title></rect>`,
			float64(left)+bw*float64(k), y(s), bw-1, y(0)-y(s), palette[i%len(palette)], h.Edges[k], h.Edges[k+1], 100*s, 100*h.Reference[k])
	}
	var pts []string
	for k, r := range h.Reference {
		x := float64(left) + bw*float64(k)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f %.1f,%.1f", x, y(r), x+bw, y(r)))
	}
	fmt.Fprintf(&b, `<polyline class="reference" points="%s" fill="none" stroke="#222" stroke-width="1.5"/>`, strings.Join(pts, " "))
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10">%.3f</text><text x="%d" y="%d" font-size="10" text-anchor="end">%.3f</text>`, left, H-bottom+12, h.Edges[0], W, H-bottom+12, h.Edges[len(h.Edges)-1])
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" text-anchor="middle">score (bars live, line reference)</text></svg>`, (W+left)/2, H-4)
	return template.HTML(b.String())
}

// heatMap draws the 10x10 decile transition counts of an agreement.
func heatMap(a Agreement) template.HTML {
	const cell, left, top = 30, 60, 20
	maxC := 1
	for _, row := range a.Transitions {
		for _, c := range row {
			maxC = max(maxC, c)
		}
	}
	W, H := left+10*cell+10, top+10*cell+40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" id="heatmap" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="decile transitions">`, W, H, W, H)
	for i := range 10 { // row: A's decile, highest on top
		r := 9 - i
		for j := range 10 {
			c := a.Transitions[r][j]
			op := 0.05 + 0.95*float64(c)/float64(maxC)
			fmt.Fprintf(&b, `<rect class="cell" data-from="%d" data-to="%d" data-count="%d" x="%d" y="%d" width="%d" height="%d" fill="#4c78a8" fill-opacity="%.3f"><title>%s decile %d, %s decile %d: %d</title></rect>`,
				r+1, j+1, c, left+j*cell, top+i*cell, cell-1, cell-1, op, template.HTMLEscapeString(a.Versions[0]), r+1, template.HTMLEscapeString(a.Versions[1]), j+1, c)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" text-anchor="end">%d</text>`, left-4, top+i*cell+cell/2+3, r+1)
	}
	for j := range 10 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" text-anchor="middle">%d</text>`, left+j*cell+cell/2, top+10*cell+12, j+1)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="middle">%s decile</text>`, left+5*cell, top+10*cell+30, template.HTMLEscapeString(a.Versions[1]))
	fmt.Fprintf(&b, `<text x="12" y="%d" font-size="11" transform="rotate(-90 12 %d)" text-anchor="middle">%s decile</text></svg>`, top+5*cell, top+5*cell, template.HTMLEscapeString(a.Versions[0]))
	return template.HTML(b.String())
}

var page = template.Must(template.New("page").Funcs(funcs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>leadscorer validation</title>
{{if .Live}}<meta http-equiv="refresh" content="30">{{end}}
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}
.pass{color:#1a7f37;font-weight:600}.fail{color:#c62828;font-weight:700}
.banner{padding:10px 14px;background:#fdecea;border:1px solid #c62828;border-radius:4px}
.ok{padding:10px 14px;background:#e8f5e9;border:1px solid #1a7f37;border-radius:4px}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
.hists{display:flex;gap:16px;flex-wrap:wrap}
</style></head><body>
<h1>Parallel validation</h1>
<p>As of <span id="as-of" data-as-of="{{.Rep.AsOf.Format "2006-01-02T15:04:05Z07:00"}}">{{time .Rep.AsOf}}</span>;
production <b id="production">{{.Rep.Production}}</b>;
{{.Rep.Counts.ShadowRecords}} shadow records, {{.Rep.Counts.Outcomes}} outcomes, {{.Rep.Counts.Contacted}} leads contacted.</p>
{{with .Rep.Criteria}}{{if .Fired}}<p class="banner" id="verdict" data-fired="true"><b>Rollback recommended</b> for {{.Version}}:
{{range .Reasons}}<br>{{.}}{{end}}</p>{{else}}<p class="ok" id="verdict" data-fired="false">No rollback criterion fires for {{.Version}}.</p>{{end}}{{end}}
{{with .Win}}
<h2>Lift by decile, all labelled leads</h2>
<p class="legend">{{range $i, $p := .Performance}}<span style="background:{{color $i}}"></span>{{$p.Version}}{{end}}</p>
{{liftChart .}}
<h2>Figures</h2>
<table id="figures"><tr><th>figure</th>{{range .Performance}}<th>{{.Version}}</th>{{end}}</tr>
<tr><td>labelled leads</td>{{range .Performance}}<td data-version="{{.Version}}" data-key="labelled" data-value="{{.Labelled}}">{{.Labelled}}</td>{{end}}</tr>
<tr><td>conversions</td>{{range .Performance}}<td data-version="{{.Version}}" data-key="conversions" data-value="{{.Conversions}}">{{.Conversions}}</td>{{end}}</tr>
<tr><td>pending (inside 43 days)</td>{{range .Performance}}<td>{{.Pending}}</td>{{end}}</tr>
<tr><td>AUC</td>{{range .Performance}}<td data-version="{{.Version}}" data-key="auc" data-value="{{raw .AUC}}">{{f .AUC "%.4f"}}</td>{{end}}</tr>
<tr><td>AUC-PR</td>{{range .Performance}}<td data-version="{{.Version}}" data-key="auc_pr" data-value="{{raw .AUCPR}}">{{f .AUCPR "%.4f"}}</td>{{end}}</tr>
<tr><td>top-decile lift</td>{{range .Performance}}<td data-version="{{.Version}}" data-key="top_decile_lift" data-value="{{raw .TopDecileLift}}">{{f .TopDecileLift "%.2fx"}}</td>{{end}}</tr>
<tr><td>top-decile conversion</td>{{range .Performance}}<td data-version="{{.Version}}" data-key="top_decile_conversion" data-value="{{raw .TopDecileConversion}}">{{pct .TopDecileConversion}}</td>{{end}}</tr>
<tr><td>bottom-20% conversion</td>{{range .Performance}}<td data-version="{{.Version}}" data-key="bottom20_conversion" data-value="{{raw .Bottom20Conversion}}">{{pct .Bottom20Conversion}}</td>{{end}}</tr>
<tr><td>deprioritization efficiency (points)</td>{{range .Performance}}<td data-version="{{.Version}}" data-key="deprioritization_efficiency" data-value="{{raw .DeprioritizationEfficiency}}">{{f .DeprioritizationEfficiency "%.1f"}}</td>{{end}}</tr>
<tr><td>PSI vs reference</td>{{range .Drift}}<td data-version="{{.Version}}" data-key="psi" data-value="{{raw .PSI}}">{{f .PSI "%.3f"}}</td>{{end}}</tr>
</table>
<h2>Score distribution against the reference</h2>
<div class="hists">{{range $i, $v := $.Rep.Versions}}<figure><figcaption>{{$v.Version}}</figcaption>{{histChart $.Rep $.Win $i}}</figure>{{end}}</div>
{{range .Agreement}}
<h2>Decile transitions {{index .Versions 0}} → {{index .Versions 1}}</h2>
<p>Deprioritize flags agree on <b id="flag-agreement" data-value="{{raw .FlagAgreement}}">{{pct .FlagAgreement}}</b> of {{.Pairs}} lead changes.</p>
{{heatMap .}}
{{end}}
{{else}}<p>No data yet.</p>{{end}}
{{with .Rep.Criteria}}
<h2>Rollback criteria for {{.Version}}, on its complete ISO weeks since its promotion</h2>
<p id="decision">{{.Decision}}.</p>
<p>Judged window <b id="rule-window" data-from="{{.Window.From}}" data-to="{{.Window.To}}">{{if .Window.From}}{{.Window.From}}..{{.Window.To}}{{else}}none yet{{end}}</b>:
{{.Window.Leads}} leads, {{.Window.Conversions}} conversions;
<b id="pending" data-value="{{.Pending}}">{{.Pending}}</b> leads pending (contacted since the promotion, label or week not final: not judged).
The bar is the interval, the dot the estimate, the dashed line the threshold: a criterion fires when the interval's upper end is below it.</p>
<table id="criteria"><tr><th>criterion</th><th>estimate</th><th>interval</th><th></th><th>threshold</th><th>fires at or below</th><th>status</th></tr>
{{range .Rules}}<tr data-criterion="{{.Name}}" data-fired="{{.Fired}}" data-status="{{.Status}}"><td>{{.Rule}}</td><td data-value="{{raw .Value}}">{{ruleValue .}}</td><td>{{bounds .Interval .Name}}</td><td>{{intervalBar .Name .Value .Interval .Threshold}}</td><td>{{num (threshold .Threshold) .Name}}</td><td>{{num .FiresAt .Name}}</td><td class="{{if .Fired}}fail{{else}}pass{{end}}" title="{{.Detail}}">{{status .Status}}</td></tr>{{end}}
</table>
{{range .Rules}}{{if eq .Status "insufficient"}}<p class="insufficient">{{.Detail}}</p>{{end}}{{end}}
{{with .Paired}}<h3>{{.Production}} against {{.Baseline}} on the same {{.Leads}} leads</h3>
<table id="paired"><tr><th>difference ({{.Production}} minus {{.Baseline}})</th><th>estimate</th><th>interval</th><th></th></tr>
<tr data-key="auc_diff"><td>AUC (DeLong; z {{f .Z "%.2f"}}, one-sided p of worse {{f .PWorse "%.3f"}})</td><td data-value="{{raw .AUCDiff}}">{{f .AUCDiff "%+.3f"}}</td><td>{{bounds .AUCDiffInterval "diff"}}</td><td>{{intervalBar "auc_diff" .AUCDiff .AUCDiffInterval 0}}</td></tr>
<tr data-key="lift_diff"><td>top-decile lift (paired bootstrap, {{.LiftDiffResamples}} resamples)</td><td data-value="{{raw .LiftDiff}}">{{f .LiftDiff "%+.2fx"}}</td><td>{{bounds .LiftDiffInterval "liftdiff"}}</td><td>{{intervalBar "lift_diff" .LiftDiff .LiftDiffInterval 0}}</td></tr>
</table>{{end}}
<table id="weeks"><tr><th>week</th><th>labelled</th><th>conversions</th><th>top-decile lift</th><th>AUC</th><th>top-decile conversion</th><th>in the judged window</th></tr>
{{range .Weeks}}<tr><td>{{.Week}}</td><td>{{.Labelled}}</td><td>{{.Conversions}}</td><td>{{f .TopDecileLift "%.2fx"}}</td><td>{{f .AUC "%.3f"}}</td><td>{{pct .TopDecileConversion}}</td><td>{{if .InWindow}}yes{{else}}no{{end}}</td></tr>{{end}}
</table>
<h2>Targets since promotion</h2>
<table id="targets"><tr><th>target</th><th>measured</th><th>status</th></tr>
{{range .Targets}}<tr><td>{{.Target}}</td><td>{{.Measured}}</td><td class="{{if .Pass}}pass{{else}}fail{{end}}">{{if .Pass}}pass{{else}}fail{{end}}</td></tr>{{end}}
</table>
{{end}}
{{with .Rep.PostDeployment}}
<h2 id="post-deployment">Post-deployment validation of {{(index . 0).Version}}</h2>
<p>The checklist's week-1 ("performance metrics validated") and week-2 ("no regressions detected") items: the validator's verdict
once the week's labels are final, by the same rule as the rollback criteria, and the sign-off recorded in the registry
(<code>leadscorer registry signoff --stage week1|week2</code>).</p>
{{postDeployment .}}
{{end}}
{{with .Rep.Detection}}
<h2>How often the rule rolls back: simulated</h2>
<p id="detection" data-periods="{{.Periods}}">The share of simulated {{.Weeks}}-week periods in which the rollback rule
({{.Rule}}; solid lines) and the checklist's criteria read literally, week by week (dashed), have rolled the production version
back by the end of each complete week, for a version performing as validated, one with no skill left and one degraded to a top-decile lift of 1.3:
{{.Periods}} periods per scenario of {{.LeadsPerWeek}} leads a week (about {{printf "%.1f" .ConversionsPerWeek}} conversions) drawn from
the {{.PoolLeads}} leads of the test set, seed {{.Seed}}. Each point's Monte-Carlo standard error is at most {{maxMCSE .}} points.
The markers are the targets: at most 5% false rollbacks in 8 weeks, 90% of no-skill versions rolled back within 3, 80% of lift-1.3
ones within 6. <code>leadscorer validate simulate</code> prints the table, with more periods.</p>
{{detection .}}
{{end}}
</body></html>
`))
