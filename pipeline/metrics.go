package pipeline

import (
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the scoring pipeline. No label carries a Lead Id or a CRD.
type Metrics struct {
	eventsIn        prometheus.Counter
	scored          prometheus.Counter
	echoes          prometheus.Counter
	suppressed      prometheus.Counter
	sinkRecords     prometheus.Counter
	unknownAdvisors prometheus.Counter
	redisRetries    prometheus.Counter
	dlq             *prometheus.CounterVec
	stage           *prometheus.HistogramVec
	scores          *prometheus.HistogramVec
	modelInfo       *prometheus.GaugeVec
	explainBytes    *prometheus.GaugeVec
	memoLookups     *prometheus.CounterVec
	memoHits        *prometheus.CounterVec

	// Salesforce change events.
	cdcChanges    *prometheus.CounterVec
	cdcDuplicates prometheus.Counter
	cdcRefresh    *prometheus.CounterVec
	cdcOutcomes   *prometheus.CounterVec
	cdcWithheld   *prometheus.CounterVec
	cdcMissing    *prometheus.GaugeVec
}

// NewMetrics registers the pipeline's metrics on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		eventsIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscorer_events_in_total", Help: "Input records read, good or bad."}),
		scored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscorer_events_scored_total", Help: "Lead changes scored by every serving version."}),
		echoes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscorer_events_skipped_echo_total", Help: "Lead changes skipped because only V4_* score fields changed (the sink's own write echoed back)."}),
		suppressed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscorer_sink_suppressed_total", Help: "Sink records not written because nothing the Lead shows changed (Salesforce quota guard)."}),
		sinkRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscorer_sink_records_total", Help: "Records written to the Salesforce sink topic."}),
		unknownAdvisors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscorer_unknown_advisors_total", Help: "Lead changes whose advisor CRD is not in the feature store."}),
		redisRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscorer_redis_lookup_retries_total", Help: "Failed batch lookups in Redis, each retried."}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadscorer_dlq_records_total", Help: "Input records sent to the dead-letter topic, by error class."}, []string{"class"}),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "leadscorer_stage_duration_seconds", Help: "Time per batch in each stage: decode (with the Lead states read and applied), enrich, score (with explain and encode), save (the Lead states, and the quota states forgotten, before the commit) and committed (the quota states saved after it).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{"stage"}),
		scores: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "leadscorer_score", Help: "Scores given, per model version.",
			Buckets: prometheus.LinearBuckets(0.05, 0.05, 19)}, []string{"version"}),
		modelInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leadscorer_model_info", Help: "1 for each model version in the registry the scorer serves with, by role."}, []string{"version", "role"}),
		explainBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leadscorer_model_explain_table_bytes", Help: "Memory each serving model version keeps to explain rows quickly (its TreeSHAP tables), fixed at load; 0 when it has none."}, []string{"version"}),
		memoLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadscorer_score_memo_lookups_total", Help: "Feature vectors looked up in the score memo (score_memo on), by model version."}, []string{"version"}),
		memoHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadscorer_score_memo_hits_total", Help: "Feature vectors the score memo answered without scoring (score_memo on), by model version."}, []string{"version"}),
		cdcChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadscorer_cdc_changes_total", Help: "Salesforce change events applied, one per Lead they name, by change type."}, []string{"change_type"}),
		cdcDuplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscorer_cdc_duplicates_total", Help: "Lead changes skipped because the Lead's state already reflects them (the connector delivered them again)."}),
		cdcRefresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadscorer_cdc_refresh_requests_total", Help: "Refresh requests written, by reason: gap, overflow, wildcard, partial_state."}, []string{"reason"}),
		cdcOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadscorer_cdc_outcomes_total", Help: "Lead outcomes derived from change events, by kind."}, []string{"kind"}),
		cdcWithheld: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadscorer_cdc_sink_withheld_total", Help: "Scored Lead changes given no sink record, by reason: converted, partial_state (no CRD known), gap_delete."}, []string{"reason"}),
		cdcMissing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leadscorer_cdc_mapping_missing_fields", Help: "1 for each mapped Lead field the change events do not carry at all, by setting and field name."}, []string{"setting", "field"}),
	}
	if reg != nil {
		reg.MustRegister(m.eventsIn, m.scored, m.echoes, m.suppressed, m.sinkRecords, m.unknownAdvisors,
			m.redisRetries, m.dlq, m.stage, m.scores, m.modelInfo, m.explainBytes, m.memoLookups, m.memoHits,
			m.cdcChanges, m.cdcDuplicates, m.cdcRefresh, m.cdcOutcomes, m.cdcWithheld, m.cdcMissing)
	}
	return m
}

func (m *Metrics) setModels(reg *scoring.Registry) {
	m.modelInfo.Reset()
	m.explainBytes.Reset()
	for _, v := range reg.Serving() {
		m.modelInfo.WithLabelValues(v.Name, v.Role).Set(1)
		m.explainBytes.WithLabelValues(v.Name).Set(float64(ExplainTableBytes(v.Model)))
	}
}

// ExplainTableBytes is the memory a model keeps to explain rows quickly
// (scoring.BatchModel), 0 for a model without such tables.
func ExplainTableBytes(m scoring.Model) int {
	if bm, ok := m.(scoring.BatchModel); ok {
		return bm.ExplainTableBytes()
	}
	return 0
}
