package featurestore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadscorer/leadscorer/features"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func days(ts ...time.Time) []features.Day {
	out := make([]features.Day, len(ts))
	for i, t := range ts {
		out[i] = features.DayOf(t)
	}
	return out
}

var snap = time.Date(2025, 12, 1, 6, 30, 15, 0, time.UTC)

func TestAdvisorsAndFirmsRoundTripEveryField(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	firms := []features.Firm{
		{CRD: 7001, RepCount: 1200, Wirehouse: true, BrokerProtocol: true, IndependentRIA: false,
			Arrivals:   days(day(2024, 12, 31), day(2025, 1, 2), day(2025, 1, 2), day(2025, 6, 30)),
			Departures: days(day(2025, 2, 1)), SnapshotAt: snap},
		{CRD: 7002, RepCount: 3, IndependentRIA: true, SnapshotAt: snap},  // no moves at all
		{CRD: 7003, Departures: days(day(1969, 12, 30), day(1970, 1, 2))}, // days before 1970, unknown snapshot
	}
	advisors := []struct {
		name string
		a    features.Advisor
	}{
		{"every field set", features.Advisor{CRD: 1001, FirmCRD: 7001, FirmStart: day(2023, 4, 3),
			IndustryStart: day(2009, 9, 1), RepType: "DR", SnapshotAt: snap,
			History: []features.Employment{{FirmCRD: 7001, Start: day(2023, 4, 3)}, {FirmCRD: 7002, Start: day(2019, 1, 15)}}}},
		{"unknown dates stay unknown", features.Advisor{CRD: 1002, FirmCRD: 7002, RepType: "IA",
			History: []features.Employment{{FirmCRD: 7002}}}},
		{"empty history", features.Advisor{CRD: 1003, FirmCRD: 7003, FirmStart: day(2020, 2, 29), RepType: "BR", SnapshotAt: snap}},
		{"no firm and no rep type", features.Advisor{CRD: 1004, IndustryStart: day(1985, 6, 1), SnapshotAt: snap}},
	}
	var all []features.Advisor
	for _, tc := range advisors {
		all = append(all, tc.a)
	}
	if err := s.PutFirms(ctx, firms); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAdvisors(ctx, all); err != nil {
		t.Fatal(err)
	}
	firmByCRD := map[int64]features.Firm{}
	for _, f := range firms {
		firmByCRD[f.CRD] = f
	}
	for _, tc := range advisors {
		t.Run(tc.name, func(t *testing.T) {
			out := make([]Result, 1)
			if err := s.Lookup(ctx, []Request{{CRD: tc.a.CRD}}, out); err != nil {
				t.Fatal(err)
			}
			r := out[0]
			if r.Err != nil || !r.AdvisorFound {
				t.Fatalf("found=%v err=%v", r.AdvisorFound, r.Err)
			}
			if !reflect.DeepEqual(r.Advisor, tc.a) {
				t.Errorf("advisor read back\n got %+v\nwant %+v", r.Advisor, tc.a)
			}
			wantFirm, hasFirm := firmByCRD[tc.a.FirmCRD]
			if r.FirmFound != hasFirm {
				t.Fatalf("FirmFound = %v, want %v", r.FirmFound, hasFirm)
			}
			if hasFirm && !reflect.DeepEqual(r.Firm, wantFirm) {
				t.Errorf("firm read back\n got %+v\nwant %+v", r.Firm, wantFirm)
			}
		})
	}
}

func TestPutAdvisorRewriteLeavesNothingStale(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	old := features.Advisor{CRD: 5, FirmCRD: 9, FirmStart: day(2020, 1, 1), RepType: "IA",
		History: []features.Employment{{FirmCRD: 9, Start: day(2020, 1, 1)}}, SnapshotAt: snap}
	now := features.Advisor{CRD: 5} // everything became unknown
	for _, a := range []features.Advisor{old, now} {
		if err := s.PutAdvisors(ctx, []features.Advisor{a}); err != nil {
			t.Fatal(err)
		}
	}
	out := make([]Result, 1)
	if err := s.Lookup(ctx, []Request{{CRD: 5}}, out); err != nil {
		t.Fatal(err)
	}
	if !out[0].AdvisorFound || !reflect.DeepEqual(out[0].Advisor, now) {
		t.Errorf("got %+v found=%v, want %+v", out[0].Advisor, out[0].AdvisorFound, now)
	}
}

