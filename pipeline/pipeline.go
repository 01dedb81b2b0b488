// Package pipeline turns one batch of lead-change records into the
// service's output records: decode and validate each event, skip the sink's
// own echoes, enrich the batch from Redis, derive the features as of the
// scoring time, score every serving model version with one registry
// snapshot, explain, apply the Salesforce quota guard and encode the sink,
// shadow and dead-letter records.
//
// It implements consumer.Transformer: a failure of one record becomes a
// dead-letter record; a failure of the batch (Redis or the Schema Registry
// unreachable) is returned, and the consumer aborts and redoes the batch.
package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/featurestore"
	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Options configures a Pipeline.
type Options struct {
	SfdcTopic, ShadowTopic, DLQTopic string
	// MaxRecordBytes: larger input values go to the DLQ undecoded.
	MaxRecordBytes int
	// FeatureMaxAge: older advisor or firm data is flagged stale.
	FeatureMaxAge time.Duration
	// UnknownAdvisorToDLQ sends events whose CRD is not in Redis to the DLQ
	// instead of scoring them with missing values.
	UnknownAdvisorToDLQ bool
	// ScoreEpsilon is the quota guard's threshold on score changes.
	ScoreEpsilon float64
	// RedisBackoff paces retries of a failed Redis lookup.
	RedisBackoff featurestore.Backoff
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
	store *featurestore.Store
	snap  atomic.Pointer[snapshot]
	log   *slog.Logger
	m     *Metrics

	// Per-batch working memory, reused.
	events  []event
	reqs    []featurestore.Request
	results []featurestore.Result
	pending map[string]featurestore.SinkState // quota state to save once the batch commits
	forget  []string                          // leads whose quota state is deleted before the commit
	values  features.Values
	scores  []schemas.VersionScore // one event's, encoded before the next
	sink    schemas.LeadScoreSfdc
	// Output records and their keys and values are carved from these,
	// reused batch after batch: the consumer produces, flushes and commits
	// a batch's outputs before it calls Transform again.
	arena  []byte
	chunks [][]kgo.Record
	nrec   int
}

const recChunk = 1024

// record returns a zeroed output record that lives until the next batch.
func (p *Pipeline) record() *kgo.Record {
	c, i := p.nrec/recChunk, p.nrec%recChunk
	if c == len(p.chunks) {
		p.chunks = append(p.chunks, make([]kgo.Record, recChunk))
	}
	p.nrec++
	r := &p.chunks[c][i]
	*r = kgo.Record{}
	return r
}

// output appends a record of topic with the key and the value the arena
// holds from start on.
func (p *Pipeline) output(out []*kgo.Record, topic, key string, start int) []*kgo.Record {
	r := p.record()
	r.Topic = topic
	r.Value = p.arena[start:len(p.arena):len(p.arena)]
	k := len(p.arena)
	p.arena = append(p.arena, key...)
	r.Key = p.arena[k:len(p.arena):len(p.arena)]
	return append(out, r)
}

type event struct {
	in  *kgo.Record
	msg schemas.LeadChanged
}

// snapshot is one registry with what scoring needs per serving version.
type snapshot struct {
	reg     *scoring.Registry
	serving []*served
}

type served struct {
	v       *scoring.Version
	layout  features.Layout
	x       []float64
	contrib []float64
	factors []scoring.Factor
	explain bool
	obs     prometheus.Observer
	// memo maps a feature vector (its float64 bits) to what scoring it
	// gives. A model's score, contributions and factors are a function of
	// the vector alone, and leads share vectors (bucketed features, the
	// same advisor changed again), so most events skip the trees.
	memo map[string]*outcome
	key  []byte
}

// outcome is what one version gives for one feature vector. Shared by every
// event with that vector: read only.
type outcome struct {
	score       float64
	pct         int
	factors     []schemas.Factor
	explanation string // the sink's text of factors
	explHash    uint64
}

// maxMemo bounds each version's memo; a full memo starts over. 16k entries
// of about 500 bytes each: a few MB per version.
const maxMemo = 1 << 14

