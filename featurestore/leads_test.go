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
	if err := s.LoadLeads(ctx, ids, recs); err != nil {
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
			if err := s.LoadLeads(ctx, ids, recs); err != nil {
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
// and for strings of them, so the stored states read back with
// url.QueryUnescape as before.
func TestAppendQueryEscapedIsQueryEscape(t *testing.T) {
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
	}
}
