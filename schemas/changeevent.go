package schemas

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/linkedin/goavro/v2"
)

// Change types of a Salesforce change event (ChangeEventHeader.changeType).
const (
	ChangeCreate      = "CREATE"
	ChangeUpdate      = "UPDATE"
	ChangeDelete      = "DELETE"
	ChangeUndelete    = "UNDELETE"
	ChangeGapCreate   = "GAP_CREATE"
	ChangeGapUpdate   = "GAP_UPDATE"
	ChangeGapDelete   = "GAP_DELETE"
	ChangeGapUndelete = "GAP_UNDELETE"
	ChangeGapOverflow = "GAP_OVERFLOW"
)

// ChangeTypes lists every change type, in the order the documentation
// gives them.
var ChangeTypes = []string{ChangeCreate, ChangeUpdate, ChangeDelete, ChangeUndelete,
	ChangeGapCreate, ChangeGapUpdate, ChangeGapDelete, ChangeGapUndelete, ChangeGapOverflow}

// LeadEntity is the entityName of a Lead change event, and LeadKeyPrefix
// the first three characters of every Lead Id.
const (
	LeadEntity    = "Lead"
	LeadKeyPrefix = "00Q"
	// LeadWildcard stands for every Lead in recordIds: Salesforce sends it
	// when a change it cannot itemise (a field type conversion) hit them.
	LeadWildcard = LeadKeyPrefix + "*"
	// EmptyRecordID is the record id of a GAP_OVERFLOW event.
	EmptyRecordID = "000000000000000AAA"
)

// ChangeEventHeader is the header Salesforce puts on every change event;
// the CDC connector keeps it as a nested record.
type ChangeEventHeader struct {
	EntityName string
	// RecordIDs are the Ids of the records the change applies to: one,
	// several when Salesforce merged identical changes, LeadWildcard, or
	// EmptyRecordID for an overflow.
	RecordIDs  []string
	ChangeType string
	// ChangedFields lists the fields an UPDATE changed, nulled ones
	// included, and LastModifiedDate; empty for the other change types.
	ChangedFields  []string
	ChangeOrigin   string
	TransactionKey string
	// SequenceNumber orders the changes of one transaction.
	SequenceNumber int64
	// CommitTimestamp is when the transaction committed, milliseconds since
	// the Unix epoch.
	CommitTimestamp int64
	// CommitNumber is the transaction's system change number.
	CommitNumber int64
	// CommitUser is the Id of the user whose change it was.
	CommitUser string
}

// CommitTime is CommitTimestamp as a time.
func (h *ChangeEventHeader) CommitTime() time.Time { return time.UnixMilli(h.CommitTimestamp).UTC() }

// ChangeEvent is a Lead change event as the CDC connector writes it, for
// programs that play the connector: the demo, the load generator, tests.
type ChangeEvent struct {
	// ID is the record's Id (the connector writes recordIds[0]).
	ID       string
	ReplayID string
	Header   ChangeEventHeader
	// Fields holds the Lead fields the event carries, by API name: string,
	// bool, float64, time.Time (datetime and date fields); a nil value is
	// an explicit null. Fields of lead_change_event.avsc not named are
	// null. In JSON a time is written as milliseconds (datetime) or days
	// (date) since the epoch, as the connector's JSON converter does.
	Fields map[string]any
	// EventType is _EventType: an opaque token for change events.
	EventType string
}

// LeadRefreshRequest asks whatever re-reads Leads from Salesforce to do it
// (schema lead_refresh_request.avsc).
type LeadRefreshRequest struct {
	RequestID string
	Entity    string
	// LeadIDs are the Leads to re-read; empty means every Lead.
	LeadIDs     []string
	ChangeType  string
	Reason      string
	CommitTime  time.Time
	RequestedAt time.Time
}

// Reasons of a LeadRefreshRequest.
const (
	RefreshGap          = "gap"
	RefreshOverflow     = "overflow"
	RefreshWildcard     = "wildcard"
	RefreshPartialState = "partial_state"
)

// AppendRefresh appends r in the wire format to dst.
func (c *Codec) AppendRefresh(dst []byte, r *LeadRefreshRequest) ([]byte, error) {
	return c.appendRefreshFast(dst, r)
}

