package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/leadscorer/leadscorer/topics"
	"github.com/leadscorer/leadscorer/validation"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config configures a Validator.
type Config struct {
	Brokers []string
	// ClientOpts are extra Kafka client options (TLS, SASL).
	ClientOpts []kgo.Opt
	// ShadowTopic and OutcomeTopic are read from their start, read_committed.
	ShadowTopic, OutcomeTopic string
	// RegistryTopic receives an event per automatic rollback (JSON,
	// RegistryEvent).
	RegistryTopic string
	// Registry is the model registry file: roles, promotion times and
	// reference distributions, read at each evaluation; the file an
	// automatic rollback edits.
	Registry string
	// Codec decodes both topics (it needs the Schema Registry for the
	// writers' schema ids).
	Codec *schemas.Codec
	// Now is the validator's clock (labels mature against it); time.Now
	// when nil. The demo simulates time through it.
	Now func() time.Time
	// Interval between evaluations once caught up (default 10s).
	Interval time.Duration
	// AutoRollback rolls the registry back when a criterion fires.
	AutoRollback bool
	Report       Options
	// DetectionPeriods, when above 0 and Report.Detection is nil, makes
	// Run simulate the rule's detection curve once (DetectionCurve, this
	// many periods per scenario, on one CPU: a few seconds) while it reads
	// the topics; reports carry it from the evaluation after it is done.
	DetectionPeriods int
	Logger           *slog.Logger
	// Registerer receives the leadscorer_validation_* metrics; nil: none.
	Registerer prometheus.Registerer
}

// RegistryEvent is the JSON value written to the registry topic when the
// validator rolls the registry back, keyed by the version rolled back from.
type RegistryEvent struct {
	Time          time.Time `json:"time"`
	Action        string    `json:"action"` // "rollback"
	From          string    `json:"from"`
	To            string    `json:"to"`
	Reason        string    `json:"reason"`
	Auto          bool      `json:"auto"`
	Rules         []Rule    `json:"rules"`
	Weeks         []string  `json:"weeks"`          // the weeks judged
	AsOf          time.Time `json:"as_of"`          // the validator's clock at the decision
	SchemaVersion int       `json:"schema_version"` // 1
}

// Validator rebuilds a State from the shadow and outcome topics and keeps
// it up to date, evaluates it periodically, exports the figures and serves
// the dashboard.
type Validator struct {
	cfg      Config
	log      *slog.Logger
	state    *State
	m        *metrics
	caughtUp chan struct{}
	once     sync.Once
	report   atomic.Pointer[Report]
	evalMu   sync.Mutex
	// detection is the simulated detection curve once computed;
	// detected is closed then.
	detection atomic.Pointer[validation.Table]
	detected  chan struct{}
	prod      *kgo.Client // registry events; nil without auto-rollback
}

