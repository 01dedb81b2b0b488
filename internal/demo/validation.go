package demo

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/internal/sandbox"
	"github.com/leadscorer/leadscorer/internal/synth"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/leadscorer/leadscorer/service"
	"github.com/leadscorer/leadscorer/topics"
	"github.com/leadscorer/leadscorer/validation"
	"github.com/leadscorer/leadscorer/validation/stream"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// ValidationOptions configure the simulated parallel validation.
type ValidationOptions struct {
	// Registry is the model registry to start from; it is copied, never
	// edited.
	Registry string
	// RedisURL must hold the population's features under RedisPrefix.
	RedisURL, RedisPrefix string
	// PromoteAfterWeeks of parallel scoring, v4.1.0 is promoted.
	PromoteAfterWeeks int
	// Underperform makes v4.1.0's best-ranked leads stop converting once
	// it is production: the rollback criteria fire.
	Underperform bool
	// AutoRollback lets the validator roll the registry back.
	AutoRollback bool
	// HTML is where the report goes; empty: none.
	HTML string
	Seed uint64
}

// Validation simulates the checklist's parallel validation with the
// population's test leads (September and October 2025): week by week, the
// scorer's clock is set to the week's Monday, the leads first contacted in
// that week change (and are scored by both versions), then their contacts
// and scheduled calls are produced as outcomes. After PromoteAfterWeeks
// weeks v4.1.0 is promoted in a copy of the registry and the running
// scorer reloads it. Then the validator rebuilds its state from the topics
// as of 43 days after the last contact (every lead labelled) and the report
// is printed.
func Validation(ctx context.Context, pop *synth.Population, opts ValidationOptions, w io.Writer) (*stream.Report, error) {
	dir, err := os.MkdirTemp("", "leadscorer-demo-models-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	registry, err := copyRegistry(opts.Registry, dir)
	if err != nil {
		return nil, err
	}
	cfg := config.Default()
	cfg.InputFormat = config.InputLeadChanged // the simulated weeks produce LeadChanged records
	cfg.Registry, cfg.RedisURL, cfg.RedisPrefix, cfg.HTTPAddr = registry, opts.RedisURL, opts.RedisPrefix, ""
	// The HTML report plots the rollback rule's detection curve: simulated
	// while the weeks are.
	type result struct {
		t   *validation.Table
		err error
	}
	curve := make(chan result, 1)
	if opts.HTML != "" {
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			t, err := stream.DetectionCurve(cctx, service.RollbackRule(cfg), stream.DetectionPeriods)
			curve <- result{t, err}
		}()
		defer func() { cancel(); <-done }()
	}
	cfg.Group, cfg.TransactionalID = "leadscorer-demo-validation", "leadscorer-demo-validation"
	sb, err := sandbox.Start(sandbox.Options{Topics: topics.Declared(cfg, 1)})
	if err != nil {
		return nil, err
	}
	defer sb.Close()
	cfg.Brokers, cfg.SchemaRegistry = sb.Brokers(), sb.RegistryURL()
	srcl, err := sr.NewClient(sr.URLs(sb.RegistryURL()))
	if err != nil {
		return nil, err
	}
	ids, err := schemas.Register(ctx, srcl, schemas.DefaultTopics())
	if err != nil {
		return nil, err
	}
	codec := schemas.NewCodec(srcl, ids)

	var clock atomic.Pointer[time.Time]
	svc, err := service.New(ctx, cfg, nil, service.WithClock(func() time.Time { return *clock.Load() }))
	if err != nil {
		return nil, err
	}
	defer svc.Close() // when returning before Run: its session has joined the group
	cl, err := kgo.NewClient(kgo.SeedBrokers(sb.Brokers()...), kgo.ProducerBatchMaxBytes(4<<20))
	if err != nil {
		return nil, err
	}
	defer cl.Close()

	// The test leads, by ISO week of first contact.
	byWeek := map[time.Time][]*synth.Lead{}
	for i := range pop.Leads {
		l := &pop.Leads[i]
		if l.Split == synth.Test && l.Labelled {
			byWeek[monday(l.Contact)] = append(byWeek[monday(l.Contact)], l)
		}
	}
	weeks := make([]time.Time, 0, len(byWeek))
	for wk := range byWeek {
		weeks = append(weeks, wk)
	}
	sort.Slice(weeks, func(i, j int) bool { return weeks[i].Before(weeks[j]) })
	if len(weeks) == 0 {
		return nil, fmt.Errorf("demo: the population has no labelled test leads")
	}
	clock.Store(&weeks[0])
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- svc.Run(runCtx) }()

	conv, err := outcomesFor(pop, byWeek, weeks, registry, opts)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 43))
	fmt.Fprintf(w, "\nparallel validation: %d weeks of contacts and outcomes, simulated\n", len(weeks))
	var last time.Time
	for i, wk := range weeks {
		clock.Store(&wk)
		if i == opts.PromoteAfterWeeks {
			// The checklist's pre-deployment half: gates, the three
			// sign-offs, then the promotion they allow.
			fmt.Fprintf(w, "  deployment checklist of v4.1.0\n")
			if err := PreDeployment(w, registry, filepath.Join(filepath.Dir(opts.Registry), ".."), "v4.1.0", wk); err != nil {
				return nil, err
			}
			if err := svc.Reload(); err != nil {
				return nil, err
			}
			fmt.Fprintf(w, "  %s  leadscorer registry promote v4.1.0: production (v4.0.0 keeps scoring as shadow); the running scorer reloaded it\n", wk.Format(time.DateOnly))
		}
		leads := byWeek[wk]
		var changes, outcomes []*kgo.Record
		converted := 0
		for _, l := range leads {
			e := schemas.LeadChanged{EventID: "sim-change-" + l.ID, LeadID: l.ID, CRD: l.CRD, HasCRD: true, HasEmail: l.HasEmail,
				HasLinkedIn: l.HasLinkedIn, Stage: "Open", ChangedFields: []string{"Status"}, EventTime: wk}
			b, err := codec.AppendLeadChanged(nil, &e)
			if err != nil {
				return nil, err
			}
			changes = append(changes, &kgo.Record{Topic: cfg.TopicIn, Key: []byte(l.ID), Value: b})
			o := schemas.LeadOutcome{EventID: "sim-contact-" + l.ID, LeadID: l.ID, Kind: schemas.OutcomeContacted, Time: l.Contact}
			if b, err = codec.AppendLeadOutcome(nil, &o); err != nil {
				return nil, err
			}
			outcomes = append(outcomes, &kgo.Record{Topic: cfg.TopicOutcomes, Key: []byte(l.ID), Value: b})
			if conv[l.ID] {
				converted++
				o := schemas.LeadOutcome{EventID: "sim-call-" + l.ID, LeadID: l.ID, Kind: schemas.OutcomeCallScheduled,
					Time: l.Contact.Add(time.Duration(1+rng.IntN(synth.OutcomeDays-1)) * 24 * time.Hour)}
				if b, err = codec.AppendLeadOutcome(nil, &o); err != nil {
					return nil, err
				}
				outcomes = append(outcomes, &kgo.Record{Topic: cfg.TopicOutcomes, Key: []byte(l.ID), Value: b})
			}
			last = maxTime(last, l.Contact)
		}
		base, err := endOffsets(ctx, cl, cfg.TopicIn)
		if err != nil {
			return nil, err
		}
		if err := cl.ProduceSync(ctx, changes...).FirstErr(); err != nil {
			return nil, err
		}
		if err := waitCommitted(ctx, cl, cfg.Group, cfg.TopicIn, nil, len(changes), base); err != nil {
			return nil, err
		}
		if err := cl.ProduceSync(ctx, outcomes...).FirstErr(); err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "  %s  %4d leads contacted and scored, %3d calls scheduled within 43 days\n", wk.Format(time.DateOnly), len(leads), converted)
	}
	stop()
	if err := <-errc; err != nil {
		return nil, err
	}

	// The validator, as of 43 days after the last week ends: every week
	// complete, every lead labelled.
	asOf := monday(last).AddDate(0, 0, 7).Add(stream.LabelWindow)
	before, err := scoring.LoadRegistry(registry)
	if err != nil {
		return nil, err
	}
	ropts := stream.Options{Rule: service.RollbackRule(cfg)}
	v, err := stream.New(stream.Config{Brokers: sb.Brokers(), ShadowTopic: cfg.TopicShadow, OutcomeTopic: cfg.TopicOutcomes,
		RegistryTopic: cfg.TopicRegistry, Registry: registry, Codec: codec, Now: func() time.Time { return asOf },
		Interval: time.Hour, AutoRollback: opts.AutoRollback, Report: ropts})
	if err != nil {
		return nil, err
	}
	vctx, vstop := context.WithCancel(ctx)
	verr := make(chan error, 1)
	go func() { verr <- v.Run(vctx) }()
	select {
	case <-v.CaughtUp():
	case err := <-verr:
		vstop()
		return nil, fmt.Errorf("demo: validator: %v", err)
	}
	vstop()
	if err := <-verr; err != nil {
		return nil, err
	}
	if opts.HTML != "" {
		c := <-curve
		if c.err != nil {
			return nil, fmt.Errorf("demo: detection curve: %w", c.err)
		}
		ropts.Detection = c.t
	}
	rep := v.State().Report(asOf, before, ropts)
	rep.PostDeployment = stream.PostDeployment(v.State(), before, asOf, ropts)
	fmt.Fprintf(w, "\nvalidator: state rebuilt from %s and %s as of %s\n\n", cfg.TopicShadow, cfg.TopicOutcomes, asOf.Format(time.DateOnly))
	if err := stream.WriteTable(w, rep); err != nil {
		return nil, err
	}
	if opts.AutoRollback && rep.Criteria.Fired {
		after, err := scoring.LoadRegistry(registry)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "\nauto-rollback: production is now %s; registry history:\n", after.Production().Name)
		for _, h := range after.History[len(after.History)-2:] {
			fmt.Fprintf(w, "  %s %s %s: %s\n", h.Time.Format(time.DateOnly), h.Action, h.Version, h.Reason)
		}
		evs, err := sandbox.DrainCommitted(ctx, sb.Brokers(), cfg.TopicRegistry)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			fmt.Fprintf(w, "  event on %s: %s\n", cfg.TopicRegistry, e.Value)
		}
	}
	if opts.HTML != "" {
		f, err := os.Create(opts.HTML)
		if err != nil {
			return nil, err
		}
		if err := stream.WriteHTML(f, rep, false); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "\nHTML report written to %s\n", opts.HTML)
	}
	// The checklist's post-deployment half, on the registry as the
	// validator left it.
	fmt.Fprintf(w, "\ndeployment checklist of v4.1.0, after the promotion\n")
	if _, err := PostDeployment(w, registry, "v4.1.0", rep.PostDeployment); err != nil {
		return nil, err
	}
	return rep, nil
}

