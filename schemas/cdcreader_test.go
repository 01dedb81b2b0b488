package schemas

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// The Lead fields the scorer reads with its default mapping.
var testCDCFields = []string{"FA_CRD__c", "Email", "LinkedIn_Profile__c", "Status", "IsConverted", "Initial_Call_Scheduled_Date__c"}

// cdcCodec registers LeadChangeEvent as the connector would and returns a
// codec and registry client.
func cdcCodec(t testing.TB) (*Codec, *sr.Client) {
	t.Helper()
	_, cl := newRegistry(t)
	ids, err := Register(context.Background(), cl, CDCTopics())
	if err != nil {
		t.Fatal(err)
	}
	return NewCodec(cl, ids), cl
}

// nativeFromConnect turns a JSON value of the connector's JSON converter
// into goavro's native form for writer schema n (unions wrapped, times as
// time.Time), so the same record can be written in Avro.
func nativeFromConnect(t *testing.T, n *node, v any) any {
	t.Helper()
	switch n.kind {
	case "union":
		if v == nil {
			return nil
		}
		for _, b := range n.union {
			if b.kind != "null" {
				return goavro.Union(b.goavroName(), nativeFromConnect(t, b, v))
			}
		}
	case "record":
		m := v.(map[string]any)
		out := map[string]any{}
		for _, f := range n.fields {
			out[f.name] = nativeFromConnect(t, f.typ, m[f.name])
		}
		return out
	case "array":
		var out []any
		for _, x := range v.([]any) {
			out = append(out, nativeFromConnect(t, n.items, x))
		}
		return out
	case "long":
		if n.logical == "timestamp-millis" {
			return time.UnixMilli(int64(v.(float64))).UTC()
		}
		return int64(v.(float64))
	case "int":
		if n.logical == "date" {
			return time.Unix(int64(v.(float64))*86400, 0).UTC()
		}
		return int32(v.(float64))
	}
	return v
}