// outcome returns the memoised outcome of sv.x, computing it on a miss.
func (sv *served) outcome() (*outcome, error) {
	sv.key = sv.key[:0]
	for _, f := range sv.x {
		sv.key = binary.LittleEndian.AppendUint64(sv.key, math.Float64bits(f))
	}
	if o, ok := sv.memo[string(sv.key)]; ok {
		return o, nil
	}
	v := sv.v
	o := &outcome{score: v.Model.Score(sv.x)}
	o.pct = v.Percentile(o.score)
	sv.factors = sv.factors[:0]
	if sv.explain {
		if err := v.Model.Contributions(sv.x, sv.contrib); err != nil {
			return nil, fmt.Errorf("pipeline: explain %s: %w", v.Name, err)
		}
		sv.factors = v.TopFactors(sv.x, sv.contrib, sv.factors[:TopFactors])
	}
	o.factors = make([]schemas.Factor, len(sv.factors))
	for i, f := range sv.factors {
		o.factors[i] = schemas.Factor{Feature: f.Feature, Value: f.Value, Contribution: f.Contribution, Phrase: f.Phrase}
	}
	o.explanation = explanation(sv.factors)
	o.explHash = hash(o.explanation)
	if len(sv.memo) >= maxMemo {
		clear(sv.memo)
	}
	sv.memo[string(sv.key)] = o
	return o, nil
}

// TopFactors is how many factors each score carries.
const TopFactors = 3

// New returns a Pipeline scoring with reg.
func New(opts Options, codec *schemas.Codec, store *featurestore.Store, reg *scoring.Registry) (*Pipeline, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	p := &Pipeline{opts: opts, codec: codec, store: store, log: opts.Logger, m: opts.Metrics,
		pending: map[string]featurestore.SinkState{}}
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
		l, err := features.NewLayout(v.Features)
		if err != nil {
			return fmt.Errorf("pipeline: version %s: %w", v.Name, err)
		}
		n := len(v.Features)
		sv := &served{v: v, layout: l, x: make([]float64, n), contrib: make([]float64, n+1),
			factors: make([]scoring.Factor, 0, TopFactors), obs: p.m.scores.WithLabelValues(v.Name),
			memo: map[string]*outcome{}}
		sv.explain = v.Model.Contributions(sv.x, sv.contrib) == nil
		s.serving = append(s.serving, sv)
	}
	p.snap.Store(s)
	p.m.setModels(reg)
	return nil
}

// Registry returns the registry the next batch scores with.
func (p *Pipeline) Registry() *scoring.Registry { return p.snap.Load().reg }

