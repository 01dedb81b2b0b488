package schemas

import (
	"errors"
	"fmt"
	"time"
)

// LeadChanged is a lead-change event read from the input topic
// (schema lead_changed.avsc).
type LeadChanged struct {
	EventID string
	// LeadID is the Salesforce Lead Id, 18 alphanumeric characters.
	LeadID string
	// CRD is the advisor's CRD number; meaningful only when HasCRD is true
	// (the Avro field is ["null","long"]).
	CRD    int64
	HasCRD bool

	HasEmail    bool
	HasLinkedIn bool
	// Stage is the Lead's stage after the change; "" when not sent.
	Stage string
	// ChangedFields lists the API names of the Lead fields the change
	// touched.
	ChangedFields []string
	// EventTime is when the change happened, millisecond precision, UTC.
	EventTime time.Time
}

// LeadIDLen is the length of a Salesforce Lead Id in its case-safe form.
const LeadIDLen = 18

// Validate checks the values a lead change must have to be scored: an
// 18-character alphanumeric Lead Id and a CRD greater than zero. The error
// is a *RecordError of class FaultValidation naming the field: the event
// belongs in the dead-letter topic.
func (e *LeadChanged) Validate() error {
	if err := checkLeadID(e.LeadID); err != nil {
		return &RecordError{Fault: FaultValidation, Err: fmt.Errorf("lead_id: %w", err)}
	}
	if !e.HasCRD {
		return &RecordError{Fault: FaultValidation, Err: errors.New("crd: missing")}
	}
	if e.CRD <= 0 {
		return &RecordError{Fault: FaultValidation, Err: fmt.Errorf("crd: %d is not positive", e.CRD)}
	}
	return nil
}

func checkLeadID(id string) error {
	if len(id) != LeadIDLen {
		return fmt.Errorf("%q has %d characters, want %d", id, len(id), LeadIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return fmt.Errorf("%q has a non-alphanumeric character at %d", id, i)
		}
	}
	return nil
}

// Values of LeadScoreSfdc.ObjectType and EventType the Salesforce SObject
// sink connector needs; the encoder writes them when the fields are empty.
const (
	SfdcObjectType = "Lead"
	SfdcEventType  = "updated"
)

// MaxExplanationLen is the length in characters of the Lead's
// V4_Score_Explanation__c text field; longer explanations are refused.
const MaxExplanationLen = 255

// MaxModelVersionLen is the length of the Lead's V4_Model_Version__c text
// field.
const MaxModelVersionLen = 50

// LeadScoreSfdc is the production score written to the Lead by the
// Salesforce sink (schema lead_score_sfdc.avsc).
type LeadScoreSfdc struct {
	// ID is the Lead Id (Avro field Id).
	ID string
	// Score is the raw model score in 0..1 (V4_Score__c); never NaN.
	Score float64
	// Percentile is 1..100 (V4_Score_Percentile__c).
	Percentile int
	// Deprioritize is V4_Deprioritize__c.
	Deprioritize bool
	// ModelVersion is V4_Model_Version__c, at most 50 characters.
	ModelVersion string
	// ScoredAt is V4_Scored_At__c, millisecond precision.
	ScoredAt time.Time
	// Explanation is V4_Score_Explanation__c, at most 255 characters.
	Explanation string
	// ObjectType and EventType are _ObjectType and _EventType; empty means
	// SfdcObjectType and SfdcEventType.
	ObjectType string
	EventType  string
	// Trace fields, ignored by the connector: where the scored event came
	// from.
	TraceEventID         string
	TraceSourcePartition int32
	TraceSourceOffset    int64
}

// LeadScoreShadow carries every model version's score of one lead change
// (schema lead_score_shadow.avsc).
type LeadScoreShadow struct {
	EventID   string
	LeadID    string
	CRD       int64
	EventTime time.Time
	ScoredAt  time.Time
	Scores    []VersionScore
	Freshness Freshness
	// ProcessingLatencyUS is microseconds from reading the event to
	// producing the scores.
	ProcessingLatencyUS int64
	// ChangeType is the Salesforce change event's changeType; empty for a
	// LeadChanged event.
	ChangeType string
	// PartialState: the scorer knew only what updates carried of the Lead.
	PartialState bool
	// Gap: scored from the stored state after a gap event.
	Gap bool
}

// VersionScore is one model version's score of a lead.
type VersionScore struct {
	Version          string
	Role             string
	Score            float64
	Percentile       int
	Decile           int
	Deprioritize     bool
	UpgradeCandidate bool
	Factors          []Factor
}

// Factor is one feature's contribution to a score.
type Factor struct {
	Feature string
	Value   float64 // NaN when the value is missing; encoded as null
	// Contribution is in log-odds (margin) units.
	Contribution float64
	Phrase       string
}

// Freshness tells whether the enrichment data was found and how old it was.
type Freshness struct {
	AdvisorFound      bool
	FirmFound         bool
	AdvisorStale      bool
	FirmStale         bool
	AdvisorAgeSeconds int64
	FirmAgeSeconds    int64
}

// Outcome kinds of LeadOutcome.Kind.
const (
	OutcomeContacted     = "contacted"
	OutcomeCallScheduled = "call_scheduled"
)

// LeadOutcome is something that happened to a Lead after scoring
// (schema lead_outcome.avsc).
type LeadOutcome struct {
	EventID string
	LeadID  string
	// Kind is OutcomeContacted or OutcomeCallScheduled.
	Kind string
	Time time.Time
}