func TestPutRejectsUnstorableRecords(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	tests := []struct {
		name string
		put  func() error
	}{
		{"advisor crd must be positive", func() error { return s.PutAdvisors(ctx, []features.Advisor{{CRD: 0}}) }},
		{"advisor rep type must be IA, DR, BR or empty", func() error {
			return s.PutAdvisors(ctx, []features.Advisor{{CRD: 1, RepType: "RIA"}})
		}},
		{"history firm crd must be positive", func() error {
			return s.PutAdvisors(ctx, []features.Advisor{{CRD: 1, History: []features.Employment{{FirmCRD: 0}}}})
		}},
		{"firm arrivals must be ascending", func() error {
			return s.PutFirms(ctx, []features.Firm{{CRD: 2, Arrivals: []features.Day{20000, 19999}}})
		}},
		{"firm rep count must not be negative", func() error { return s.PutFirms(ctx, []features.Firm{{CRD: 2, RepCount: -1}}) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.put(); err == nil {
				t.Fatal("want an error")
			}
		})
	}
	if n, err := rdb.Keys(ctx, s.Prefix()+"*").Result(); err != nil || len(n) != 0 {
		t.Errorf("rejected puts wrote keys %v (err %v)", n, err)
	}
}

// population stores nAdv advisors spread over nFirm firms and returns them.
func population(t testing.TB, s *Store, nAdv, nFirm int) []features.Advisor {
	t.Helper()
	ctx := context.Background()
	firms := make([]features.Firm, nFirm)
	for i := range firms {
		firms[i] = features.Firm{CRD: int64(9000 + i), RepCount: 10 + i,
			Arrivals: days(day(2025, 1, 1), day(2025, 3, 1)), Departures: days(day(2025, 2, 1)), SnapshotAt: snap}
	}
	advisors := make([]features.Advisor, nAdv)
	for i := range advisors {
		f := firms[i%nFirm].CRD
		advisors[i] = features.Advisor{CRD: int64(100000 + i), FirmCRD: f, FirmStart: day(2022, 5, 1+i%28), RepType: "IA",
			History: []features.Employment{{FirmCRD: f, Start: day(2022, 5, 1+i%28)}}, SnapshotAt: snap}
	}
	if err := s.PutFirms(ctx, firms); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAdvisors(ctx, advisors); err != nil {
		t.Fatal(err)
	}
	return advisors
}

func TestLookupRoundTrips(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	advisors := population(t, s, 200, 50)

	batch500 := make([]Request, 500)
	for i := range batch500 {
		batch500[i] = Request{CRD: advisors[i%len(advisors)].CRD, LeadID: fmt.Sprintf("00Q%015d", i)}
	}
	unknown := []Request{{CRD: 1, LeadID: "00Qa"}, {CRD: 2}}
	tests := []struct {
		name string
		reqs []Request
		want float64
	}{
		{"500 events over 50 firms cost exactly 2 round trips", batch500, 2},
		{"a batch whose advisors are all unknown costs 1 round trip", unknown, 1},
		{"a batch with no CRD and no lead id costs nothing", []Request{{}, {CRD: -3}}, 0},
		{"an empty batch costs nothing", nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := make([]Result, len(tc.reqs))
			before := roundTrips(t, s)
			if err := s.Lookup(ctx, tc.reqs, out); err != nil {
				t.Fatal(err)
			}
			if got := roundTrips(t, s) - before; got != tc.want {
				t.Errorf("round trips = %v, want %v", got, tc.want)
			}
		})
	}

	// And the 500 results are the right ones, including when out is reused.
	out := make([]Result, len(batch500))
	for pass := 0; pass < 2; pass++ {
		if err := s.Lookup(ctx, batch500, out); err != nil {
			t.Fatal(err)
		}
		for i, r := range out {
			want := advisors[i%len(advisors)]
			if r.Err != nil || !r.AdvisorFound || !r.FirmFound || r.HasLastSink {
				t.Fatalf("pass %d result %d: found=%v firm=%v sink=%v err=%v", pass, i, r.AdvisorFound, r.FirmFound, r.HasLastSink, r.Err)
			}
			if !reflect.DeepEqual(r.Advisor, want) || r.Firm.CRD != want.FirmCRD || r.Firm.RepCount != int(want.FirmCRD-9000+10) {
				t.Fatalf("pass %d result %d: advisor %+v firm %+v, want advisor %+v", pass, i, r.Advisor, r.Firm, want)
			}
		}
	}
}

func TestLookupFlagsWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	if err := s.PutFirms(ctx, []features.Firm{{CRD: 70, RepCount: 5}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAdvisors(ctx, []features.Advisor{
		{CRD: 1, FirmCRD: 70}, {CRD: 2, FirmCRD: 71}, {CRD: 3},
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                string
		req                 Request
		advisor, firm, sink bool
	}{
		{"a stored advisor at a stored firm finds both", Request{CRD: 1, LeadID: "L1"}, true, true, false},
		{"an unknown advisor is flagged not found", Request{CRD: 999, LeadID: "L2"}, false, false, false},
		{"an advisor whose firm is not stored has no firm", Request{CRD: 2}, true, false, false},
		{"an advisor with no current firm has no firm", Request{CRD: 3}, true, false, false},
		{"a lead without CRD finds nothing", Request{LeadID: "L3"}, false, false, false},
	}
	reqs := make([]Request, len(tests))
	for i, tc := range tests {
		reqs[i] = tc.req
	}
	// Results left over from an earlier batch must not leak into this one.
	out := make([]Result, len(reqs))
	for i := range out {
		out[i] = Result{AdvisorFound: true, FirmFound: true, HasLastSink: true, Err: errors.New("stale"),
			Advisor: features.Advisor{CRD: 42, RepType: "IA"}, Firm: features.Firm{CRD: 43, RepCount: 9},
			LastSink: SinkState{LeadID: "old", Percentile: 3}}
	}
	if err := s.Lookup(ctx, reqs, out); err != nil {
		t.Fatal(err)
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := out[i]
			if r.Err != nil {
				t.Fatalf("err = %v", r.Err)
			}
			if r.AdvisorFound != tc.advisor || r.FirmFound != tc.firm || r.HasLastSink != tc.sink {
				t.Errorf("advisor=%v firm=%v sink=%v, want %v %v %v", r.AdvisorFound, r.FirmFound, r.HasLastSink, tc.advisor, tc.firm, tc.sink)
			}
			if !r.AdvisorFound && r.Advisor.CRD != 0 || !r.FirmFound && r.Firm.CRD != 0 || !r.HasLastSink && r.LastSink.LeadID != "" {
				t.Errorf("what was not found still holds an earlier batch's data: %+v", r)
			}
		})
	}
}

