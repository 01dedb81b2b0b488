package service

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/featurestore"
	"github.com/leadscorer/leadscorer/internal/process"
	"github.com/leadscorer/leadscorer/internal/testenv"
	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/leadscorer/leadscorer/topics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

const registryFile = "../models/registry.json"

var (
	asOf = time.Date(2025, 11, 3, 15, 4, 5, 0, time.UTC)
	day  = func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
)

// fixture is a small world: two firms, three advisors, and the records
// that are stored in Redis for them.
var (
	firms = []features.Firm{
		{CRD: 9001, RepCount: 40, BrokerProtocol: true, SnapshotAt: asOf.Add(-24 * time.Hour),
			Arrivals:   []features.Day{features.DayOf(day(2025, 3, 1))},
			Departures: []features.Day{features.DayOf(day(2025, 1, 5)), features.DayOf(day(2025, 8, 9)), features.DayOf(day(2025, 9, 1)), features.DayOf(day(2025, 10, 2))}},
		{CRD: 9002, RepCount: 5000, Wirehouse: true, SnapshotAt: asOf.Add(-90 * 24 * time.Hour)}, // stale
	}
	advisors = []features.Advisor{
		{CRD: 1001, FirmCRD: 9001, FirmStart: day(2024, 12, 1), IndustryStart: day(2012, 5, 1), RepType: "IA",
			History:    []features.Employment{{FirmCRD: 9001, Start: day(2024, 12, 1)}, {FirmCRD: 9002, Start: day(2023, 2, 1)}},
			SnapshotAt: asOf.Add(-24 * time.Hour)},
		{CRD: 1002, FirmCRD: 9002, FirmStart: day(2010, 1, 1), IndustryStart: day(2001, 1, 1), RepType: "BR",
			History: []features.Employment{{FirmCRD: 9002, Start: day(2010, 1, 1)}}, SnapshotAt: asOf.Add(-24 * time.Hour)},
		{CRD: 1003, RepType: "DR", SnapshotAt: asOf.Add(-24 * time.Hour)}, // no firm data
	}
)

type harness struct {
	t      *testing.T
	k      *testenv.Kafka
	log    *slog.Logger // the service's logger; nil discards
	cfg    *config.Config
	codec  *schemas.Codec
	rdb    *redis.Client
	models *scoring.Registry
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessOn(t, testenv.NewKafka(t))
}

// newHarnessOn configures a scorer on k's broker and registry, with the
// test's own topics, group, transactional id and Redis prefix, the
// fixture's advisors and firms in Redis and the schemas registered.
func newHarnessOn(t *testing.T, k *testenv.Kafka) *harness {
	t.Helper()
	ctx := context.Background()
	cfg := config.Default()
	cfg.InputFormat = config.InputLeadChanged // these tests produce LeadChanged records
	k.Configure(cfg)
	cfg.Registry = registryFile
	r := testenv.NewRedis(t)
	cfg.RedisURL, cfg.RedisPrefix = r.URL, r.Prefix
	cfg.HTTPAddr = ""
	cfg.ScoreEpsilon = 0.001

	store := featurestore.New(r.Client, cfg.RedisPrefix, nil)
	if err := store.PutFirms(ctx, firms); err != nil {
		t.Fatal(err)
	}
	if err := store.PutAdvisors(ctx, advisors); err != nil {
		t.Fatal(err)
	}
	srcl := k.Registry()
	ids, err := schemas.Register(ctx, srcl, topicsOf(cfg))
	if err != nil {
		t.Fatal(err)
	}
	models, err := scoring.LoadRegistry(registryFile)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, k: k, cfg: cfg, codec: schemas.NewCodec(srcl, ids), rdb: r.Client, models: models}
}

// topicsOf names the schemas' topics as cfg does.
func topicsOf(cfg *config.Config) schemas.Topics {
	return schemas.Topics{LeadChanged: cfg.TopicIn, Sfdc: cfg.TopicSfdc, Shadow: cfg.TopicShadow, Outcomes: cfg.TopicOutcomes}
}

// redisHostPort is the address of the test Redis.
func redisHostPort(t *testing.T) string {
	t.Helper()
	o, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	return o.Addr
}

