package featurestore

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/internal/testenv"
)

// documentedACL returns the command rules of the least-privilege user
// docs/SECURITY.md documents: what follows its key pattern.
func documentedACL(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("../docs/SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	const head = "ACL SETUSER leadscorer on >PASSWORD ~leadscorer:* "
	for line := range strings.SplitSeq(string(doc), "\n") {
		if rules, ok := strings.CutPrefix(line, head); ok {
			return strings.Fields(rules)
		}
	}
	t.Fatalf("docs/SECURITY.md has no line starting %q", head)
	return nil
}

// The user docs/SECURITY.md documents for the scorer, limited to its key
// prefix, can do everything the scorer and the population loader ask of
// Redis: check the advisors' layout, write advisors and firms, look a batch
// up, read, write and compare-and-set Lead states, forget and save quota
// states.
func TestDocumentedACLUserServes(t *testing.T) {
	ctx := context.Background()
	r := testenv.NewRedis(t)
	user, pass := "leadscorer-acl-"+strings.TrimSuffix(r.Prefix, ":"), "acl-password-93d1"
	args := []any{"ACL", "SETUSER", user, "reset", "on", ">" + pass, "~" + r.Prefix + "*"}
	for _, rule := range documentedACL(t) {
		args = append(args, rule)
	}
	if err := r.Client.Do(ctx, args...).Err(); err != nil {
		t.Fatalf("ACL SETUSER with the documented rules: %v", err)
	}
	t.Cleanup(func() { r.Client.Do(context.Background(), "ACL", "DELUSER", user) })
	opt := *r.Client.Options()
	opt.Username, opt.Password = user, pass
	rdb := redis.NewClient(&opt)
	t.Cleanup(func() { rdb.Close() })
	s := New(rdb, r.Prefix, prometheus.NewRegistry())
	if err := s.CheckLayout(ctx); err != nil {
		t.Fatalf("CheckLayout: %v", err)
	}

	firm := features.Firm{CRD: 7001, RepCount: 12, Arrivals: days(day(2025, 1, 2)), SnapshotAt: snap}
	adv := features.Advisor{CRD: 1001, FirmCRD: 7001, FirmStart: day(2023, 4, 3), RepType: "DR", SnapshotAt: snap}
	if err := s.PutFirms(ctx, []features.Firm{firm}); err != nil {
		t.Fatalf("PutFirms: %v", err)
	}
	if err := s.PutAdvisors(ctx, []features.Advisor{adv}); err != nil {
		t.Fatalf("PutAdvisors: %v", err)
	}
	ids := leadIDs(3)
	sinks := []SinkState{{LeadID: ids[0], Score: 0.5, Percentile: 50, Version: "v4.1.0"}}
	if err := s.SaveSink(ctx, sinks); err != nil {
		t.Fatalf("SaveSink: %v", err)
	}
	out := make([]Result, 1)
	if err := s.Lookup(ctx, []Request{{LeadID: ids[0], CRD: 1001}}, out); err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if !out[0].AdvisorFound || !out[0].FirmFound || !out[0].HasLastSink {
		t.Fatalf("Lookup as the documented user: %+v", out[0])
	}
	recs := make([]LeadRecord, len(ids))
	writes, err := nextWrites(ctx, s, ids, recs, 1, time.Hour)
	if err != nil {
		t.Fatalf("LoadLeads: %v", err)
	}
	if err := s.SaveLeads(ctx, writes); err != nil {
		t.Fatalf("SaveLeads: %v", err)
	}
	if err := s.ForgetSink(ctx, ids[:1]); err != nil {
		t.Fatalf("ForgetSink: %v", err)
	}
	if err := s.LoadLeads(ctx, ids, recs, nil); err != nil {
		t.Fatalf("LoadLeads: %v", err)
	}
	for i, rec := range recs {
		if !rec.Found || rec.HasLastSink {
			t.Fatalf("lead %d after the writes: found %v, quota state %v; want found and none", i, rec.Found, rec.HasLastSink)
		}
	}
}
