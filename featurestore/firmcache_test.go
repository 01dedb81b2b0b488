package featurestore

import (
	"context"
	"reflect"
	"testing"

	"github.com/leadscorer/leadscorer/features"
)

// The decoded-firm cache must never serve a firm the store no longer holds:
// a rewrite of any field, a malformed value or a deleted firm shows in the
// next lookup.
func TestFirmCacheFollowsTheStore(t *testing.T) {
	ctx := context.Background()
	s, rdb := newTestStore(t)
	firm := features.Firm{CRD: 7101, RepCount: 40, Arrivals: days(day(2025, 1, 2), day(2025, 3, 4)),
		Departures: days(day(2025, 2, 1)), SnapshotAt: snap}
	adv := features.Advisor{CRD: 1101, FirmCRD: 7101, RepType: "IA", SnapshotAt: snap}
	if err := s.PutFirms(ctx, []features.Firm{firm}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAdvisors(ctx, []features.Advisor{adv}); err != nil {
		t.Fatal(err)
	}
	lookup := func() Result {
		t.Helper()
		out := make([]Result, 1)
		if err := s.Lookup(ctx, []Request{{CRD: adv.CRD}}, out); err != nil {
			t.Fatal(err)
		}
		return out[0]
	}
	steps := []struct {
		name   string
		change func() error
		check  func(r Result) string
	}{
		{"first lookup decodes", nil, func(r Result) string {
			if !r.FirmFound || !reflect.DeepEqual(r.Firm, firm) {
				return "firm not as stored"
			}
			return ""
		}},
		{"unchanged firm is the same", nil, func(r Result) string {
			if !r.FirmFound || !reflect.DeepEqual(r.Firm, firm) {
				return "firm not as stored"
			}
			return ""
		}},
		{"a rewritten arrival list shows", func() error {
			firm.Arrivals = append(firm.Arrivals, features.DayOf(day(2025, 5, 6)))
			return s.PutFirms(ctx, []features.Firm{firm})
		}, func(r Result) string {
			if !reflect.DeepEqual(r.Firm.Arrivals, firm.Arrivals) {
				return "stale arrivals served from the cache"
			}
			return ""
		}},
		{"a rewritten rep count shows", func() error {
			firm.RepCount = 41
			return s.PutFirms(ctx, []features.Firm{firm})
		}, func(r Result) string {
			if r.Firm.RepCount != 41 {
				return "stale rep count served from the cache"
			}
			return ""
		}},
		{"a malformed value is an error, not the cached firm", func() error {
			return rdb.HSet(ctx, s.FirmKey(firm.CRD), fieldFirmArrive, "1,x").Err()
		}, func(r Result) string {
			if r.Err == nil || r.FirmFound {
				return "malformed firm served"
			}
			return ""
		}},
		{"a deleted firm is not found", func() error {
			return rdb.Del(ctx, s.FirmKey(firm.CRD)).Err()
		}, func(r Result) string {
			if r.FirmFound || r.Err != nil {
				return "deleted firm served"
			}
			return ""
		}},
	}
	for _, st := range steps {
		if st.change != nil {
			if err := st.change(); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		if msg := st.check(lookup()); msg != "" {
			t.Errorf("%s: %s", st.name, msg)
		}
	}
}