func (h *harness) event(id, lead string, crd int64, changed ...string) *kgo.Record {
	h.t.Helper()
	if len(changed) == 0 {
		changed = []string{"Status"}
	}
	e := schemas.LeadChanged{EventID: id, LeadID: lead, CRD: crd, HasCRD: crd != 0, HasEmail: true,
		Stage: "Contacting", ChangedFields: changed, EventTime: asOf.Add(-time.Minute)}
	v, err := h.codec.AppendLeadChanged(nil, &e)
	if err != nil {
		h.t.Fatal(err)
	}
	return &kgo.Record{Topic: h.cfg.TopicIn, Key: []byte(lead), Value: v}
}

func (h *harness) produce(recs ...*kgo.Record) {
	h.t.Helper()
	h.k.Produce(recs...)
}

// score runs the service until the group has committed every input record,
// and returns it stopped (its metrics can still be gathered).
func (h *harness) score() *Service {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc, err := New(ctx, h.cfg, h.log, WithClock(func() time.Time { return asOf }))
	if err != nil {
		h.t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- svc.Run(runCtx) }()
	h.k.WaitCommitted(ctx, h.cfg.Group, h.cfg.TopicIn, errc)
	stop()
	if err := <-errc; err != nil {
		h.t.Fatal(err)
	}
	return svc
}

func (h *harness) drain(topic string) []*kgo.Record {
	h.t.Helper()
	return h.k.Drain(topic)
}

// expected computes, independently of the pipeline's plumbing, what each
// serving version must say about an advisor as of asOf.
func (h *harness) expected(crd int64) []schemas.VersionScore {
	h.t.Helper()
	var adv *features.Advisor
	for i := range advisors {
		if advisors[i].CRD == crd {
			adv = &advisors[i]
		}
	}
	var firm *features.Firm
	for i := range firms {
		if adv != nil && firms[i].CRD == adv.FirmCRD {
			firm = &firms[i]
		}
	}
	var vals features.Values
	features.Derive(asOf, features.Lead{HasEmail: true}, adv, firm, &vals)
	var out []schemas.VersionScore
	for _, v := range h.models.Serving() {
		l, err := features.NewLayout(v.Features)
		if err != nil {
			h.t.Fatal(err)
		}
		x := make([]float64, len(v.Features))
		l.Fill(&vals, x)
		s := v.Model.Score(x)
		p := v.Percentile(s)
		c := make([]float64, len(x)+1)
		if err := v.Model.Contributions(x, c); err != nil {
			h.t.Fatal(err)
		}
		fs := v.TopFactors(x, c, make([]scoring.Factor, 3))
		vs := schemas.VersionScore{Version: v.Name, Role: v.Role, Score: s, Percentile: p, Decile: scoring.Decile(p),
			Deprioritize: v.Deprioritize(p), UpgradeCandidate: v.Upgrade(p)}
		for _, f := range fs {
			vs.Factors = append(vs.Factors, schemas.Factor{Feature: f.Feature, Value: f.Value, Contribution: f.Contribution, Phrase: f.Phrase})
		}
		out = append(out, vs)
	}
	return out
}