// New checks cfg and returns a Validator; Run starts it.
func New(cfg Config) (*Validator, error) {
	switch {
	case len(cfg.Brokers) == 0:
		return nil, errors.New("validator: brokers: none given")
	case cfg.ShadowTopic == "" || cfg.OutcomeTopic == "":
		return nil, errors.New("validator: shadow and outcome topics are both required")
	case cfg.Codec == nil:
		return nil, errors.New("validator: codec: nil")
	case cfg.Registry == "":
		return nil, errors.New("validator: registry: no file given")
	case cfg.AutoRollback && cfg.RegistryTopic == "":
		return nil, errors.New("validator: auto-rollback needs a registry topic for its events")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Validator{cfg: cfg, log: cfg.Logger, state: NewState(), m: newMetrics(cfg.Registerer), caughtUp: make(chan struct{}),
		detected: make(chan struct{})}, nil
}

// State returns the validator's state.
func (v *Validator) State() *State { return v.state }

// CaughtUp is closed once every partition of both topics has been read to
// the last stable offset it had when Run started: the state is rebuilt.
func (v *Validator) CaughtUp() <-chan struct{} { return v.caughtUp }

// Report returns the latest evaluation; nil before the first.
func (v *Validator) Report() *Report { return v.report.Load() }

// Run reads both topics from their start until ctx ends, evaluating every
// Interval once caught up. It returns nil when ctx ends.
func (v *Validator) Run(ctx context.Context) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(v.cfg.Brokers...),
		kgo.ConsumeTopics(v.cfg.ShadowTopic, v.cfg.OutcomeTopic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.KeepControlRecords(),
	}, v.cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("validator: %w", err)
	}
	defer cl.Close()
	if v.cfg.AutoRollback {
		v.prod, err = kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(v.cfg.Brokers...), kgo.RequiredAcks(kgo.AllISRAcks())},
			v.cfg.ClientOpts...)...)
		if err != nil {
			return fmt.Errorf("validator: %w", err)
		}
		defer v.prod.Close()
	}
	// The topics must exist (`leadscorer topics apply`): the validator
	// creates none, and a missing one would otherwise leave it waiting.
	need := []string{v.cfg.ShadowTopic, v.cfg.OutcomeTopic}
	if v.cfg.AutoRollback {
		need = append(need, v.cfg.RegistryTopic)
	}
	if err := topics.Require(ctx, kadm.NewClient(cl), need...); err != nil {
		return fmt.Errorf("validator: %w", err)
	}
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, v.cfg.ShadowTopic, v.cfg.OutcomeTopic)
	if err != nil {
		return fmt.Errorf("validator: end offsets: %w", err)
	}
	want := map[string]map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			if want[o.Topic] == nil {
				want[o.Topic] = map[int32]int64{}
			}
			want[o.Topic][o.Partition] = o.Offset
		}
	})
	remaining := 0
	for _, ps := range want {
		remaining += len(ps)
	}
	if remaining == 0 {
		v.markCaughtUp(ctx)
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		v.evaluateLoop(ctx)
	}()
	if v.cfg.DetectionPeriods > 0 && v.cfg.Report.Detection == nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v.simulateDetection(ctx)
		}()
	}
	defer wg.Wait()

	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			v.log.Warn("validator: fetch", "topic", t, "partition", p, "err", err)
		})
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if !r.Attrs.IsControl() {
				if err := v.add(ctx, r); err != nil {
					return nil // ctx ended while the Schema Registry was away
				}
			}
			if end, ok := want[r.Topic][r.Partition]; ok && r.Offset+1 >= end {
				delete(want[r.Topic], r.Partition)
				if remaining--; remaining == 0 {
					v.markCaughtUp(ctx)
				}
			}
		}
	}
}

func (v *Validator) markCaughtUp(ctx context.Context) {
	v.once.Do(func() {
		v.m.caughtUp.Set(1)
		c := v.state.Counts()
		v.log.Info("validator: state rebuilt from the topics", "shadow_records", c.ShadowRecords, "outcomes", c.Outcomes)
		if _, err := v.Evaluate(ctx); err != nil {
			v.log.Error("validator: evaluate", "err", err)
		}
		close(v.caughtUp)
	})
}

// add decodes one record into the state. A record that cannot be decoded
// is counted and skipped; the Schema Registry being unreachable is retried
// until ctx ends (the error returned then).
func (v *Validator) add(ctx context.Context, r *kgo.Record) error {
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		var err error
		added := false
		switch r.Topic {
		case v.cfg.ShadowTopic:
			var s schemas.LeadScoreShadow
			if err = v.cfg.Codec.DecodeShadow(ctx, r.Value, &s); err == nil {
				added = v.state.AddShadow(&s)
			}
		default:
			var o schemas.LeadOutcome
			if err = v.cfg.Codec.DecodeLeadOutcome(ctx, r.Value, &o); err == nil {
				added = v.state.AddOutcome(&o)
			}
		}
		if _, ok := schemas.IsRecordError(err); err == nil || ok {
			v.m.records.WithLabelValues(r.Topic, result(added, err)).Inc()
			if err != nil {
				v.log.Warn("validator: record skipped", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
			}
			return nil
		}
		v.log.Warn("validator: decode failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
	}
}

func result(added bool, err error) string {
	switch {
	case err != nil:
		return "skipped"
	case added:
		return "added"
	default:
		return "duplicate"
	}
}

// simulateDetection computes the detection curve of the validator's rule
// and has it evaluated at once.
func (v *Validator) simulateDetection(ctx context.Context) {
	t, err := detectionCurve(ctx, v.cfg.Report.Rule, v.cfg.DetectionPeriods, 1)
	if err != nil {
		if ctx.Err() == nil {
			v.log.Error("validator: detection curve", "err", err)
		}
		return
	}
	v.detection.Store(t)
	close(v.detected)
}

func (v *Validator) evaluateLoop(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-v.caughtUp:
	}
	t := time.NewTicker(v.cfg.Interval)
	defer t.Stop()
	detected := v.detected
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-detected:
			detected = nil // once
		}
		if _, err := v.Evaluate(ctx); err != nil {
			v.log.Error("validator: evaluate", "err", err)
		}
	}
}

