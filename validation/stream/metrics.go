package stream

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the leadscorer_validation_* series. The figure gauges carry
// the labels version and window: "day" and "week" are the latest day and
// the latest complete ISO week with data, "promotion" the production
// version's since-promotion window. An undefined figure is NaN.
type metrics struct {
	labelled, conversions, pending                     *prometheus.GaugeVec
	auc, aucPR, topLift, topConv, bottom20, efficiency *prometheus.GaugeVec
	lift, psi                                          *prometheus.GaugeVec
	agreement                                          *prometheus.GaugeVec
	criterion, criterionValue, target                  *prometheus.GaugeVec
	criterionUpper, criterionThreshold, insufficient   *prometheus.GaugeVec
	windowConversions, rulePending                     *prometheus.GaugeVec
	aucDiff, aucDiffUpper                              *prometheus.GaugeVec
	recommended, caughtUp, evaluated                   prometheus.Gauge
	records, rollbacks                                 *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	g := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "leadscorer_validation_" + name, Help: help}, labels)
	}
	vw := []string{"version", "window"}
	m := &metrics{
		labelled:           g("labelled_leads", "Labelled leads (contacted, converted or past the 43-day window) in the window.", vw...),
		conversions:        g("conversions", "Labelled leads that converted (a call scheduled within 43 days of first contact).", vw...),
		pending:            g("pending_leads", "Contacted leads still inside their 43-day label window, not counted.", vw...),
		auc:                g("auc", "Exact ROC AUC of the version's scores at first contact, ties one half.", vw...),
		aucPR:              g("auc_pr", "Average precision (AUC-PR) of the version's scores.", vw...),
		topLift:            g("top_decile_lift", "Conversion rate of the top decile over the overall rate.", vw...),
		topConv:            g("top_decile_conversion_ratio", "Conversion rate of the top decile, a fraction.", vw...),
		bottom20:           g("bottom20_conversion_ratio", "Conversion rate of the bottom 20% (percentile <= 20), a fraction.", vw...),
		efficiency:         g("deprioritization_efficiency_points", "Share of leads skipped minus share of conversions lost, in points.", vw...),
		lift:               g("lift", "Lift of each decile (1 = lowest scores).", "version", "window", "decile"),
		psi:                g("psi", "Population stability index of the live reference deciles against the registry's reference.", vw...),
		agreement:          g("flag_agreement_ratio", "Share of lead changes whose deprioritize flags agree between production and another version.", "production", "version", "window"),
		criterion:          g("rollback_criterion", "1 when the checklist's rollback criterion fires for the production version, else 0.", "version", "criterion"),
		criterionValue:     g("rollback_criterion_value", "The figure the rollback criterion was judged on: its estimate over the pooled window.", "version", "criterion"),
		criterionUpper:     g("rollback_criterion_upper_bound", "One-sided upper confidence bound of the criterion's figure over the pooled window; the criterion fires when it is below the threshold.", "version", "criterion"),
		criterionThreshold: g("rollback_criterion_threshold", "The checklist's threshold of the criterion.", "version", "criterion"),
		insufficient:       g("rollback_criterion_insufficient", "1 when the pooled window has too few conversions to judge the criterion, else 0.", "version", "criterion"),
		windowConversions:  g("rollback_window_conversions", "Conversions in the pooled window the rollback criteria were judged on.", "version"),
		rulePending:        g("rollback_pending_leads", "Leads contacted since the production version's promotion whose label or week is not final: not judged.", "version"),
		aucDiff:            g("auc_difference", "AUC of the production version minus the baseline's on the same leads of the judged window (DeLong).", "version", "baseline"),
		aucDiffUpper:       g("auc_difference_upper_bound", "One-sided upper confidence bound of the AUC difference; below 0, the production version ranks worse than the baseline.", "version", "baseline"),
		target:             g("target_met", "1 when the production version meets the checklist target since its promotion, else 0.", "version", "target"),
		recommended:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "leadscorer_validation_rollback_recommended", Help: "1 when any rollback criterion fires for the production version."}),
		caughtUp:           prometheus.NewGauge(prometheus.GaugeOpts{Name: "leadscorer_validation_caught_up", Help: "1 once the state is rebuilt from the topics."}),
		evaluated:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "leadscorer_validation_last_evaluation_timestamp_seconds", Help: "When the validation was last evaluated (wall clock)."}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leadscorer_validation_records_total",
			Help: "Records read, by topic and result (added, duplicate, skipped)."}, []string{"topic", "result"}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leadscorer_validation_auto_rollbacks_total",
			Help: "Automatic rollbacks, by result (ok, failed)."}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.collectors()...)
	}
	return m
}