// outcomesFor decides which leads convert: the population's own labels,
// except with Underperform, where after the promotion the conversions of
// the leads v4.1.0 ranks in its top three deciles move to leads it ranks
// in its bottom three (same number of conversions, inverted ranking).
func outcomesFor(pop *synth.Population, byWeek map[time.Time][]*synth.Lead, weeks []time.Time, registry string, opts ValidationOptions) (map[string]bool, error) {
	conv := map[string]bool{}
	for _, ls := range byWeek {
		for _, l := range ls {
			conv[l.ID] = l.Converted
		}
	}
	if !opts.Underperform {
		return conv, nil
	}
	reg, err := scoring.LoadRegistry(registry)
	if err != nil {
		return nil, err
	}
	v, ok := reg.Version("v4.1.0")
	if !ok || v.Model == nil {
		return nil, fmt.Errorf("demo: underperform needs v4.1.0 in the registry")
	}
	layout, err := features.NewLayout(v.Features)
	if err != nil {
		return nil, err
	}
	var vals features.Values
	x := make([]float64, len(v.Features))
	rng := rand.New(rand.NewPCG(opts.Seed, 44))
	for _, wk := range weeks[min(opts.PromoteAfterWeeks, len(weeks)):] {
		var top, bottom []*synth.Lead
		for _, l := range byWeek[wk] {
			pop.Derive(l, &vals)
			layout.Fill(&vals, x)
			switch d := scoring.Decile(v.Percentile(v.Model.Score(x))); {
			case d >= 8:
				top = append(top, l)
			case d <= 3 && !conv[l.ID]:
				bottom = append(bottom, l)
			}
		}
		for _, l := range top {
			if conv[l.ID] && len(bottom) > 0 {
				conv[l.ID] = false
				k := rng.IntN(len(bottom))
				conv[bottom[k].ID] = true
				bottom = append(bottom[:k], bottom[k+1:]...)
			}
		}
	}
	return conv, nil
}

func monday(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// copyRegistry copies the registry file and the model files it names into
// dir and returns the copy's path.
func copyRegistry(path, dir string) (string, error) {
	reg, err := scoring.LoadRegistry(path)
	if err != nil {
		return "", err
	}
	files := []string{filepath.Base(path)}
	for _, v := range reg.Versions {
		if v.Role != scoring.RoleArchived {
			files = append(files, v.Path)
		}
	}
	src := filepath.Dir(path)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", err
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, filepath.Base(path)), nil
}