func sameFloat(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

func TestStreamProducesExactlyTheExpectedRecords(t *testing.T) {
	h := newHarness(t)
	const (
		lead1 = "00Q5e00000AbCdEAAA"
		lead2 = "00Q5e00000AbCdFAAA"
		lead3 = "00Q5e00000AbCdGAAA"
		lead4 = "00Q5e00000AbCdHAAA"
	)
	good := h.event("e1", lead1, 1001)
	wrongMagic := append([]byte(nil), good.Value...)
	wrongMagic[0] = 7
	unknownID := append([]byte(nil), good.Value...)
	binary.BigEndian.PutUint32(unknownID[1:5], 4242)
	oversized := make([]byte, h.cfg.MaxRecordBytes+1)
	poison := map[string]*kgo.Record{
		"decode/random":     {Topic: h.cfg.TopicIn, Key: []byte("k1"), Value: []byte("definitely not avro")},
		"decode/magic":      {Topic: h.cfg.TopicIn, Key: []byte("k2"), Value: wrongMagic},
		"schema/unknown":    {Topic: h.cfg.TopicIn, Key: []byte("k3"), Value: unknownID},
		"validation/leadid": h.event("e8", "short", 1001),
		"validation/crd":    h.event("e9", lead2, 0),
		"size/oversized":    {Topic: h.cfg.TopicIn, Key: []byte("k4"), Value: oversized},
	}
	in := []*kgo.Record{
		good,
		h.event("e2", lead1, 1001), // same lead, same features: suppressed
		h.event("e3", lead2, 1002, "V4_Score__c", "V4_Scored_At__c"), // the sink's echo: skipped
		h.event("e4", lead2, 1002),                                   // stale firm data
		h.event("e5", lead3, 1003),                                   // advisor without firm data
		h.event("e6", lead4, 5555),                                   // unknown advisor: scored, flagged
	}
	for _, r := range poison {
		in = append(in, r)
	}
	h.produce(in...)
	h.score()

	// Shadow: one per scored event, every serving version, exact values.
	shadow := h.drain(h.cfg.TopicShadow)
	want := map[string]int64{"e1": 1001, "e2": 1001, "e4": 1002, "e5": 1003, "e6": 5555}
	if len(shadow) != len(want) {
		t.Fatalf("%d shadow records, want %d (one per scored event)", len(shadow), len(want))
	}
	for _, r := range shadow {
		var s schemas.LeadScoreShadow
		if err := h.codec.DecodeShadow(context.Background(), r.Value, &s); err != nil {
			t.Fatal(err)
		}
		crd, ok := want[s.EventID]
		if !ok {
			t.Fatalf("unexpected shadow record for event %q", s.EventID)
		}
		delete(want, s.EventID)
		if string(r.Key) != s.LeadID || s.CRD != crd || !s.ScoredAt.Equal(asOf) {
			t.Errorf("%s: key %s lead %s crd %d scored at %v", s.EventID, r.Key, s.LeadID, s.CRD, s.ScoredAt)
		}
		exp := h.expected(crd)
		if len(s.Scores) != len(exp) || len(exp) < 2 {
			t.Fatalf("%s: %d version scores, want %d (both versions)", s.EventID, len(s.Scores), len(exp))
		}
		for i, vs := range s.Scores {
			e := exp[i]
			if vs.Version != e.Version || vs.Role != e.Role || vs.Score != e.Score || vs.Percentile != e.Percentile ||
				vs.Decile != e.Decile || vs.Deprioritize != e.Deprioritize || vs.UpgradeCandidate != e.UpgradeCandidate ||
				len(vs.Factors) != len(e.Factors) {
				t.Errorf("%s %s: got %+v, want %+v", s.EventID, vs.Version, vs, e)
				continue
			}
			for j := range vs.Factors {
				g, w := vs.Factors[j], e.Factors[j]
				if g.Feature != w.Feature || !sameFloat(g.Value, w.Value) || g.Contribution != w.Contribution || g.Phrase != w.Phrase {
					t.Errorf("%s %s factor %d: got %+v, want %+v", s.EventID, vs.Version, j, g, w)
				}
			}
		}
		switch s.EventID {
		case "e4":
			if !s.Freshness.FirmStale || s.Freshness.AdvisorStale {
				t.Errorf("e4: freshness %+v, want the firm flagged stale only", s.Freshness)
			}
		case "e5":
			if !s.Freshness.AdvisorFound || s.Freshness.FirmFound {
				t.Errorf("e5: freshness %+v, want advisor found without firm", s.Freshness)
			}
		case "e6":
			if s.Freshness.AdvisorFound {
				t.Errorf("e6: unknown advisor not flagged: %+v", s.Freshness)
			}
		}
	}

	// Sink: production version only, one per lead whose Lead changes (e2 is
	// suppressed: same lead, same features, same score).
	sink := h.drain(h.cfg.TopicSfdc)
	prod := h.models.Production()
	wantSink := map[string]int64{"e1": 1001, "e4": 1002, "e5": 1003, "e6": 5555}
	if len(sink) != len(wantSink) {
		t.Fatalf("%d sink records, want %d", len(sink), len(wantSink))
	}
	for _, r := range sink {
		var s schemas.LeadScoreSfdc
		if err := h.codec.DecodeSfdc(context.Background(), r.Value, &s); err != nil {
			t.Fatal(err)
		}
		crd, ok := wantSink[s.TraceEventID]
		if !ok {
			t.Fatalf("unexpected sink record for event %q", s.TraceEventID)
		}
		delete(wantSink, s.TraceEventID)
		var e schemas.VersionScore
		for _, vs := range h.expected(crd) {
			if vs.Version == prod.Name {
				e = vs
			}
		}
		if string(r.Key) != s.ID || s.Score != e.Score || s.Percentile != e.Percentile || s.Deprioritize != e.Deprioritize ||
			s.ModelVersion != prod.Name || s.ObjectType != "Lead" || s.EventType != "updated" || !s.ScoredAt.Equal(asOf) {
			t.Errorf("sink %s: %+v, want production %+v", s.TraceEventID, s, e)
		}
		if s.Explanation == "" || !strings.Contains(s.Explanation, e.Factors[0].Phrase) {
			t.Errorf("sink %s: explanation %q lacks the top factor %q", s.TraceEventID, s.Explanation, e.Factors[0].Phrase)
		}
	}

	// DLQ: every poison record, bytes untouched, with its class.
	dlq := h.drain(h.cfg.TopicDLQ)
	if len(dlq) != len(poison) {
		t.Fatalf("%d DLQ records, want %d", len(dlq), len(poison))
	}
	for _, r := range dlq {
		class := producer.Header(r, producer.HeaderErrorClass)
		matched := false
		for name, p := range poison {
			same := string(p.Value) == string(r.Value)
			if size := producer.Header(r, producer.HeaderValueSize); size != "" {
				// Cut to max_record_bytes, with the original size.
				same = strings.HasPrefix(string(p.Value), string(r.Value)) && size == fmt.Sprint(len(p.Value)) &&
					len(r.Value) == h.cfg.MaxRecordBytes
			}
			if same && string(p.Key) == string(r.Key) {
				if !strings.HasPrefix(name, class+"/") {
					t.Errorf("%s went to the DLQ as %q", name, class)
				}
				if producer.Header(r, producer.HeaderErrorMessage) == "" || producer.Header(r, producer.HeaderSourceTopic) != h.cfg.TopicIn {
					t.Errorf("%s: DLQ headers incomplete: %v", name, r.Headers)
				}
				delete(poison, name)
				matched = true
				break
			}
		}
		if !matched {
			t.Errorf("DLQ record with class %s is not one of the poison records", class)
		}
	}
}

func TestSecondRunSuppressesUnchangedScores(t *testing.T) {
	h := newHarness(t)
	h.produce(h.event("a1", "00Q5e00000AbCdEAAA", 1001), h.event("a2", "00Q5e00000AbCdFAAA", 1002))
	h.score()
	// The same changes again, in a later batch and a new process: the quota
	// state in Redis suppresses both sink records; shadows are still written.
	h.produce(h.event("b1", "00Q5e00000AbCdEAAA", 1001), h.event("b2", "00Q5e00000AbCdFAAA", 1002))
	h.score()
	if n := len(h.drain(h.cfg.TopicSfdc)); n != 2 {
		t.Fatalf("%d sink records, want 2 (the second run's are suppressed)", n)
	}
	if n := len(h.drain(h.cfg.TopicShadow)); n != 4 {
		t.Fatalf("%d shadow records, want 4", n)
	}
}

// Every schema is registered under the configured topic's subject: the
// outcomes schema went to leads.outcomes.v1-value whatever topic_outcomes
// said.
func TestSchemasAreRegisteredUnderTheConfiguredTopics(t *testing.T) {
	h := newHarness(t)
	h.cfg.TopicIn, h.cfg.TopicSfdc, h.cfg.TopicShadow, h.cfg.TopicOutcomes = h.k.Name("t.in"), h.k.Name("t.sfdc"), h.k.Name("t.shadow"), h.k.Name("t.outcomes")
	h.k.CreateTopics(topics.Declared(h.cfg, h.k.ReplicationFactor)...)
	svc, err := New(context.Background(), h.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	if err := svc.Run(stopped); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	subjects, err := h.k.Registry().Subjects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{h.cfg.TopicIn + "-value", h.cfg.TopicSfdc + "-value", h.cfg.TopicShadow + "-value", h.cfg.TopicOutcomes + "-value"} {
		if !slices.Contains(subjects, want) {
			t.Errorf("subject %s not registered; subjects %v", want, subjects)
		}
	}
}

// A start-up that fails names the problem and leaves nothing running: in
// particular not the Kafka session, which has joined the group by the time
// the listeners are opened.
func TestStartupFailsNamingTheProblem(t *testing.T) {
	h := newHarness(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		name string
		edit func(c *config.Config)
		want string
	}{
		{"missing registry file", func(c *config.Config) { c.Registry = "does-not-exist.json" }, "does-not-exist.json"},
		{"redis unreachable", func(c *config.Config) { c.RedisURL = "redis://127.0.0.1:1/0" }, "redis"},
		{"http_addr taken", func(c *config.Config) { c.HTTPAddr = taken.Addr().String() }, "http_addr"},
		{"metrics_addr taken", func(c *config.Config) { c.MetricsAddr = taken.Addr().String() }, "metrics_addr"},
		// Nothing relies on the brokers creating a topic on first use.
		{"a topic not created", func(c *config.Config) { c.TopicSfdc = h.k.Name("never.created") }, "topic " + h.k.Name("never.created") + " does not exist; create the service's topics with `leadscorer topics apply`"},
		{"topics not created, with the validator", func(c *config.Config) {
			c.Validate, c.AutoRollback, c.TopicOutcomes, c.TopicRegistry = true, true, h.k.Name("no.outcomes"), h.k.Name("no.registry")
		}, "topics " + h.k.Name("no.outcomes") + ", " + h.k.Name("no.registry") + " do not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			c := *h.cfg
			tc.edit(&c)
			_, err := New(context.Background(), &c, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to name %q", err, tc.want)
			}
			goleak.VerifyNone(t, before)
		})
	}
}

// Every metric the service exports is documented in the README, and none
// is labelled with a Lead Id or CRD.
func TestMetricsAreDocumented(t *testing.T) {
	h := newHarness(t)
	svc, err := New(context.Background(), h.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := svc.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "leadscorer_") {
			continue
		}
		n++
		if !strings.Contains(string(readme), "`"+name) {
			t.Errorf("metric %s is not in the README", name)
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "lead_id", "crd", "email", "name":
					t.Errorf("metric %s has label %s", name, l.GetName())
				}
			}
		}
	}
	if n < 5 {
		t.Fatalf("only %d leadscorer metrics gathered", n)
	}
}