// Evaluate computes the report now, exports it as gauges and, with
// AutoRollback, rolls the registry back when a criterion fires for the
// production version.
func (v *Validator) Evaluate(ctx context.Context) (*Report, error) {
	v.evalMu.Lock()
	defer v.evalMu.Unlock()
	reg, err := scoring.LoadRegistry(v.cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("validator: %w", err)
	}
	opts := v.cfg.Report
	if opts.Detection == nil {
		opts.Detection = v.detection.Load()
	}
	rep := v.publish(reg, opts)
	if v.cfg.AutoRollback && rep.Criteria.Fired {
		if err := v.rollback(ctx, rep); err != nil {
			return rep, err
		}
		// Report again with the registry as it now is.
		if reg, err := scoring.LoadRegistry(v.cfg.Registry); err == nil {
			rep = v.publish(reg, opts)
		}
	}
	return rep, nil
}

// publish computes the report with the post-deployment verdicts, exports
// its gauges and makes it the one Report returns.
func (v *Validator) publish(reg *scoring.Registry, opts Options) *Report {
	now := v.cfg.Now()
	rep := v.state.Report(now, reg, opts)
	rep.PostDeployment = PostDeployment(v.state, reg, now, opts)
	v.m.set(rep)
	v.report.Store(rep)
	return rep
}

// rollback returns production to the previous version and records why, in
// the registry history and on the registry topic.
func (v *Validator) rollback(ctx context.Context, rep *Report) error {
	reason := "auto-rollback: " + strings.Join(rep.Criteria.Reasons, "; ")
	var from, to string
	_, err := scoring.EditRegistry(v.cfg.Registry, func(r *scoring.Registry) error {
		if p := r.Production(); p == nil || p.Name != rep.Criteria.Version {
			return fmt.Errorf("registry: production is no longer %s", rep.Criteria.Version)
		}
		var err error
		from, to, err = r.Rollback(reason, v.cfg.Now())
		return err
	})
	if err != nil {
		v.m.rollbacks.WithLabelValues("failed").Inc()
		return fmt.Errorf("validator: auto-rollback of %s refused: %w", rep.Criteria.Version, err)
	}
	v.m.rollbacks.WithLabelValues("ok").Inc()
	v.log.Warn("validator: rolled back", "from", from, "to", to, "reason", reason)
	ev := RegistryEvent{Time: time.Now().UTC(), Action: scoring.ActionRollback, From: from, To: to, Reason: reason,
		Auto: true, Rules: rep.Criteria.Rules, AsOf: rep.AsOf, SchemaVersion: 1}
	for _, w := range rep.Criteria.Weeks {
		ev.Weeks = append(ev.Weeks, w.Week)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if err := v.prod.ProduceSync(ctx, &kgo.Record{Topic: v.cfg.RegistryTopic, Key: []byte(from), Value: b}).FirstErr(); err != nil {
		return fmt.Errorf("validator: rolled back %s to %s, but the event on %s failed: %w", from, to, v.cfg.RegistryTopic, err)
	}
	return nil
}
