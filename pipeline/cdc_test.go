package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/featurestore"
	"github.com/leadscorer/leadscorer/internal/testenv"
	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// sinkUser is the sink connector's integration user in these tests.
const sinkUser = "005SINKUSER000001A"

// cdcOptions are the documented defaults of the Salesforce settings.
func cdcOptions() *CDCOptions {
	return &CDCOptions{CRDField: "FA_CRD__c", EmailField: "Email", LinkedInField: "LinkedIn_Profile__c", StatusField: "Status",
		CallScheduledField: "Initial_Call_Scheduled_Date__c", ContactedStatuses: []string{"Contacted", "Call Scheduled", "Qualified"},
		CallScheduledStatuses: []string{"Call Scheduled"}, ConvertedOutcome: schemas.OutcomeCallScheduled, SinkUserID: sinkUser,
		DeriveOutcomes: true, OutcomesTopic: "outcomes", RefreshTopic: "refresh"}
}

// cdcHarness is a pipeline reading change events, over srfake and the
// real Redis under a prefix of its own holding advisors 77 and 78.
type cdcHarness struct {
	*Pipeline
	codec  *schemas.Codec
	store  *featurestore.Store
	srcl   *sr.Client
	rdb    *redis.Client
	offset int64
	tx     int
}

// storeHook wraps the store to act between a batch's reads and writes.
type storeHook struct {
	*featurestore.Store
	beforeSave func()
	// saveErr, when set, is what SaveLeads returns instead of writing.
	saveErr error
}

func (h *storeHook) SaveLeads(ctx context.Context, w []featurestore.LeadWrite) error {
	if h.beforeSave != nil {
		h.beforeSave()
	}
	if h.saveErr != nil {
		return h.saveErr
	}
	return h.Store.SaveLeads(ctx, w)
}

func newCDCHarness(t *testing.T) (*cdcHarness, *storeHook) {
	t.Helper()
	return newCDCHarnessWith(t, cdcOptions())
}

