package replay

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/internal/testenv"
	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/schemas"
)

// env is a test's broker with the service's topics, named for the test.
type env struct {
	k       *testenv.Kafka
	in, dlq string
}

// names is the env of tests that need no broker: the default topic names.
var names = &env{in: config.Default().TopicIn, dlq: config.Default().TopicDLQ}

// startEnv gives the test a broker with the service's topics (the DLQ and
// its replay ledger among them) as the declaration says.
func startEnv(t *testing.T) *env {
	t.Helper()
	k := testenv.NewKafka(t)
	cfg := config.Default()
	k.Configure(cfg)
	return &env{k: k, in: cfg.TopicIn, dlq: cfg.TopicDLQ}
}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// deadLetter builds the DLQ record the scorer writes for an input record
// at partition/offset, rejected at t0+minutes.
func (e *env) deadLetter(partition int32, offset int64, class string, minutes int, value string, maxValue int) *kgo.Record {
	in := &kgo.Record{
		Topic: e.in, Partition: partition, Offset: offset,
		Key: []byte(fmt.Sprintf("00Q%015d", offset)), Value: []byte(value),
		Headers: []kgo.RecordHeader{{Key: "trace-id", Value: []byte("t-" + value)}},
	}
	return producer.DeadLetter(e.dlq, in, class, class+" failed", t0.Add(time.Duration(minutes)*time.Minute), maxValue)
}

