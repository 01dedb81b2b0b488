package loadgen

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestPickerSpreadsKeysZipfLike(t *testing.T) {
	leads := make([]Lead, 10000)
	for i := range leads {
		leads[i] = Lead{ID: string(rune('a' + i%26)), CRD: int64(i + 1)}
	}
	p := newPicker(leads, DefaultZipfS, 7)
	counts := map[int64]int{}
	const n = 200_000
	for range n {
		counts[p.next().CRD]++
	}
	freq := make([]int, 0, len(counts))
	for _, c := range counts {
		freq = append(freq, c)
	}
	slices.Sort(freq)
	slices.Reverse(freq)
	tests := []struct {
		name string
		ok   bool
	}{
		{"many distinct leads are used", len(counts) > 2000},
		{"the hottest lead is hot but not everything", freq[0] > n/50 && freq[0] < n/4},
		{"the hottest is hotter than the tenth", freq[0] > 3*freq[9]},
	}
	for _, tc := range tests {
		if !tc.ok {
			t.Errorf("%s: %d distinct, top counts %v", tc.name, len(counts), freq[:10])
		}
	}
}

func TestShadowEventTimeReadsTheEncodedField(t *testing.T) {
	c := schemas.NewCodec(nil, schemas.IDs{Shadow: 3})
	at := time.Date(2026, 3, 4, 5, 6, 7, 891_000_000, time.UTC)
	rec, err := c.AppendShadow(nil, &schemas.LeadScoreShadow{EventID: "e-1", LeadID: "00Q000000000000AAA", CRD: 123456,
		EventTime: at, ScoredAt: at.Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := shadowEventTime(rec)
	if err != nil || !got.Equal(at) {
		t.Fatalf("event time %v, %v; want %v", got, err, at)
	}
	for n := range len(rec) - 1 {
		if _, err := shadowEventTime(rec[:n]); err == nil && n < 5 {
			t.Errorf("%d bytes: no error for a record without its header", n)
		}
	}
}

func TestQuantileIsNearestRank(t *testing.T) {
	xs := make([]float64, 1000)
	for i := range xs {
		xs[i] = float64(i + 1)
	}
	for _, tc := range []struct {
		q    float64
		want float64
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0, 1}} {
		if got := quantile(xs, tc.q); got != tc.want {
			t.Errorf("q%v = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := quantile([]float64{7}, 0.999); got != 7 {
		t.Errorf("one sample: %v", got)
	}
}

func TestPassthroughCopiesEachRecordToEveryTopic(t *testing.T) {
	p := &Passthrough{Topics: []string{"a", "b"}}
	in := []*kgo.Record{{Key: []byte("k1"), Value: []byte("v1")}, {Key: []byte("k2"), Value: []byte("v2")}}
	out, err := p.Transform(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 4 {
		t.Fatalf("%d outputs for 2 inputs and 2 topics", len(out))
	}
	for i, r := range out {
		src := in[i/2]
		if r.Topic != p.Topics[i%2] || string(r.Key) != string(src.Key) || string(r.Value) != string(src.Value) {
			t.Errorf("output %d: %s %s %s", i, r.Topic, r.Key, r.Value)
		}
	}
}

func TestRunRefusesImpossibleOptions(t *testing.T) {
	leads := []Lead{{ID: "x", CRD: 1}}
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"no leads", Options{Count: 1}},
		{"no bound", Options{Leads: leads}},
		{"negative rate", Options{Leads: leads, Count: 1, Rate: -1}},
		{"zipf exponent at most 1", Options{Leads: leads, Count: 1, ZipfS: 1}},
	} {
		if _, err := Run(context.Background(), tc.o); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if math.IsNaN(Stats{}.Rate()) {
		t.Error("rate of an empty run is NaN")
	}
}

// At a fixed rate each event's time is its due time, start + n/rate, so
// latency measured from it includes any delay of the generator itself.
func TestRunAtAFixedRateStampsDueTimes(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	codec := schemas.NewCodec(nil, schemas.IDs{LeadChanged: 1})
	leads := []Lead{{ID: "00Q000000000001AAA", CRD: 1}, {ID: "00Q000000000002AAA", CRD: 2}, {ID: "00Q000000000003AAA", CRD: 3}}
	const rate, count = 2000.0, 300
	st, err := Run(context.Background(), Options{Brokers: cluster.ListenAddrs(), Topic: "in", Codec: codec,
		Leads: leads, Rate: rate, Count: count, Seed: 5, Format: config.InputLeadChanged})
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != count || st.Failed != 0 {
		t.Fatalf("sent %d, failed %d; want %d, 0", st.Sent, st.Failed, count)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("in"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	times := map[int]time.Time{}
	for len(times) < count && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			var e schemas.LeadChanged
			if err := codec.DecodeLeadChanged(ctx, r.Value, &e); err != nil {
				t.Fatal(err)
			}
			if string(r.Key) != e.LeadID {
				t.Errorf("key %s, lead %s", r.Key, e.LeadID)
			}
			n, err := strconv.Atoi(e.EventID[strings.LastIndexByte(e.EventID, '-')+1:])
			if err != nil {
				t.Fatalf("event id %q: %v", e.EventID, err)
			}
			times[n] = e.EventTime
		})
	}
	if len(times) != count {
		t.Fatalf("read %d distinct events, want %d", len(times), count)
	}
	for n := 1; n < count; n++ {
		want := time.Duration(float64(n) / rate * float64(time.Second))
		if d := times[n].Sub(times[0]); d < want-time.Millisecond || d > want+time.Millisecond {
			t.Fatalf("event %d at +%v from event 0, want +%v (1 ms resolution)", n, d, want)
		}
	}
}

// The generator writes change events as the CDC connector does: one
// partition, committed at the due times (several in a millisecond), in
// order; with the Zipf shape each
// Lead is created before it is updated.
func TestRunWritesChangeEventsByDefault(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	leads := []Lead{{ID: "00Q000000000001AAA", CRD: 1}, {ID: "00Q000000000002AAA", CRD: 2}, {ID: "00Q000000000003AAA", CRD: 3}}
	const rate, count = 2000.0, 200
	st, err := Run(context.Background(), Options{Brokers: cluster.ListenAddrs(), Topic: "in", JSON: true,
		Leads: leads, Rate: rate, Count: count, Seed: 5, Shape: ShapeZipf})
	if err != nil || st.Sent != count {
		t.Fatalf("sent %d: %v", st.Sent, err)
	}
	seen := map[string]bool{}
	var last int64
	n := readChanges(t, cluster, count, func(r *kgo.Record, c *schemas.LeadChange) {
		if r.Partition != 0 {
			t.Fatalf("a record in partition %d: the connector writes one", r.Partition)
		}
		id := c.Header.RecordIDs[0]
		if !seen[id] && c.Header.ChangeType != schemas.ChangeCreate {
			t.Fatalf("the first change of %s is a %s", id, c.Header.ChangeType)
		}
		seen[id] = true
		if c.Header.CommitTimestamp < last {
			t.Fatalf("commit %d after %d: not in order", c.Header.CommitTimestamp, last)
		}
		last = c.Header.CommitTimestamp
	})
	if n != count || len(seen) != len(leads) {
		t.Fatalf("read %d records of %d Leads", n, len(seen))
	}
}

// The default shape is the CDC simulation's: its change-event mix, and a
// key spread drawn uniformly from a pool of a fifth as many Leads as
// events, so every Lead of the pool changes several times and none
// dominates (unlike Zipf's hot Leads).
func TestRunDefaultShapeIsTheCDCSimulation(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	var leads []Lead
	for i := range 150 {
		leads = append(leads, Lead{ID: fmt.Sprintf("00Q5e0000%08dA", i), CRD: int64(i + 1), HasEmail: i%2 == 0})
	}
	const count = 2000 // a pool of 400: every Lead of the 150
	st, err := Run(context.Background(), Options{Brokers: cluster.ListenAddrs(), Topic: "in", JSON: true,
		Leads: leads, Count: count, Seed: 9, SpreadPartitions: true})
	if err != nil || st.Sent != count {
		t.Fatalf("sent %d: %v", st.Sent, err)
	}
	perLead, types, partitions, merged := map[string]int{}, map[string]int{}, map[int32]bool{}, 0
	n := readChanges(t, cluster, count, func(r *kgo.Record, c *schemas.LeadChange) {
		partitions[r.Partition] = true
		types[c.Header.ChangeType]++
		if len(c.Header.RecordIDs) > 1 {
			merged++
		}
		if c.Header.ChangeType == schemas.ChangeGapOverflow {
			return // names no Lead
		}
		for _, id := range c.Header.RecordIDs {
			perLead[id]++
		}
	})
	if n != count {
		t.Fatalf("read %d records of %d", n, count)
	}
	if len(perLead) != len(leads) {
		t.Fatalf("%d Leads changed, want every one of the %d", len(perLead), len(leads))
	}
	lo, hi := count, 0
	for _, k := range perLead {
		lo, hi = min(lo, k), max(hi, k)
	}
	if lo < 2 || hi > 40 {
		t.Fatalf("changes per Lead from %d to %d: not the uniform spread of about 13", lo, hi)
	}
	if types[schemas.ChangeCreate] < len(leads)/2 || types[schemas.ChangeUpdate] < count/2 || types[schemas.ChangeGapOverflow] != 1 || merged == 0 {
		t.Fatalf("change types %v, %d merged: not the CDC simulation's mix", types, merged)
	}
	if len(partitions) < 2 {
		t.Fatalf("partitions %v: SpreadPartitions writes by key", partitions)
	}
}

// readChanges reads up to count change events (JSON) from topic "in" of
// cluster, checks that each decodes and validates as the scorer's reader
// sees it, passes each to check and returns how many it read.
func readChanges(t *testing.T, cluster *kfake.Cluster, count int, check func(*kgo.Record, *schemas.LeadChange)) int {
	t.Helper()
	reader, err := schemas.NewCDCReader(schemas.NewCodec(nil, schemas.IDs{}), []string{"FA_CRD__c"})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("in"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	for n < count && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			n++
			var c schemas.LeadChange
			if err := reader.Decode(ctx, r.Value, &c); err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			check(r, &c)
		})
	}
	return n
}

