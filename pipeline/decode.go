package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/producer"
	"github.com/twmb/franz-go/pkg/kgo"
)

// decode reads the batch's records into p.changes: a record too large, not
// decodable or invalid becomes a dead letter, an echo of the sink's own
// write is skipped. Only a failure to reach the Schema Registry fails the
// batch.
func (p *Pipeline) decode(ctx context.Context, in, out []*kgo.Record, now time.Time) ([]*kgo.Record, error) {
	p.changes = p.changes[:0]
	for _, r := range in {
		if len(r.Value) > p.opts.MaxRecordBytes {
			out = p.deadLetter(out, r, producer.ClassSize,
				fmt.Sprintf("record of %d bytes exceeds max_record_bytes %d", len(r.Value), p.opts.MaxRecordBytes), now)
			continue
		}
		m := &p.msg
		err := p.codec.DecodeLeadChanged(ctx, r.Value, m)
		if err == nil {
			err = m.Validate()
		}
		if err != nil {
			class, ok := producer.ClassOf(err)
			if !ok {
				return out, fmt.Errorf("pipeline: decode: %w", err) // registry unreachable: retry the batch
			}
			out = p.deadLetter(out, r, class, err.Error(), now)
			continue
		}
		if isEcho(m.ChangedFields) {
			p.m.echoes.Inc()
			continue
		}
		p.changes = append(p.changes, change{in: r, eventID: m.EventID, leadID: m.LeadID, crd: m.CRD,
			lead: features.Lead{HasEmail: m.HasEmail, HasLinkedIn: m.HasLinkedIn}, eventTime: m.EventTime})
	}
	return out, nil
}
