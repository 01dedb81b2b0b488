package stream

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/leadscorer/leadscorer/scoring"
	"github.com/leadscorer/leadscorer/validation"
)

// Num is a figure that may be undefined: NaN marshals to JSON null.
type Num float64

// MarshalJSON writes null for NaN and ±Inf.
func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// UnmarshalJSON reads null as NaN.
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.NaN())
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	*n = Num(f)
	return err
}

// Window kinds.
const (
	KindDay       = "day"       // a UTC calendar day
	KindWeek      = "week"      // an ISO week (Monday to Sunday, UTC)
	KindPromotion = "promotion" // from a version's promotion to production until now
	KindAll       = "all"       // everything the topics hold
)

// Report is the validation as of one instant. Performance windows hold the
// leads first contacted in them; drift and agreement windows the shadow
// records scored in them.
type Report struct {
	AsOf       time.Time     `json:"as_of"`
	Production string        `json:"production"`
	Versions   []VersionInfo `json:"versions"`
	Counts     Counts        `json:"counts"`
	Windows    []Window      `json:"windows"`
	Criteria   Criteria      `json:"criteria"`
	// Detection is the rule's simulated detection curve (DetectionCurve):
	// how often it rolls back by week, against the literal rules; nil
	// when not computed.
	Detection *validation.Table `json:"detection,omitempty"`
	// PostDeployment is the checklist's week-1 and week-2 validation of the
	// production version (PostDeployment): pending, passed or failed, and
	// who signed it off. The validator fills it; State.Report does not.
	PostDeployment []StageVerdict `json:"post_deployment,omitempty"`
}

// VersionInfo is a version as the registry lists it.
type VersionInfo struct {
	Version    string     `json:"version"`
	Role       string     `json:"role"` // "" when the registry no longer lists it
	PromotedAt *time.Time `json:"promoted_at,omitempty"`
	// Reference is the share of the reference population in each score
	// bin of Histogram.Edges (ReferenceShares).
	Histogram Histogram `json:"histogram"`
}

// Histogram bins scores between the reference population's 1st and 99th
// percentiles into HistogramBins equal bins; scores outside go to the first
// or last bin.
type Histogram struct {
	Edges     []float64 `json:"edges"`     // HistogramBins+1 ascending bounds
	Reference []float64 `json:"reference"` // share of the reference population per bin, sums to 1
}

// HistogramBins is the number of bins of the score histograms.
const HistogramBins = 20

// Window is one period of the report.
type Window struct {
	Kind  string    `json:"kind"`
	Key   string    `json:"key"` // 2025-09-03, 2025-W36, or "since v4.1.0 promotion"
	Start time.Time `json:"start"`
	End   time.Time `json:"end"` // exclusive
	// Complete: every lead contacted in the window is past its label
	// window, so no label in it can still change.
	Complete    bool          `json:"complete"`
	Performance []Performance `json:"performance"`
	Drift       []Drift       `json:"drift"`
	Agreement   []Agreement   `json:"agreement"`
}

// Performance is one version's figures over the labelled leads of a
// window (package validation's definitions, docs/METRICS.md).
type Performance struct {
	Version                    string  `json:"version"`
	Labelled                   int     `json:"labelled"`
	Conversions                int     `json:"conversions"`
	Pending                    int     `json:"pending"`  // contacted, not yet labelled
	Unscored                   int     `json:"unscored"` // contacted with no score of this version before contact
	ConversionRate             Num     `json:"conversion_rate"`
	AUC                        Num     `json:"auc"`
	AUCPR                      Num     `json:"auc_pr"`
	LiftByDecile               [10]Num `json:"lift_by_decile"`
	CountByDecile              [10]int `json:"count_by_decile"`
	TopDecileLift              Num     `json:"top_decile_lift"`
	TopDecileConversion        Num     `json:"top_decile_conversion"`
	Bottom20Conversion         Num     `json:"bottom20_conversion"`
	DeprioritizationEfficiency Num     `json:"deprioritization_efficiency"`
}

