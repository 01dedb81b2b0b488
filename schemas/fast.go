package schemas

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// The fast path. Records written with our own schema ids (every record the
// scorer writes, and every LeadChanged written by producers on the current
// schema) are encoded and decoded by the hand-written code below, field by
// field in schema order, without goavro's map[string]any values: the
// generic path allocated a map and an interface per field and was most of
// the codec's cost. Records written with any other schema id take the
// generic path (registry lookup, goavro, resolution). The tests check that
// both paths give the same bytes and the same decoded values, errors
// included.

func appendLong(b []byte, v int64) []byte { return binary.AppendVarint(b, v) } // Avro's zigzag varint

func appendString(b []byte, s string) []byte {
	b = binary.AppendVarint(b, int64(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendDouble(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// appendMillis writes a timestamp-millis as goavro does.
func appendMillis(b []byte, t time.Time) []byte {
	return appendLong(b, t.Unix()*1e3+int64(t.Nanosecond()/1e6))
}

// appendHeader starts a wire-format record of kind k.
func (c *Codec) appendHeader(dst []byte, k kind) ([]byte, error) {
	id := c.ids[k]
	if id == 0 {
		return dst, fmt.Errorf("schemas: %s: no schema id; was its topic registered?", specs[k].record)
	}
	dst = append(dst, 0)
	return binary.BigEndian.AppendUint32(dst, uint32(id)), nil
}

func (c *Codec) appendLeadChangedFast(dst []byte, e *LeadChanged) ([]byte, error) {
	b, err := c.appendHeader(dst, kindLeadChanged)
	if err != nil {
		return dst, err
	}
	b = appendString(b, e.EventID)
	b = appendString(b, e.LeadID)
	if e.HasCRD {
		b = appendLong(appendLong(b, 1), e.CRD)
	} else {
		b = appendLong(b, 0)
	}
	b = appendBool(b, e.HasEmail)
	b = appendBool(b, e.HasLinkedIn)
	b = appendString(b, e.Stage)
	if n := len(e.ChangedFields); n > 0 {
		b = appendLong(b, int64(n))
		for _, f := range e.ChangedFields {
			b = appendString(b, f)
		}
	}
	b = appendLong(b, 0)
	return appendMillis(b, e.EventTime), nil
}

func (c *Codec) appendSfdcFast(dst []byte, r *LeadScoreSfdc, objectType, eventType string) ([]byte, error) {
	b, err := c.appendHeader(dst, kindSfdc)
	if err != nil {
		return dst, err
	}
	b = appendString(b, r.ID)
	b = appendDouble(b, r.Score)
	b = appendLong(b, int64(int32(r.Percentile)))
	b = appendBool(b, r.Deprioritize)
	b = appendString(b, r.ModelVersion)
	b = appendMillis(b, r.ScoredAt)
	b = appendString(b, r.Explanation)
	b = appendString(b, objectType)
	b = appendString(b, eventType)
	b = appendString(b, r.TraceEventID)
	b = appendLong(b, int64(r.TraceSourcePartition))
	return appendLong(b, r.TraceSourceOffset), nil
}

// appendOutcomeFast encodes o, its kind already checked.
func (c *Codec) appendOutcomeFast(dst []byte, o *LeadOutcome) ([]byte, error) {
	b, err := c.appendHeader(dst, kindOutcome)
	if err != nil {
		return dst, err
	}
	b = appendString(b, o.EventID)
	b = appendString(b, o.LeadID)
	b = appendString(b, o.Kind)
	return appendMillis(b, o.Time), nil
}

func (c *Codec) appendRefreshFast(dst []byte, r *LeadRefreshRequest) ([]byte, error) {
	b, err := c.appendHeader(dst, kindRefresh)
	if err != nil {
		return dst, err
	}
	b = appendString(b, r.RequestID)
	b = appendString(b, r.Entity)
	if n := len(r.LeadIDs); n > 0 {
		b = appendLong(b, int64(n))
		for _, id := range r.LeadIDs {
			b = appendString(b, id)
		}
	}
	b = appendLong(b, 0)
	b = appendString(b, r.ChangeType)
	b = appendString(b, r.Reason)
	b = appendMillis(b, r.CommitTime)
	return appendMillis(b, r.RequestedAt), nil
}

// appendShadowFast encodes r, already checked.
func (c *Codec) appendShadowFast(dst []byte, r *LeadScoreShadow) ([]byte, error) {
	b, err := c.appendHeader(dst, kindShadow)
	if err != nil {
		return dst, err
	}
	b = appendString(b, r.EventID)
	b = appendString(b, r.LeadID)
	b = appendLong(b, r.CRD)
	b = appendMillis(b, r.EventTime)
	b = appendMillis(b, r.ScoredAt)
	if len(r.Scores) > 0 {
		b = appendLong(b, int64(len(r.Scores)))
		for i := range r.Scores {
			s := &r.Scores[i]
			b = appendString(b, s.Version)
			b = appendString(b, s.Role)
			b = appendDouble(b, s.Score)
			b = appendLong(b, int64(int32(s.Percentile)))
			b = appendLong(b, int64(int32(s.Decile)))
			b = appendBool(b, s.Deprioritize)
			b = appendBool(b, s.UpgradeCandidate)
			if len(s.Factors) > 0 {
				b = appendLong(b, int64(len(s.Factors)))
				for j := range s.Factors {
					f := &s.Factors[j]
					b = appendString(b, f.Feature)
					if math.IsNaN(f.Value) {
						b = appendLong(b, 0)
					} else {
						b = appendDouble(appendLong(b, 1), f.Value)
					}
					b = appendDouble(b, f.Contribution)
					b = appendString(b, f.Phrase)
				}
			}
			b = appendLong(b, 0)
		}
	}
	b = appendLong(b, 0)
	f := &r.Freshness
	b = appendBool(b, f.AdvisorFound)
	b = appendBool(b, f.FirmFound)
	b = appendBool(b, f.AdvisorStale)
	b = appendBool(b, f.FirmStale)
	b = appendLong(b, f.AdvisorAgeSeconds)
	b = appendLong(b, f.FirmAgeSeconds)
	b = appendLong(b, r.ProcessingLatencyUS)
	b = appendString(b, r.ChangeType)
	b = appendBool(b, r.PartialState)
	return appendBool(b, r.Gap), nil
}

// reader decodes an Avro body strictly: every length is checked against
// the bytes left before anything is allocated.
type reader struct {
	s   scanner
	err error
}

func (r *reader) fail(field string, err error) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %w", field, err)
	}
}

func (r *reader) long(field string) int64 {
	if r.err != nil {
		return 0
	}
	v, err := r.s.varint()
	if err != nil {
		r.fail(field, err)
	}
	return v
}

func (r *reader) str(field string) string {
	n := r.long(field)
	if r.err != nil {
		return ""
	}
	start := r.s.pos
	if err := r.s.advance(n); err != nil {
		r.fail(field, err)
		return ""
	}
	return string(r.s.b[start:r.s.pos])
}

func (r *reader) boolean(field string) bool {
	if r.err != nil {
		return false
	}
	if r.s.pos >= len(r.s.b) {
		r.fail(field, errShort)
		return false
	}
	c := r.s.b[r.s.pos]
	r.s.pos++
	if c > 1 {
		r.fail(field, fmt.Errorf("boolean byte %d is neither 0 nor 1", c))
	}
	return c == 1
}

// blockCount reads an array block's item count (and skips the byte size
// that follows a negative count). Each item takes at least minItem bytes.
func (r *reader) blockCount(field string, minItem int64) int64 {
	n := r.long(field)
	if r.err != nil || n == 0 {
		return 0
	}
	if n < 0 {
		if n == math.MinInt64 {
			r.fail(field, fmt.Errorf("block count %d", n))
			return 0
		}
		n = -n
		r.long(field)
	}
	if remaining := int64(len(r.s.b) - r.s.pos); n > remaining/minItem {
		r.fail(field, fmt.Errorf("block of %d items cannot fit in %d bytes", n, remaining))
		return 0
	}
	return n
}

// decodeLeadChangedFast decodes a body written with our own LeadChanged
// schema.
func decodeLeadChangedFast(body []byte, dst *LeadChanged) error {
	r := reader{s: scanner{b: body}}
	e := LeadChanged{
		EventID: r.str("event_id"),
		LeadID:  r.str("lead_id"),
	}
	switch branch := r.long("crd"); {
	case r.err != nil:
	case branch == 0:
	case branch == 1:
		e.CRD, e.HasCRD = r.long("crd"), true
	default:
		r.fail("crd", fmt.Errorf("union branch %d out of range", branch))
	}
	e.HasEmail = r.boolean("has_email")
	e.HasLinkedIn = r.boolean("has_linkedin")
	e.Stage = r.str("stage")
	var fields []string
	for n := r.blockCount("changed_fields", 1); n > 0 && r.err == nil; n = r.blockCount("changed_fields", 1) {
		if fields == nil {
			fields = make([]string, 0, n)
		}
		for range n {
			fields = append(fields, r.str("changed_fields"))
		}
	}
	if fields == nil {
		fields = []string{}
	}
	e.ChangedFields = fields
	ms := r.long("event_time")
	if r.err != nil {
		return r.err
	}
	if r.s.pos != len(body) {
		return fmt.Errorf("%d trailing bytes after the record", len(body)-r.s.pos)
	}
	sec := ms / 1e3
	e.EventTime = time.Unix(sec, (ms-sec*1e3)*1e6).UTC()
	*dst = e
	return nil
}