// collectors are every series the validator exports (the README documents
// each: TestValidatorMetricsAreDocumented).
func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.labelled, m.conversions, m.pending, m.auc, m.aucPR, m.topLift, m.topConv, m.bottom20,
		m.efficiency, m.lift, m.psi, m.agreement, m.criterion, m.criterionValue, m.target, m.recommended,
		m.criterionUpper, m.criterionThreshold, m.insufficient, m.windowConversions, m.rulePending, m.aucDiff, m.aucDiffUpper,
		m.caughtUp, m.evaluated, m.records, m.rollbacks}
}

// targetLabels are the target label values, in validation.Checks order.
var targetLabels = []string{"top_decile_lift", "auc", "bottom20_conversion", "deprioritization_efficiency"}

func (m *metrics) set(rep *Report) {
	for _, v := range []*prometheus.GaugeVec{m.labelled, m.conversions, m.pending, m.auc, m.aucPR, m.topLift, m.topConv,
		m.bottom20, m.efficiency, m.lift, m.psi, m.agreement, m.criterion, m.criterionValue, m.target,
		m.criterionUpper, m.criterionThreshold, m.insufficient, m.windowConversions, m.rulePending, m.aucDiff, m.aucDiffUpper} {
		v.Reset()
	}
	for _, w := range []struct {
		label string
		win   *Window
	}{{"day", rep.Latest(KindDay, false)}, {"week", rep.Latest(KindWeek, true)}, {"promotion", rep.Latest(KindPromotion, false)}} {
		if w.win == nil {
			continue
		}
		for _, p := range w.win.Performance {
			l := prometheus.Labels{"version": p.Version, "window": w.label}
			m.labelled.With(l).Set(float64(p.Labelled))
			m.conversions.With(l).Set(float64(p.Conversions))
			m.pending.With(l).Set(float64(p.Pending))
			m.auc.With(l).Set(float64(p.AUC))
			m.aucPR.With(l).Set(float64(p.AUCPR))
			m.topLift.With(l).Set(float64(p.TopDecileLift))
			m.topConv.With(l).Set(float64(p.TopDecileConversion))
			m.bottom20.With(l).Set(float64(p.Bottom20Conversion))
			m.efficiency.With(l).Set(float64(p.DeprioritizationEfficiency))
			for d, x := range p.LiftByDecile {
				m.lift.WithLabelValues(p.Version, w.label, strconv.Itoa(d+1)).Set(float64(x))
			}
		}
		for _, d := range w.win.Drift {
			m.psi.WithLabelValues(d.Version, w.label).Set(float64(d.PSI))
		}
		for _, a := range w.win.Agreement {
			m.agreement.WithLabelValues(a.Versions[0], a.Versions[1], w.label).Set(float64(a.FlagAgreement))
		}
	}
	c := rep.Criteria
	if c.Version != "" {
		for _, r := range c.Rules {
			m.criterion.WithLabelValues(c.Version, r.Name).Set(b2f(r.Fired))
			m.criterionValue.WithLabelValues(c.Version, r.Name).Set(float64(r.Value))
			m.criterionUpper.WithLabelValues(c.Version, r.Name).Set(float64(r.Interval.Hi))
			m.criterionThreshold.WithLabelValues(c.Version, r.Name).Set(r.Threshold)
			m.insufficient.WithLabelValues(c.Version, r.Name).Set(b2f(r.Status == "insufficient"))
		}
		m.windowConversions.WithLabelValues(c.Version).Set(float64(c.Window.Conversions))
		m.rulePending.WithLabelValues(c.Version).Set(float64(c.Pending))
		if p := c.Paired; p != nil {
			m.aucDiff.WithLabelValues(c.Version, p.Baseline).Set(float64(p.AUCDiff))
			m.aucDiffUpper.WithLabelValues(c.Version, p.Baseline).Set(float64(p.AUCDiffInterval.Hi))
		}
		for i, t := range c.Targets {
			if i < len(targetLabels) {
				m.target.WithLabelValues(c.Version, targetLabels[i]).Set(b2f(t.Pass))
			}
		}
	}
	m.recommended.Set(b2f(c.Fired))
	m.evaluated.SetToCurrentTime()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
