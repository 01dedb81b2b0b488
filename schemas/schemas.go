// Package schemas owns the Avro schemas of every topic the scorer reads or
// writes, the Confluent wire format around them (magic byte 0, 4-byte
// big-endian schema id, Avro binary body) and their registration in a
// Schema Registry under the subject "<topic>-value".
//
// Register checks, before it registers a schema, that the schema can read
// data written with the latest version registered under the subject
// (BACKWARD compatibility), whatever the registry itself enforces. A Codec
// encodes with the ids Register returned and decodes with the writer's
// schema, fetched from the registry once per id, resolved by field name into
// the reader's shape: producers on an older or newer compatible version keep
// working.
//
// Failures belong either to one record or to the batch. A *RecordError
// (fault decode, schema or validation) means the record itself is bad and
// belongs in the dead-letter topic; any other error (registry unreachable,
// 5xx, context cancelled) means the batch must be retried.
package schemas

import (
	_ "embed"
	"errors"
	"fmt"

	"github.com/linkedin/goavro/v2"
)

// The embedded schemas, as registered.
var (
	//go:embed lead_changed.avsc
	LeadChangedSchema string
	//go:embed lead_score_sfdc.avsc
	LeadScoreSfdcSchema string
	//go:embed lead_score_shadow.avsc
	LeadScoreShadowSchema string
	//go:embed lead_outcome.avsc
	LeadOutcomeSchema string
	//go:embed lead_change_event.avsc
	LeadChangeEventSchema string
	//go:embed lead_refresh_request.avsc
	LeadRefreshRequestSchema string
)

// Fault says what is wrong with a record the codec refused. The
// dead-letter classes of package producer are named after these.
type Fault string

const (
	// FaultDecode: the bytes are not a well-formed record (wrong magic
	// byte, truncated or malformed Avro or JSON, oversized counts).
	FaultDecode Fault = "decode"
	// FaultSchema: the schema id is unknown to the registry, or names a
	// schema that is not a compatible version of the expected record.
	FaultSchema Fault = "schema"
	// FaultValidation: the record decoded but a value is unusable.
	FaultValidation Fault = "validation"
)

// RecordError is a failure that belongs to one record, which belongs in the
// dead-letter topic; Fault says why. Errors of any other type are not about
// the record: the caller retries.
type RecordError struct {
	Fault Fault
	Err   error
}

func (e *RecordError) Error() string { return "schemas: " + string(e.Fault) + ": " + e.Err.Error() }
func (e *RecordError) Unwrap() error { return e.Err }

// IsRecordError reports whether err is or wraps a *RecordError, and returns
// it.
func IsRecordError(err error) (*RecordError, bool) {
	var re *RecordError
	ok := errors.As(err, &re)
	return re, ok
}

// kind is one of the record types of this package.
type kind int

const (
	kindLeadChanged kind = iota
	kindSfdc
	kindShadow
	kindOutcome
	kindChangeEvent
	kindRefresh
	numKinds
)

// spec is one embedded schema, parsed.
type spec struct {
	record string // short record name
	text   string
	node   *node
	codec  *goavro.Codec
}

var specs [numKinds]*spec

func init() {
	for k, text := range map[kind]string{
		kindLeadChanged: LeadChangedSchema,
		kindSfdc:        LeadScoreSfdcSchema,
		kindShadow:      LeadScoreShadowSchema,
		kindOutcome:     LeadOutcomeSchema,
		kindChangeEvent: LeadChangeEventSchema,
		kindRefresh:     LeadRefreshRequestSchema,
	} {
		s, err := newSpec(text)
		if err != nil {
			panic(fmt.Sprintf("schemas: embedded schema %d: %v", k, err))
		}
		specs[k] = s
	}
}

func newSpec(text string) (*spec, error) {
	n, err := parseSchema(text)
	if err != nil {
		return nil, err
	}
	if n.kind != "record" {
		return nil, fmt.Errorf("schema is a %s, not a record", n.typeName())
	}
	c, err := goavro.NewCodec(text)
	if err != nil {
		return nil, fmt.Errorf("goavro: %w", err)
	}
	return &spec{record: shortName(n.name), text: text, node: n, codec: c}, nil
}

// Topics names the topic of each record type. The value schema of a topic
// is registered under "<topic>-value". An empty topic is not registered and
// its records cannot be encoded.
type Topics struct {
	// LeadChanged is the input topic of lead changes (LeadChanged).
	LeadChanged string
	// Sfdc is the topic the Salesforce sink reads (LeadScoreSfdc).
	Sfdc string
	// Shadow is the topic of all versions' scores (LeadScoreShadow).
	Shadow string
	// Outcomes is the topic of lead outcomes (LeadOutcome).
	Outcomes string
	// ChangeEvents is the input topic of Salesforce change events. The CDC
	// connector registers its own schema there, so the scorer leaves it
	// empty; only programs that play the connector (demo, load generator,
	// tests) register LeadChangeEvent under it.
	ChangeEvents string
	// Refresh is the topic of refresh requests (LeadRefreshRequest).
	Refresh string
}

// DefaultTopics returns the default topic names.
func DefaultTopics() Topics {
	return Topics{
		LeadChanged: "leads.changed.v1",
		Sfdc:        "leads.scored.sfdc.v1",
		Shadow:      "leads.scored.shadow.v1",
		Outcomes:    "leads.outcomes.v1",
		Refresh:     "leads.refresh.v1",
	}
}

// CDCTopics returns the default topics of a scorer reading Salesforce
// change events, with LeadChangeEvent registered on the input topic as the
// connector would: what a program playing the connector registers.
func CDCTopics() Topics {
	t := DefaultTopics()
	t.ChangeEvents, t.LeadChanged = t.LeadChanged, ""
	return t
}

func (t Topics) byKind() [numKinds]string {
	return [numKinds]string{t.LeadChanged, t.Sfdc, t.Shadow, t.Outcomes, t.ChangeEvents, t.Refresh}
}

// Subject is the registry subject of a topic's value schema.
func Subject(topic string) string { return topic + "-value" }

// IDs holds the registry's schema id of each record type; 0 when its topic
// was not registered.
type IDs struct {
	LeadChanged int
	Sfdc        int
	Shadow      int
	Outcomes    int
	// ChangeEvents is the id of LeadChangeEvent, when registered.
	ChangeEvents int
	Refresh      int
}

func (ids IDs) byKind() [numKinds]int {
	return [numKinds]int{ids.LeadChanged, ids.Sfdc, ids.Shadow, ids.Outcomes, ids.ChangeEvents, ids.Refresh}
}
