package schemas

import (
	"fmt"
	"math"

	"github.com/linkedin/goavro/v2"
)

// The generic (goavro) encoders the fast path replaced, kept as the
// reference the fast path must match byte for byte.

func (c *Codec) genericAppendLeadChanged(dst []byte, e *LeadChanged) ([]byte, error) {
	var crd any
	if e.HasCRD {
		crd = goavro.Union("long", e.CRD)
	}
	changed := make([]any, len(e.ChangedFields))
	for i, f := range e.ChangedFields {
		changed[i] = f
	}
	return c.encode(dst, kindLeadChanged, map[string]any{
		"event_id":       e.EventID,
		"lead_id":        e.LeadID,
		"crd":            crd,
		"has_email":      e.HasEmail,
		"has_linkedin":   e.HasLinkedIn,
		"stage":          e.Stage,
		"changed_fields": changed,
		"event_time":     e.EventTime,
	})
}

func (c *Codec) genericAppendSfdc(dst []byte, r *LeadScoreSfdc) ([]byte, error) {
	if err := r.check(); err != nil {
		return dst, err
	}
	ot, et := r.ObjectType, r.EventType
	if ot == "" {
		ot = SfdcObjectType
	}
	if et == "" {
		et = SfdcEventType
	}
	return c.encode(dst, kindSfdc, map[string]any{
		"Id":                      r.ID,
		"V4_Score__c":             r.Score,
		"V4_Score_Percentile__c":  int32(r.Percentile),
		"V4_Deprioritize__c":      r.Deprioritize,
		"V4_Model_Version__c":     r.ModelVersion,
		"V4_Scored_At__c":         r.ScoredAt,
		"V4_Score_Explanation__c": r.Explanation,
		"_ObjectType":             ot,
		"_EventType":              et,
		"trace_event_id":          r.TraceEventID,
		"trace_source_partition":  r.TraceSourcePartition,
		"trace_source_offset":     r.TraceSourceOffset,
	})
}

func (c *Codec) genericAppendShadow(dst []byte, r *LeadScoreShadow) ([]byte, error) {
	scores := make([]any, len(r.Scores))
	for i := range r.Scores {
		s := &r.Scores[i]
		if err := s.check(); err != nil {
			return dst, fmt.Errorf("schemas: LeadScoreShadow: scores[%d].%w", i, err)
		}
		factors := make([]any, len(s.Factors))
		for j, f := range s.Factors {
			factors[j] = map[string]any{
				"feature":      f.Feature,
				"value":        nullableDouble(f.Value),
				"contribution": f.Contribution,
				"phrase":       f.Phrase,
			}
		}
		scores[i] = map[string]any{
			"version":           s.Version,
			"role":              s.Role,
			"score":             s.Score,
			"percentile":        int32(s.Percentile),
			"decile":            int32(s.Decile),
			"deprioritize":      s.Deprioritize,
			"upgrade_candidate": s.UpgradeCandidate,
			"factors":           factors,
		}
	}
	f := &r.Freshness
	return c.encode(dst, kindShadow, map[string]any{
		"event_id":   r.EventID,
		"lead_id":    r.LeadID,
		"crd":        r.CRD,
		"event_time": r.EventTime,
		"scored_at":  r.ScoredAt,
		"scores":     scores,
		"freshness": map[string]any{
			"advisor_found":       f.AdvisorFound,
			"firm_found":          f.FirmFound,
			"advisor_stale":       f.AdvisorStale,
			"firm_stale":          f.FirmStale,
			"advisor_age_seconds": f.AdvisorAgeSeconds,
			"firm_age_seconds":    f.FirmAgeSeconds,
		},
		"processing_latency_us": r.ProcessingLatencyUS,
		"change_type":           r.ChangeType,
		"partial_state":         r.PartialState,
		"gap":                   r.Gap,
	})
}

// nullableDouble encodes NaN, a missing feature value, as null.
func nullableDouble(f float64) any {
	if math.IsNaN(f) {
		return nil
	}
	return goavro.Union("double", f)
}

func (c *Codec) genericAppendLeadOutcome(dst []byte, o *LeadOutcome) ([]byte, error) {
	return c.encode(dst, kindOutcome, map[string]any{
		"event_id": o.EventID,
		"lead_id":  o.LeadID,
		"kind":     o.Kind,
		"time":     o.Time,
	})
}

func (c *Codec) genericAppendRefresh(dst []byte, r *LeadRefreshRequest) ([]byte, error) {
	ids := make([]any, len(r.LeadIDs))
	for i, id := range r.LeadIDs {
		ids[i] = id
	}
	return c.encode(dst, kindRefresh, map[string]any{
		"request_id": r.RequestID, "entity": r.Entity, "lead_ids": ids, "change_type": r.ChangeType,
		"reason": r.Reason, "commit_time": r.CommitTime, "requested_at": r.RequestedAt,
	})
}