// Drift is one version's live score distribution in a window against the
// registry's reference.
type Drift struct {
	Version string `json:"version"`
	Scored  int    `json:"scored"`
	// DecileShares[d] is the share of scores in reference decile d+1
	// (the shadow record's decile); the reference puts 10% in each.
	DecileShares [10]float64 `json:"decile_shares"`
	// PSI is sum over deciles of (live - ref) x ln(live / ref), shares
	// floored at 0.0001. NaN when nothing was scored.
	PSI Num `json:"psi"`
	// Histogram counts the scores per bin of the version's Histogram.
	Histogram []int `json:"histogram"`
}

// Agreement compares two versions' scores of the same lead changes.
type Agreement struct {
	A, B string `json:"-"`
	// Versions is [A, B]: A is the production version.
	Versions [2]string `json:"versions"`
	Pairs    int       `json:"pairs"` // records scored by both
	// FlagAgreement is the share of records whose deprioritize flags agree.
	FlagAgreement Num `json:"flag_agreement"`
	// Transitions[i][j] counts records in A's decile i+1 and B's decile j+1.
	Transitions [10][10]int `json:"transitions"`
}

// Options tune a report.
type Options struct {
	// Days is how many of the latest days with data get a day window
	// (default 14).
	Days int
	// Rule judges the rollback criteria (the rollback_* settings); the
	// zero value is validation.DefaultEvidenceRule.
	Rule validation.EvidenceRule
	// Detection is the rule's simulated detection curve the report shows
	// (DetectionCurve); nil: none.
	Detection *validation.Table
}

func (o Options) withDefaults() Options {
	if o.Days <= 0 {
		o.Days = 14
	}
	o.Rule = o.Rule.WithDefaults()
	return o
}

// Report computes the validation as of now with the registry's roles,
// promotion times and reference distributions. reg may be nil (no roles,
// no reference, no criteria).
func (s *State) Report(now time.Time, reg *scoring.Registry, opts Options) *Report {
	opts = opts.withDefaults()
	now = now.UTC()
	leads, events, seen := s.snapshot(now)
	rep := &Report{AsOf: now, Counts: s.Counts(), Detection: opts.Detection}

	// Versions: the registry's serving ones first (production first), then
	// any other version seen in the data.
	var order []string
	if reg != nil {
		rep.Production = reg.Production().Name
		for _, v := range reg.Serving() {
			order = append(order, v.Name)
		}
	}
	for _, v := range seen {
		if !slices.Contains(order, v) {
			order = append(order, v)
		}
	}
	for _, name := range order {
		info := VersionInfo{Version: name}
		if reg != nil {
			if v, ok := reg.Version(name); ok {
				info.Role = v.Role
				info.Histogram = referenceHistogram(v.CutPoints)
				if at, ok := reg.PromotedAt(name); ok {
					info.PromotedAt = &at
				}
			}
		}
		rep.Versions = append(rep.Versions, info)
	}

	// Windows: the latest days, every ISO week, since each promotion.
	var days, weeks []time.Time
	for _, l := range leads {
		days = append(days, dayStart(l.contact))
		weeks = append(weeks, weekStart(l.contact))
	}
	for _, e := range events {
		days = append(days, dayStart(e.scoredAt))
		weeks = append(weeks, weekStart(e.scoredAt))
	}
	days, weeks = uniqueTimes(days), uniqueTimes(weeks)
	if len(days) > opts.Days {
		days = days[len(days)-opts.Days:]
	}
	for _, d := range days {
		rep.Windows = append(rep.Windows, rep.window(KindDay, d.Format(time.DateOnly), d, d.AddDate(0, 0, 1), now, leads, events))
	}
	for _, w := range weeks {
		rep.Windows = append(rep.Windows, rep.window(KindWeek, isoWeekKey(w), w, w.AddDate(0, 0, 7), now, leads, events))
	}
	if len(days) > 0 || len(weeks) > 0 {
		start := weeks[0]
		rep.Windows = append(rep.Windows, rep.window(KindAll, "all", start, now.Add(time.Nanosecond), now, leads, events))
	}
	for _, info := range rep.Versions {
		if info.PromotedAt != nil && (info.Role == scoring.RoleProduction) {
			end := now.Add(time.Nanosecond)
			rep.Windows = append(rep.Windows, rep.window(KindPromotion, "since "+info.Version+" promotion", *info.PromotedAt, end, now, leads, events))
		}
	}
	rep.Criteria = rep.criteria(opts, reg, leads)
	return rep
}