// A prepared run sends, from its start, the events a live run starting
// then would make, each committed at its due time.
func TestPreparedRunSendsTheEventsOfItsStart(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	var leads []Lead
	for i := range 40 {
		leads = append(leads, Lead{ID: fmt.Sprintf("00Q5e0000%08dA", i), CRD: int64(i + 1)})
	}
	const rate = 4000.0
	opts := Options{Brokers: cluster.ListenAddrs(), Topic: "in", JSON: true, Leads: leads,
		Rate: rate, Duration: 100 * time.Millisecond, Seed: 3}
	p, err := Prepare(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Start().After(time.Now()) {
		t.Fatalf("start %v is not ahead", p.Start())
	}
	if p.events() != 400 {
		t.Fatalf("%d events prepared, want rate x duration = 400", p.events())
	}
	live, err := checked(opts)
	if err != nil {
		t.Fatal(err)
	}
	src := newSource(live, p.Start())
	var want [][]byte
	for n := range p.events() {
		recs, err := src.next(nil, n, dueAt(p.Start(), n, rate, time.Time{}))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			want = append(want, r.Value)
		}
	}
	opts.Prepared = p
	st, err := Run(context.Background(), opts)
	if err != nil || st.Sent != int64(len(want)) {
		t.Fatalf("sent %d of %d: %v", st.Sent, len(want), err)
	}
	i := 0
	end := p.Start().Add(opts.Duration).UnixMilli()
	readChanges(t, cluster, len(want), func(r *kgo.Record, c *schemas.LeadChange) {
		if string(r.Value) != string(want[i]) {
			t.Fatalf("record %d is not the live source's:\n%s\n%s", i, r.Value, want[i])
		}
		if ts := c.Header.CommitTimestamp; ts < p.Start().UnixMilli() || ts > end {
			t.Fatalf("record %d committed at %d, outside the run's [%d, %d]", i, ts, p.Start().UnixMilli(), end)
		}
		i++
	})
	if i != len(want) {
		t.Fatalf("read %d records of %d", i, len(want))
	}
}

// When making the events outlasts the first guess, they are made again
// for a later start, which is still ahead when Prepare returns.
func TestPrepareMakesTheEventsAgainWhenItsGuessWasShort(t *testing.T) {
	opts, err := checked(Options{JSON: true, Leads: []Lead{{ID: "00Q000000000001AAA", CRD: 1}},
		Rate: 1e6, Duration: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p, made, err := prepare(opts, 0, 2*time.Millisecond) // 20,000 events in under a millisecond: no
	if err != nil {
		t.Fatal(err)
	}
	if made != 2 {
		t.Fatalf("made the events %d times, want 2", made)
	}
	if p.events() != 20_000 || !p.Start().After(time.Now()) {
		t.Fatalf("%d events from %v", p.events(), p.Start())
	}
}