// DecodeRefresh decodes a wire-format LeadRefreshRequest into dst.
func (c *Codec) DecodeRefresh(ctx context.Context, b []byte, dst *LeadRefreshRequest) error {
	m, err := c.decode(ctx, b, kindRefresh)
	if err != nil {
		return err
	}
	*dst = LeadRefreshRequest{
		RequestID: str(m, "request_id"), Entity: str(m, "entity"), LeadIDs: stringList(m, "lead_ids"),
		ChangeType: str(m, "change_type"), Reason: str(m, "reason"),
		CommitTime: timestamp(m, "commit_time"), RequestedAt: timestamp(m, "requested_at"),
	}
	return nil
}

// AppendChangeEvent appends e in the wire format, with the LeadChangeEvent
// schema as writer, to dst: the record the connector's Avro converter
// writes. A field of e.Fields the schema does not have, or of another type,
// is an error.
func (c *Codec) AppendChangeEvent(dst []byte, e *ChangeEvent) ([]byte, error) {
	native, err := changeEventNative(e)
	if err != nil {
		return dst, err
	}
	return c.encode(dst, kindChangeEvent, native)
}

func headerNative(h *ChangeEventHeader) map[string]any {
	return map[string]any{
		"entityName": h.EntityName, "recordIds": anyStrings(h.RecordIDs), "changeType": h.ChangeType,
		"changedFields": anyStrings(h.ChangedFields), "changeOrigin": h.ChangeOrigin,
		"transactionKey": h.TransactionKey, "sequenceNumber": h.SequenceNumber,
		"commitTimestamp": h.CommitTimestamp, "commitUser": h.CommitUser, "commitNumber": h.CommitNumber,
	}
}

func anyStrings(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func changeEventNative(e *ChangeEvent) (map[string]any, error) {
	n := specs[kindChangeEvent].node
	m := map[string]any{"Id": e.ID, "ChangeEventHeader": headerNative(&e.Header)}
	if e.ReplayID != "" {
		m["ReplayId"] = goavro.Union("string", e.ReplayID)
	}
	m["_ObjectType"] = goavro.Union("string", "LeadChangeEvent")
	if e.EventType != "" {
		m["_EventType"] = goavro.Union("string", e.EventType)
	}
	for name, v := range e.Fields {
		f, ok := n.field(name)
		if !ok || f.typ.kind != "union" || len(f.typ.union) != 2 {
			return nil, fmt.Errorf("schemas: LeadChangeEvent has no optional field %q", name)
		}
		if v == nil {
			continue
		}
		b := f.typ.union[1]
		switch v.(type) {
		case string, bool, float64, time.Time:
		default:
			return nil, fmt.Errorf("schemas: LeadChangeEvent field %q: %T is not a string, bool, float64 or time", name, v)
		}
		m[name] = goavro.Union(b.goavroName(), v)
	}
	return m, nil
}

// ChangeEventJSON returns e as the connector's JSON converter writes it
// without schemas (value.converter.schemas.enable=false): one flat JSON
// object with every field of lead_change_event.avsc, null when not carried.
func ChangeEventJSON(e *ChangeEvent) ([]byte, error) {
	m := map[string]any{"Id": e.ID, "ChangeEventHeader": map[string]any{
		"entityName": e.Header.EntityName, "recordIds": nonNil(e.Header.RecordIDs), "changeType": e.Header.ChangeType,
		"changedFields": nonNil(e.Header.ChangedFields), "changeOrigin": e.Header.ChangeOrigin,
		"transactionKey": e.Header.TransactionKey, "sequenceNumber": e.Header.SequenceNumber,
		"commitTimestamp": e.Header.CommitTimestamp, "commitUser": e.Header.CommitUser, "commitNumber": e.Header.CommitNumber,
	}}
	m["ReplayId"] = nil
	if e.ReplayID != "" {
		m["ReplayId"] = e.ReplayID
	}
	m["_ObjectType"] = "LeadChangeEvent"
	m["_EventType"] = nil
	if e.EventType != "" {
		m["_EventType"] = e.EventType
	}
	n := specs[kindChangeEvent].node
	for _, f := range n.fields {
		if _, ok := m[f.name]; !ok {
			m[f.name] = nil
		}
	}
	for name, v := range e.Fields {
		f, ok := n.field(name)
		if !ok {
			return nil, fmt.Errorf("schemas: LeadChangeEvent has no field %q", name)
		}
		if t, ok := v.(time.Time); ok {
			if f.typ.kind == "union" && f.typ.union[1].logical == "date" {
				v = t.Unix() / 86400
			} else {
				v = t.UnixMilli()
			}
		}
		m[name] = v
	}
	return json.Marshal(m)
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}
