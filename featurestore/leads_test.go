package featurestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// leadIDs names n Leads.
func leadIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("00Q5e%013d", i)
	}
	return ids
}

// nextWrites loads the Leads' records and returns a write of each with its
// position moved to offset at (a tombstone with ttl for every tenth).
func nextWrites(ctx context.Context, s *Store, ids []string, recs []LeadRecord, at int64, ttl time.Duration) ([]LeadWrite, error) {
	if err := s.LoadLeads(ctx, ids, recs, nil); err != nil {
		return nil, err
	}
	writes := make([]LeadWrite, len(ids))
	for i, id := range ids {
		w := LeadWrite{LeadID: id, Record: recs[i]}
		w.Record.State = LeadState{CommitTimestamp: at, CommitNumber: at, TransactionKey: "t" + strconv.FormatInt(at, 10), SequenceNumber: 1, CRD: strconv.Itoa(1000 + i)}
		w.Record.At = InputPosition{Partition: int32(i % 6), Offset: at}
		if i%10 == 9 {
			w.Record.State.Deleted = true
			w.TTL = ttl
		}
		writes[i] = w
	}
	return writes, nil
}

// SaveLeads writes each Lead only if its key still holds what LoadLeads
// read (or is still absent), writes the others, expires tombstones, and
// says so when one moved; for one Lead, a few, and more than a thousand.
func TestSaveLeadsWritesOnlyWhatDidNotMove(t *testing.T) {
	ctx := context.Background()
	s, rdb := newTestStore(t)
	for _, n := range []int{1, 7, 1003} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			ids := leadIDs(n)
			keys := make([]string, n)
			for i, id := range ids {
				keys[i] = s.LeadKey(id)
			}
			rdb.Del(ctx, keys...)
			recs := make([]LeadRecord, n)
			// Absent keys: every write goes in.
			writes, err := nextWrites(ctx, s, ids, recs, 1, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.SaveLeads(ctx, writes); err != nil {
				t.Fatal(err)
			}
			if err := s.LoadLeads(ctx, ids, recs, nil); err != nil {
				t.Fatal(err)
			}
			for i, r := range recs {
				if !r.Found || r.At.Offset != 1 || r.State.CRD != strconv.Itoa(1000+i) {
					t.Fatalf("lead %d after the first save: %+v", i, r)
				}
				ttl := rdb.PTTL(ctx, s.LeadKey(ids[i])).Val()
				if tomb := i%10 == 9; tomb != (ttl > 0) {
					t.Fatalf("lead %d: TTL %v, tombstone %v", i, ttl, tomb)
				}
			}
			// Another scorer writes the last Lead between the read and
			// the write: it keeps its value, the others are written.
			if writes, err = nextWrites(ctx, s, ids, recs, 2, time.Hour); err != nil {
				t.Fatal(err)
			}
			rdb.Set(ctx, s.LeadKey(ids[n-1]), "theirs", 0)
			if err := s.SaveLeads(ctx, writes); !errors.Is(err, ErrLeadStateMoved) {
				t.Fatalf("SaveLeads: %v, want ErrLeadStateMoved", err)
			}
			if got := rdb.Get(ctx, s.LeadKey(ids[n-1])).Val(); got != "theirs" {
				t.Fatalf("the moved Lead was overwritten: %q", got)
			}
			for i := range n - 1 {
				want := appendLeadRecord(nil, &writes[i].Record)
				if got := rdb.Get(ctx, s.LeadKey(ids[i])).Val(); got != string(want) {
					t.Fatalf("lead %d: %q, want %q", i, got, want)
				}
			}
		})
	}
}

// BenchmarkSaveLeads writes 1,000 Leads' records a call (read with
// LoadLeads first, outside the timer; every tenth a tombstone with a TTL)
// and reports the Redis server's CPU per Lead for the script (INFO
// commandstats, evalsha). Flattering: the same 1,000 keys every call, hot
// in the server's caches, and the server on loopback; in a drain of the
// end-to-end benchmark, with 33,357 Leads, the script costs the server
// about three times as much per Lead (docs/BENCHMARKS.md).
func BenchmarkSaveLeads(b *testing.B) {
	ctx := context.Background()
	s, rdb := newTestStore(b)
	const n = 1000
	ids := leadIDs(n)
	recs := make([]LeadRecord, n)
	var usec, calls float64
	b.ReportAllocs()
	b.ResetTimer()
	for at := int64(1); b.Loop(); at++ {
		b.StopTimer()
		writes, err := nextWrites(ctx, s, ids, recs, at, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		u0, c0 := evalshaStats(b, rdb)
		b.StartTimer()
		if err := s.SaveLeads(ctx, writes); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		u1, c1 := evalshaStats(b, rdb)
		usec, calls = usec+u1-u0, calls+c1-c0
		b.StartTimer()
	}
	b.StopTimer()
	if calls > 0 {
		b.ReportMetric(usec/calls/n, "redis-us/lead")
	}
}

// evalshaStats reads the server's total microseconds and calls of EVALSHA.
func evalshaStats(tb testing.TB, rdb *redis.Client) (usec, calls float64) {
	tb.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:")
		if !ok {
			continue
		}
		for kv := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			f, _ := strconv.ParseFloat(v, 64)
			switch k {
			case "calls":
				calls = f
			case "usec":
				usec = f
			}
		}
	}
	return usec, calls
}