func newCDCHarnessWith(t *testing.T, o *CDCOptions) (*cdcHarness, *storeHook) {
	t.Helper()
	ctx := context.Background()
	sreg := srfake.New()
	t.Cleanup(sreg.Close)
	srcl, err := sr.NewClient(sr.URLs(sreg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	topics := schemas.CDCTopics()
	ids, err := schemas.Register(ctx, srcl, topics)
	if err != nil {
		t.Fatal(err)
	}
	codec := schemas.NewCodec(srcl, ids)
	r := testenv.NewRedis(t)
	store := featurestore.New(r.Client, r.Prefix, nil)
	if err := store.PutAdvisors(ctx, []features.Advisor{
		{CRD: 77, RepType: "IA", IndustryStart: testDay(2015, 1, 1), SnapshotAt: testDay(2025, 11, 1)},
		{CRD: 78, RepType: "DR", IndustryStart: testDay(2001, 1, 1), SnapshotAt: testDay(2025, 11, 1)},
	}); err != nil {
		t.Fatal(err)
	}
	hook := &storeHook{Store: store}
	p, err := New(Options{SfdcTopic: "sfdc", ShadowTopic: "shadow", DLQTopic: "dlq", MaxRecordBytes: 1 << 16,
		FeatureMaxAge: time.Hour, ScoreEpsilon: 0.001, CDC: o,
		Now: func() time.Time { return testDay(2025, 11, 2) }}, codec, hook, loadRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	return &cdcHarness{Pipeline: p, codec: codec, store: store, srcl: srcl, rdb: r.Client}, hook
}

// ev is a change event under construction: a new transaction, committed
// a second after the previous one, unless the test says otherwise.
type ev struct {
	schemas.ChangeEvent
	raw []byte // when set, the record's value as is
}

func (h *cdcHarness) event(changeType string, ids []string, fields map[string]any, changed ...string) *ev {
	h.tx++
	e := &ev{ChangeEvent: schemas.ChangeEvent{ID: ids[0], ReplayID: fmt.Sprint(1000 + h.tx), EventType: "R1-FSrKj5SMSfaXy7QNdEw",
		Header: schemas.ChangeEventHeader{EntityName: "Lead", RecordIDs: ids, ChangeType: changeType, ChangedFields: changed,
			ChangeOrigin: "com/salesforce/api/rest/60.0", TransactionKey: fmt.Sprintf("tx-%04d", h.tx), SequenceNumber: 1,
			CommitTimestamp: testDay(2025, 11, 1).UnixMilli() + int64(h.tx)*1000, CommitNumber: int64(h.tx),
			CommitUser: "005USER00000000001"}, Fields: fields}}
	if changeType == schemas.ChangeUpdate && !slices.Contains(changed, "LastModifiedDate") {
		e.Header.ChangedFields = append(e.Header.ChangedFields, "LastModifiedDate")
	}
	return e
}

// records encodes the events as the connector would, in Avro or JSON.
func (h *cdcHarness) records(t *testing.T, jsonEnc bool, evs []*ev) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	for _, e := range evs {
		v := e.raw
		if v == nil {
			var err error
			if jsonEnc {
				v, err = schemas.ChangeEventJSON(&e.ChangeEvent)
			} else {
				v, err = h.codec.AppendChangeEvent(nil, &e.ChangeEvent)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		h.offset++
		out = append(out, &kgo.Record{Topic: "in", Partition: 0, Offset: h.offset, Value: v})
	}
	return out
}

// cdcRoute names each output: its topic, with what matters of it: the
// shadow record's flags, the refresh request's reason and Leads, the
// outcome's kind, the dead letter's class.
func (h *cdcHarness) cdcRoute(t *testing.T, out []*kgo.Record) []string {
	t.Helper()
	ctx := context.Background()
	var got []string
	for _, r := range out {
		switch r.Topic {
		case "dlq":
			got = append(got, "dlq:"+producer.Header(r, producer.HeaderErrorClass))
		case "shadow":
			var s schemas.LeadScoreShadow
			if err := h.codec.DecodeShadow(ctx, r.Value, &s); err != nil {
				t.Fatal(err)
			}
			name := "shadow"
			if s.PartialState {
				name += "+partial"
			}
			if s.Gap {
				name += "+gap"
			}
			got = append(got, name)
		case "refresh":
			var rr schemas.LeadRefreshRequest
			if err := h.codec.DecodeRefresh(ctx, r.Value, &rr); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("refresh:%s:%d", rr.Reason, len(rr.LeadIDs)))
		case "outcomes":
			var o schemas.LeadOutcome
			if err := h.codec.DecodeLeadOutcome(ctx, r.Value, &o); err != nil {
				t.Fatal(err)
			}
			got = append(got, "outcome:"+o.Kind)
		default:
			got = append(got, r.Topic)
		}
	}
	return got
}

// run transforms one batch and commits it.
func (h *cdcHarness) run(t *testing.T, in []*kgo.Record) []*kgo.Record {
	t.Helper()
	ctx := context.Background()
	out, err := h.Transform(ctx, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Committed(ctx, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// redoAlike consumes batch again (attempt n) and requires the outputs the
// first attempt gave: the same routes and the same sink records.
func (h *cdcHarness) redoAlike(t *testing.T, batch []*kgo.Record, n int, wantRoute, wantSink []string) {
	t.Helper()
	out, err := h.Transform(context.Background(), batch, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.cdcRoute(t, out); !slices.Equal(got, wantRoute) {
		t.Fatalf("attempt %d gave %v, the first gave %v", n, got, wantRoute)
	}
	if got := h.sinkValues(t, out); !slices.Equal(got, wantSink) {
		t.Fatalf("attempt %d wrote %v, the first %v", n, got, wantSink)
	}
}

func (h *cdcHarness) state(t *testing.T, id string) featurestore.LeadRecord {
	t.Helper()
	out := make([]featurestore.LeadRecord, 1)
	if err := h.store.LoadLeads(context.Background(), []string{id}, out, nil); err != nil {
		t.Fatal(err)
	}
	return out[0]
}

// What each change type and each rule does: one row per rule, each with
// Leads of its own, run on both encodings the connector offers. A row's
// setup batch is applied and committed first; then the batch under test
// must give the outputs listed, in order, and leave the state checked.
func TestCDCChangeTypes(t *testing.T) {
	for _, enc := range []string{"avro", "json"} {
		t.Run(enc, func(t *testing.T) { testCDCChangeTypes(t, enc == "json") })
	}
}

func testCDCChangeTypes(t *testing.T, jsonEnc bool) {
	h, _ := newCDCHarness(t)
	full := func(crd string, email bool, status string) map[string]any {
		m := map[string]any{"FA_CRD__c": crd, "LastName": "Doe", "Company": "Acme Wealth", "Status": status, "IsConverted": false}
		if email {
			m["Email"] = "jane@example.com"
		}
		return m
	}
	type check func(t *testing.T, r featurestore.LeadRecord)
	is := func(want featurestore.LeadState) check {
		return func(t *testing.T, r featurestore.LeadRecord) {
			t.Helper()
			got := r.State
			got.CommitTimestamp, got.CommitNumber, got.TransactionKey, got.SequenceNumber = 0, 0, "", 0
			if !r.Found || got != want {
				t.Errorf("state %+v (found %v), want %+v", got, r.Found, want)
			}
		}
	}
	lead := func(row, n int) string { return fmt.Sprintf("00Q5e00000%04d%03dA", row, n) }
	// The duplicate rows replay these very events.
	type row struct {
		name  string
		setup func(l func(int) string) []*ev
		in    func(l func(int) string, setup []*ev) []*ev
		want  []string
		state map[int]check
	}
	rows := []row{
		{name: "CREATE: the full record is the state; scored",
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", true, "Open"))}
			},
			want:  []string{"sfdc", "shadow"},
			state: map[int]check{1: is(featurestore.LeadState{CRD: "77", HasEmail: true, Status: "Open"})}},
		{name: "CREATE with a contacted status derives a contacted outcome",
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", false, "Contacted"))}
			},
			want:  []string{"outcome:contacted", "sfdc", "shadow"},
			state: map[int]check{1: is(featurestore.LeadState{CRD: "77", Status: "Contacted", ContactedSent: true})}},
		{name: "UPDATE: a changed field takes the record's value; a field not carried keeps its own",
			setup: func(l func(int) string) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", false, "Open"))}
			},
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{h.event("UPDATE", []string{l(1)}, map[string]any{"Email": "jane@example.com"}, "Email")}
			},
			want:  []string{"sfdc", "shadow"},
			state: map[int]check{1: is(featurestore.LeadState{CRD: "77", HasEmail: true, Status: "Open"})}},
		{name: "UPDATE: a listed field that is null is nulled",
			setup: func(l func(int) string) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", true, "Open"))}
			},
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{h.event("UPDATE", []string{l(1)}, map[string]any{"Email": nil}, "Email")}
			},
			want:  []string{"sfdc", "shadow"},
			state: map[int]check{1: is(featurestore.LeadState{CRD: "77", Status: "Open"})}},
		{name: "UPDATE: a null field not listed is unchanged (and the quota guard holds back an unchanged score)",
			setup: func(l func(int) string) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", true, "Open"))}
			},
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{h.event("UPDATE", []string{l(1)}, map[string]any{"Status": "Working", "Email": nil}, "Status")}
			},
			want:  []string{"shadow"},
			state: map[int]check{1: is(featurestore.LeadState{CRD: "77", HasEmail: true, Status: "Working"})}},
		{name: "UPDATE of a Lead without state: scored with what it carries, flagged partial_state, re-read requested",
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{h.event("UPDATE", []string{l(1)}, map[string]any{"FA_CRD__c": "78"}, "FA_CRD__c")}
			},
			want:  []string{"refresh:partial_state:1", "sfdc", "shadow+partial"},
			state: map[int]check{1: is(featurestore.LeadState{CRD: "78", Partial: true})}},
		{name: "UPDATE of a Lead without state that carries no CRD: shadow only",
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{h.event("UPDATE", []string{l(1)}, map[string]any{"Status": "Working"}, "Status")}
			},
			want:  []string{"refresh:partial_state:1", "shadow+partial"},
			state: map[int]check{1: is(featurestore.LeadState{Partial: true, Status: "Working"})}},
		{name: "DELETE: the state is forgotten (a tombstone keeps the position); no record at all",
			setup: func(l func(int) string) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", true, "Open"))}
			},
			in:    func(l func(int) string, _ []*ev) []*ev { return []*ev{h.event("DELETE", []string{l(1)}, nil)} },
			want:  nil,
			state: map[int]check{1: is(featurestore.LeadState{Deleted: true})}},
		{name: "UNDELETE: the full record is the state again; scored and written, the quota state being gone",
			setup: func(l func(int) string) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", true, "Open")), h.event("DELETE", []string{l(1)}, nil)}
			},
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{h.event("UNDELETE", []string{l(1)}, full("77", true, "Open"))}
			},
			want:  []string{"sfdc", "shadow"},
			state: map[int]check{1: is(featurestore.LeadState{CRD: "77", HasEmail: true, Status: "Open"})}},
		{name: "conversion: the configured outcome (call scheduled, so contacted too); no more sink records",
			setup: func(l func(int) string) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", true, "Open"))}
			},
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{
					h.event("UPDATE", []string{l(1)}, map[string]any{"IsConverted": true, "Status": "Converted"}, "IsConverted", "Status"),
					h.event("UPDATE", []string{l(1)}, map[string]any{"Email": nil}, "Email"),
				}
			},
			want: []string{"outcome:contacted", "outcome:call_scheduled", "shadow", "shadow"},
			state: map[int]check{1: is(featurestore.LeadState{CRD: "77", Status: "Converted", Converted: true,
				ContactedSent: true, CallSent: true})}},
		{name: "a call-scheduled status derives the outcome once",
			setup: func(l func(int) string) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", true, "Contacted"))}
			},
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{
					h.event("UPDATE", []string{l(1)}, map[string]any{"Status": "Call Scheduled"}, "Status"),
					h.event("UPDATE", []string{l(1)}, map[string]any{"Status": "Qualified"}, "Status"),
					h.event("UPDATE", []string{l(1)}, map[string]any{"Status": "Call Scheduled"}, "Status"),
				}
			},
			want: []string{"outcome:call_scheduled", "shadow", "shadow", "shadow"},
			state: map[int]check{1: is(featurestore.LeadState{CRD: "77", HasEmail: true, Status: "Call Scheduled",
				ContactedSent: true, CallSent: true})}},
		{name: "the call-scheduled date field being set derives call scheduled, and contacted with it",
			setup: func(l func(int) string) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", true, "Open"))}
			},
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{h.event("UPDATE", []string{l(1)}, map[string]any{"Initial_Call_Scheduled_Date__c": testDay(2025, 11, 20)},
					"Initial_Call_Scheduled_Date__c")}
			},
			want: []string{"outcome:contacted", "outcome:call_scheduled", "shadow"},
			state: map[int]check{1: is(featurestore.LeadState{CRD: "77", HasEmail: true, Status: "Open", CallScheduled: true,
				ContactedSent: true, CallSent: true})}},
		{name: "several recordIds: the change applies to each Lead, each with its own outputs",
			setup: func(l func(int) string) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", false, "Open")), h.event("CREATE", []string{l(2)}, full("78", false, "Open"))}
			},
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{h.event("UPDATE", []string{l(1), l(2)}, map[string]any{"Email": "team@example.com"}, "Email")}
			},
			want: []string{"sfdc", "shadow", "sfdc", "shadow"},
			state: map[int]check{1: is(featurestore.LeadState{CRD: "77", HasEmail: true, Status: "Open"}),
				2: is(featurestore.LeadState{CRD: "78", HasEmail: true, Status: "Open"})}},
		{name: "GAP_UPDATE: each named Lead rescored from its state (flagged gap), one refresh request for them",
			setup: func(l func(int) string) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", true, "Open"))}
			},
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{h.event("GAP_UPDATE", []string{l(1), l(2)}, nil)}
			},
			want:  []string{"refresh:gap:2", "shadow+gap"},
			state: map[int]check{1: is(featurestore.LeadState{CRD: "77", HasEmail: true, Status: "Open"}), 2: is(featurestore.LeadState{Partial: true})}},
		{name: "GAP_CREATE and GAP_UNDELETE of a Lead without state: the refresh request only",
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{h.event("GAP_CREATE", []string{l(1)}, nil), h.event("GAP_UNDELETE", []string{l(2)}, nil)}
			},
			want: []string{"refresh:gap:1", "refresh:gap:1"}},
		{name: "GAP_DELETE: rescored from the state and re-read, but no sink record for a deleted Lead",
			setup: func(l func(int) string) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", true, "Open"))}
			},
			in:   func(l func(int) string, _ []*ev) []*ev { return []*ev{h.event("GAP_DELETE", []string{l(1)}, nil)} },
			want: []string{"refresh:gap:1", "shadow+gap"}},
		{name: "GAP_OVERFLOW: one refresh request for the whole object",
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{h.event("GAP_OVERFLOW", []string{schemas.EmptyRecordID}, nil)}
			},
			want: []string{"refresh:overflow:0"}},
		{name: "a wildcard Id: one refresh request for the whole object",
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{h.event("UPDATE", []string{schemas.LeadWildcard}, nil, "Status")}
			},
			want: []string{"refresh:wildcard:0"}},
		{name: "a duplicate (same transaction and sequence) changes nothing and writes nothing",
			setup: func(l func(int) string) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", false, "Open")),
					h.event("UPDATE", []string{l(1)}, map[string]any{"Email": "jane@example.com", "Status": "Contacted"}, "Email", "Status")}
			},
			in:    func(l func(int) string, setup []*ev) []*ev { return setup }, // the connector restarted: both again
			want:  nil,
			state: map[int]check{1: is(featurestore.LeadState{CRD: "77", HasEmail: true, Status: "Contacted", ContactedSent: true})}},
		{name: "an older commit than the one applied changes nothing",
			setup: func(l func(int) string) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", true, "Open"))}
			},
			in: func(l func(int) string, setup []*ev) []*ev {
				old := h.event("UPDATE", []string{l(1)}, map[string]any{"Email": nil}, "Email")
				old.Header.CommitTimestamp = setup[0].Header.CommitTimestamp - 1
				return []*ev{old}
			},
			want:  nil,
			state: map[int]check{1: is(featurestore.LeadState{CRD: "77", HasEmail: true, Status: "Open"})}},
		{name: "events of one transaction are applied in sequenceNumber order",
			setup: func(l func(int) string) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", false, "Open"))}
			},
			in: func(l func(int) string, _ []*ev) []*ev {
				second := h.event("UPDATE", []string{l(1)}, map[string]any{"Email": nil}, "Email")
				first := h.event("UPDATE", []string{l(1)}, map[string]any{"Email": "jane@example.com"}, "Email")
				first.Header.TransactionKey, first.Header.CommitTimestamp, first.Header.CommitNumber =
					second.Header.TransactionKey, second.Header.CommitTimestamp, second.Header.CommitNumber
				second.Header.SequenceNumber = 2
				return []*ev{second, first} // delivered out of order
			},
			want:  []string{"sfdc", "shadow", "sfdc", "shadow"},
			state: map[int]check{1: is(featurestore.LeadState{CRD: "77", Status: "Open"})}},
		{name: "echo: the sink user's change of score and system fields is skipped",
			setup: func(l func(int) string) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", true, "Open"))}
			},
			in: func(l func(int) string, _ []*ev) []*ev {
				e := h.event("UPDATE", []string{l(1)}, map[string]any{"V4_Score__c": 0.5}, "V4_Score__c", "V4_Scored_At__c", "SystemModstamp")
				e.Header.CommitUser = sinkUser
				return []*ev{e}
			},
			want: nil},
		{name: "not an echo: another user's change of the score fields is rescored and written again",
			setup: func(l func(int) string) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", true, "Open"))}
			},
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{h.event("UPDATE", []string{l(1)}, map[string]any{"V4_Score__c": 0.99}, "V4_Score__c")}
			},
			want: []string{"sfdc", "shadow"}},
		{name: "not an echo: the sink user changing another field too",
			setup: func(l func(int) string) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("77", true, "Open"))}
			},
			in: func(l func(int) string, _ []*ev) []*ev {
				e := h.event("UPDATE", []string{l(1)}, map[string]any{"Email": nil, "V4_Score__c": 0.5}, "Email", "V4_Score__c")
				e.Header.CommitUser = sinkUser
				return []*ev{e}
			},
			want: []string{"sfdc", "shadow"}},
		{name: "a CREATE without a CRD is scored as an unknown advisor",
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{h.event("CREATE", []string{l(1)}, full("", true, "Open"))}
			},
			want:  []string{"sfdc", "shadow"},
			state: map[int]check{1: is(featurestore.LeadState{HasEmail: true, Status: "Open"})}},
		{name: "malformed: an unknown changeType, an Id that is not a Lead's, a CRD that is not a number",
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{h.event("MERGE", []string{l(1)}, nil), h.event("CREATE", []string{"001000000000001AAA"}, full("77", true, "Open")),
					h.event("CREATE", []string{l(2)}, full("77-A", true, "Open"))}
			},
			want: []string{"dlq:validation", "dlq:validation", "dlq:validation"},
			state: map[int]check{2: func(t *testing.T, r featurestore.LeadRecord) {
				if r.Found {
					t.Errorf("a dead letter changed the state: %+v", r.State)
				}
			}}},
		{name: "malformed: bytes of neither encoding, and a record that is not the connector's shape",
			in: func(l func(int) string, _ []*ev) []*ev {
				return []*ev{{raw: []byte("\x05garbage")}, {raw: h.notAChangeEvent(t, jsonEnc)}}
			},
			want: []string{"dlq:decode", "dlq:schema"}},
	}
	for i, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			l := func(n int) string { return lead(i, n) }
			var setup []*ev
			if tc.setup != nil {
				setup = tc.setup(l)
				h.run(t, h.records(t, jsonEnc, setup))
			}
			echoes := testutil.ToFloat64(h.m.echoes)
			in := tc.in(l, setup)
			out := h.run(t, h.records(t, jsonEnc, in))
			if got := h.cdcRoute(t, out); !slices.Equal(got, tc.want) {
				t.Fatalf("outputs %v, want %v", got, tc.want)
			}
			if len(in) == 1 && in[0].Header.CommitUser == sinkUser && tc.want == nil {
				if testutil.ToFloat64(h.m.echoes) != echoes+1 {
					t.Errorf("the echo was not counted")
				}
			}
			for n, check := range tc.state {
				check(t, h.state(t, l(n)))
			}
		})
	}
}

