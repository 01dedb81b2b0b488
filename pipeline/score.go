package pipeline

import (
	"fmt"
	"time"

	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/featurestore"
	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/twmb/franz-go/pkg/kgo"
)

// scoreAll scores every change of the batch with every serving version
// and appends their outputs in the order of the changes: a shadow record
// always, a sink record unless the quota guard holds it back, or a dead
// letter when its features cannot be had.
//
// Three passes: the features of every change become a row of each
// version; each version scores and explains the rows its memo does not
// have in batch calls (scoring.BatchModel); then each change's outputs
// are built from its results.
func (p *Pipeline) scoreAll(snap *snapshot, now, start time.Time, out []*kgo.Record) ([]*kgo.Record, error) {
	n := len(p.changes)
	for _, sv := range snap.serving {
		sv.begin(n)
	}
	for i := range p.changes {
		c, res := &p.changes[i], &p.results[i]
		if res.Err != nil || !res.AdvisorFound && p.opts.UnknownAdvisorToDLQ {
			continue // a dead letter
		}
		derive(now, c, res, &p.values)
		for _, sv := range snap.serving {
			sv.add(i, &p.values)
		}
	}
	for _, sv := range snap.serving {
		if err := sv.run(); err != nil {
			return out, err
		}
	}
	var err error
	for i := range p.changes {
		if out, err = p.emit(snap, i, now, start, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// emit appends the outputs of change i, whose scores are computed.
func (p *Pipeline) emit(snap *snapshot, i int, now, start time.Time, out []*kgo.Record) ([]*kgo.Record, error) {
	c, res := &p.changes[i], &p.results[i]
	if res.Err != nil {
		return p.deadLetter(out, c.in, producer.ClassFeatures, res.Err.Error(), now), nil
	}
	if !res.AdvisorFound {
		p.m.unknownAdvisors.Inc()
		if p.opts.UnknownAdvisorToDLQ {
			msg := fmt.Sprintf("advisor CRD %d is not in the feature store", c.crd)
			if c.crd == 0 {
				msg = "the Lead has no advisor CRD"
			}
			return p.deadLetter(out, c.in, producer.ClassFeatures, msg, now), nil
		}
	}
	p.scores = p.scores[:0]
	shadow := schemas.LeadScoreShadow{
		EventID: c.eventID, LeadID: c.leadID, CRD: c.crd, EventTime: c.eventTime, ScoredAt: now,
		Freshness:  freshness(res, now, p.opts.FeatureMaxAge),
		ChangeType: c.changeType, PartialState: c.partial, Gap: c.gap,
	}
	var (
		sink     *schemas.LeadScoreSfdc
		explHash uint64
	)
	for _, sv := range snap.serving {
		v, o := sv.v, sv.outs[i]
		p.scores = append(p.scores, schemas.VersionScore{
			Version: v.Name, Role: v.Role, Score: o.score, Percentile: o.pct, Decile: scoring.Decile(o.pct),
			Deprioritize: v.Deprioritize(o.pct), UpgradeCandidate: v.Upgrade(o.pct), Factors: o.factors,
		})
		sv.obs.Observe(o.score)
		if v.Role == scoring.RoleProduction {
			p.sink = producer.SinkRecord(c.leadID, &p.scores[len(p.scores)-1], o.explanation, now, c.eventID, c.in)
			sink, explHash = &p.sink, o.explHash
		}
	}
	shadow.Scores = p.scores
	p.m.scored.Inc()

	if sink != nil && !c.noSink {
		var err error
		if out, err = p.quotaGuarded(out, sink, explHash, res); err != nil {
			return out, err
		}
	}
	shadow.ProcessingLatencyUS = time.Since(start).Microseconds()
	return p.out.Shadow(out, &shadow)
}

// quotaGuarded appends the sink record unless the Lead already shows what
// it says: the last state this batch wrote wins over the one in Redis.
func (p *Pipeline) quotaGuarded(out []*kgo.Record, sink *schemas.LeadScoreSfdc, explHash uint64, res *featurestore.Result) ([]*kgo.Record, error) {
	st := featurestore.SinkState{LeadID: sink.ID, Score: sink.Score, Percentile: sink.Percentile,
		Deprioritize: sink.Deprioritize, Version: sink.ModelVersion, ExplanationHash: explHash}
	last, ok := p.pending[sink.ID]
	if !ok && res.HasLastSink {
		last, ok = res.LastSink, true
	}
	if ok && unchanged(last, st, p.opts.ScoreEpsilon) {
		p.m.suppressed.Inc()
		return out, nil
	}
	out, err := p.out.Sink(out, sink)
	if err != nil {
		return out, err
	}
	p.pending[sink.ID] = st
	p.m.sinkRecords.Inc()
	return out, nil
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

// derive computes the features of change c, enriched with res, as of now.
func derive(now time.Time, c *change, res *featurestore.Result, vals *features.Values) {
	var adv *features.Advisor
	if res.AdvisorFound {
		adv = &res.Advisor
	}
	var firm *features.Firm
	if res.FirmFound {
		firm = &res.Firm
	}
	features.Derive(now, c.lead, adv, firm, vals)
}