func TestMalformedRecordFailsOnlyItsRequests(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		corrupt func(s *Store, rdb *redis.Client) error
		key     func(s *Store) string
		field   string
	}{
		{"a firm crd that is not a number", func(s *Store, rdb *redis.Client) error {
			return rdb.Set(ctx, s.AdvisorKey(1), "seventy|||||", 0).Err()
		}, func(s *Store) string { return s.AdvisorKey(1) }, fieldAdvFirm},
		{"a day that is not a day number", func(s *Store, rdb *redis.Client) error {
			return rdb.Set(ctx, s.AdvisorKey(1), "70|2023-04-03||||", 0).Err()
		}, func(s *Store) string { return s.AdvisorKey(1) }, fieldAdvFirmDay},
		{"an advisor value missing a part", func(s *Store, rdb *redis.Client) error {
			return rdb.Set(ctx, s.AdvisorKey(1), "70||||", 0).Err()
		}, func(s *Store) string { return s.AdvisorKey(1) }, ""},
		{"an advisor value with a part too many", func(s *Store, rdb *redis.Client) error {
			return rdb.Set(ctx, s.AdvisorKey(1), "70||||||", 0).Err()
		}, func(s *Store) string { return s.AdvisorKey(1) }, ""},
		{"a history entry without a day separator", func(s *Store, rdb *redis.Client) error {
			return rdb.Set(ctx, s.AdvisorKey(1), "70||||70:19000,71|", 0).Err()
		}, func(s *Store) string { return s.AdvisorKey(1) }, fieldAdvHistory},
		{"an unknown rep type", func(s *Store, rdb *redis.Client) error {
			return rdb.Set(ctx, s.AdvisorKey(1), "70|||XX||", 0).Err()
		}, func(s *Store) string { return s.AdvisorKey(1) }, fieldAdvRepType},
		{"an empty firm", func(s *Store, rdb *redis.Client) error {
			return rdb.Set(ctx, s.AdvisorKey(1), "|||||", 0).Err()
		}, func(s *Store) string { return s.AdvisorKey(1) }, fieldAdvFirm},
		{"a firm flag other than 0 or 1", func(s *Store, rdb *redis.Client) error {
			return rdb.HSet(ctx, s.FirmKey(70), fieldFirmWire, "true").Err()
		}, func(s *Store) string { return s.FirmKey(70) }, fieldFirmWire},
		{"departures going back in time", func(s *Store, rdb *redis.Client) error {
			return rdb.HSet(ctx, s.FirmKey(70), fieldFirmDepart, "20000,5,-1").Err()
		}, func(s *Store) string { return s.FirmKey(70) }, fieldFirmDepart},
		{"a sink percentile above 100", func(s *Store, rdb *redis.Client) error {
			return rdb.Set(ctx, s.SinkKey("L1"), "0.5|101|0|0|v4.1.0", 0).Err()
		}, func(s *Store) string { return s.SinkKey("L1") }, fieldSinkPct},
		{"a sink explanation hash that is not hex", func(s *Store, rdb *redis.Client) error {
			return rdb.Set(ctx, s.SinkKey("L1"), "0.5|50|0|zz|v4.1.0", 0).Err()
		}, func(s *Store) string { return s.SinkKey("L1") }, fieldSinkExpl},
		{"a sink state cut short", func(s *Store, rdb *redis.Client) error {
			return rdb.Set(ctx, s.SinkKey("L1"), "0.5|50|0", 0).Err()
		}, func(s *Store) string { return s.SinkKey("L1") }, fieldSinkDeprio},
		{"a sink score that is not a number", func(s *Store, rdb *redis.Client) error {
			return rdb.Set(ctx, s.SinkKey("L1"), "high|50|0|0|v4.1.0", 0).Err()
		}, func(s *Store) string { return s.SinkKey("L1") }, fieldSinkScore},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, rdb := newTestStore(t)
			if err := s.PutFirms(ctx, []features.Firm{{CRD: 70, RepCount: 5}, {CRD: 80, RepCount: 6}}); err != nil {
				t.Fatal(err)
			}
			if err := s.PutAdvisors(ctx, []features.Advisor{{CRD: 1, FirmCRD: 70}, {CRD: 2, FirmCRD: 80}}); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveSink(ctx, []SinkState{
				{LeadID: "L1", Score: 0.5, Percentile: 50, Version: "v4.1.0"},
				{LeadID: "L2", Score: 0.5, Percentile: 50, Version: "v4.1.0"},
			}); err != nil {
				t.Fatal(err)
			}
			if err := tc.corrupt(s, rdb); err != nil {
				t.Fatal(err)
			}
			out := make([]Result, 2)
			if err := s.Lookup(ctx, []Request{{CRD: 1, LeadID: "L1"}, {CRD: 2, LeadID: "L2"}}, out); err != nil {
				t.Fatalf("a malformed record failed the batch: %v", err)
			}
			var mal *MalformedError
			if !errors.As(out[0].Err, &mal) {
				t.Fatalf("request 0 err = %v, want a *MalformedError", out[0].Err)
			}
			if mal.Key != tc.key(s) || mal.Field != tc.field {
				t.Errorf("MalformedError names key %q field %q, want %q %q (%v)", mal.Key, mal.Field, tc.key(s), tc.field, mal)
			}
			if r := out[1]; r.Err != nil || !r.AdvisorFound || !r.FirmFound || !r.HasLastSink {
				t.Errorf("the other request suffered: found=%v firm=%v sink=%v err=%v", r.AdvisorFound, r.FirmFound, r.HasLastSink, r.Err)
			}
		})
	}
}

