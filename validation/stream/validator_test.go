package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/internal/testenv"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// stack is a test's broker and registry with the service's topics, named
// for the test.
type stack struct {
	k                                        *testenv.Kafka
	codec                                    *schemas.Codec
	shadowTopic, outcomeTopic, registryTopic string
}

func startStack(t *testing.T) *stack {
	t.Helper()
	k := testenv.NewKafka(t)
	cfg := config.Default()
	k.Configure(cfg)
	cl := k.Registry()
	ids, err := schemas.Register(context.Background(), cl, schemas.Topics{Shadow: cfg.TopicShadow, Outcomes: cfg.TopicOutcomes})
	if err != nil {
		t.Fatal(err)
	}
	return &stack{k: k, codec: schemas.NewCodec(cl, ids), shadowTopic: cfg.TopicShadow, outcomeTopic: cfg.TopicOutcomes, registryTopic: cfg.TopicRegistry}
}

// produce writes the records in one transaction, committed or aborted.
func (s *stack) produce(t *testing.T, shadows []*schemas.LeadScoreShadow, outcomes []*schemas.LeadOutcome, commit bool) {
	t.Helper()
	ctx := context.Background()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.k.Brokers...), kgo.TransactionalID(s.k.Name(fmt.Sprint("test-", commit, rand.Int())))}, s.k.ClientOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for _, r := range shadows {
		b, err := s.codec.AppendShadow(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: s.shadowTopic, Key: []byte(r.LeadID), Value: b})
	}
	for _, o := range outcomes {
		b, err := s.codec.AppendLeadOutcome(nil, o)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: s.outcomeTopic, Key: []byte(o.LeadID), Value: b})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatal(err)
	}
	// A real broker writes the markers after answering: wait for them, or
	// a validator started now may take the end to be before the records.
	s.k.WaitStable(s.shadowTopic, s.outcomeTopic)
}

// records makes weeks of leads as weekOfLeads does, with good and bad
// scored by the given version names.
func records(weeks int, good, bad string, seed uint64) ([]*schemas.LeadScoreShadow, []*schemas.LeadOutcome) {
	s := NewState()
	rng := rand.New(rand.NewPCG(seed, 9))
	start := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	for w := range weeks {
		weekOfLeads(s, rng, start.AddDate(0, 0, 7*w), 150, 15, fmt.Sprintf("%d-w%d", seed, w))
	}
	var shadows []*schemas.LeadScoreShadow
	var outcomes []*schemas.LeadOutcome
	for _, e := range s.events {
		r := &schemas.LeadScoreShadow{EventID: e.eventID, LeadID: e.eventID[2:], ScoredAt: e.scoredAt, EventTime: e.scoredAt}
		for _, p := range e.points {
			name := map[string]string{"good": good, "bad": bad}[p.version]
			if name == "" {
				continue
			}
			r.Scores = append(r.Scores, schemas.VersionScore{Version: name, Role: "shadow", Score: p.score,
				Percentile: p.percentile, Decile: p.decile, Deprioritize: p.deprioritize})
		}
		shadows = append(shadows, r)
	}
	for id, l := range s.leads {
		outcomes = append(outcomes, &schemas.LeadOutcome{EventID: "c-" + id, LeadID: id, Kind: schemas.OutcomeContacted, Time: l.contact})
		for _, c := range l.calls {
			outcomes = append(outcomes, &schemas.LeadOutcome{EventID: "k-" + id, LeadID: id, Kind: schemas.OutcomeCallScheduled, Time: c})
		}
	}
	return shadows, outcomes
}

var asOf = time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)

