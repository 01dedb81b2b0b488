package producer

import (
	"fmt"
	"time"

	"github.com/leadscorer/leadscorer/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topics names the topic of each kind of output record. An empty topic
// means the pipeline writes no record of that kind.
type Topics struct {
	Sink, Shadow, DLQ string
	// Outcomes receives LeadOutcome records, Refresh LeadRefreshRequest
	// records.
	Outcomes, Refresh string
}

// Batch builds the output records of one batch. The records, their keys
// and their values are carved from memory that Reset hands out again: the
// consumer produces, flushes and commits a batch's outputs before the next
// batch starts, so nothing outlives its batch. Encoding allocates nothing
// once the memory has grown to the batch size. Not safe for concurrent use.
type Batch struct {
	codec    *schemas.Codec
	topics   Topics
	maxValue int // a dead letter's value is cut to this

	arena  []byte
	chunks [][]kgo.Record
	n      int
}

// NewBatch returns a Batch encoding with codec; a dead letter's value is
// cut to maxValue bytes (max_record_bytes).
func NewBatch(codec *schemas.Codec, topics Topics, maxValue int) *Batch {
	return &Batch{codec: codec, topics: topics, maxValue: maxValue}
}

// Topics returns the topics the batch writes to.
func (b *Batch) Topics() Topics { return b.topics }

// Reset makes the memory of every record built so far available again.
func (b *Batch) Reset() {
	b.arena = b.arena[:0]
	b.n = 0
}

const recChunk = 1024

// record returns a zeroed record that lives until the next Reset.
func (b *Batch) record() *kgo.Record {
	c, i := b.n/recChunk, b.n%recChunk
	if c == len(b.chunks) {
		b.chunks = append(b.chunks, make([]kgo.Record, recChunk))
	}
	b.n++
	r := &b.chunks[c][i]
	*r = kgo.Record{}
	return r
}

// output appends a record of topic whose value is what the arena holds from
// start on, keyed by key.
func (b *Batch) output(out []*kgo.Record, topic, key string, start int) []*kgo.Record {
	r := b.record()
	r.Topic = topic
	r.Value = b.arena[start:len(b.arena):len(b.arena)]
	k := len(b.arena)
	b.arena = append(b.arena, key...)
	r.Key = b.arena[k:len(b.arena):len(b.arena)]
	return append(out, r)
}

// Sink appends the sink record of s, keyed by the Lead Id. The error (a
// value the Lead's fields cannot hold) is a bug, not bad input: the batch
// fails.
func (b *Batch) Sink(out []*kgo.Record, s *schemas.LeadScoreSfdc) ([]*kgo.Record, error) {
	at := len(b.arena)
	var err error
	if b.arena, err = b.codec.AppendSfdc(b.arena, s); err != nil {
		return out, fmt.Errorf("producer: encode sink record: %w", err)
	}
	return b.output(out, b.topics.Sink, s.ID, at), nil
}

// Shadow appends the shadow record of s, keyed by the Lead Id.
func (b *Batch) Shadow(out []*kgo.Record, s *schemas.LeadScoreShadow) ([]*kgo.Record, error) {
	at := len(b.arena)
	var err error
	if b.arena, err = b.codec.AppendShadow(b.arena, s); err != nil {
		return out, fmt.Errorf("producer: encode shadow record: %w", err)
	}
	return b.output(out, b.topics.Shadow, s.LeadID, at), nil
}

// Outcome appends the outcome record o, keyed by the Lead Id.
func (b *Batch) Outcome(out []*kgo.Record, o *schemas.LeadOutcome) ([]*kgo.Record, error) {
	at := len(b.arena)
	var err error
	if b.arena, err = b.codec.AppendLeadOutcome(b.arena, o); err != nil {
		return out, fmt.Errorf("producer: encode outcome record: %w", err)
	}
	return b.output(out, b.topics.Outcomes, o.LeadID, at), nil
}

// DeadLetter appends the dead letter of in (see DeadLetter).
func (b *Batch) DeadLetter(out []*kgo.Record, in *kgo.Record, class, message string, now time.Time) []*kgo.Record {
	return append(out, DeadLetter(b.topics.DLQ, in, class, message, now, b.maxValue))
}

// SinkRecord is the sink record of a production score: the Lead's V4_*
// fields, and where the scored change came from.
func SinkRecord(leadID string, s *schemas.VersionScore, explanation string, scoredAt time.Time, eventID string, in *kgo.Record) schemas.LeadScoreSfdc {
	return schemas.LeadScoreSfdc{
		ID: leadID, Score: s.Score, Percentile: s.Percentile, Deprioritize: s.Deprioritize,
		ModelVersion: s.Version, ScoredAt: scoredAt, Explanation: explanation,
		TraceEventID: eventID, TraceSourcePartition: in.Partition, TraceSourceOffset: in.Offset,
	}
}

// Refresh appends the refresh request r, keyed by its only Lead Id, or by
// the object's name when it names several Leads or none (the whole object).
func (b *Batch) Refresh(out []*kgo.Record, r *schemas.LeadRefreshRequest) ([]*kgo.Record, error) {
	key := r.Entity
	if len(r.LeadIDs) == 1 {
		key = r.LeadIDs[0]
	}
	at := len(b.arena)
	var err error
	if b.arena, err = b.codec.AppendRefresh(b.arena, r); err != nil {
		return out, fmt.Errorf("producer: encode refresh request: %w", err)
	}
	return b.output(out, b.topics.Refresh, key, at), nil
}