// Transform implements consumer.Transformer. The sink and shadow records it
// returns, their keys and values are reused by the next call: the consumer
// has produced and ended the batch's transaction by then.
func (p *Pipeline) Transform(ctx context.Context, in, out []*kgo.Record) ([]*kgo.Record, error) {
	start := time.Now()
	snap := p.snap.Load() // one registry snapshot for the whole batch
	// One scoring instant per batch, to the millisecond: it is written in
	// every output record (scored_at), so each score can be recomputed
	// offline exactly.
	now := p.opts.Now().UTC().Truncate(time.Millisecond)
	clear(p.pending)
	p.arena = p.arena[:0]
	p.nrec = 0
	p.m.eventsIn.Add(float64(len(in)))

	// Decode, validate and guard each record.
	p.events = p.events[:0]
	for _, r := range in {
		if len(r.Value) > p.opts.MaxRecordBytes {
			out = p.deadLetter(out, r, producer.ClassSize,
				fmt.Sprintf("record of %d bytes exceeds max_record_bytes %d", len(r.Value), p.opts.MaxRecordBytes), now)
			continue
		}
		p.events = append(p.events, event{in: r})
		e := &p.events[len(p.events)-1]
		if err := p.codec.DecodeLeadChanged(ctx, r.Value, &e.msg); err != nil {
			if re, ok := schemas.IsRecordError(err); ok {
				p.events = p.events[:len(p.events)-1]
				out = p.deadLetter(out, r, re.Class, re.Error(), now)
				continue
			}
			return out, fmt.Errorf("pipeline: decode: %w", err) // registry unreachable: retry the batch
		}
		if err := e.msg.Validate(); err != nil {
			re, _ := schemas.IsRecordError(err)
			p.events = p.events[:len(p.events)-1]
			out = p.deadLetter(out, r, re.Class, re.Error(), now)
			continue
		}
		if isEcho(e.msg.ChangedFields) {
			p.events = p.events[:len(p.events)-1]
			p.m.echoes.Inc()
			continue
		}
	}
	decoded := time.Now()
	p.m.stage.WithLabelValues("decode").Observe(decoded.Sub(start).Seconds())

	// Enrich the whole batch: at most two round trips.
	p.reqs = p.reqs[:0]
	for i := range p.events {
		m := &p.events[i].msg
		p.reqs = append(p.reqs, featurestore.Request{CRD: m.CRD, LeadID: m.LeadID})
	}
	if cap(p.results) < len(p.reqs) {
		p.results = make([]featurestore.Result, len(p.reqs))
	}
	p.results = p.results[:len(p.reqs)]
	if len(p.reqs) > 0 {
		err := featurestore.Retry(ctx, p.opts.RedisBackoff, func(ctx context.Context) error {
			err := p.store.Lookup(ctx, p.reqs, p.results)
			if err != nil {
				p.m.redisRetries.Inc()
				p.log.Warn("redis lookup failed; retrying", "err", err)
			}
			return err
		})
		if err != nil {
			return out, fmt.Errorf("pipeline: enrich: %w", err)
		}
	}
	enriched := time.Now()
	p.m.stage.WithLabelValues("enrich").Observe(enriched.Sub(decoded).Seconds())

	// Score, explain, guard and encode.
	for i := range p.events {
		var err error
		out, err = p.score(snap, &p.events[i], &p.results[i], now, start, out)
		if err != nil {
			return out, err
		}
	}
	p.m.stage.WithLabelValues("score").Observe(time.Since(enriched).Seconds())

	// Forget the quota state of the leads this batch writes to, before any
	// output can commit: if the scorer dies between the commit and saving
	// the new state (Committed), the next change of such a lead finds no
	// state and is sent, instead of being compared with a stale one.
	if len(p.pending) > 0 {
		p.forget = p.forget[:0]
		for id := range p.pending {
			p.forget = append(p.forget, id)
		}
		err := featurestore.Retry(ctx, p.opts.RedisBackoff, func(ctx context.Context) error {
			return p.store.ForgetSink(ctx, p.forget)
		})
		if err != nil {
			return out, fmt.Errorf("pipeline: forget quota state: %w", err)
		}
	}
	return out, nil
}

// isEcho reports whether a change touched only the V4_* score fields: the
// sink's own write, echoed back by change data capture.
func isEcho(changed []string) bool {
	if len(changed) == 0 {
		return false
	}
	for _, f := range changed {
		if !strings.HasPrefix(f, "V4_") {
			return false
		}
	}
	return true
}

func (p *Pipeline) deadLetter(out []*kgo.Record, r *kgo.Record, class, msg string, now time.Time) []*kgo.Record {
	p.m.dlq.WithLabelValues(class).Inc()
	return append(out, producer.DeadLetter(p.opts.DLQTopic, r, class, msg, now, p.opts.MaxRecordBytes))
}