// notAChangeEvent is a record with no ChangeEventHeader: in JSON an
// object without it, in Avro a record of another schema.
func (h *cdcHarness) notAChangeEvent(t *testing.T, jsonEnc bool) []byte {
	t.Helper()
	if jsonEnc {
		return []byte(`{"Id":"00Q5e000000000001A","Email":"x@example.com"}`)
	}
	s, err := h.srcl.CreateSchema(context.Background(), "other-value", sr.Schema{Type: sr.TypeAvro,
		Schema: `{"type":"record","name":"LeadChangeEvent","namespace":"io.confluent.salesforce","fields":[{"name":"Id","type":"string"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := new(sr.ConfluentHeader).AppendEncode(nil, s.ID, nil)
	return append(b, 2*18, '0', '0', 'Q', '5', 'e', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '1', 'A')
}

// sinkValues lists the sink records' Lead Ids and scores: what Salesforce
// would be told.
func (h *cdcHarness) sinkValues(t *testing.T, out []*kgo.Record) []string {
	t.Helper()
	var got []string
	for _, r := range out {
		if r.Topic != "sfdc" {
			continue
		}
		var s schemas.LeadScoreSfdc
		if err := h.codec.DecodeSfdc(context.Background(), r.Value, &s); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s=%.6f/%d", s.ID, s.Score, s.Percentile))
	}
	return got
}

// The Lead states live in Redis outside the Kafka transaction and are
// written before the commit. A batch that is aborted (or whose scorer dies)
// after writing them is consumed again from the same offsets: the redo must
// start from the states before the first attempt, and so give exactly the
// outputs and states the first attempt gave, never treat its own changes
// as duplicates, never lose or double-apply one.
func TestCDCRedoneBatchGivesTheSameResult(t *testing.T) {
	ctx := context.Background()
	h, _ := newCDCHarness(t)
	a, b := "00Q5e0000000R0001A", "00Q5e0000000R0002A"
	committed := h.records(t, false, []*ev{h.event("CREATE", []string{a}, map[string]any{"FA_CRD__c": "77", "Status": "Open"})})
	h.run(t, committed)

	batch := h.records(t, false, []*ev{
		h.event("UPDATE", []string{a}, map[string]any{"Email": "jane@example.com", "Status": "Contacted"}, "Email", "Status"),
		h.event("CREATE", []string{b}, map[string]any{"FA_CRD__c": "78", "Status": "Call Scheduled"}),
		h.event("UPDATE", []string{a}, map[string]any{"Status": "Call Scheduled"}, "Status"),
	})
	first, err := h.Transform(ctx, batch, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantRoute, wantSink := h.cdcRoute(t, first), h.sinkValues(t, first)
	wantA, wantB := h.state(t, a).State, h.state(t, b).State
	if !slices.Contains(wantRoute, "outcome:call_scheduled") || len(wantSink) == 0 {
		t.Fatalf("first attempt gave %v: the test needs outcomes and sink records", wantRoute)
	}
	// Aborted: nothing of it committed. The batch is consumed again, twice
	// (the second redo finds the first redo's states).
	for attempt := 2; attempt <= 3; attempt++ {
		h.redoAlike(t, batch, attempt, wantRoute, wantSink)
		if h.state(t, a).State != wantA || h.state(t, b).State != wantB {
			t.Fatalf("attempt %d left other states", attempt)
		}
	}
	// A redo may also hold fewer records than the attempt it redoes.
	out, err := h.Transform(ctx, batch[:1], nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.cdcRoute(t, out); !slices.Equal(got, []string{"outcome:contacted", "sfdc", "shadow"}) {
		t.Fatalf("the shorter redo gave %v", got)
	}
	if err := h.Committed(ctx, out); err != nil {
		t.Fatal(err)
	}
	if st := h.state(t, a).State; !st.HasEmail || st.Status != "Contacted" || st.CallSent {
		t.Fatalf("after the shorter redo committed, %s is %+v: want its first update only", a, st)
	}
	if h.state(t, b).Found {
		// b's state from the aborted attempts is there, but the next batch
		// must see it as uncommitted: it starts at b's offset.
		out = h.run(t, batch[1:])
		if got := h.cdcRoute(t, out); !slices.Equal(got, []string{"outcome:contacted", "outcome:call_scheduled", "outcome:call_scheduled", "sfdc", "shadow", "shadow"}) {
			t.Fatalf("the rest of the batch gave %v", got)
		}
	}
	if st := h.state(t, a).State; st != wantA {
		t.Fatalf("%s ends as %+v, want %+v as the first attempt computed", a, st, wantA)
	}
}

// A batch that fails after Prepare sent its Lead states, without reaching
// BeforeCommit (the consumer aborts it), leaves states the redo recognises
// as its own: the redo, which first waits for the write in flight, gives
// the same outputs and states as the attempt did.
func TestCDCBatchFailedAfterItsStatesWereSentIsRedoneExactly(t *testing.T) {
	ctx := context.Background()
	h, _ := newCDCHarness(t)
	a, b := "00Q5e0000000P0001A", "00Q5e0000000P0002A"
	h.run(t, h.records(t, false, []*ev{h.event("CREATE", []string{a}, map[string]any{"FA_CRD__c": "77", "Status": "Open"})}))
	batch := h.records(t, false, []*ev{
		h.event("UPDATE", []string{a}, map[string]any{"Email": "jane@example.com", "Status": "Contacted"}, "Email", "Status"),
		h.event("CREATE", []string{b}, map[string]any{"FA_CRD__c": "78", "Status": "Call Scheduled"}),
	})
	first, err := h.Prepare(ctx, batch, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantRoute, wantSink := h.cdcRoute(t, first), h.sinkValues(t, first)
	if !slices.Contains(wantRoute, "sfdc") || !slices.Contains(wantRoute, "outcome:call_scheduled") {
		t.Fatalf("the attempt gave %v: the test needs sink records and outcomes", wantRoute)
	}
	for attempt := 2; attempt <= 3; attempt++ {
		h.redoAlike(t, batch, attempt, wantRoute, wantSink)
	}
	if st := h.state(t, a).State; !st.HasEmail || st.Status != "Contacted" || !st.ContactedSent {
		t.Fatalf("%s after the redos: %+v", a, st)
	}
}

// Prepare starts writing the Lead states and returns without waiting for
// the write, which runs while the batch is scored; BeforeCommit waits for
// it and fails the batch with its error.
func TestCDCLeadStatesWrittenWhileTheBatchIsScored(t *testing.T) {
	ctx := context.Background()
	h, hook := newCDCHarness(t)
	entered, release := make(chan struct{}), make(chan struct{})
	hook.beforeSave = func() { close(entered); <-release }
	hook.saveErr = errors.New("the write failed")
	in := h.records(t, false, []*ev{h.event("CREATE", []string{"00Q5e0000000W0001A"}, map[string]any{"FA_CRD__c": "77"})})
	prepared := make(chan error, 1)
	go func() {
		_, err := h.Prepare(ctx, in, nil)
		prepared <- err
	}()
	<-entered
	select {
	case err := <-prepared:
		if err != nil {
			t.Fatalf("Prepare: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Prepare waits for the Lead states' write")
	}
	committed := make(chan error, 1)
	go func() { committed <- h.BeforeCommit(ctx) }()
	close(release)
	if err := <-committed; !errors.Is(err, hook.saveErr) {
		t.Fatalf("BeforeCommit: %v, want the Lead states' write's error", err)
	}
}

// A Lead state another scorer wrote between this batch's read and its
// write (this scorer lost the partition and is about to be fenced) is not
// overwritten, and the batch fails instead of committing.
func TestCDCStateWrittenByAnotherScorerFailsTheBatch(t *testing.T) {
	ctx := context.Background()
	h, hook := newCDCHarness(t)
	a := "00Q5e0000000W0001A"
	h.run(t, h.records(t, false, []*ev{h.event("CREATE", []string{a}, map[string]any{"FA_CRD__c": "77"})}))
	rdb := h.rdb
	theirs := "v1|0:999|1,1,other,1,,78,|0:1|1,1,x,1,,77,"
	hook.beforeSave = func() { rdb.Set(ctx, h.store.LeadKey(a), theirs, 0) }
	_, err := h.Transform(ctx, h.records(t, false, []*ev{h.event("UPDATE", []string{a}, map[string]any{"Email": "x@example.com"}, "Email")}), nil)
	if !errors.Is(err, featurestore.ErrLeadStateMoved) {
		t.Fatalf("Transform: %v, want ErrLeadStateMoved", err)
	}
	if got, _ := rdb.Get(ctx, h.store.LeadKey(a)).Result(); got != theirs {
		t.Fatalf("the other scorer's state was overwritten: %q", got)
	}
}

// A mapped field the records never carry is a mapping to fix, reported
// once the first records arrive; a field that is merely null is not.
func TestCDCMappedFieldNeverCarriedIsReported(t *testing.T) {
	o := cdcOptions()
	o.LinkedInField = "LinkedIn_URL__c" // not a field of the connector's records
	h, _ := newCDCHarnessWith(t, o)
	h.run(t, h.records(t, false, []*ev{h.event("CREATE", []string{"00Q5e0000000M0001A"}, map[string]any{"FA_CRD__c": "77"})}))
	if got := testutil.ToFloat64(h.m.cdcMissing.WithLabelValues("linkedin_field", "LinkedIn_URL__c")); got != 1 {
		t.Fatalf("missing-field gauge %v, want 1", got)
	}
	if n := testutil.CollectAndCount(h.m.cdcMissing); n != 1 {
		t.Fatalf("%d fields reported missing, want only the unmapped one (the null ones are carried)", n)
	}
}

// A CRD is stored in decimal whatever way the record wrote it.
func TestCanonicalCRD(t *testing.T) {
	for _, tc := range []struct {
		v    schemas.FieldValue
		want string
	}{
		{schemas.FieldValue{Kind: schemas.ValueString, Str: "5093442"}, "5093442"},
		{schemas.FieldValue{Kind: schemas.ValueString, Str: " 5093442\t"}, "5093442"},
		{schemas.FieldValue{Kind: schemas.ValueString, Str: "005093442"}, "5093442"},
		{schemas.FieldValue{Kind: schemas.ValueString, Str: "+5093442"}, "5093442"},
		{schemas.FieldValue{Kind: schemas.ValueInt, Int: 5093442}, "5093442"},
	} {
		n, err := crdOf(tc.v)
		if err != nil {
			t.Fatalf("%+v: %v", tc.v, err)
		}
		if got := canonicalCRD(tc.v, n); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.v, got, tc.want)
		}
	}
}