// runUntilCaughtUp starts a validator, waits until it has rebuilt its
// state, and returns it with a stop function.
func runUntilCaughtUp(t *testing.T, s *stack, registry string, auto bool, reg prometheus.Registerer) (*Validator, func()) {
	t.Helper()
	v, err := New(Config{Brokers: s.k.Brokers, ShadowTopic: s.shadowTopic, OutcomeTopic: s.outcomeTopic, RegistryTopic: s.registryTopic,
		Registry: registry, Codec: s.codec, Now: func() time.Time { return asOf }, Interval: time.Hour, AutoRollback: auto, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	select {
	case <-v.CaughtUp():
	case err := <-done:
		t.Fatalf("validator stopped before catching up: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("validator did not catch up in 20s")
	}
	return v, func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// Kafka is the source of truth: a validator started on the same topics
// reports exactly what the one before it did, committed records count once
// however often they were delivered, and aborted ones not at all.
func TestValidatorStateAfterRestartEqualsStateBefore(t *testing.T) {
	s := startStack(t)
	path := copyModels(t)
	shadows, outcomes := records(3, "v4.0.0", "v4.1.0", 1)
	half := len(shadows) / 2
	s.produce(t, shadows[:half], outcomes[:len(outcomes)/2], true)
	s.produce(t, shadows[half:], outcomes[len(outcomes)/2:], true)
	s.produce(t, shadows[:20], outcomes[:20], true) // redelivered: duplicates
	junkS, junkO := records(1, "v4.0.0", "v4.1.0", 99)
	s.produce(t, junkS, junkO, false) // aborted: never seen

	first, stop := runUntilCaughtUp(t, s, path, false, nil)
	before, err := first.Evaluate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if c := before.Counts; c.ShadowRecords != len(shadows) || c.Outcomes != len(outcomes) || c.Duplicates != 40 {
		t.Fatalf("counts %+v, want %d shadow records, %d outcomes, 40 duplicates (aborted records excluded)", c, len(shadows), len(outcomes))
	}
	second, stop := runUntilCaughtUp(t, s, path, false, nil)
	defer stop()
	after, err := second.Evaluate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(before)
	b, _ := json.Marshal(after)
	if string(a) != string(b) {
		t.Fatalf("report after restart differs from before:\nbefore %s\nafter  %s", a, b)
	}
	// And it is the report of the records themselves.
	direct := NewState()
	for _, r := range shadows {
		direct.AddShadow(r)
	}
	for _, o := range outcomes {
		direct.AddOutcome(o)
	}
	reg, err := scoring.LoadRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	want := direct.Report(asOf, reg, Options{})
	want.PostDeployment = PostDeployment(direct, reg, asOf, Options{})
	want.Counts.Duplicates = after.Counts.Duplicates
	c, _ := json.Marshal(want)
	if string(c) != string(b) {
		t.Fatal("report from the topics differs from the report of the records produced")
	}
}

// With --auto-rollback a firing criterion returns production to the
// previous version, records why in the registry history and emits an event.
func TestAutoRollback(t *testing.T) {
	s := startStack(t)
	path := copyModels(t)
	promoted := time.Date(2025, 8, 25, 0, 0, 0, 0, time.UTC)
	if _, err := scoring.EditRegistry(path, func(r *scoring.Registry) error { return r.Promote("v4.1.0", "parallel week passed", promoted) }); err != nil {
		t.Fatal(err)
	}
	shadows, outcomes := records(3, "v4.0.0", "v4.1.0", 2) // v4.1.0 ranks converters last
	s.produce(t, shadows, outcomes, true)

	preg := prometheus.NewRegistry()
	v, stop := runUntilCaughtUp(t, s, path, true, preg)
	defer stop()
	// The first evaluation (at catch-up) rolled back; the report now is of
	// the restored production.
	rep := v.Report()
	if rep.Production != "v4.0.0" || rep.Criteria.Fired {
		t.Fatalf("after auto-rollback production %s, criteria fired %v: %v", rep.Production, rep.Criteria.Fired, rep.Criteria.Reasons)
	}
	reg, err := scoring.LoadRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	if v41, _ := reg.Version("v4.1.0"); reg.Production().Name != "v4.0.0" || v41.Role != scoring.RoleDeprecated {
		t.Fatalf("registry on disk: production %s, v4.1.0 %s", reg.Production().Name, v41.Role)
	}
	last := reg.History[len(reg.History)-2]
	if last.Action != scoring.ActionRollback || last.Version != "v4.0.0" || len(last.Reason) < 20 {
		t.Errorf("history entry %+v, want a rollback to v4.0.0 with the criteria as reason", last)
	}
	evs := s.k.Drain(s.registryTopic)
	if len(evs) != 1 {
		t.Fatalf("%d registry events, want 1", len(evs))
	}
	var ev RegistryEvent
	if err := json.Unmarshal(evs[0].Value, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.From != "v4.1.0" || ev.To != "v4.0.0" || !ev.Auto || ev.Reason != last.Reason {
		t.Errorf("event %+v", ev)
	}
	if got := gathered(t, preg, "leadscorer_validation_auto_rollbacks_total"); got != 1 {
		t.Errorf("auto_rollbacks_total = %v, want 1", got)
	}
	// A second evaluation has nothing to roll back.
	if _, err := v.Evaluate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := gathered(t, preg, "leadscorer_validation_rollback_recommended"); got != 0 {
		t.Errorf("rollback_recommended = %v after the rollback, want 0", got)
	}
}

// gathered sums the values of every series of the named metric.
func gathered(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// copyModels copies the committed registry and models to a temporary
// folder the test may edit.
func copyModels(t *testing.T) string {
	t.Helper()
	path, err := scoring.CopyRegistry(filepath.Join("..", "..", "models", "registry.json"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// The validator creates no topic: with one missing it stops at once,
// naming it and `leadscorer topics apply`, instead of waiting for records
// that cannot come.
func TestValidatorNeedsItsTopics(t *testing.T) {
	s := startStack(t)
	path := copyModels(t)
	for _, tc := range []struct {
		name    string
		edit    func(c *Config)
		missing string
	}{
		{"the registry topic of an automatic rollback", func(c *Config) { c.AutoRollback, c.RegistryTopic = true, s.k.Name("no.registry") }, s.k.Name("no.registry")},
		{"the outcome topic", func(c *Config) { c.OutcomeTopic = s.k.Name("no.outcomes") }, s.k.Name("no.outcomes")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Brokers: s.k.Brokers, ShadowTopic: s.shadowTopic, OutcomeTopic: s.outcomeTopic, RegistryTopic: s.registryTopic,
				Registry: path, Codec: s.codec, Now: func() time.Time { return asOf }, Interval: time.Hour}
			tc.edit(&c)
			v, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = v.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), "topic "+tc.missing+" does not exist") || !strings.Contains(err.Error(), "leadscorer topics apply") {
				t.Fatalf("Run: %v; want %s named and `leadscorer topics apply`", err, tc.missing)
			}
		})
	}
}
