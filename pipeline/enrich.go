package pipeline

import (
	"context"
	"fmt"

	"github.com/leadscorer/leadscorer/featurestore"
)

// enrich looks up the advisor, firm and quota state of every change in
// p.results: two round trips for the whole batch (three after a firm was
// rewritten), retried until
// Redis answers or the batch's context ends.
func (p *Pipeline) enrich(ctx context.Context) error {
	p.reqs = p.reqs[:0]
	for i := range p.changes {
		c := &p.changes[i]
		r := featurestore.Request{CRD: c.crd, LeadID: c.leadID}
		if p.cdc != nil {
			r.LeadID = "" // the quota state came with the Lead's state
		}
		p.reqs = append(p.reqs, r)
	}
	if cap(p.results) < len(p.reqs) {
		p.results = make([]featurestore.Result, len(p.reqs))
	}
	p.results = p.results[:len(p.reqs)]
	if len(p.reqs) == 0 {
		return nil
	}
	err := featurestore.Retry(ctx, p.opts.RedisBackoff, func(ctx context.Context) error {
		err := p.store.Lookup(ctx, p.reqs, p.results)
		if err != nil {
			p.m.redisRetries.Inc()
			p.log.Warn("redis lookup failed; retrying", "err", err)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("pipeline: enrich: %w", err)
	}
	if p.cdc != nil {
		for i := range p.changes {
			if ls := p.changes[i].lastSink; ls != nil {
				p.results[i].LastSink, p.results[i].HasLastSink = *ls, true
			}
		}
	}
	return nil
}