func TestSaveSinkThenLookupReturnsIt(t *testing.T) {
	ctx := context.Background()
	s, rdb := newTestStore(t)
	states := []SinkState{
		{LeadID: "00Q5e00000AbCdEFGH", Score: 0.4213370999999999, Percentile: 17, Deprioritize: true, Version: "v4.1.0", ExplanationHash: 0xfedcba9876543210},
		{LeadID: "00Q5e00000AbCdEXYZ", Score: 0.6, Percentile: 100, Version: "v4.0.0"},
	}
	// Saving twice is what an at-least-once producer does: same record.
	var stored [2][]any
	for i := range stored {
		if err := s.SaveSink(ctx, states); err != nil {
			t.Fatal(err)
		}
		stored[i] = rdb.MGet(ctx, s.SinkKey(states[0].LeadID), s.SinkKey(states[1].LeadID)).Val()
	}
	if !reflect.DeepEqual(stored[0], stored[1]) {
		t.Errorf("saving the same states again changed the stored values: %q then %q", stored[0], stored[1])
	}
	out := make([]Result, len(states))
	reqs := make([]Request, len(states))
	ids := make([]string, len(states))
	for i, st := range states {
		reqs[i].LeadID, ids[i] = st.LeadID, st.LeadID
	}
	if err := s.Lookup(ctx, reqs, out); err != nil {
		t.Fatal(err)
	}
	recs := make([]LeadRecord, len(states))
	if err := s.LoadLeads(ctx, ids, recs, nil); err != nil {
		t.Fatal(err)
	}
	for i, st := range states {
		if !out[i].HasLastSink || out[i].LastSink != st {
			t.Errorf("lead %s: Lookup got %+v (has=%v), want %+v", st.LeadID, out[i].LastSink, out[i].HasLastSink, st)
		}
		if !recs[i].HasLastSink || recs[i].LastSink != st {
			t.Errorf("lead %s: LoadLeads got %+v (has=%v), want %+v", st.LeadID, recs[i].LastSink, recs[i].HasLastSink, st)
		}
	}
}

// More states than one command carries: every one is saved, each under
// its own key, in one round trip; forgetting some deletes exactly those,
// in one round trip.
func TestSaveAndForgetSinkAcrossChunks(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	const n = 2*putChunk + 3
	states := make([]SinkState, n)
	reqs := make([]Request, n)
	var forget []string
	for i := range states {
		states[i] = SinkState{LeadID: fmt.Sprintf("00Q5e%013d", i), Score: float64(i) / n, Percentile: 1 + i%100, Deprioritize: i%2 == 0, Version: "v4.1.0", ExplanationHash: uint64(i)}
		reqs[i] = Request{LeadID: states[i].LeadID}
		if i%3 != 0 { // more than one DEL's worth
			forget = append(forget, states[i].LeadID)
		}
	}
	// The client's first pipeline dials a connection of its own, whose
	// set-up commands the hook counts too: dial it first.
	if err := s.ForgetSink(ctx, []string{"none"}); err != nil {
		t.Fatal(err)
	}
	before := roundTrips(t, s)
	if err := s.SaveSink(ctx, states); err != nil {
		t.Fatal(err)
	}
	if trips := roundTrips(t, s) - before; trips != 1 {
		t.Fatalf("saving %d states took %v round trips, want 1", n, trips)
	}
	out := make([]Result, n)
	if err := s.Lookup(ctx, reqs, out); err != nil {
		t.Fatal(err)
	}
	for i, st := range states {
		if !out[i].HasLastSink || out[i].LastSink != st {
			t.Fatalf("lead %d: got %+v (has=%v), want %+v", i, out[i].LastSink, out[i].HasLastSink, st)
		}
	}
	before = roundTrips(t, s)
	if err := s.ForgetSink(ctx, forget); err != nil {
		t.Fatal(err)
	}
	if trips := roundTrips(t, s) - before; trips != 1 {
		t.Fatalf("forgetting %d states took %v round trips, want 1", len(forget), trips)
	}
	if err := s.Lookup(ctx, reqs, out); err != nil {
		t.Fatal(err)
	}
	for i := range states {
		if want := i%3 == 0; out[i].HasLastSink != want {
			t.Fatalf("lead %d after forgetting two in three: has state %v, want %v", i, out[i].HasLastSink, want)
		}
	}
}

