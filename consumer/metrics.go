package consumer

import (
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Metrics of the consume-transform-produce loop.
type Metrics struct {
	txnCommits      prometheus.Counter
	txnAborts       prometheus.Counter
	sessionRestarts prometheus.Counter
	fetchErrors     prometheus.Counter
	topUpRecords    prometheus.Counter
	batchSize       prometheus.Histogram
	txnStage        *prometheus.HistogramVec
	lag             *prometheus.GaugeVec
	brokerErrors    prometheus.Counter
}

// NewMetrics registers the consumer's metrics on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		txnCommits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscorer_kafka_transactions_committed_total", Help: "Batches whose outputs and input offsets committed in one transaction."}),
		txnAborts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscorer_kafka_transactions_aborted_total", Help: "Batches aborted (rebalance, produce or batch failure) and consumed again."}),
		sessionRestarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscorer_kafka_session_restarts_total", Help: "Transactional sessions replaced after an unrecoverable error."}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscorer_kafka_fetch_errors_total", Help: "Errors returned by fetches."}),
		topUpRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscorer_kafka_top_up_records_total", Help: "Input records a batch took from the one more fetch it waited for after its poll (batch_top_up_wait)."}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "leadscorer_batch_records", Help: "Input records per committed batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
		txnStage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "leadscorer_kafka_transaction_stage_seconds", Help: "Time per batch in each stage of its transaction: produce (from the first output handed to the producer until the brokers acknowledged the last, less the writes before the commit that run meanwhile) and commit (the input offsets and the end of the transaction).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, []string{"stage"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leadscorer_kafka_consumer_lag_records", Help: "Offsets between the last record or transaction marker fetched and the high watermark, per input partition."},
			[]string{"partition"}),
		brokerErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscorer_kafka_broker_connect_errors_total", Help: "Failed connections to a broker."}),
	}
	if reg != nil {
		reg.MustRegister(m.txnCommits, m.txnAborts, m.sessionRestarts, m.fetchErrors, m.topUpRecords, m.batchSize, m.txnStage, m.lag, m.brokerErrors)
	}
	return m
}

func (m *Metrics) observeLag(f kgo.Fetches) {
	f.EachPartition(func(p kgo.FetchTopicPartition) {
		if n := len(p.Records); n > 0 {
			lag := p.HighWatermark - p.Records[n-1].Offset - 1
			m.lag.WithLabelValues(strconv.Itoa(int(p.Partition))).Set(float64(max(lag, 0)))
		}
	})
}

type hooks struct{ m *Metrics }

func (m *Metrics) hooks() kgo.Hook { return hooks{m} }

var _ kgo.HookBrokerConnect = hooks{}

func (h hooks) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.m.brokerErrors.Inc()
	}
}
