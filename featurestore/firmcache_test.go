package featurestore

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/leadscorer/leadscorer/features"
)

// firmReads records the fields of every HMGET of a firm key sent through
// the client it hooks.
type firmReads struct {
	prefix string
	mu     sync.Mutex
	fields [][]string
}

func (h *firmReads) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *firmReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *firmReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.mu.Lock()
		for _, c := range cmds {
			args := c.Args()
			if c.Name() != "hmget" || len(args) < 3 {
				continue
			}
			if k, _ := args[1].(string); len(k) > len(h.prefix) && k[:len(h.prefix)] == h.prefix {
				var fs []string
				for _, a := range args[2:] {
					fs = append(fs, a.(string))
				}
				h.fields = append(h.fields, fs)
			}
		}
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}

// take returns the field lists read since the last call.
func (h *firmReads) take() [][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.fields
	h.fields = nil
	return f
}

var _ redis.Hook = (*firmReads)(nil)

// The decoded-firm cache must never serve a firm the store no longer holds
// under its digest: a rewrite of any field, a malformed value or a deleted
// firm shows in the next lookup. A firm cached under the digest the store
// holds is asked for its digest only.
func TestFirmCacheFollowsTheStore(t *testing.T) {
	ctx := context.Background()
	s, rdb := newTestStore(t)
	reads := &firmReads{prefix: s.FirmKey(0)[:len(s.prefix)+len("firm:")]}
	rdb.AddHook(reads)
	firm := features.Firm{CRD: 7101, RepCount: 40, Arrivals: days(day(2025, 1, 2), day(2025, 3, 4)),
		Departures: days(day(2025, 2, 1)), SnapshotAt: snap}
	adv := features.Advisor{CRD: 1101, FirmCRD: 7101, RepType: "IA", SnapshotAt: snap}
	if err := s.PutFirms(ctx, []features.Firm{firm}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAdvisors(ctx, []features.Advisor{adv}); err != nil {
		t.Fatal(err)
	}
	reads.take()
	lookup := func(s *Store) (Result, int) {
		t.Helper()
		out := make([]Result, 1)
		before := roundTrips(t, s)
		if err := s.Lookup(ctx, []Request{{CRD: adv.CRD}}, out); err != nil {
			t.Fatal(err)
		}
		return out[0], int(roundTrips(t, s) - before)
	}
	full := [][]string{firmReadFields}
	digestOnly := [][]string{{fieldFirmDigest}}
	fullAgain := [][]string{{fieldFirmDigest}, firmReadFields}
	asStored := func(r Result) string {
		if r.Err != nil || !r.FirmFound || !reflect.DeepEqual(r.Firm, firm) {
			return "firm not as stored"
		}
		return ""
	}
	// rewrite stores the firm's values as given, with the digest of
	// digestOf (nil: no digest field).
	rewrite := func(vals map[string]string, digestOf map[string]string) error {
		args := []any{}
		for f, v := range vals {
			args = append(args, f, v)
		}
		if digestOf != nil {
			var vs []string
			for _, f := range firmFields {
				vs = append(vs, digestOf[f])
			}
			args = append(args, fieldFirmDigest, firmDigest(vs))
		} else if err := rdb.HDel(ctx, s.FirmKey(firm.CRD), fieldFirmDigest).Err(); err != nil {
			return err
		}
		if len(args) == 0 {
			return nil
		}
		return rdb.HSet(ctx, s.FirmKey(firm.CRD), args...).Err()
	}
	stored := func() map[string]string {
		m, err := rdb.HGetAll(ctx, s.FirmKey(firm.CRD)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	steps := []struct {
		name       string
		change     func() error
		fresh      bool // a new Store on the same keys: a scorer that just started
		check      func(r Result) string
		reads      [][]string
		roundTrips int
	}{
		{"first lookup decodes", nil, false, asStored, full, 2},
		{"an unchanged firm is asked for its digest only", nil, false, asStored, digestOnly, 2},
		{"a rewritten arrival list shows", func() error {
			firm.Arrivals = append(firm.Arrivals, features.DayOf(day(2025, 5, 6)))
			return s.PutFirms(ctx, []features.Firm{firm})
		}, false, asStored, fullAgain, 3},
		{"a rewritten rep count shows", func() error {
			firm.RepCount = 41
			return s.PutFirms(ctx, []features.Firm{firm})
		}, false, asStored, fullAgain, 3},
		{"then the digest only again", nil, false, asStored, digestOnly, 2},
		// The limit of the digest: a writer that changes a value without
		// it is not seen by a scorer that has the firm cached ...
		{"a value written without its digest is not seen by the cache", func() error {
			return rdb.HSet(ctx, s.FirmKey(firm.CRD), fieldFirmReps, "99").Err()
		}, false, asStored, digestOnly, 2},
		// ... and refused, naming the digest, by one that reads it in full.
		{"a value written without its digest is refused on a full read", nil, true, func(r Result) string {
			var mal *MalformedError
			if !errors.As(r.Err, &mal) || mal.Field != fieldFirmDigest || r.FirmFound {
				return "want a MalformedError naming the digest, got " + errString(r.Err)
			}
			return ""
		}, full, 2},
		{"a malformed value written with its digest is an error, not the cached firm", func() error {
			m := stored()
			m[fieldFirmReps] = "41"
			m[fieldFirmArrive] = "1,x"
			return rewrite(map[string]string{fieldFirmReps: "41", fieldFirmArrive: "1,x"}, m)
		}, false, func(r Result) string {
			var mal *MalformedError
			if !errors.As(r.Err, &mal) || mal.Field != fieldFirmArrive || r.FirmFound {
				return "want a MalformedError naming the arrivals, got " + errString(r.Err)
			}
			return ""
		}, fullAgain, 3},
		{"a firm stored without a digest (an older writer) is read in full", func() error {
			if err := s.PutFirms(ctx, []features.Firm{firm}); err != nil {
				return err
			}
			return rewrite(map[string]string{}, nil)
		}, false, asStored, fullAgain, 3},
		{"and in full every time, following its values", func() error {
			firm.RepCount = 42
			return rewrite(map[string]string{fieldFirmReps: strconv.Itoa(firm.RepCount)}, nil)
		}, false, asStored, full, 2},
		{"a firm key holding another type is an error, not the cached firm", func() error {
			if err := s.PutFirms(ctx, []features.Firm{firm}); err != nil {
				return err
			}
			if r, _ := lookup(s); asStored(r) != "" {
				return errors.New("firm not cached")
			}
			reads.take()
			return rdb.Set(ctx, s.FirmKey(firm.CRD), "not a hash", 0).Err()
		}, false, func(r Result) string {
			var mal *MalformedError
			if !errors.As(r.Err, &mal) || mal.Key != s.FirmKey(firm.CRD) || r.FirmFound {
				return "want a MalformedError naming the key, got " + errString(r.Err)
			}
			return ""
		}, fullAgain, 3},
		{"a deleted firm is not found", func() error {
			if err := rdb.Del(ctx, s.FirmKey(firm.CRD)).Err(); err != nil {
				return err
			}
			if err := s.PutFirms(ctx, []features.Firm{firm}); err != nil {
				return err
			}
			if r, _ := lookup(s); asStored(r) != "" {
				return errors.New("firm not cached")
			}
			reads.take()
			return rdb.Del(ctx, s.FirmKey(firm.CRD)).Err()
		}, false, func(r Result) string {
			if r.FirmFound || r.Err != nil {
				return "deleted firm served"
			}
			return ""
		}, fullAgain, 3},
		{"and then read in full while it is missing", nil, false, func(r Result) string {
			if r.FirmFound || r.Err != nil {
				return "deleted firm served"
			}
			return ""
		}, full, 2},
	}
	for _, st := range steps {
		if st.change != nil {
			if err := st.change(); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		reads.take()
		store := s
		if st.fresh {
			store = New(rdb, s.prefix, prometheus.NewRegistry())
		}
		r, trips := lookup(store)
		if msg := st.check(r); msg != "" {
			t.Errorf("%s: %s", st.name, msg)
		}
		if got := reads.take(); !slices.EqualFunc(got, st.reads, slices.Equal) {
			t.Errorf("%s: firm reads asked for %q, want %q", st.name, got, st.reads)
		}
		if trips != st.roundTrips {
			t.Errorf("%s: %d round trips, want %d", st.name, trips, st.roundTrips)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