// A record built from the public example of the connector's output (the
// shape observed for a ContactChangeEvent, with the Lead's fields: Id,
// ReplayId as a string, the nested header, FirstName and LastName flattened
// and Name null, an Address struct, Connect timestamps, an opaque
// _EventType), decoded from each encoding a user would pick: JSON with the
// converter's schema envelope, plain JSON, and Avro with the schema the
// connector's Avro converter registers, which has fields ours lacks and
// lacks one of ours.
func TestCDCReaderReadsTheConnectorsRecordShape(t *testing.T) {
	ctx := context.Background()
	codec, cl := cdcCodec(t)
	r, err := NewCDCReader(codec, testCDCFields)
	if err != nil {
		t.Fatal(err)
	}
	envelope, err := os.ReadFile("testdata/cdc/connect-json-envelope.json")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := os.ReadFile("testdata/cdc/connect-json-plain.json")
	if err != nil {
		t.Fatal(err)
	}
	avsc, err := os.ReadFile("testdata/cdc/connector-writer.avsc")
	if err != nil {
		t.Fatal(err)
	}
	s, err := cl.CreateSchema(ctx, "salesforce.leadchangeevent-value", sr.Schema{Type: sr.TypeAvro, Schema: string(avsc)})
	if err != nil {
		t.Fatal(err)
	}
	w, err := parseSchema(string(avsc))
	if err != nil {
		t.Fatal(err)
	}
	var payload any
	if err := json.Unmarshal(plain, &payload); err != nil {
		t.Fatal(err)
	}
	gc, err := goavro.NewCodec(string(avsc))
	if err != nil {
		t.Fatal(err)
	}
	avro, _ := header.AppendEncode(nil, s.ID, nil)
	if avro, err = gc.BinaryFromNative(avro, nativeFromConnect(t, w, payload)); err != nil {
		t.Fatal(err)
	}

	want := LeadChange{ID: "00Q7R00001OtXTRUA3", ReplayID: "23412087",
		Header: ChangeEventHeader{EntityName: "Lead", RecordIDs: []string{"00Q7R00001OtXTRUA3"}, ChangeType: "CREATE",
			ChangedFields: []string{}, ChangeOrigin: "com/salesforce/api/rest/49.0;client=sfdx toolbelt",
			TransactionKey: "0004ba37-9e28-a6bc-0d1c-3f5a2e6b0f8e", SequenceNumber: 1, CommitTimestamp: 1764586800000,
			CommitUser: "0057R00000AbCdEQAV", CommitNumber: 10767459616286},
		Values: []FieldValue{{Kind: ValueString, Str: "5093442"}, {Kind: ValueString, Str: "jane.doe@example.com"}, {},
			{Kind: ValueString, Str: "Open - Not Contacted"}, {Kind: ValueBool}, {}},
		Missing: 1 << 2, // the org has no LinkedIn_Profile__c
	}
	for _, tc := range []struct {
		name string
		b    []byte
		json bool
	}{{"JSON in the converter's schema envelope", envelope, true}, {"plain JSON", plain, true}, {"Avro with the connector's writer schema", avro, false}} {
		t.Run(tc.name, func(t *testing.T) {
			var got LeadChange
			if err := r.Decode(ctx, tc.b, &got); err != nil {
				t.Fatal(err)
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
			want.JSON = tc.json
			if got.ID != want.ID || got.ReplayID != want.ReplayID || !sameHeader(got.Header, want.Header) ||
				!slices.Equal(got.Values, want.Values) || got.Missing != want.Missing || got.JSON != want.JSON {
				t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func sameHeader(a, b ChangeEventHeader) bool {
	return slices.Equal(a.RecordIDs, b.RecordIDs) && slices.Equal(a.ChangedFields, b.ChangedFields) &&
		a.EntityName == b.EntityName && a.ChangeType == b.ChangeType && a.ChangeOrigin == b.ChangeOrigin &&
		a.TransactionKey == b.TransactionKey && a.SequenceNumber == b.SequenceNumber &&
		a.CommitTimestamp == b.CommitTimestamp && a.CommitUser == b.CommitUser && a.CommitNumber == b.CommitNumber
}

func testChangeEvent() *ChangeEvent {
	return &ChangeEvent{ID: "00Q5e000000000001A", ReplayID: "123", EventType: "R1-FSrKj5SMSfaXy7QNdEw",
		Header: ChangeEventHeader{EntityName: "Lead", RecordIDs: []string{"00Q5e000000000001A", "00Q5e000000000002A"},
			ChangeType: "UPDATE", ChangedFields: []string{"Email", "Status", "LastModifiedDate"}, ChangeOrigin: "com/salesforce/api/rest/60.0",
			TransactionKey: "tk-1", SequenceNumber: 2, CommitTimestamp: 1764586800000, CommitUser: "0057R00000AbCdEQAV", CommitNumber: 9},
		Fields: map[string]any{"Email": "a@example.com", "Status": "Contacted", "FA_CRD__c": nil, "IsConverted": false,
			"LastModifiedDate": time.UnixMilli(1764586800000), "Initial_Call_Scheduled_Date__c": time.Date(2025, 12, 2, 0, 0, 0, 0, time.UTC),
			"LastName": "Doe", "Company": "Acme"}}
}

// Our own writer schema and the connector's JSON give the same change.
func TestCDCReaderAvroAndJSONAgree(t *testing.T) {
	ctx := context.Background()
	codec, _ := cdcCodec(t)
	r, err := NewCDCReader(codec, testCDCFields)
	if err != nil {
		t.Fatal(err)
	}
	e := testChangeEvent()
	a, err := codec.AppendChangeEvent(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	j, err := ChangeEventJSON(e)
	if err != nil {
		t.Fatal(err)
	}
	var fromAvro, fromJSON LeadChange
	if err := r.Decode(ctx, a, &fromAvro); err != nil {
		t.Fatal(err)
	}
	if err := r.Decode(ctx, j, &fromJSON); err != nil {
		t.Fatal(err)
	}
	if !sameHeader(fromAvro.Header, e.Header) || !sameHeader(fromJSON.Header, e.Header) ||
		!slices.Equal(fromAvro.Values, fromJSON.Values) || fromAvro.Missing != 0 || fromJSON.Missing != 0 {
		t.Fatalf("avro %+v\njson %+v", fromAvro, fromJSON)
	}
	want := []FieldValue{{}, {Kind: ValueString, Str: "a@example.com"}, {}, {Kind: ValueString, Str: "Contacted"}, {Kind: ValueBool},
		{Kind: ValueInt, Int: 20424}}
	if !slices.Equal(fromAvro.Values, want) {
		t.Fatalf("values %+v, want %+v", fromAvro.Values, want)
	}
}

// What is not a Lead change event of the connector's shape is refused with
// the fault its dead letter is classed by.
func TestCDCReaderRefusals(t *testing.T) {
	ctx := context.Background()
	codec, cl := cdcCodec(t)
	r, err := NewCDCReader(codec, testCDCFields)
	if err != nil {
		t.Fatal(err)
	}
	good, err := codec.AppendChangeEvent(nil, testChangeEvent())
	if err != nil {
		t.Fatal(err)
	}
	noHeader, err := cl.CreateSchema(ctx, "x-value", sr.Schema{Type: sr.TypeAvro,
		Schema: `{"type":"record","name":"LeadChangeEvent","fields":[{"name":"Id","type":"string"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	withID := func(id int, body []byte) []byte {
		b, _ := header.AppendEncode(nil, id, nil)
		return append(b, body...)
	}
	event := func(edit func(*ChangeEvent)) []byte {
		e := testChangeEvent()
		edit(e)
		b, err := ChangeEventJSON(e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name  string
		b     []byte
		fault Fault
	}{
		{"neither Avro nor JSON", []byte("garbage"), FaultDecode},
		{"malformed JSON", []byte(`{"Id":`), FaultDecode},
		{"Avro cut short", good[:len(good)-4], FaultDecode},
		{"trailing bytes", append(append([]byte{}, good...), 0), FaultDecode},
		{"a hostile array count", withID(codecIDs(codec).ChangeEvents, []byte{0x24, '0', '0', 'Q', 0, 0, 0x8a, 0x80, 0x80, 0x80, 0x08}), FaultDecode},
		{"JSON without ChangeEventHeader", []byte(`{"Id":"00Q5e000000000001A"}`), FaultSchema},
		{"JSON header without changeType", []byte(`{"ChangeEventHeader":{"recordIds":["00Q5e000000000001A"]}}`), FaultSchema},
		{"an Avro schema without ChangeEventHeader", withID(noHeader.ID, []byte{0x24}), FaultSchema},
		{"a schema id the registry does not know", withID(99999, good[5:]), FaultSchema},
		{"another entity", event(func(e *ChangeEvent) { e.Header.EntityName = "Contact" }), FaultValidation},
		{"an unknown changeType", event(func(e *ChangeEvent) { e.Header.ChangeType = "MERGE" }), FaultValidation},
		{"a record id that is not a Lead's", event(func(e *ChangeEvent) { e.Header.RecordIDs = []string{"0035e000000000001A"} }), FaultValidation},
		{"a malformed record id", event(func(e *ChangeEvent) { e.Header.RecordIDs = []string{"00Q-bad"} }), FaultValidation},
		{"no record id", event(func(e *ChangeEvent) { e.Header.RecordIDs = nil }), FaultValidation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got LeadChange
			err := r.Decode(ctx, tc.b, &got)
			if err == nil {
				err = got.Validate()
			}
			wantFault(t, err, tc.fault)
		})
	}
}

func codecIDs(c *Codec) IDs {
	return IDs{ChangeEvents: c.ids[kindChangeEvent]}
}

func BenchmarkDecodeChangeEvent(b *testing.B) {
	codec, _ := cdcCodec(b)
	r, err := NewCDCReader(codec, testCDCFields)
	if err != nil {
		b.Fatal(err)
	}
	e := testChangeEvent()
	e.Header.RecordIDs = e.Header.RecordIDs[:1]
	rec, err := codec.AppendChangeEvent(nil, e)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var dst LeadChange
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if err := r.Decode(ctx, rec, &dst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeChangeEventGoavro is what goavro alone costs to decode
// the same record into a map, without even resolving it: the comparison
// for the compiled plan above.
func BenchmarkDecodeChangeEventGoavro(b *testing.B) {
	codec, _ := cdcCodec(b)
	e := testChangeEvent()
	e.Header.RecordIDs = e.Header.RecordIDs[:1]
	rec, err := codec.AppendChangeEvent(nil, e)
	if err != nil {
		b.Fatal(err)
	}
	gc := specs[kindChangeEvent].codec
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if _, _, err := gc.NativeFromBinary(rec[5:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeChangeEventJSON(b *testing.B) {
	codec, _ := cdcCodec(b)
	r, err := NewCDCReader(codec, testCDCFields)
	if err != nil {
		b.Fatal(err)
	}
	e := testChangeEvent()
	e.Header.RecordIDs = e.Header.RecordIDs[:1]
	rec, err := ChangeEventJSON(e)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var dst LeadChange
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if err := r.Decode(ctx, rec, &dst); err != nil {
			b.Fatal(err)
		}
	}
}