func (p *Pipeline) score(snap *snapshot, e *event, res *featurestore.Result, now, start time.Time, out []*kgo.Record) ([]*kgo.Record, error) {
	m := &e.msg
	if res.Err != nil {
		return p.deadLetter(out, e.in, producer.ClassFeatures, res.Err.Error(), now), nil
	}
	if !res.AdvisorFound {
		p.m.unknownAdvisors.Inc()
		if p.opts.UnknownAdvisorToDLQ {
			return p.deadLetter(out, e.in, producer.ClassFeatures, fmt.Sprintf("advisor CRD %d is not in the feature store", m.CRD), now), nil
		}
	}
	var adv *features.Advisor
	if res.AdvisorFound {
		adv = &res.Advisor
	}
	var firm *features.Firm
	if res.FirmFound {
		firm = &res.Firm
	}
	features.Derive(now, features.Lead{HasEmail: m.HasEmail, HasLinkedIn: m.HasLinkedIn}, adv, firm, &p.values)

	p.scores = p.scores[:0]
	shadow := schemas.LeadScoreShadow{
		EventID: m.EventID, LeadID: m.LeadID, CRD: m.CRD, EventTime: m.EventTime, ScoredAt: now,
		Freshness: freshness(res, now, p.opts.FeatureMaxAge),
	}
	var (
		sink     *schemas.LeadScoreSfdc
		explHash uint64
	)
	for _, sv := range snap.serving {
		v := sv.v
		sv.layout.Fill(&p.values, sv.x)
		o, err := sv.outcome()
		if err != nil {
			return out, err
		}
		p.scores = append(p.scores, schemas.VersionScore{
			Version: v.Name, Role: v.Role, Score: o.score, Percentile: o.pct, Decile: scoring.Decile(o.pct),
			Deprioritize: v.Deprioritize(o.pct), UpgradeCandidate: v.Upgrade(o.pct), Factors: o.factors,
		})
		sv.obs.Observe(o.score)
		if v.Role == scoring.RoleProduction {
			p.sink = schemas.LeadScoreSfdc{
				ID: m.LeadID, Score: o.score, Percentile: o.pct, Deprioritize: v.Deprioritize(o.pct),
				ModelVersion: v.Name, ScoredAt: now, Explanation: o.explanation,
				TraceEventID: m.EventID, TraceSourcePartition: e.in.Partition, TraceSourceOffset: e.in.Offset,
			}
			sink, explHash = &p.sink, o.explHash
		}
	}
	shadow.Scores = p.scores
	p.m.scored.Inc()

	if sink != nil {
		st := featurestore.SinkState{LeadID: m.LeadID, Score: sink.Score, Percentile: sink.Percentile,
			Deprioritize: sink.Deprioritize, Version: sink.ModelVersion, ExplanationHash: explHash}
		last, ok := p.pending[m.LeadID] // an earlier event of this batch wins over Redis
		if !ok && res.HasLastSink {
			last, ok = res.LastSink, true
		}
		if ok && unchanged(last, st, p.opts.ScoreEpsilon) {
			p.m.suppressed.Inc()
		} else {
			at := len(p.arena)
			var err error
			if p.arena, err = p.codec.AppendSfdc(p.arena, sink); err != nil {
				return out, fmt.Errorf("pipeline: encode sink record: %w", err)
			}
			out = p.output(out, p.opts.SfdcTopic, m.LeadID, at)
			p.pending[m.LeadID] = st
			p.m.sinkRecords.Inc()
		}
	}
	shadow.ProcessingLatencyUS = time.Since(start).Microseconds()
	at := len(p.arena)
	var err error
	if p.arena, err = p.codec.AppendShadow(p.arena, &shadow); err != nil {
		return out, fmt.Errorf("pipeline: encode shadow record: %w", err)
	}
	return p.output(out, p.opts.ShadowTopic, m.LeadID, at), nil
}

// unchanged reports whether the Lead would show the same thing: same
// percentile, flag, version and explanation, and a score within eps.
func unchanged(last, next featurestore.SinkState, eps float64) bool {
	return last.Percentile == next.Percentile && last.Deprioritize == next.Deprioritize &&
		last.Version == next.Version && last.ExplanationHash == next.ExplanationHash &&
		math.Abs(last.Score-next.Score) < eps
}

func hash(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

func explanation(factors []scoring.Factor) string {
	ph := make([]producer.Phrase, len(factors))
	for i, f := range factors {
		ph[i] = producer.Phrase{Text: f.Phrase, Positive: f.Contribution > 0}
	}
	return producer.Explanation(ph, schemas.MaxExplanationLen)
}

func freshness(res *featurestore.Result, now time.Time, maxAge time.Duration) schemas.Freshness {
	f := schemas.Freshness{AdvisorFound: res.AdvisorFound, FirmFound: res.FirmFound}
	if res.AdvisorFound {
		age := now.Sub(res.Advisor.SnapshotAt)
		f.AdvisorAgeSeconds = int64(age.Seconds())
		f.AdvisorStale = age > maxAge
	}
	if res.FirmFound {
		age := now.Sub(res.Firm.SnapshotAt)
		f.FirmAgeSeconds = int64(age.Seconds())
		f.FirmStale = age > maxAge
	}
	return f
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
	err := featurestore.Retry(ctx, b, func(ctx context.Context) error { return p.store.SaveSink(ctx, states) })
	if err != nil {
		return errors.Join(errors.New("pipeline: save quota state"), err)
	}
	return nil
}