// appendQueryEscaped writes what url.QueryEscape returns, for every byte
// and for strings of them, and queryUnescape reads what url.QueryUnescape
// does, escaped or not, malformed or not.
func TestQueryEscapingIsURLs(t *testing.T) {
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	cases := []string{"", "Call Scheduled", "0004ba37-9e28", "a+b&c=d/e?f", "Überweisung ✓", string(all)}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		if got, want := string(appendQueryEscaped([]byte("x"), s)), "x"+url.QueryEscape(s); got != want {
			t.Fatalf("%q: %q, want %q", s, got, want)
		}
		for _, in := range []string{url.QueryEscape(s), s, s + "%", s + "%zz+"} {
			got, err := queryUnescape(in)
			want, wantErr := url.QueryUnescape(in)
			if got != want || (err == nil) != (wantErr == nil) {
				t.Fatalf("unescape %q: %q, %v; want %q, %v", in, got, err, want, wantErr)
			}
		}
	}
}

// BenchmarkDecodeLeadRecord decodes a typical stored Lead record, as
// LoadLeads does for every Lead it finds: "state" when the batch starts
// from the state after the last batch (nearly always), "redo" when it
// redoes that batch and needs the state before it too.
func BenchmarkDecodeLeadRecord(b *testing.B) {
	const v = "v1|3:48213|1764586812345,10767459616301,0004ba37-9e28,1,ESc,5093442,Call+Scheduled|3:47990|1764586800000,10767459616286,0004ba37-9e11,1,E,5093442,Contacted"
	for _, redo := range []bool{false, true} {
		name := map[bool]string{false: "state", true: "redo"}[redo]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var r LeadRecord
			for b.Loop() {
				r = LeadRecord{}
				if err := decodeLeadRecord(v, &r, func(InputPosition) bool { return redo }); err != nil {
					b.Fatal(err)
				}
			}
			if r.HasPrev != true || (r.Prev.CRD != "") != redo {
				b.Fatalf("decoded %+v", r)
			}
		})
	}
}

// LoadLeads decodes a Lead's state before the last batch only when the
// batch redoes that batch; a malformed one is an error then, and only then.
func TestLoadLeadsDecodesPrevForARedo(t *testing.T) {
	ctx := context.Background()
	s, rdb := newTestStore(t)
	ids := leadIDs(1)
	recs := make([]LeadRecord, 1)
	for at := int64(1); at <= 2; at++ {
		writes, err := nextWrites(ctx, s, ids, recs, at, 0)
		if err != nil {
			t.Fatal(err)
		}
		w := &writes[0]
		w.Record.Prev, w.Record.PrevAt, w.Record.HasPrev = recs[0].State, recs[0].At, recs[0].Found
		if err := s.SaveLeads(ctx, writes); err != nil {
			t.Fatal(err)
		}
	}
	first := LeadState{CommitTimestamp: 1, CommitNumber: 1, TransactionKey: "t1", SequenceNumber: 1, CRD: "1000"}
	for _, redo := range []bool{false, true} {
		var asked []InputPosition
		err := s.LoadLeads(ctx, ids, recs, func(at InputPosition) bool { asked = append(asked, at); return redo })
		if err != nil {
			t.Fatal(err)
		}
		r := recs[0]
		if len(asked) != 1 || asked[0] != r.At || r.At.Offset != 2 || !r.HasPrev || r.PrevAt.Offset != 1 || r.State.CommitNumber != 2 {
			t.Fatalf("redo %v: asked %v, read %+v", redo, asked, r)
		}
		if want := map[bool]LeadState{true: first}[redo]; r.Prev != want {
			t.Fatalf("redo %v: Prev %+v, want %+v", redo, r.Prev, want)
		}
	}
	// The state before, malformed: unread unless needed.
	v := rdb.Get(ctx, s.LeadKey(ids[0])).Val()
	rdb.Set(ctx, s.LeadKey(ids[0]), v[:strings.LastIndexByte(v, '|')+1]+"junk", 0)
	if err := s.LoadLeads(ctx, ids, recs, func(InputPosition) bool { return false }); err != nil {
		t.Fatalf("without a redo: %v", err)
	}
	var mal *MalformedError
	if err := s.LoadLeads(ctx, ids, recs, func(InputPosition) bool { return true }); !errors.As(err, &mal) || !strings.Contains(err.Error(), "prev state") {
		t.Fatalf("with a redo: %v, want a malformed prev state", err)
	}
}
