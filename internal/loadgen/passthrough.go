package loadgen

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Passthrough is a consumer.Transformer that scores nothing: it copies every
// input record, key and value, to each of Topics. Run by the same exactly-once
// consumer as the scorer (same group, transactions, batch size and producer
// settings), it measures what the broker alone allows on this machine: the
// ceiling the scorer's throughput is compared with.
type Passthrough struct {
	// Topics receive one copy of each input record; the scorer writes two
	// records per event (sink and shadow), so two topics make the same
	// number of output records.
	Topics []string
	recs   []kgo.Record
}

// Transform implements consumer.Transformer.
func (p *Passthrough) Transform(_ context.Context, in, out []*kgo.Record) ([]*kgo.Record, error) {
	n := len(in) * len(p.Topics)
	if cap(p.recs) < n {
		p.recs = make([]kgo.Record, n)
	}
	p.recs = p.recs[:n]
	i := 0
	for _, r := range in {
		for _, t := range p.Topics {
			p.recs[i] = kgo.Record{Topic: t, Key: r.Key, Value: r.Value}
			out = append(out, &p.recs[i])
			i++
		}
	}
	return out, nil
}

// Committed implements consumer.Transformer.
func (p *Passthrough) Committed(context.Context, []*kgo.Record) error { return nil }
