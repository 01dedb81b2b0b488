package service

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The checklist's last step, "remove v4.0.0 from active scoring": once
// v4.0.0 is sunset in the registry file, the running scorer's reload stops
// scoring it; its shadow records carry v4.1.0 alone.
func TestSunsetVersionStopsScoringOnReload(t *testing.T) {
	h := newHarness(t)
	h.cfg.Registry = copyModels(t)
	ctx := context.Background()
	svc, err := New(ctx, h.cfg, nil, WithClock(func() time.Time { return asOf }))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	versions := func() []string {
		t.Helper()
		out, err := svc.Pipeline().Transform(ctx, []*kgo.Record{h.event("e1", "00Q5e000000ABCDEAA", advisors[0].CRD)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range out {
			if r.Topic != h.cfg.TopicShadow {
				continue
			}
			var s schemas.LeadScoreShadow
			if err := h.codec.DecodeShadow(ctx, r.Value, &s); err != nil {
				t.Fatal(err)
			}
			for _, v := range s.Scores {
				got = append(got, v.Version)
			}
		}
		return got
	}
	if got := versions(); !slices.Equal(got, []string{"v4.0.0", "v4.1.0"}) {
		t.Fatalf("before: shadow scores of %v, want both versions", got)
	}

	at := asOf
	if _, err := scoring.EditRegistry(h.cfg.Registry, func(r *scoring.Registry) error {
		if err := r.PromoteChecked("v4.1.0", "test", "ops", at, "test: gates and sign-offs are tested elsewhere"); err != nil {
			return err
		}
		for _, stage := range scoring.PostDeploymentSignOffs {
			if err := r.SignOff("v4.1.0", stage, "eng", "", at.AddDate(0, 0, 21)); err != nil {
				return err
			}
		}
		return r.Sunset("v4.0.0", "ops", "", at.AddDate(0, 0, 21))
	}); err != nil {
		t.Fatal(err)
	}
	if got := versions(); !slices.Equal(got, []string{"v4.0.0", "v4.1.0"}) {
		t.Fatalf("before the reload: %v, want the serving registry unchanged", got)
	}
	if err := svc.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := versions(); !slices.Equal(got, []string{"v4.1.0"}) {
		t.Fatalf("after the reload: shadow scores of %v, want v4.1.0 alone", got)
	}
}