func TestReloadRefusesACorruptModelAndKeepsServing(t *testing.T) {
	h := newHarness(t)
	h.cfg.Registry = copyModels(t)
	svc, err := New(context.Background(), h.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	before := svc.Pipeline().Registry()

	// A corrupt model file: the registry's sha256 no longer matches.
	prod := before.Production()
	modelPath := filepath.Join(filepath.Dir(h.cfg.Registry), prod.Path)
	if err := os.WriteFile(modelPath, []byte(`{"learner": garbage`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := svc.Reload(); err == nil {
		t.Fatal("reload of a corrupt model succeeded")
	}
	if svc.Pipeline().Registry() != before {
		t.Fatal("a refused registry replaced the serving one")
	}
	if got := gauge(t, svc, "leadscorer_registry_reload_failing"); got != 1 {
		t.Fatalf("leadscorer_registry_reload_failing = %v, want 1", got)
	}

	// Restoring a valid model file is picked up and clears the failure.
	h2 := copyModels(t)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(h2), prod.Path))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(modelPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := svc.Reload(); err != nil {
		t.Fatal(err)
	}
	if svc.Pipeline().Registry() == before {
		t.Fatal("a valid reload did not replace the snapshot")
	}
	if got := gauge(t, svc, "leadscorer_registry_reload_failing"); got != 0 {
		t.Fatalf("leadscorer_registry_reload_failing = %v after a good reload", got)
	}
}

func gauge(t *testing.T, svc *Service, name string) float64 {
	t.Helper()
	mfs, err := svc.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func TestUnknownAdvisorPolicyDLQ(t *testing.T) {
	h := newHarness(t)
	h.cfg.UnknownAdvisor = "dlq"
	h.produce(h.event("u1", "00Q5e00000AbCdEAAA", 1001), h.event("u2", "00Q5e00000AbCdHAAA", 5555))
	h.score()
	dlq := h.drain(h.cfg.TopicDLQ)
	if len(dlq) != 1 || producer.Header(dlq[0], producer.HeaderErrorClass) != producer.ClassFeatures {
		t.Fatalf("DLQ %d records; want the unknown advisor's event, class features", len(dlq))
	}
	if n := len(h.drain(h.cfg.TopicShadow)); n != 1 {
		t.Fatalf("%d shadow records, want 1 (the known advisor)", n)
	}
}

func counter(t *testing.T, svc *Service, name string) float64 {
	t.Helper()
	mfs, err := svc.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			sum := 0.0
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	return 0
}

// A Redis outage is the batch's failure, not the records': the scorer
// retries, commits nothing and sends nothing to the DLQ meanwhile, and
// scores everything once Redis is back.
func TestRedisOutagePausesWithoutLossOrDLQ(t *testing.T) {
	h := newHarness(t)
	px, err := process.NewProxy(redisHostPort(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Cut)
	h.cfg.RedisURL = "redis://" + px.Addr() + "/0"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	svc, err := New(ctx, h.cfg, nil, WithClock(func() time.Time { return asOf }))
	if err != nil {
		t.Fatal(err)
	}
	px.Cut()
	h.produce(h.event("r1", "00Q5e00000AbCdEAAA", 1001), h.event("r2", "00Q5e00000AbCdFAAA", 1002))
	runCtx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- svc.Run(runCtx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for counter(t, svc, "leadscorer_redis_lookup_retries_total") < 3 {
		select {
		case <-ctx.Done():
			t.Fatal("the scorer never retried the lookup")
		case err := <-errc:
			t.Fatalf("service stopped: %v", err)
		case <-tick.C:
		}
	}
	if n := counter(t, svc, "leadscorer_kafka_transactions_committed_total"); n != 0 {
		t.Fatalf("%v batches committed while Redis was down", n)
	}
	if n := counter(t, svc, "leadscorer_dlq_records_total"); n != 0 {
		t.Fatalf("%v records sent to the DLQ for a Redis outage", n)
	}
	if err := px.Restore(); err != nil {
		t.Fatal(err)
	}
	for counter(t, svc, "leadscorer_events_scored_total") < 2 || counter(t, svc, "leadscorer_kafka_transactions_committed_total") < 1 {
		select {
		case <-ctx.Done():
			t.Fatal("the scorer did not catch up after Redis came back")
		case err := <-errc:
			t.Fatalf("service stopped: %v", err)
		case <-tick.C:
		}
	}
	stop()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n := len(h.drain(h.cfg.TopicShadow)); n != 2 {
		t.Fatalf("%d shadow records after the outage, want 2", n)
	}
	if n := len(h.drain(h.cfg.TopicDLQ)); n != 0 {
		t.Fatalf("%d DLQ records, want none", n)
	}
}

// run with validate=true serves the validator's dashboard on its own
// protected endpoints, judging by the rollback rule of its settings.
func TestRunWithValidatorServesTheDashboard(t *testing.T) {
	h := newHarness(t)
	h.cfg.Validate = true
	h.cfg.RollbackMinConversions = 40
	h.cfg.HTTPBearerToken = "dashboard-test-token"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	svc, err := New(ctx, h.cfg, nil, WithListener(ln))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- svc.Run(runCtx) }()
	url := "http://" + ln.Addr().String() + "/dashboard.json"
	get := func(token string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		code, body := get("dashboard-test-token")
		if code == http.StatusOK {
			if !strings.Contains(body, "v4.1.0") {
				t.Fatalf("dashboard JSON lacks the versions: %.300s", body)
			}
			var rep struct {
				Criteria struct{ Decision string } `json:"criteria"`
			}
			if err := json.Unmarshal([]byte(body), &rep); err != nil || !strings.Contains(rep.Criteria.Decision, ">= 40 conversions") {
				t.Fatalf("dashboard JSON does not judge by the rollback_min_conversions setting (40): %q, %v", rep.Criteria.Decision, err)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("dashboard never served: %d %s", code, body)
		case <-tick.C:
		}
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Fatalf("dashboard without the token: status %d, want 401", code)
	}
	stop()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// copyModels copies the registry and model files to a temporary folder the
// test may break.
func copyModels(t *testing.T) string {
	t.Helper()
	path, err := scoring.CopyRegistry(registryFile, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Records over max_record_bytes go to the DLQ cut to max_record_bytes, and
// several of them from one batch leave in one produce batch to one DLQ
// partition (same key): the DLQ topic as declared takes it. (At the
// 393216 bytes the Kubernetes manifest once set, the broker refused such
// a batch, and the transaction was retried and refused for ever.)
func TestOversizedRecordsOfOneBatchAllReachTheDLQ(t *testing.T) {
	h := newHarness(t)
	var in []*kgo.Record
	for range 4 {
		v := make([]byte, h.cfg.MaxRecordBytes+1)
		if _, err := crand.Read(v); err != nil { // random: the producer's compression cannot shrink it
			t.Fatal(err)
		}
		in = append(in, &kgo.Record{Topic: h.cfg.TopicIn, Key: []byte("same-key"), Value: v})
	}
	h.produce(in...)
	h.score()
	dlq := h.drain(h.cfg.TopicDLQ)
	if len(dlq) != len(in) {
		t.Fatalf("%d dead letters, want %d", len(dlq), len(in))
	}
	for _, r := range dlq {
		if producer.Header(r, producer.HeaderErrorClass) != "size" || len(r.Value) != h.cfg.MaxRecordBytes {
			t.Errorf("dead letter of class %q, %d bytes; want size, cut to %d", producer.Header(r, producer.HeaderErrorClass), len(r.Value), h.cfg.MaxRecordBytes)
		}
	}
}

// An input written in transactions (the CDC connector with exactly-once
// delivery, `leadscorer dlq replay`) has a marker after each transaction's
// records, taking an offset of its own. Once the scorer has scored
// everything, its group's committed offset is the end offset and the lag
// gauge reads 0: a consumer commits the offset after the last record it
// was given, and a marker it was not given stays "behind" for ever, so
// every tool that watches the group's lag (the gauge, KEDA's trigger,
// kafka-consumer-groups, a harness waiting for the group to catch up)
// would see the scorer one record short on each partition.
func TestTransactionalInputIsConsumedToItsEnd(t *testing.T) {
	h := newHarness(t)
	cl := h.k.Client(kgo.TransactionalID(h.k.Name("connector")))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i, batch := range [][]*kgo.Record{
		{h.event("t1", "00Q5e00000AbCdEAAA", 1001), h.event("t2", "00Q5e00000AbCdFAAA", 1002)},
		{h.event("t3", "00Q5e00000AbCdGAAA", 1003)},
	} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatalf("transaction %d: %v", i, err)
		}
	}
	h.k.WaitStable(h.cfg.TopicIn)

	svc, err := New(ctx, h.cfg, nil, WithClock(func() time.Time { return asOf }))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- svc.Run(runCtx) }()
	adm := h.k.Admin()
	end, err := adm.ListEndOffsets(ctx, h.cfg.TopicIn)
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for done := false; !done; {
		select {
		case err := <-errc:
			t.Fatalf("service stopped: %v", err)
		case <-deadline:
			c, _ := adm.FetchOffsets(context.Background(), h.cfg.Group)
			t.Fatalf("the group's committed offsets never reached the end of the input %v: %v", end, c)
		case <-tick.C:
		}
		committed, err := adm.FetchOffsets(ctx, h.cfg.Group)
		if err != nil {
			continue
		}
		done = true
		end.Each(func(o kadm.ListedOffset) {
			c, ok := committed.Lookup(h.cfg.TopicIn, o.Partition)
			done = done && ok && c.At == o.Offset
		})
	}
	if lag := testutil.ToFloat64(findGauge(t, svc, "leadscorer_kafka_consumer_lag_records", "0")); lag != 0 {
		t.Errorf("lag gauge %v with everything consumed, want 0", lag)
	}
	stop()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n := len(h.drain(h.cfg.TopicShadow)); n != 3 {
		t.Fatalf("%d shadow records, want 3", n)
	}
}

// findGauge returns the value of gauge name with the partition label.
func findGauge(t *testing.T, svc *Service, name, partition string) prometheus.Gauge {
	t.Helper()
	mfs, err := svc.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "partition" && l.GetValue() == partition {
					g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
					g.Set(m.GetGauge().GetValue())
					return g
				}
			}
		}
	}
	t.Fatalf("no %s{partition=%q}", name, partition)
	return nil
}

// A feature store whose advisors are still hashes (loaded by a release
// before advisors were strings) stops start-up, saying what to do, instead
// of scoring every change as of an unknown advisor.
func TestStartRefusesAdvisorsOfTheHashLayout(t *testing.T) {
	h := newHarness(t)
	key := h.cfg.RedisPrefix + "advisor:424242"
	if err := h.rdb.HSet(context.Background(), key, "firm", "7001").Err(); err != nil {
		t.Fatal(err)
	}
	_, err := New(context.Background(), h.cfg, nil)
	if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "leadscorer features load") {
		t.Fatalf("start-up with an advisor hash: %v, want a refusal naming %s and features load", err, key)
	}
}
