package schemas

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// Times on the wire have millisecond precision.
var (
	t0 = time.Date(2025, 9, 14, 10, 30, 0, 123_000_000, time.UTC)
	t1 = t0.Add(1500 * time.Millisecond)
)

func validLeadChanged() *LeadChanged {
	return &LeadChanged{
		EventID:       "evt-1",
		LeadID:        "00Q5e00000AbCdEfGH",
		CRD:           1234567,
		HasCRD:        true,
		HasEmail:      true,
		HasLinkedIn:   false,
		Stage:         "Contacted",
		ChangedFields: []string{"Status", "Email"},
		EventTime:     t0,
	}
}

func validSfdc() *LeadScoreSfdc {
	return &LeadScoreSfdc{
		ID:                   "00Q5e00000AbCdEfGH",
		Score:                0.5731,
		Percentile:           87,
		Deprioritize:         false,
		ModelVersion:         "v4.1.0",
		ScoredAt:             t1,
		Explanation:          "moved firms 2 times in 3 years; firm lost 14 reps in 12 months",
		ObjectType:           SfdcObjectType,
		EventType:            SfdcEventType,
		TraceEventID:         "evt-1",
		TraceSourcePartition: 3,
		TraceSourceOffset:    1 << 40,
	}
}

func validShadow() *LeadScoreShadow {
	return &LeadScoreShadow{
		EventID:   "evt-1",
		LeadID:    "00Q5e00000AbCdEfGH",
		CRD:       1234567,
		EventTime: t0,
		ScoredAt:  t1,
		Scores: []VersionScore{
			{Version: "v4.0.0", Role: "production", Score: 0.41, Percentile: 33, Decile: 4,
				Factors: []Factor{{Feature: "has_email", Value: 1, Contribution: 0.02, Phrase: "has an email"}}},
			{Version: "v4.1.0", Role: "shadow", Score: 0.5731, Percentile: 87, Decile: 9, UpgradeCandidate: true,
				Factors: []Factor{
					{Feature: "mobility_3yr", Value: 2, Contribution: 0.11, Phrase: "moved firms 2 times in 3 years"},
					{Feature: "firm_net_change_12mo", Value: -14, Contribution: 0.07, Phrase: "firm lost 14 reps"},
				}},
		},
		Freshness: Freshness{AdvisorFound: true, FirmFound: true, FirmStale: true,
			AdvisorAgeSeconds: 3600, FirmAgeSeconds: 40 * 86400},
		ProcessingLatencyUS: 1834,
	}
}

