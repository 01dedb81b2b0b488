package schemas

import (
	"context"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// DecodeLeadChanged decodes a wire-format LeadChanged into dst, resolving
// data written with any compatible version of the schema. A bad record gives
// a *RecordError of class decode or schema; any other error (registry
// unreachable) means retry. It does not validate values: see Validate.
func (c *Codec) DecodeLeadChanged(ctx context.Context, b []byte, dst *LeadChanged) error {
	if id, body, err := header.DecodeID(b); err == nil && id != 0 && id == c.ids[kindLeadChanged] {
		if err := decodeLeadChangedFast(body, dst); err != nil {
			return &RecordError{Fault: FaultDecode, Err: fmt.Errorf("%s body (schema id %d): %w", specs[kindLeadChanged].record, id, err)}
		}
		return nil
	}
	return c.decodeLeadChangedGeneric(ctx, b, dst)
}

// decodeLeadChangedGeneric decodes with the writer's schema from the
// registry, through goavro and resolution.
func (c *Codec) decodeLeadChangedGeneric(ctx context.Context, b []byte, dst *LeadChanged) error {
	m, err := c.decode(ctx, b, kindLeadChanged)
	if err != nil {
		return err
	}
	crd, hasCRD := m["crd"].(int64)
	*dst = LeadChanged{
		EventID:       str(m, "event_id"),
		LeadID:        str(m, "lead_id"),
		CRD:           crd,
		HasCRD:        hasCRD,
		HasEmail:      boolean(m, "has_email"),
		HasLinkedIn:   boolean(m, "has_linkedin"),
		Stage:         str(m, "stage"),
		ChangedFields: stringList(m, "changed_fields"),
		EventTime:     timestamp(m, "event_time"),
	}
	return nil
}

// AppendLeadChanged appends e in the wire format to dst. It does not call
// Validate: producers of test and demo traffic may write invalid events on
// purpose.
func (c *Codec) AppendLeadChanged(dst []byte, e *LeadChanged) ([]byte, error) {
	return c.appendLeadChangedFast(dst, e)
}

// AppendSfdc appends r in the wire format to dst, after checking what the
// Salesforce fields can hold: an 18-character Lead Id, a finite score in
// 0..1, a percentile in 1..100, a model version of 1..50 characters, a
// scored-at time and an explanation of at most 255 characters. The error
// names the field.
func (c *Codec) AppendSfdc(dst []byte, r *LeadScoreSfdc) ([]byte, error) {
	if err := r.check(); err != nil {
		return dst, fmt.Errorf("schemas: LeadScoreSfdc: %w", err)
	}
	ot, et := r.ObjectType, r.EventType
	if ot == "" {
		ot = SfdcObjectType
	}
	if et == "" {
		et = SfdcEventType
	}
	return c.appendSfdcFast(dst, r, ot, et)
}

func (r *LeadScoreSfdc) check() error {
	if err := checkLeadID(r.ID); err != nil {
		return fmt.Errorf("Id: %w", err)
	}
	if math.IsNaN(r.Score) || r.Score < 0 || r.Score > 1 {
		return fmt.Errorf("V4_Score__c: %v is not in 0..1", r.Score)
	}
	if r.Percentile < 1 || r.Percentile > 100 {
		return fmt.Errorf("V4_Score_Percentile__c: %d is not in 1..100", r.Percentile)
	}
	if n := utf8.RuneCountInString(r.ModelVersion); n == 0 || n > MaxModelVersionLen {
		return fmt.Errorf("V4_Model_Version__c: %q has %d characters, want 1..%d", r.ModelVersion, n, MaxModelVersionLen)
	}
	if r.ScoredAt.IsZero() {
		return fmt.Errorf("V4_Scored_At__c: zero time")
	}
	if !utf8.ValidString(r.Explanation) {
		return fmt.Errorf("V4_Score_Explanation__c: not valid UTF-8")
	}
	if n := utf8.RuneCountInString(r.Explanation); n > MaxExplanationLen {
		return fmt.Errorf("V4_Score_Explanation__c: %d characters, more than %d", n, MaxExplanationLen)
	}
	return nil
}

// DecodeSfdc decodes a wire-format LeadScoreSfdc into dst. Errors are as
// for DecodeLeadChanged.
func (c *Codec) DecodeSfdc(ctx context.Context, b []byte, dst *LeadScoreSfdc) error {
	m, err := c.decode(ctx, b, kindSfdc)
	if err != nil {
		return err
	}
	*dst = LeadScoreSfdc{
		ID:                   str(m, "Id"),
		Score:                double(m, "V4_Score__c"),
		Percentile:           int(int32v(m, "V4_Score_Percentile__c")),
		Deprioritize:         boolean(m, "V4_Deprioritize__c"),
		ModelVersion:         str(m, "V4_Model_Version__c"),
		ScoredAt:             timestamp(m, "V4_Scored_At__c"),
		Explanation:          str(m, "V4_Score_Explanation__c"),
		ObjectType:           str(m, "_ObjectType"),
		EventType:            str(m, "_EventType"),
		TraceEventID:         str(m, "trace_event_id"),
		TraceSourcePartition: int32v(m, "trace_source_partition"),
		TraceSourceOffset:    int64v(m, "trace_source_offset"),
	}
	return nil
}

// AppendShadow appends r in the wire format to dst, after checking that
// every double is finite, percentiles and deciles fit an Avro int and both
// times are set. The error names the field.
func (c *Codec) AppendShadow(dst []byte, r *LeadScoreShadow) ([]byte, error) {
	if r.EventTime.IsZero() {
		return dst, fmt.Errorf("schemas: LeadScoreShadow: event_time: zero time")
	}
	if r.ScoredAt.IsZero() {
		return dst, fmt.Errorf("schemas: LeadScoreShadow: scored_at: zero time")
	}
	for i := range r.Scores {
		if err := r.Scores[i].check(); err != nil {
			return dst, fmt.Errorf("schemas: LeadScoreShadow: scores[%d].%w", i, err)
		}
	}
	return c.appendShadowFast(dst, r)
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func fitsInt32(i int) bool { return i >= math.MinInt32 && i <= math.MaxInt32 }

func (s *VersionScore) check() error {
	if !finite(s.Score) {
		return fmt.Errorf("score: %v is not finite", s.Score)
	}
	if !fitsInt32(s.Percentile) {
		return fmt.Errorf("percentile: %d does not fit an int", s.Percentile)
	}
	if !fitsInt32(s.Decile) {
		return fmt.Errorf("decile: %d does not fit an int", s.Decile)
	}
	for j, f := range s.Factors {
		if math.IsInf(f.Value, 0) {
			return fmt.Errorf("factors[%d].value: %v is not finite", j, f.Value)
		}
		if !finite(f.Contribution) {
			return fmt.Errorf("factors[%d].contribution: %v is not finite", j, f.Contribution)
		}
	}
	return nil
}

// DecodeShadow decodes a wire-format LeadScoreShadow into dst. Errors are
// as for DecodeLeadChanged.
func (c *Codec) DecodeShadow(ctx context.Context, b []byte, dst *LeadScoreShadow) error {
	m, err := c.decode(ctx, b, kindShadow)
	if err != nil {
		return err
	}
	raw, _ := m["scores"].([]any)
	scores := make([]VersionScore, len(raw))
	for i, x := range raw {
		s, _ := x.(map[string]any)
		rf, _ := s["factors"].([]any)
		factors := make([]Factor, len(rf))
		for j, y := range rf {
			f, _ := y.(map[string]any)
			factors[j] = Factor{
				Feature:      str(f, "feature"),
				Value:        nullableDoubleOf(f, "value"),
				Contribution: double(f, "contribution"),
				Phrase:       str(f, "phrase"),
			}
		}
		scores[i] = VersionScore{
			Version:          str(s, "version"),
			Role:             str(s, "role"),
			Score:            double(s, "score"),
			Percentile:       int(int32v(s, "percentile")),
			Decile:           int(int32v(s, "decile")),
			Deprioritize:     boolean(s, "deprioritize"),
			UpgradeCandidate: boolean(s, "upgrade_candidate"),
			Factors:          factors,
		}
	}
	f, _ := m["freshness"].(map[string]any)
	*dst = LeadScoreShadow{
		EventID:   str(m, "event_id"),
		LeadID:    str(m, "lead_id"),
		CRD:       int64v(m, "crd"),
		EventTime: timestamp(m, "event_time"),
		ScoredAt:  timestamp(m, "scored_at"),
		Scores:    scores,
		Freshness: Freshness{
			AdvisorFound:      boolean(f, "advisor_found"),
			FirmFound:         boolean(f, "firm_found"),
			AdvisorStale:      boolean(f, "advisor_stale"),
			FirmStale:         boolean(f, "firm_stale"),
			AdvisorAgeSeconds: int64v(f, "advisor_age_seconds"),
			FirmAgeSeconds:    int64v(f, "firm_age_seconds"),
		},
		ProcessingLatencyUS: int64v(m, "processing_latency_us"),
		ChangeType:          str(m, "change_type"),
		PartialState:        boolean(m, "partial_state"),
		Gap:                 boolean(m, "gap"),
	}
	return nil
}

// AppendLeadOutcome appends o in the wire format to dst; Kind must be
// OutcomeContacted or OutcomeCallScheduled.
func (c *Codec) AppendLeadOutcome(dst []byte, o *LeadOutcome) ([]byte, error) {
	if o.Kind != OutcomeContacted && o.Kind != OutcomeCallScheduled {
		return dst, fmt.Errorf("schemas: LeadOutcome: kind: %q is not %s or %s", o.Kind, OutcomeContacted, OutcomeCallScheduled)
	}
	return c.appendOutcomeFast(dst, o)
}

// DecodeLeadOutcome decodes a wire-format LeadOutcome into dst. Errors are
// as for DecodeLeadChanged; an unknown Kind is returned as written.
func (c *Codec) DecodeLeadOutcome(ctx context.Context, b []byte, dst *LeadOutcome) error {
	m, err := c.decode(ctx, b, kindOutcome)
	if err != nil {
		return err
	}
	*dst = LeadOutcome{
		EventID: str(m, "event_id"),
		LeadID:  str(m, "lead_id"),
		Kind:    str(m, "kind"),
		Time:    timestamp(m, "time"),
	}
	return nil
}

// Accessors of resolved records. resolve guarantees each field's Go type,
// so a failed assertion (zero value) cannot happen.

func str(m map[string]any, k string) string   { v, _ := m[k].(string); return v }
func boolean(m map[string]any, k string) bool { v, _ := m[k].(bool); return v }
func double(m map[string]any, k string) float64 {
	v, _ := m[k].(float64)
	return v
}
func int32v(m map[string]any, k string) int32 { v, _ := m[k].(int32); return v }
func int64v(m map[string]any, k string) int64 { v, _ := m[k].(int64); return v }
func timestamp(m map[string]any, k string) time.Time {
	v, _ := m[k].(time.Time)
	return v
}
func stringList(m map[string]any, k string) []string {
	raw, _ := m[k].([]any)
	out := make([]string, len(raw))
	for i, x := range raw {
		out[i], _ = x.(string)
	}
	return out
}

// nullableDoubleOf decodes a ["null","double"] field; null is NaN.
func nullableDoubleOf(m map[string]any, k string) float64 {
	switch v := m[k].(type) {
	case float64:
		return v
	case map[string]any:
		if d, ok := v["double"].(float64); ok {
			return d
		}
	}
	return math.NaN()
}