func TestFilterSelectsByClassSourcePositionAndTime(t *testing.T) {
	r := names.deadLetter(2, 100, "features", 30, "v", 1<<20)
	all := AllRecords()
	with := func(f func(*Filter)) Filter { g := AllRecords(); f(&g); return g }
	cases := []struct {
		name   string
		filter Filter
		want   bool
	}{
		{"no filter selects everything", all, true},
		{"the record's class is selected", with(func(f *Filter) { f.Classes = []string{"decode", "features"} }), true},
		{"another class is not", with(func(f *Filter) { f.Classes = []string{"decode"} }), false},
		{"the record's source partition is selected", with(func(f *Filter) { f.Partition = 2 }), true},
		{"another source partition is not", with(func(f *Filter) { f.Partition = 1 }), false},
		{"an offset range is inclusive at its start", with(func(f *Filter) { f.FromOffset = 100 }), true},
		{"an offset range is inclusive at its end", with(func(f *Filter) { f.ToOffset = 100 }), true},
		{"an offset after the range is not selected", with(func(f *Filter) { f.FromOffset, f.ToOffset = 0, 99 }), false},
		{"an offset before the range is not selected", with(func(f *Filter) { f.FromOffset = 101 }), false},
		{"since is inclusive", with(func(f *Filter) { f.Since = t0.Add(30 * time.Minute) }), true},
		{"a record before since is not selected", with(func(f *Filter) { f.Since = t0.Add(31 * time.Minute) }), false},
		{"until is exclusive", with(func(f *Filter) { f.Until = t0.Add(30 * time.Minute) }), false},
		{"a record before until is selected", with(func(f *Filter) { f.Until = t0.Add(31 * time.Minute) }), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.filter.Match(r); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("a record without the headers a filter tests is not selected", func(t *testing.T) {
		bare := &kgo.Record{Value: []byte("x")}
		for _, f := range []Filter{
			with(func(f *Filter) { f.Classes = []string{"features"} }),
			with(func(f *Filter) { f.Partition = 0 }),
			with(func(f *Filter) { f.FromOffset = 0 }),
			with(func(f *Filter) { f.Since = t0 }),
		} {
			if f.Match(bare) {
				t.Errorf("%+v selects a record without reason headers", f)
			}
		}
	})
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func produce(t *testing.T, e *env, rs ...*kgo.Record) {
	t.Helper()
	e.k.Produce(rs...)
}

func drain(t *testing.T, e *env, topic string) []*kgo.Record {
	t.Helper()
	return e.k.Drain(topic)
}

// TestReplayReproducesSelectedDeadLettersOnce is the contract an operator
// relies on after a fix: the original bytes and key go back to the source
// topic, each dead letter once however often and with whatever filter
// replay runs, and a truncated dead letter is reported, not replayed.
func TestReplayReproducesSelectedDeadLettersOnce(t *testing.T) {
	ctx := testContext(t)
	e := startEnv(t)
	letters := []*kgo.Record{
		e.deadLetter(0, 10, "features", 1, "f-0-10", 1<<20),
		e.deadLetter(1, 11, "features", 2, "f-1-11", 1<<20),
		e.deadLetter(2, 12, "features", 3, "f-2-12", 1<<20),
		e.deadLetter(0, 13, "decode", 4, "d-0-13", 1<<20),
		e.deadLetter(1, 14, "decode", 5, "d-1-14", 1<<20),
		e.deadLetter(2, 15, "size", 6, "s-2-15-too-long", 4),
	}
	produce(t, e, letters...)

	var replayed []int // Summary.Replayed at each progress report of the last run
	run := func(f Filter) Summary {
		t.Helper()
		replayed = nil
		sum, err := Replay(ctx, Options{Brokers: e.k.Brokers, DLQTopic: e.dlq, Filter: f, BatchSize: 2,
			Progress: func(s Summary) { replayed = append(replayed, s.Replayed) }})
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	values := func() []string {
		var out []string
		for _, r := range drain(t, e, e.in) {
			out = append(out, string(r.Value))
		}
		slices.Sort(out)
		return out
	}

	features := AllRecords()
	features.Classes = []string{"features"}
	if s := run(features); s.Replayed != 3 || s.NotSelected != 3 || s.ByClass["features"] != 3 {
		t.Fatalf("first replay of class features: %s", s)
	}
	// Batches of 2: a report after each committed transaction.
	if want := []int{2, 3}; !slices.Equal(replayed, want) {
		t.Errorf("progress reported %v replayed, want %v", replayed, want)
	}
	if got, want := values(), []string{"f-0-10", "f-1-11", "f-2-12"}; !slices.Equal(got, want) {
		t.Fatalf("input topic after the first replay holds %q, want %q", got, want)
	}

	if s := run(features); s.Replayed != 0 || s.AlreadyDone != 3 {
		t.Fatalf("second replay of the same filter: %s; want nothing replayed", s)
	}
	s := run(AllRecords())
	if s.Replayed != 2 || s.AlreadyDone != 3 || s.Truncated != 1 || s.Read != 6 {
		t.Fatalf("replay of everything after features: %s; want the 2 decode letters replayed, 3 already done, 1 truncated", s)
	}
	if got, want := values(), []string{"d-0-13", "d-1-14", "f-0-10", "f-1-11", "f-2-12"}; !slices.Equal(got, want) {
		t.Fatalf("input topic holds %q, want each replayable dead letter exactly once: %q", got, want)
	}

	from := map[string]string{} // value -> position in the DLQ
	for _, r := range drain(t, e, e.dlq) {
		from[string(r.Value)] = fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
	}
	for _, r := range drain(t, e, e.in) {
		want := "00Q" + fmt.Sprintf("%015d", offsetOf(string(r.Value)))
		if string(r.Key) != want {
			t.Errorf("replayed %s has key %q, want the original %q", r.Value, r.Key, want)
		}
		if got := producer.Header(r, "trace-id"); got != "t-"+string(r.Value) {
			t.Errorf("replayed %s lost its original header trace-id (got %q)", r.Value, got)
		}
		if producer.Header(r, producer.HeaderErrorClass) != "" {
			t.Errorf("replayed %s still carries the dead-letter headers", r.Value)
		}
		if producer.Header(r, HeaderReplayedFrom) != from[string(r.Value)] {
			t.Errorf("replayed %s has %s = %q, want its dead letter's position %q", r.Value, HeaderReplayedFrom, producer.Header(r, HeaderReplayedFrom), from[string(r.Value)])
		}
	}
}

// offsetOf reads the source offset back out of a test value "x-P-O".
func offsetOf(v string) int64 {
	var p, o int64
	var c byte
	fmt.Sscanf(strings.ReplaceAll(v, "-", " "), "%c %d %d", &c, &p, &o)
	return o
}

func TestReplayDryRunWritesNothing(t *testing.T) {
	ctx := testContext(t)
	e := startEnv(t)
	produce(t, e, e.deadLetter(0, 1, "schema", 0, "x-0-1", 1<<20))
	s, err := Replay(ctx, Options{Brokers: e.k.Brokers, DLQTopic: e.dlq, Filter: AllRecords(), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Replayed != 1 {
		t.Errorf("dry run: %s; want 1 that would be replayed", s)
	}
	if n := len(drain(t, e, e.in)); n != 0 {
		t.Errorf("dry run wrote %d records to the input topic", n)
	}
	if s, err := Replay(ctx, Options{Brokers: e.k.Brokers, DLQTopic: e.dlq, Filter: AllRecords()}); err != nil || s.Replayed != 1 {
		t.Errorf("replay after a dry run: %s, %v; want the record replayed (a dry run records nothing)", s, err)
	}
}

func TestReadLeadsRequiresTheEventFields(t *testing.T) {
	cases := []struct {
		name, csv, wantErr string
		want               []Lead
	}{
		{"the export's columns, in any order, with others", "split,has_linkedin,crd,lead_id,has_email\ntrain,1,42,00Q5e00000000GgEAI,0\n", "",
			[]Lead{{ID: "00Q5e00000000GgEAI", CRD: 42, HasLinkedIn: true}}},
		{"Salesforce's own header names", "Lead Id,FA_CRD__c,has_email,has_linkedin\n00Q5e00000000GgEAI,42,true,false\n", "",
			[]Lead{{ID: "00Q5e00000000GgEAI", CRD: 42, HasEmail: true}}},
		{"a lead listed twice is rescored once, as last listed", "lead_id,crd,has_email,has_linkedin\n00Q5e00000000GgEAI,42,0,0\n00Q5e00000000GgEAI,43,1,1\n", "",
			[]Lead{{ID: "00Q5e00000000GgEAI", CRD: 43, HasEmail: true, HasLinkedIn: true}}},
		{"a file without has_email is refused", "lead_id,crd,has_linkedin\n", "has_email", nil},
		{"a file without a CRD column is refused", "lead_id,has_email,has_linkedin\n", "crd or fa_crd__c", nil},
		{"a missing CRD is refused with its line", "lead_id,crd,has_email,has_linkedin\n00Q5e00000000GgEAI,,0,0\n", "line 2: crd", nil},
		{"a bad Lead Id is refused", "lead_id,crd,has_email,has_linkedin\n00Q-bad,42,0,0\n", "lead_id", nil},
		{"a bad flag is refused", "lead_id,crd,has_email,has_linkedin\n00Q5e00000000GgEAI,42,yes,0\n", "has_email", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadLeads(strings.NewReader(tc.csv))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRescoreProducesOneLeadChangePerLead reads the events back with the
// service's codec: what the scorer will decode.
func TestRescoreProducesOneLeadChangePerLead(t *testing.T) {
	ctx := testContext(t)
	e := startEnv(t)
	rc := e.k.Registry()
	ids, err := schemas.Register(ctx, rc, schemas.Topics{LeadChanged: e.in})
	if err != nil {
		t.Fatal(err)
	}
	codec := schemas.NewCodec(rc, ids)
	var leads []Lead
	for i := range 25 {
		leads = append(leads, Lead{ID: fmt.Sprintf("00Q5e0000000%06d", i), CRD: int64(1000 + i), HasEmail: i%2 == 0, HasLinkedIn: i%3 == 0})
	}
	var progress []int
	now := t0.Add(time.Hour)
	n, err := Rescore(ctx, leads, RescoreOptions{Brokers: e.k.Brokers, Topic: e.in, Codec: codec, RunID: "r1", BatchSize: 10,
		Progress: func(done int) { progress = append(progress, done) }, Now: func() time.Time { return now }})
	if err != nil || n != len(leads) {
		t.Fatalf("Rescore = %d, %v; want %d", n, err, len(leads))
	}
	got := map[string]schemas.LeadChanged{}
	for _, r := range drain(t, e, e.in) {
		var e schemas.LeadChanged
		if err := codec.DecodeLeadChanged(ctx, r.Value, &e); err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != e.LeadID {
			t.Errorf("event for %s keyed %q, want its Lead Id", e.LeadID, r.Key)
		}
		if _, dup := got[e.LeadID]; dup {
			t.Errorf("lead %s rescored twice", e.LeadID)
		}
		got[e.LeadID] = e
	}
	if len(got) != len(leads) {
		t.Fatalf("%d leads rescored, want %d", len(got), len(leads))
	}
	for _, l := range leads {
		e := got[l.ID]
		if err := e.Validate(); err != nil {
			t.Errorf("lead %s: the scorer would dead-letter its event: %v", l.ID, err)
		}
		if e.CRD != l.CRD || e.HasEmail != l.HasEmail || e.HasLinkedIn != l.HasLinkedIn {
			t.Errorf("lead %s: event %+v does not carry the lead's CRD and flags %+v", l.ID, e, l)
		}
		if !slices.Equal(e.ChangedFields, []string{"rescore"}) || !e.EventTime.Equal(now) || e.EventID != "rescore-r1-"+l.ID {
			t.Errorf("lead %s: changed_fields %q, time %v, id %q", l.ID, e.ChangedFields, e.EventTime, e.EventID)
		}
	}
	// One report per produce round of 10, once acknowledged.
	if want := []int{10, 20, 25}; !slices.Equal(progress, want) {
		t.Errorf("progress reports %v, want %v", progress, want)
	}
}

// Nothing is created on first use: a replay whose ledger topic does not
// exist, or a rescore whose input topic does not, stops before writing,
// naming the topic and the command that creates it.
func TestReplayAndRescoreNeedTheirTopics(t *testing.T) {
	ctx := testContext(t)
	e := startEnv(t)
	produce(t, e, e.deadLetter(0, 1, "schema", 0, "x-0-1", 1<<20))
	noLedger := e.k.Name("no.ledger")
	_, err := Replay(ctx, Options{Brokers: e.k.Brokers, DLQTopic: e.dlq, LedgerTopic: noLedger, Filter: AllRecords()})
	if err == nil || !strings.Contains(err.Error(), "topic "+noLedger+" does not exist") || !strings.Contains(err.Error(), "leadscorer topics apply") {
		t.Fatalf("replay without its ledger: %v; want the ledger named and `leadscorer topics apply`", err)
	}
	noTopic := e.k.Name("no.such.input")
	_, err = Replay(ctx, Options{Brokers: e.k.Brokers, DLQTopic: e.dlq, Topic: noTopic, Filter: AllRecords()})
	if err == nil || !strings.Contains(err.Error(), "topic "+noTopic+" does not exist") {
		t.Fatalf("replay to a missing topic: %v; want it named", err)
	}
	if n := len(drain(t, e, e.in)); n != 0 {
		t.Fatalf("%d records replayed by refused replays", n)
	}
	codec := schemas.NewCodec(e.k.Registry(), schemas.IDs{})
	_, err = Rescore(ctx, []Lead{{ID: "00Q5e0000000000001", CRD: 1}}, RescoreOptions{Brokers: e.k.Brokers, Topic: noTopic, Codec: codec})
	if err == nil || !strings.Contains(err.Error(), "topic "+noTopic+" does not exist") {
		t.Fatalf("rescore to a missing topic: %v; want it named", err)
	}
}