func TestRoundTrip(t *testing.T) {
	c, _, _, _ := newCodec(t)
	ctx := context.Background()

	maxExpl := validSfdc()
	maxExpl.Explanation = strings.Repeat("é", MaxExplanationLen) // 255 characters, 510 bytes
	emptyShadow := validShadow()
	emptyShadow.Scores = []VersionScore{}
	emptyFactors := validShadow()
	emptyFactors.Scores[0].Factors = []Factor{}
	noCRD := validLeadChanged()
	noCRD.HasCRD, noCRD.CRD = false, 0
	noFields := validLeadChanged()
	noFields.ChangedFields = []string{}
	extremes := validShadow()
	extremes.Scores[0].Factors[0].Value = math.MaxFloat64
	extremes.Scores[0].Factors[0].Contribution = -math.SmallestNonzeroFloat64

	type roundTrip func() (want, got any, err error)
	lead := func(in *LeadChanged) roundTrip {
		return func() (any, any, error) {
			b, err := c.AppendLeadChanged(nil, in)
			if err != nil {
				return nil, nil, err
			}
			var out LeadChanged
			return in, &out, c.DecodeLeadChanged(ctx, b, &out)
		}
	}
	sfdc := func(in *LeadScoreSfdc) roundTrip {
		return func() (any, any, error) {
			b, err := c.AppendSfdc(nil, in)
			if err != nil {
				return nil, nil, err
			}
			var out LeadScoreSfdc
			return in, &out, c.DecodeSfdc(ctx, b, &out)
		}
	}
	shadow := func(in *LeadScoreShadow) roundTrip {
		return func() (any, any, error) {
			b, err := c.AppendShadow(nil, in)
			if err != nil {
				return nil, nil, err
			}
			var out LeadScoreShadow
			return in, &out, c.DecodeShadow(ctx, b, &out)
		}
	}
	outcome := func(in *LeadOutcome) roundTrip {
		return func() (any, any, error) {
			b, err := c.AppendLeadOutcome(nil, in)
			if err != nil {
				return nil, nil, err
			}
			var out LeadOutcome
			return in, &out, c.DecodeLeadOutcome(ctx, b, &out)
		}
	}
	cases := []struct {
		name string
		run  roundTrip
	}{
		{"lead change survives the round trip", lead(validLeadChanged())},
		{"a missing CRD stays missing", lead(noCRD)},
		{"an empty changed_fields array survives", lead(noFields)},
		{"salesforce score survives", sfdc(validSfdc())},
		{"a 255-character multibyte explanation survives", sfdc(maxExpl)},
		{"shadow scores survive", shadow(validShadow())},
		{"an empty scores array survives", shadow(emptyShadow)},
		{"an empty factors array survives", shadow(emptyFactors)},
		{"extreme finite doubles survive", shadow(extremes)},
		{"contacted outcome survives", outcome(&LeadOutcome{EventID: "o-1", LeadID: "00Q5e00000AbCdEfGH", Kind: OutcomeContacted, Time: t0})},
		{"call scheduled outcome survives", outcome(&LeadOutcome{EventID: "o-2", LeadID: "00Q5e00000AbCdEfGH", Kind: OutcomeCallScheduled, Time: t1})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, got, err := tc.run()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(want, got) {
				t.Fatalf("round trip changed the record\n want %+v\n  got %+v", want, got)
			}
		})
	}
}