func (rep *Report) window(kind, key string, start, end, now time.Time, leads []labelled, events []scoredEvent) Window {
	w := Window{Kind: kind, Key: key, Start: start, End: end, Complete: !now.Before(end.Add(LabelWindow))}
	in := func(t time.Time) bool { return !t.Before(start) && t.Before(end) }
	for _, info := range rep.Versions {
		p := Performance{Version: info.Version}
		var rows []validation.Row
		for _, l := range leads {
			if !in(l.contact) {
				continue
			}
			pt, ok := l.byVersion[info.Version]
			switch {
			case !ok:
				p.Unscored++
			case l.status == labelPending:
				p.Pending++
			default:
				rows = append(rows, validation.Row{Score: pt.score, Converted: l.status == labelConverted})
			}
		}
		p.fill(rows)
		w.Performance = append(w.Performance, p)

		d := Drift{Version: info.Version, PSI: Num(math.NaN()), Histogram: make([]int, HistogramBins)}
		for _, e := range events {
			if !in(e.scoredAt) {
				continue
			}
			for _, pt := range e.points {
				if pt.version != info.Version {
					continue
				}
				d.Scored++
				d.DecileShares[min(max(pt.decile, 1), 10)-1]++
				if len(info.Histogram.Edges) > 0 {
					d.Histogram[bin(info.Histogram.Edges, pt.score)]++
				}
			}
		}
		if d.Scored > 0 {
			psi := 0.0
			for k := range d.DecileShares {
				d.DecileShares[k] /= float64(d.Scored)
				a := max(d.DecileShares[k], 0.0001)
				psi += (a - 0.1) * math.Log(a/0.1)
			}
			d.PSI = Num(psi)
		}
		w.Drift = append(w.Drift, d)
	}
	if len(rep.Versions) > 1 {
		a := rep.Versions[0].Version
		for _, other := range rep.Versions[1:] {
			ag := Agreement{A: a, B: other.Version, Versions: [2]string{a, other.Version}, FlagAgreement: Num(math.NaN())}
			agree := 0
			for _, e := range events {
				if !in(e.scoredAt) {
					continue
				}
				pa, oka := findPoint(e.points, a)
				pb, okb := findPoint(e.points, other.Version)
				if !oka || !okb {
					continue
				}
				ag.Pairs++
				if pa.deprioritize == pb.deprioritize {
					agree++
				}
				ag.Transitions[min(max(pa.decile, 1), 10)-1][min(max(pb.decile, 1), 10)-1]++
			}
			if ag.Pairs > 0 {
				ag.FlagAgreement = Num(float64(agree) / float64(ag.Pairs))
			}
			w.Agreement = append(w.Agreement, ag)
		}
	}
	return w
}

func findPoint(ps []point, version string) (point, bool) {
	for _, p := range ps {
		if p.version == version {
			return p, true
		}
	}
	return point{}, false
}

