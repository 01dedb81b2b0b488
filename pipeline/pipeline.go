// Package pipeline turns one batch of lead-change records into the
// service's output records: decode and validate each change, skip the
// sink's own echoes, enrich the batch from Redis, derive the features as of
// the scoring time, score every serving model version with one registry
// snapshot, explain, apply the Salesforce quota guard and build the sink,
// shadow and dead-letter records (package producer).
//
// It implements consumer.Transformer: a failure of one record becomes a
// dead-letter record; a failure of the batch (Redis or the Schema Registry
// unreachable) is returned, and the consumer aborts and redoes the batch.
//
// The files: pipeline.go runs a batch; decode.go reads the input records
// into changes; enrich.go looks the batch up in Redis; score.go scores the
// batch and builds each change's outputs; memo.go holds each version's
// batch scoring (scoring.BatchModel) and its optional memo by feature
// vector (score_memo); guards.go holds the echo and quota guards.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/featurestore"
	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Options configures a Pipeline.
type Options struct {
	SfdcTopic, ShadowTopic, DLQTopic string
	// MaxRecordBytes: larger input values go to the DLQ undecoded.
	MaxRecordBytes int
	// FeatureMaxAge: older advisor or firm data is flagged stale.
	FeatureMaxAge time.Duration
	// UnknownAdvisorToDLQ sends changes whose CRD is not in Redis to the
	// DLQ instead of scoring them with missing values.
	UnknownAdvisorToDLQ bool
	// ScoreEpsilon is the quota guard's threshold on score changes.
	ScoreEpsilon float64
	// ScoreMemo keeps each version's results by feature vector and
	// answers a vector seen before without scoring it (score_memo).
	ScoreMemo bool
	// RedisBackoff paces retries of a failed Redis lookup.
	RedisBackoff featurestore.Backoff
	// CDC, when set, reads Salesforce change events (input_format
	// salesforce-cdc); nil reads LeadChanged records.
	CDC *CDCOptions
	// Now returns the scoring time; time.Now when nil.
	Now     func() time.Time
	Logger  *slog.Logger
	Metrics *Metrics
}

// Pipeline is not safe for concurrent Transform calls: the consumer calls it
// for one batch at a time. SetRegistry may be called at any time.
type Pipeline struct {
	opts  Options
	codec *schemas.Codec
	store Store
	snap  atomic.Pointer[snapshot]
	log   *slog.Logger
	m     *Metrics
	out   *producer.Batch
	cdc   *cdc // nil for LeadChanged input

	// Per-batch working memory, reused.
	changes []change
	msg     schemas.LeadChanged
	reqs    []featurestore.Request
	results []featurestore.Result
	pending map[string]featurestore.SinkState // quota state to save once the batch commits
	forget  []string                          // leads whose quota state is deleted before the commit
	values  features.Values
	scores  []schemas.VersionScore // one change's, encoded before the next
	sink    schemas.LeadScoreSfdc
}

// change is one Lead's change to score: what the scorer knows of the Lead
// once the change is applied, and the input record it came from.
type change struct {
	in        *kgo.Record
	eventID   string
	leadID    string
	crd       int64 // the advisor's CRD; 0 when the Lead has none
	lead      features.Lead
	eventTime time.Time

	// Salesforce change events only.
	changeType string
	partial    bool // only what updates carried is known of the Lead
	gap        bool // rescored from the stored state after a gap event
	noSink     bool // shadow record only (converted, deleted, partial without CRD, gap delete)
	// lastSink is the Lead's quota-guard state, read with its Lead state;
	// nil when there is none or it cannot be trusted.
	lastSink *featurestore.SinkState
}

// New returns a Pipeline scoring with reg.
func New(opts Options, codec *schemas.Codec, store Store, reg *scoring.Registry) (*Pipeline, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	topics := producer.Topics{Sink: opts.SfdcTopic, Shadow: opts.ShadowTopic, DLQ: opts.DLQTopic}
	p := &Pipeline{opts: opts, codec: codec, store: store, log: opts.Logger, m: opts.Metrics,
		pending: map[string]featurestore.SinkState{}}
	if opts.CDC != nil {
		c, err := newCDC(codec, *opts.CDC)
		if err != nil {
			return nil, err
		}
		p.cdc = c
		topics.Outcomes, topics.Refresh = opts.CDC.OutcomesTopic, opts.CDC.RefreshTopic
	}
	p.out = producer.NewBatch(codec, topics, opts.MaxRecordBytes)
	if err := p.SetRegistry(reg); err != nil {
		return nil, err
	}
	return p, nil
}

// SetRegistry makes reg the snapshot the next batch scores with; a batch
// in progress finishes with the one it started with. It fails, keeping the
// current snapshot, when a serving version needs a feature the features
// package cannot compute.
func (p *Pipeline) SetRegistry(reg *scoring.Registry) error {
	s := &snapshot{reg: reg}
	for _, v := range reg.Serving() {
		sv, err := newServed(v, p.opts.ScoreMemo, p.m)
		if err != nil {
			return err
		}
		s.serving = append(s.serving, sv)
	}
	p.snap.Store(s)
	p.m.setModels(reg)
	for _, sv := range s.serving {
		p.log.Info("model serving", "version", sv.v.Name, "role", sv.v.Role, "explain_table_bytes", ExplainTableBytes(sv.v.Model),
			"batch_scoring", sv.batch != nil, "score_memo", p.opts.ScoreMemo)
	}
	return nil
}