func TestAppendSfdcFillsConnectorConstants(t *testing.T) {
	c, _, _, _ := newCodec(t)
	in := validSfdc()
	in.ObjectType, in.EventType = "", ""
	b, err := c.AppendSfdc(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	var out LeadScoreSfdc
	if err := c.DecodeSfdc(context.Background(), b, &out); err != nil {
		t.Fatal(err)
	}
	if out.ObjectType != "Lead" || out.EventType != "updated" {
		t.Fatalf("_ObjectType %q _EventType %q, want Lead and updated", out.ObjectType, out.EventType)
	}
}

func TestAppendRefusesValuesTheSinkCannotHold(t *testing.T) {
	c, _, _, _ := newCodec(t)
	cases := []struct {
		name  string
		edit  func(r *LeadScoreSfdc)
		field string
	}{
		{"explanation over 255 characters", func(r *LeadScoreSfdc) { r.Explanation = strings.Repeat("a", 256) }, "V4_Score_Explanation__c"},
		{"explanation not UTF-8", func(r *LeadScoreSfdc) { r.Explanation = "\xff" }, "V4_Score_Explanation__c"},
		{"NaN score", func(r *LeadScoreSfdc) { r.Score = math.NaN() }, "V4_Score__c"},
		{"score above 1", func(r *LeadScoreSfdc) { r.Score = 1.5 }, "V4_Score__c"},
		{"percentile 0", func(r *LeadScoreSfdc) { r.Percentile = 0 }, "V4_Score_Percentile__c"},
		{"percentile 101", func(r *LeadScoreSfdc) { r.Percentile = 101 }, "V4_Score_Percentile__c"},
		{"empty model version", func(r *LeadScoreSfdc) { r.ModelVersion = "" }, "V4_Model_Version__c"},
		{"model version over 50 characters", func(r *LeadScoreSfdc) { r.ModelVersion = strings.Repeat("v", 51) }, "V4_Model_Version__c"},
		{"15-character lead id", func(r *LeadScoreSfdc) { r.ID = "00Q5e00000AbCdE" }, "Id"},
		{"zero scored-at", func(r *LeadScoreSfdc) { r.ScoredAt = time.Time{} }, "V4_Scored_At__c"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := validSfdc()
			tc.edit(r)
			buf := []byte("prefix")
			out, err := c.AppendSfdc(buf, r)
			if err == nil {
				t.Fatal("AppendSfdc accepted it")
			}
			if !strings.Contains(err.Error(), tc.field+":") {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
			if string(out) != "prefix" {
				t.Fatalf("dst changed on error: %q", out)
			}
		})
	}

	shadowCases := []struct {
		name  string
		edit  func(r *LeadScoreShadow)
		field string
	}{
		{"NaN score", func(r *LeadScoreShadow) { r.Scores[1].Score = math.NaN() }, "scores[1].score"},
		{"infinite factor value", func(r *LeadScoreShadow) { r.Scores[1].Factors[1].Value = math.Inf(1) }, "scores[1].factors[1].value"},
		{"NaN contribution", func(r *LeadScoreShadow) { r.Scores[0].Factors[0].Contribution = math.NaN() }, "scores[0].factors[0].contribution"},
		{"zero scored_at", func(r *LeadScoreShadow) { r.ScoredAt = time.Time{} }, "scored_at"},
	}
	for _, tc := range shadowCases {
		t.Run("shadow "+tc.name, func(t *testing.T) {
			r := validShadow()
			tc.edit(r)
			if _, err := c.AppendShadow(nil, r); err == nil || !strings.Contains(err.Error(), tc.field+":") {
				t.Fatalf("AppendShadow error %v, want one naming %s", err, tc.field)
			}
		})
	}

	if _, err := c.AppendLeadOutcome(nil, &LeadOutcome{Kind: "emailed", Time: t0}); err == nil || !strings.Contains(err.Error(), "kind:") {
		t.Fatalf("AppendLeadOutcome with an unknown kind: %v, want an error naming kind", err)
	}
}

func TestAppendReusesTheBuffer(t *testing.T) {
	c, ids, _, _ := newCodec(t)
	buf := make([]byte, 0, 1024)
	out, err := c.AppendSfdc(buf[:0], validSfdc())
	if err != nil {
		t.Fatal(err)
	}
	if &out[0] != &buf[:1][0] {
		t.Fatal("AppendSfdc did not append into the given buffer")
	}
	if out[0] != 0 || int(binary.BigEndian.Uint32(out[1:5])) != ids.Sfdc {
		t.Fatalf("header % x, want magic 0 and schema id %d", out[:5], ids.Sfdc)
	}
}

// oldLeadChanged is the first version of the lead change, before stage and
// changed_fields.
var oldLeadChanged = `{"type":"record","name":"LeadChanged","namespace":"com.leadscorer","fields":[
	{"name":"event_id","type":"string"},
	{"name":"lead_id","type":"string"},
	{"name":"crd","type":"long"},
	{"name":"has_email","type":"boolean"},
	{"name":"has_linkedin","type":"boolean"},
	{"name":"event_time","type":{"type":"long","logicalType":"timestamp-millis"}}]}`

// newerLeadChanged has a field this reader does not know and an int where
// the reader has nothing to promote from.
var newerLeadChanged = `{"type":"record","name":"LeadChanged","namespace":"com.leadscorer","fields":[
	{"name":"event_id","type":"string"},
	{"name":"source","type":{"type":"map","values":"string"}},
	{"name":"lead_id","type":"string"},
	{"name":"crd","type":["null","long"],"default":null},
	{"name":"has_email","type":"boolean"},
	{"name":"has_linkedin","type":"boolean"},
	{"name":"stage","type":"string"},
	{"name":"changed_fields","type":{"type":"array","items":"string"}},
	{"name":"event_time","type":{"type":"long","logicalType":"timestamp-millis"}},
	{"name":"priority","type":"int","default":0}]}`

// produce registers text under subject and encodes native with it, as
// another producer would.
func produce(t *testing.T, cl *sr.Client, subject, text string, native map[string]any) []byte {
	t.Helper()
	ss, err := cl.CreateSchema(context.Background(), subject, sr.Schema{Schema: text})
	if err != nil {
		t.Fatalf("register writer schema: %v", err)
	}
	codec, err := goavro.NewCodec(text)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := new(sr.ConfluentHeader).AppendEncode(nil, ss.ID, nil)
	b, err = codec.BinaryFromNative(b, native)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeWithOtherWriterVersions(t *testing.T) {
	c, _, _, cl := newCodec(t)
	subject := Subject(DefaultTopics().LeadChanged)
	cases := []struct {
		name   string
		schema string
		native map[string]any
		want   LeadChanged
	}{
		{
			name:   "an older writer without stage and changed_fields gets the defaults",
			schema: oldLeadChanged,
			native: map[string]any{"event_id": "e-old", "lead_id": "00Q5e00000AbCdEfGH", "crd": int64(42),
				"has_email": true, "has_linkedin": true, "event_time": t0},
			want: LeadChanged{EventID: "e-old", LeadID: "00Q5e00000AbCdEfGH", CRD: 42, HasCRD: true,
				HasEmail: true, HasLinkedIn: true, Stage: "", ChangedFields: []string{}, EventTime: t0},
		},
		{
			name:   "a newer writer's unknown fields are dropped",
			schema: newerLeadChanged,
			native: map[string]any{"event_id": "e-new", "source": map[string]any{"app": "cdc"},
				"lead_id": "00Q5e00000AbCdEfGH", "crd": goavro.Union("long", int64(7)), "has_email": false,
				"has_linkedin": true, "stage": "Call Scheduled", "changed_fields": []any{"Status"},
				"event_time": t1, "priority": int32(3)},
			want: LeadChanged{EventID: "e-new", LeadID: "00Q5e00000AbCdEfGH", CRD: 7, HasCRD: true,
				HasLinkedIn: true, Stage: "Call Scheduled", ChangedFields: []string{"Status"}, EventTime: t1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := produce(t, cl, subject, tc.schema, tc.native)
			var got LeadChanged
			if err := c.DecodeLeadChanged(context.Background(), b, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("decoded\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeErrorFaults(t *testing.T) {
	c, ids, _, cl := newCodec(t)
	good, err := c.AppendLeadChanged(nil, validLeadChanged())
	if err != nil {
		t.Fatal(err)
	}
	sfdc, err := c.AppendSfdc(nil, validSfdc())
	if err != nil {
		t.Fatal(err)
	}
	withID := func(id int, body []byte) []byte {
		b, _ := new(sr.ConfluentHeader).AppendEncode(nil, id, nil)
		return append(b, body...)
	}
	otherRecord := produce(t, cl, "elsewhere-value",
		`{"type":"record","name":"Invoice","fields":[{"name":"n","type":"long"}]}`, map[string]any{"n": int64(1)})
	// lead_id is a string in the writer and an int here: readable by no
	// LeadChanged reader.
	incompatible := produce(t, cl, "elsewhere2-value",
		`{"type":"record","name":"LeadChanged","fields":[{"name":"event_id","type":"string"},{"name":"lead_id","type":"int"}]}`,
		map[string]any{"event_id": "e", "lead_id": int32(1)})

	cases := []struct {
		name  string
		b     []byte
		class Fault
	}{
		{"an empty record is a decode error", nil, FaultDecode},
		{"a wrong magic byte is a decode error", append([]byte{1}, good[1:]...), FaultDecode},
		{"a header cut short is a decode error", good[:4], FaultDecode},
		{"a body cut short is a decode error", good[:len(good)-3], FaultDecode},
		{"trailing bytes are a decode error", append(append([]byte{}, good...), 0, 0), FaultDecode},
		{"a string length past the end is a decode error", withID(ids.LeadChanged, []byte{0x7e, 'a'}), FaultDecode},
		{"an unknown schema id is a schema error", withID(999_999, good[5:]), FaultSchema},
		{"another record type's schema is a schema error", sfdc, FaultSchema},
		{"an unrelated registered schema is a schema error", otherRecord, FaultSchema},
		{"an incompatible LeadChanged version is a schema error", incompatible, FaultSchema},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var dst LeadChanged
			wantFault(t, c.DecodeLeadChanged(context.Background(), tc.b, &dst), tc.class)
		})
	}
}

func TestDecodeRandomBytesNeverPanicsAndFailsAsDecode(t *testing.T) {
	c, ids, _, _ := newCodec(t)
	rng := rand.New(rand.NewPCG(1, 2))
	failures := 0
	for i := range 2000 {
		body := make([]byte, 1+rng.IntN(64))
		for j := range body {
			body[j] = byte(rng.Uint32())
		}
		b, _ := new(sr.ConfluentHeader).AppendEncode(nil, ids.LeadChanged, nil)
		b = append(b, body...)
		var dst LeadChanged
		err := c.DecodeLeadChanged(context.Background(), b, &dst)
		if err == nil {
			continue
		}
		failures++
		re, ok := IsRecordError(err)
		if !ok || re.Fault != FaultDecode {
			t.Fatalf("random body %d (% x): %v, want a decode RecordError", i, body, err)
		}
	}
	if failures < 1900 {
		t.Fatalf("only %d of 2000 random bodies failed to decode", failures)
	}
}

// goavro reserves an array's whole item count before reading any item; a
// five-byte count would ask for gigabytes. The guard must refuse it first.
func TestDecodeHugeCountsDoNotAllocate(t *testing.T) {
	c, ids, _, _ := newCodec(t)
	e := validLeadChanged()
	e.ChangedFields = nil
	b, err := c.AppendLeadChanged(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	// The body ends with changed_fields (an empty array: one 0 byte) and
	// event_time (a varint). Replace the array with a count of 2^31-2.
	body := b[5:]
	tsLen := len(body) - bytesBeforeTimestamp(t, body)
	prefix := body[:len(body)-tsLen-1]
	ts := body[len(body)-tsLen:]
	hostileCount := binaryLong(math.MaxInt32 - 1)
	hostile, _ := new(sr.ConfluentHeader).AppendEncode(nil, ids.LeadChanged, nil)
	hostile = append(hostile, prefix...)
	hostile = append(hostile, hostileCount...)
	hostile = append(hostile, 2, 'x') // one item, then nothing
	hostile = append(hostile, ts...)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var dst LeadChanged
	err = c.DecodeLeadChanged(context.Background(), hostile, &dst)
	runtime.ReadMemStats(&after)
	wantFault(t, err, FaultDecode)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 1<<20 {
		t.Fatalf("decoding a hostile count allocated %d bytes", grown)
	}
}

// bytesBeforeTimestamp returns the offset of the trailing event_time varint
// in an encoded LeadChanged body.
func bytesBeforeTimestamp(t *testing.T, body []byte) int {
	t.Helper()
	end := len(body) - 1 // last byte of the varint has no continuation bit
	i := end - 1
	for i >= 0 && body[i]&0x80 != 0 {
		i--
	}
	return i + 1
}

func binaryLong(v int64) []byte {
	u := uint64((v << 1) ^ (v >> 63))
	var out []byte
	for u >= 0x80 {
		out = append(out, byte(u)|0x80)
		u >>= 7
	}
	return append(out, byte(u))
}

func TestUnknownSchemaIDIsFetchedOnce(t *testing.T) {
	c, _, reg, cl := newCodec(t)
	older := produce(t, cl, Subject(DefaultTopics().LeadChanged), oldLeadChanged, map[string]any{
		"event_id": "e", "lead_id": "00Q5e00000AbCdEfGH", "crd": int64(1),
		"has_email": true, "has_linkedin": true, "event_time": t0})
	missing, _ := new(sr.ConfluentHeader).AppendEncode(nil, 424242, nil)
	missing = append(missing, older[5:]...)
	var lookups atomic.Int32
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
			lookups.Add(1)
		}
		return false
	})
	for range 3 {
		var dst LeadChanged
		if err := c.DecodeLeadChanged(context.Background(), older, &dst); err != nil {
			t.Fatal(err)
		}
		wantFault(t, c.DecodeLeadChanged(context.Background(), missing, &dst), FaultSchema)
	}
	if n := lookups.Load(); n != 2 {
		t.Fatalf("%d schema lookups for 2 unknown ids decoded 3 times each, want 2", n)
	}
}

func TestRegistryFailuresAreNotRecordErrors(t *testing.T) {
	c, ids, reg, cl := newCodec(t)
	older := produce(t, cl, Subject(DefaultTopics().LeadChanged), oldLeadChanged, map[string]any{
		"event_id": "e", "lead_id": "00Q5e00000AbCdEfGH", "crd": int64(1),
		"has_email": true, "has_linkedin": true, "event_time": t0})

	// A 5xx is the batch's problem, and is not remembered.
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	var dst LeadChanged
	err := c.DecodeLeadChanged(context.Background(), older, &dst)
	if err == nil {
		t.Fatal("decode with a failing registry succeeded")
	}
	if _, ok := IsRecordError(err); ok {
		t.Fatalf("a 503 from the registry gave a RecordError: %v", err)
	}
	reg.ClearInterceptors()
	if err := c.DecodeLeadChanged(context.Background(), older, &dst); err != nil {
		t.Fatalf("after the registry recovered: %v", err)
	}

	// An unreachable registry likewise.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	down, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	err = NewCodec(down, ids).DecodeLeadChanged(context.Background(), older, &dst)
	if err == nil {
		t.Fatal("decode with an unreachable registry succeeded")
	}
	if _, ok := IsRecordError(err); ok {
		t.Fatalf("an unreachable registry gave a RecordError: %v", err)
	}

	// Our own ids need no registry at all.
	good, err := c.AppendLeadChanged(nil, validLeadChanged())
	if err != nil {
		t.Fatal(err)
	}
	if err := NewCodec(down, ids).DecodeLeadChanged(context.Background(), good, &dst); err != nil {
		t.Fatalf("decoding our own schema id needed the registry: %v", err)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(e *LeadChanged)
		field string // "" when valid
	}{
		{"a complete event is valid", func(e *LeadChanged) {}, ""},
		{"a missing CRD is refused", func(e *LeadChanged) { e.HasCRD, e.CRD = false, 0 }, "crd"},
		{"a zero CRD is refused", func(e *LeadChanged) { e.CRD = 0 }, "crd"},
		{"a negative CRD is refused", func(e *LeadChanged) { e.CRD = -5 }, "crd"},
		{"a 15-character lead id is refused", func(e *LeadChanged) { e.LeadID = "00Q5e00000AbCdE" }, "lead_id"},
		{"a 19-character lead id is refused", func(e *LeadChanged) { e.LeadID = "00Q5e00000AbCdEfGHI" }, "lead_id"},
		{"a lead id with punctuation is refused", func(e *LeadChanged) { e.LeadID = "00Q5e00000AbCdEf-H" }, "lead_id"},
		{"an empty lead id is refused", func(e *LeadChanged) { e.LeadID = "" }, "lead_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := validLeadChanged()
			tc.edit(e)
			err := e.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			wantFault(t, err, FaultValidation)
			if !strings.Contains(err.Error(), tc.field+":") {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
		})
	}
}

func TestConcurrentDecodesOfAnUnknownID(t *testing.T) {
	c, _, _, cl := newCodec(t)
	older := produce(t, cl, Subject(DefaultTopics().LeadChanged), oldLeadChanged, map[string]any{
		"event_id": "e", "lead_id": "00Q5e00000AbCdEfGH", "crd": int64(9),
		"has_email": true, "has_linkedin": false, "event_time": t0})
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			var dst LeadChanged
			err := c.DecodeLeadChanged(context.Background(), older, &dst)
			if err == nil && dst.CRD != 9 {
				err = &RecordError{Fault: "test", Err: context.Canceled}
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