// fill computes the figures of rows with validation.Compute; with no rows
// every figure is undefined.
func (p *Performance) fill(rows []validation.Row) {
	nan := Num(math.NaN())
	p.ConversionRate, p.AUC, p.AUCPR, p.TopDecileLift, p.TopDecileConversion, p.Bottom20Conversion, p.DeprioritizationEfficiency = nan, nan, nan, nan, nan, nan, nan
	for d := range p.LiftByDecile {
		p.LiftByDecile[d] = nan
	}
	st, err := validation.Compute(rows)
	if err != nil { // no rows (scores are never NaN: the schema refuses them)
		return
	}
	p.Labelled, p.Conversions = st.N, st.Positives
	p.ConversionRate, p.AUC, p.AUCPR = Num(st.ConversionRate), Num(st.AUC), Num(st.AUCPR)
	for d := range st.LiftByDecile {
		p.LiftByDecile[d] = Num(st.LiftByDecile[d])
	}
	p.CountByDecile = st.CountByDecile
	p.TopDecileLift = Num(st.LiftByDecile[9])
	p.TopDecileConversion = Num(st.TopDecileConversion)
	p.Bottom20Conversion = Num(st.Bottom20Conversion)
	p.DeprioritizationEfficiency = Num(st.DeprioritizationEfficiency)
}

// Stats returns the performance as package validation's Stats (the
// figures the targets are checked on).
func (p *Performance) Stats() validation.Stats {
	s := validation.Stats{N: p.Labelled, Positives: p.Conversions, ConversionRate: float64(p.ConversionRate),
		AUC: float64(p.AUC), AUCPR: float64(p.AUCPR), TopDecileConversion: float64(p.TopDecileConversion),
		Bottom20Conversion: float64(p.Bottom20Conversion), DeprioritizationEfficiency: float64(p.DeprioritizationEfficiency),
		CountByDecile: p.CountByDecile}
	for d := range p.LiftByDecile {
		s.LiftByDecile[d] = float64(p.LiftByDecile[d])
	}
	return s
}

// referenceHistogram bins the reference distribution: cut_points[k] is its
// (k+1)/100 quantile; between cut points the mass is spread evenly, and the
// 1% below the first and the 1% above the last go to the outer bins.
func referenceHistogram(cuts []float64) Histogram {
	if len(cuts) != scoring.NumCutPoints {
		return Histogram{}
	}
	lo, hi := cuts[0], cuts[len(cuts)-1]
	if !(hi > lo) {
		return Histogram{}
	}
	edges := make([]float64, HistogramBins+1)
	for i := range edges {
		edges[i] = lo + (hi-lo)*float64(i)/HistogramBins
	}
	edges[HistogramBins] = hi
	cdf := func(x float64) float64 {
		k, _ := slices.BinarySearchFunc(cuts, x, func(c, x float64) int {
			if c <= x {
				return -1
			}
			return 1
		})
		k-- // cuts[k] is the last cut point <= x
		if k >= len(cuts)-1 {
			return float64(len(cuts)) / 100
		}
		if k < 0 {
			return 0.01
		}
		return (float64(k+1) + (x-cuts[k])/(cuts[k+1]-cuts[k])) / 100
	}
	ref := make([]float64, HistogramBins)
	for i := range ref {
		ref[i] = cdf(edges[i+1]) - cdf(edges[i])
	}
	ref[0] += 0.01
	ref[HistogramBins-1] += 0.01
	return Histogram{Edges: edges, Reference: ref}
}

// bin returns the histogram bin of x, clamped to the outer bins.
func bin(edges []float64, x float64) int {
	n := len(edges) - 1
	if !(x > edges[0]) {
		return 0
	}
	k, _ := slices.BinarySearch(edges, x) // edges[k-1] < x <= edges[k]
	return min(max(k-1, 0), n-1)
}

func dayStart(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// weekStart is the Monday 00:00 UTC that starts t's ISO week.
func weekStart(t time.Time) time.Time {
	d := dayStart(t)
	return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
}

func isoWeekKey(t time.Time) string {
	y, w := t.ISOWeek()
	return fmt.Sprintf("%d-W%02d", y, w)
}

func uniqueTimes(ts []time.Time) []time.Time {
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	return slices.CompactFunc(ts, func(a, b time.Time) bool { return a.Equal(b) })
}