func TestSaveSinkRejectsUnstorableStates(t *testing.T) {
	s, _ := newTestStore(t)
	ok := SinkState{LeadID: "L", Score: 0.5, Percentile: 50, Version: "v4.1.0"}
	tests := []struct {
		name   string
		mutate func(*SinkState)
	}{
		{"lead id must not be empty", func(st *SinkState) { st.LeadID = "" }},
		{"percentile must be at least 1", func(st *SinkState) { st.Percentile = 0 }},
		{"percentile must be at most 100", func(st *SinkState) { st.Percentile = 101 }},
		{"version must not be empty", func(st *SinkState) { st.Version = "" }},
		{"version must not contain the separator", func(st *SinkState) { st.Version = "v4|1" }},
		{"score must be finite", func(st *SinkState) { st.Score = float64Inf() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := ok
			tc.mutate(&st)
			if err := s.SaveSink(context.Background(), []SinkState{ok, st}); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func float64Inf() float64 { var z float64; return 1 / z }

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestRedisDownIsAnErrorNotAResult(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: closedAddr(t), MaxRetries: -1, DialTimeout: time.Second, DialerRetries: 1})
	defer rdb.Close()
	s := New(rdb, "", nil)
	ctx := context.Background()
	out := make([]Result, 2)
	err := s.Lookup(ctx, []Request{{CRD: 1, LeadID: "L"}, {CRD: 2}}, out)
	if err == nil {
		t.Fatal("Lookup against a closed port returned no error")
	}
	var mal *MalformedError
	if errors.As(err, &mal) {
		t.Errorf("a connection failure was reported as malformed data: %v", err)
	}
	if out[0].AdvisorFound || out[1].AdvisorFound {
		t.Error("Lookup reported found advisors without Redis")
	}
	if err := s.SaveSink(ctx, []SinkState{{LeadID: "L", Score: 0.5, Percentile: 1, Version: "v"}}); err == nil {
		t.Error("SaveSink against a closed port returned no error")
	}
	if err := s.PutAdvisors(ctx, []features.Advisor{{CRD: 1}}); err == nil {
		t.Error("PutAdvisors against a closed port returned no error")
	}
	if got := counterValue(t, s.metrics.errs); got < 3 {
		t.Errorf("leadscorer_redis_errors_total = %v, want at least 3", got)
	}
}

func TestLookupNeedsOneResultPerRequest(t *testing.T) {
	s, _ := newTestStore(t)
	if err := s.Lookup(context.Background(), make([]Request, 3), make([]Result, 2)); err == nil {
		t.Fatal("want an error for 3 requests into 2 results")
	}
}

// BenchmarkLookup measures a batch of 1000 events (400 distinct advisors,
// 50 firms, every lead with sink state) against the real Redis. Divide
// allocs/op by 1000 for allocations per event.
func BenchmarkLookup(b *testing.B) {
	ctx := context.Background()
	s, _ := newTestStore(b)
	advisors := population(b, s, 400, 50)
	const n = 1000
	reqs := make([]Request, n)
	states := make([]SinkState, n)
	for i := range reqs {
		reqs[i] = Request{CRD: advisors[i%len(advisors)].CRD, LeadID: fmt.Sprintf("00Q%015d", i)}
		states[i] = SinkState{LeadID: reqs[i].LeadID, Score: 0.5, Percentile: 40, Version: "v4.1.0", ExplanationHash: uint64(i)}
	}
	if err := s.SaveSink(ctx, states); err != nil {
		b.Fatal(err)
	}
	out := make([]Result, n)
	if err := s.Lookup(ctx, reqs, out); err != nil { // warm the pools
		b.Fatal(err)
	}
	before := roundTrips(b, s)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := s.Lookup(ctx, reqs, out); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric((roundTrips(b, s)-before)/float64(b.N), "roundtrips/op")
	b.ReportMetric(float64(n), "events/op")
}

// Lookup pools its working memory; concurrent batches must not share it
// (run with -race).
func TestConcurrentLookupsDoNotMix(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	advisors := population(t, s, 40, 8)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			reqs := make([]Request, 30)
			for i := range reqs {
				reqs[i] = Request{CRD: advisors[(g*7+i)%len(advisors)].CRD}
			}
			out := make([]Result, len(reqs))
			for round := 0; round < 20; round++ {
				if err := s.Lookup(ctx, reqs, out); err != nil {
					errs <- err
					return
				}
				for i, r := range out {
					want := advisors[(g*7+i)%len(advisors)]
					if !r.AdvisorFound || r.Advisor.CRD != want.CRD || r.Firm.CRD != want.FirmCRD {
						errs <- fmt.Errorf("goroutine %d result %d: got advisor %d firm %d, want %d %d", g, i, r.Advisor.CRD, r.Firm.CRD, want.CRD, want.FirmCRD)
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkSaveSink saves the quota-guard state of 1,000 leads a call, as
// a committed batch of 1,000 sink records does. Divide by 1000 for a lead.
func BenchmarkSaveSink(b *testing.B) {
	ctx := context.Background()
	s, _ := newTestStore(b)
	const n = 1000
	states := make([]SinkState, n)
	for i := range states {
		states[i] = SinkState{LeadID: fmt.Sprintf("00Q5e%013d", i), Score: 0.4213370999999999, Percentile: 17, Deprioritize: true, Version: "v4.1.0", ExplanationHash: uint64(i) * 0x9e3779b97f4a7c15}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.SaveSink(ctx, states); err != nil {
			b.Fatal(err)
		}
	}
}

// An advisor stored as a hash by the layout before reads as not found, not
// as an error (MGET answers nil for a key of another type), and writing the
// advisor replaces it with the documented value.
func TestAdvisorOfTheHashLayoutIsReplacedByPutAdvisors(t *testing.T) {
	ctx := context.Background()
	s, rdb := newTestStore(t)
	if err := rdb.HSet(ctx, s.AdvisorKey(1001), fieldAdvFirm, "7001", fieldAdvRepType, "DR").Err(); err != nil {
		t.Fatal(err)
	}
	out := make([]Result, 1)
	if err := s.Lookup(ctx, []Request{{CRD: 1001}}, out); err != nil {
		t.Fatal(err)
	}
	if out[0].AdvisorFound || out[0].Err != nil {
		t.Fatalf("a hash under the advisor's key: found %v, err %v; want not found", out[0].AdvisorFound, out[0].Err)
	}
	a := features.Advisor{CRD: 1001, FirmCRD: 7001, FirmStart: features.Day(19450).Time(), IndustryStart: features.Day(14488).Time(),
		RepType: "DR", History: []features.Employment{{FirmCRD: 7001, Start: features.Day(19450).Time()}, {FirmCRD: 7002, Start: features.Day(17911).Time()}},
		SnapshotAt: time.Unix(1764568800, 0).UTC()}
	if err := s.PutAdvisors(ctx, []features.Advisor{a}); err != nil {
		t.Fatal(err)
	}
	// The example of docs/REDIS.md.
	if got, want := rdb.Get(ctx, s.AdvisorKey(1001)).Val(), "7001|19450|14488|DR|7001:19450,7002:17911|1764568800"; got != want {
		t.Fatalf("stored %q, want %q", got, want)
	}
	if err := s.Lookup(ctx, []Request{{CRD: 1001}}, out); err != nil {
		t.Fatal(err)
	}
	if !out[0].AdvisorFound || !reflect.DeepEqual(out[0].Advisor, a) {
		t.Fatalf("read back %+v (found %v), want %+v", out[0].Advisor, out[0].AdvisorFound, a)
	}
}

// A store whose advisors are hashes (loaded by a release before advisors
// were strings) is refused, naming a key and what to do; strings pass.
func TestCheckLayoutRefusesHashAdvisors(t *testing.T) {
	ctx := context.Background()
	s, rdb := newTestStore(t)
	if err := s.PutAdvisors(ctx, []features.Advisor{{CRD: 1, FirmCRD: 70}, {CRD: 2, FirmCRD: 70}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckLayout(ctx); err != nil {
		t.Fatalf("advisors as strings: %v", err)
	}
	if err := rdb.HSet(ctx, s.AdvisorKey(3), fieldAdvFirm, "70").Err(); err != nil {
		t.Fatal(err)
	}
	err := s.CheckLayout(ctx)
	if err == nil || !strings.Contains(err.Error(), s.AdvisorKey(3)) || !strings.Contains(err.Error(), "features load") {
		t.Fatalf("an advisor hash: %v, want an error naming %s and features load", err, s.AdvisorKey(3))
	}
}