// Registry returns the registry the next batch scores with.
func (p *Pipeline) Registry() *scoring.Registry { return p.snap.Load().reg }

// Transform implements consumer.Transformer: Prepare, then BeforeCommit.
// The records it returns, their keys and values are reused by the next
// call: the consumer has produced and ended the batch's transaction by then.
func (p *Pipeline) Transform(ctx context.Context, in, out []*kgo.Record) ([]*kgo.Record, error) {
	out, err := p.Prepare(ctx, in, out)
	if err != nil {
		return out, err
	}
	return out, p.BeforeCommit(ctx)
}

// Prepare implements consumer.Preparer: it decodes, enriches and scores the
// batch and returns its output records. The Lead states (salesforce-cdc)
// are written while the batch is scored; BeforeCommit waits for them and
// deletes the quota states, while the consumer produces the records.
func (p *Pipeline) Prepare(ctx context.Context, in, out []*kgo.Record) ([]*kgo.Record, error) {
	// The Lead states' write of a batch that failed before BeforeCommit:
	// that batch is aborted, whatever it returns.
	_ = p.waitLeads()
	start := time.Now()
	snap := p.snap.Load() // one registry snapshot for the whole batch
	// One scoring instant per batch, to the millisecond: it is written in
	// every output record (scored_at), so each score can be recomputed
	// offline exactly.
	now := p.opts.Now().UTC().Truncate(time.Millisecond)
	clear(p.pending)
	p.out.Reset()
	p.m.eventsIn.Add(float64(len(in)))

	var err error
	if p.cdc == nil {
		out, err = p.decode(ctx, in, out, now)
	} else {
		out, err = p.decodeCDC(ctx, in, out, now)
		if err == nil {
			err = p.loadLeads(ctx)
		}
		if err == nil {
			out, err = p.apply(out, now)
		}
	}
	if err != nil {
		return out, err
	}
	decoded := time.Now()
	p.m.stage.WithLabelValues("decode").Observe(decoded.Sub(start).Seconds())

	if err := p.enrich(ctx); err != nil {
		return out, err
	}
	enriched := time.Now()
	p.m.stage.WithLabelValues("enrich").Observe(enriched.Sub(decoded).Seconds())
	if p.cdc != nil {
		// After the enrichment's round trips, not before: Redis runs
		// one command at a time, and they would wait for it.
		p.startSaveLeads(ctx)
	}

	if out, err = p.scoreAll(snap, now, start, out); err != nil {
		return out, err
	}
	p.m.stage.WithLabelValues("score").Observe(time.Since(enriched).Seconds())
	return out, nil
}

// BeforeCommit implements consumer.Preparer: what the batch Prepare scored
// changes in Redis before the commit. It deletes the quota states of the
// leads it writes to (or deleted), and waits for the Lead states' write
// Prepare started (salesforce-cdc).
func (p *Pipeline) BeforeCommit(ctx context.Context) error {
	start := time.Now()
	err := p.forgetQuotaState(ctx)
	if saveErr := p.waitLeads(); saveErr != nil {
		err = errors.Join(saveErr, err)
	}
	p.m.stage.WithLabelValues("save").Observe(time.Since(start).Seconds())
	return err
}

// forgetQuotaState deletes the quota state of the leads this batch writes
// to, and of the Leads it deleted, before any output can commit: if the
// scorer dies between the commit and saving the new state (Committed), the
// next change of such a lead finds no state and is sent, instead of being
// compared with a stale one.
func (p *Pipeline) forgetQuotaState(ctx context.Context) error {
	p.forget = p.forget[:0]
	for id := range p.pending {
		p.forget = append(p.forget, id)
	}
	if p.cdc != nil {
		p.forget = append(p.forget, p.cdc.gone...)
	}
	if len(p.forget) == 0 {
		return nil
	}
	var err error
	if p.cdc != nil {
		// Not retried, as the Lead states' write is not: a failure aborts
		// the batch, which is redone from the committed offsets.
		err = p.store.ForgetSink(ctx, p.forget)
	} else {
		err = featurestore.Retry(ctx, p.opts.RedisBackoff, func(ctx context.Context) error {
			return p.store.ForgetSink(ctx, p.forget)
		})
	}
	if err != nil {
		return fmt.Errorf("pipeline: forget quota state: %w", err)
	}
	return nil
}

func (p *Pipeline) deadLetter(out []*kgo.Record, r *kgo.Record, class, msg string, now time.Time) []*kgo.Record {
	p.m.dlq.WithLabelValues(class).Inc()
	return p.out.DeadLetter(out, r, class, msg, now)
}

// Committed implements consumer.Transformer: it saves the quota-guard state
// of the sink records the committed batch wrote. Losing it costs one
// repeated, idempotent Salesforce update, so it is tried a few times only.
func (p *Pipeline) Committed(ctx context.Context, _ []*kgo.Record) error {
	if len(p.pending) == 0 {
		return nil
	}
	states := make([]featurestore.SinkState, 0, len(p.pending))
	for _, st := range p.pending {
		states = append(states, st)
	}
	b := p.opts.RedisBackoff
	b.Attempts = 3
	start := time.Now()
	err := featurestore.Retry(ctx, b, func(ctx context.Context) error { return p.store.SaveSink(ctx, states) })
	p.m.stage.WithLabelValues("committed").Observe(time.Since(start).Seconds())
	if err != nil {
		return errors.Join(errors.New("pipeline: save quota state"), err)
	}
	return nil
}
