// Package loadgen drives the scorer for load tests: it produces lead
// changes for the synthetic population (Salesforce change events as the CDC
// connector writes them, by default, or LeadChanged records) at a fixed
// rate (open loop) or as fast as the broker takes them, for a duration or a
// count, and measures the scorer end to end from its output records (see
// Bench).
//
// The load's shape is the CDC simulation's by default (ShapeCDC): the
// change-event mix of a Salesforce org (internal/cdcsim) over its key
// spread, each event naming a Lead drawn uniformly from a pool of a fifth
// as many Leads as events, so that each Lead changes about five times,
// creation first. ShapeZipf is the older shape: one kind of change, keys
// Zipf-spread, a few hot Leads taking most events, which flatters any
// cache keyed by the Lead or its features.
//
// Open loop means the i-th event is due at start + i/rate whatever happened
// to the earlier ones, and its event_time is that due time: when the broker
// or the generator falls behind, the delay shows up in the measured latency
// instead of silently lowering the offered rate. The bench's fixed-rate runs
// make their events before the start (Prepare), so that the generator's
// encoding does not take the CPU from the scorer it measures.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/internal/cdcsim"
	"github.com/leadscorer/leadscorer/internal/synth"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Lead is what an event needs of one population lead.
type Lead struct {
	ID          string
	CRD         int64
	HasEmail    bool
	HasLinkedIn bool
}

// LeadsOf returns the leads of p.
func LeadsOf(p *synth.Population) []Lead {
	out := make([]Lead, len(p.Leads))
	for i := range p.Leads {
		l := &p.Leads[i]
		out[i] = Lead{ID: l.ID, CRD: l.CRD, HasEmail: l.HasEmail, HasLinkedIn: l.HasLinkedIn}
	}
	return out
}

// Load shapes.
const (
	ShapeCDC  = "cdc"
	ShapeZipf = "zipf"
)

// DefaultZipfS is the default skew of the key spread: with s = 1.1 over the
// 33,000 leads of a 100,000-advisor population the hottest lead gets about
// 9% of the events and half go to the hottest ~40 leads, like a few campaigns
// touching many leads at once.
const DefaultZipfS = 1.1

// Options configures Run.
type Options struct {
	Brokers []string
	Topic   string
	// Codec encodes the events; its LeadChanged schema id (Format
	// leadchanged) or ChangeEvents schema id (salesforce-cdc, Avro) must be
	// set.
	Codec *schemas.Codec
	// Format is config.InputSalesforceCDC (the default) or
	// config.InputLeadChanged.
	Format string
	// JSON writes change events as schemaless JSON instead of Avro.
	JSON bool
	// Leads are the keys events are made for; at least one.
	Leads []Lead
	// Rate is the offered rate in events per second; 0 produces as fast as
	// the broker accepts (closed loop, for filling a backlog).
	Rate float64
	// Duration and Count bound the run; the first reached ends it. At
	// least one must be set.
	Duration time.Duration
	Count    int
	// Shape is ShapeCDC (the default with change events) or ShapeZipf
	// (the only one of LeadChanged records).
	Shape string
	// ZipfS is the Zipf exponent of the lead choice with ShapeZipf (> 1);
	// DefaultZipfS when 0. Leads are shuffled first, so the hot ones fall
	// on random partitions.
	ZipfS float64
	// SpreadPartitions writes change events to the partition of their key
	// (the first Lead Id) instead of partition 0 as the connector does, so
	// that several scorers share them; a Lead's changes stay in one
	// partition (a merged event of several Leads aside).
	SpreadPartitions bool
	Seed             uint64
	// Prepared, when set, holds the run's events, made by Prepare with
	// these options: the run sends them at the rate and from the start they
	// were stamped with, instead of making each when it is due.
	Prepared *Prepared
	// ClientOpts are extra producer client options.
	ClientOpts []kgo.Opt
}

// Stats is what Run did.
type Stats struct {
	Sent   int64 // records acknowledged by the broker
	Failed int64 // records the broker refused
	// Elapsed is from the first due time to the last acknowledgement.
	Elapsed time.Duration
	// MaxBehind is how far the generator ever was behind its schedule
	// (fixed rate only): large values mean the offered rate was not met.
	MaxBehind time.Duration
}

// Rate is the achieved rate in events per second.
func (s Stats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Sent) / s.Elapsed.Seconds()
}

// Run produces events until the duration or count is reached or ctx ends,
// then waits for every record to be acknowledged.
func Run(ctx context.Context, opts Options) (Stats, error) {
	opts, err := checked(opts)
	if err != nil {
		return Stats{}, err
	}
	cdc := opts.Format != config.InputLeadChanged
	kopts := []kgo.Opt{
		kgo.SeedBrokers(opts.Brokers...),
		kgo.DefaultProduceTopic(opts.Topic),
		kgo.ProducerLinger(time.Millisecond),
		kgo.MaxBufferedRecords(100_000),
	}
	if cdc && !opts.SpreadPartitions {
		// The connector writes one partition (docs/SALESFORCE.md).
		kopts = append(kopts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := kgo.NewClient(append(kopts, opts.ClientOpts...)...)
	if err != nil {
		return Stats{}, fmt.Errorf("loadgen: %w", err)
	}
	defer cl.Close()

	var sent, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, &err)
			return
		}
		sent.Add(1)
	}
	var (
		st    Stats
		start = time.Now()
		src   *source
		ahead = opts.Prepared
		recs  []*kgo.Record
		n     int
	)
	if ahead != nil {
		start, opts.Rate = ahead.start, ahead.rate // the schedule its events were stamped with
		if err := sleepUntil(ctx, start); err != nil {
			return Stats{}, err
		}
	} else {
		src = newSource(opts, start)
	}
	var deadline time.Time // a prepared run ends with its events
	if opts.Duration > 0 && ahead == nil {
		deadline = start.Add(opts.Duration)
	}
	more := func(now time.Time) bool {
		return (opts.Count <= 0 || n < opts.Count) && (ahead == nil || n < ahead.events()) &&
			(deadline.IsZero() || now.Before(deadline)) && ctx.Err() == nil
	}
	for now := start; more(now); now = time.Now() {
		due := n + 1
		if opts.Rate > 0 {
			due = int(now.Sub(start).Seconds() * opts.Rate)
			if due <= n { // ahead of schedule: wait for the next due time
				next := start.Add(time.Duration(float64(n+1) / opts.Rate * float64(time.Second)))
				time.Sleep(next.Sub(now))
				continue
			}
			st.MaxBehind = max(st.MaxBehind, now.Sub(start.Add(time.Duration(float64(n)/opts.Rate*float64(time.Second)))))
		}
		if opts.Count > 0 {
			due = min(due, opts.Count)
		}
		if ahead != nil {
			due = min(due, ahead.events())
		}
		for ; n < due; n++ {
			if ahead != nil {
				recs = ahead.event(n)
			} else if recs, err = src.next(recs[:0], n, dueAt(start, n, opts.Rate, now)); err != nil {
				return st, err
			}
			for _, r := range recs {
				cl.Produce(ctx, r, done)
			}
		}
	}
	if err := cl.Flush(context.WithoutCancel(ctx)); err != nil {
		return st, fmt.Errorf("loadgen: flush: %w", err)
	}
	st.Elapsed = time.Since(start)
	st.Sent, st.Failed = sent.Load(), failed.Load()
	if p := firstErr.Load(); p != nil {
		return st, fmt.Errorf("loadgen: %d of %d records refused, first: %w", st.Failed, n, *p)
	}
	return st, nil
}

// checked is opts with its defaults, or why they cannot run.
func checked(opts Options) (Options, error) {
	if len(opts.Leads) == 0 {
		return opts, errors.New("loadgen: no leads")
	}
	if opts.Duration <= 0 && opts.Count <= 0 {
		return opts, errors.New("loadgen: set a duration or a count")
	}
	if opts.Rate < 0 {
		return opts, fmt.Errorf("loadgen: rate %v is negative", opts.Rate)
	}
	if opts.ZipfS == 0 {
		opts.ZipfS = DefaultZipfS
	}
	if opts.ZipfS <= 1 {
		return opts, fmt.Errorf("loadgen: zipf exponent %v must be above 1", opts.ZipfS)
	}
	cdc := opts.Format != config.InputLeadChanged
	if opts.Shape == "" {
		opts.Shape = ShapeZipf
		if cdc {
			opts.Shape = ShapeCDC
		}
	}
	switch {
	case opts.Shape != ShapeCDC && opts.Shape != ShapeZipf:
		return opts, fmt.Errorf("loadgen: shape %q: want %s or %s", opts.Shape, ShapeCDC, ShapeZipf)
	case opts.Shape == ShapeCDC && !cdc:
		return opts, fmt.Errorf("loadgen: shape %s needs change events, not %s records", ShapeCDC, opts.Format)
	}
	return opts, nil
}

// source makes each event's records in turn.
type source struct {
	codec  *schemas.Codec
	keys   *picker
	gen    *cdcsim.Generator
	mix    *cdcsim.Mixer
	prefix string
	ev     schemas.LeadChanged
	id     []byte
}

// newSource is the events of opts, the first committed at start.
func newSource(opts Options, start time.Time) *source {
	s := &source{
		codec:  opts.Codec,
		keys:   newPicker(opts.Leads, opts.ZipfS, opts.Seed),
		prefix: "lg-" + strconv.FormatUint(opts.Seed, 36) + "-",
		ev:     schemas.LeadChanged{HasCRD: true, Stage: "Contacting", ChangedFields: []string{"Status"}},
	}
	if opts.Format != config.InputLeadChanged {
		s.gen = cdcsim.New(cdcsim.Options{Codec: opts.Codec, Topic: opts.Topic, JSON: opts.JSON, Seed: opts.Seed, Start: start})
	}
	if opts.Shape == ShapeCDC {
		s.mix = cdcsim.NewMixer(s.gen, cdcLeads(opts.Leads), CDCMix(expectedEvents(opts)))
	}
	return s
}

// next appends the records of the n-th event, due at at, to out.
func (s *source) next(out []*kgo.Record, n int, at time.Time) ([]*kgo.Record, error) {
	if s.mix != nil {
		s.gen.SetClock(at)
		if err := s.mix.Next(); err != nil {
			return out, fmt.Errorf("loadgen: %w", err)
		}
		return append(out, s.mix.Take()...), nil
	}
	l := s.keys.next()
	if s.gen != nil {
		s.gen.SetClock(at)
		r, err := s.gen.Record(s.gen.Next(cdcsim.Lead{ID: l.ID, CRD: l.CRD, HasEmail: l.HasEmail, HasLinkedIn: l.HasLinkedIn}))
		if err != nil {
			return out, fmt.Errorf("loadgen: encode event %d: %w", n, err)
		}
		return append(out, r), nil
	}
	s.id = strconv.AppendInt(append(s.id[:0], s.prefix...), int64(n), 10)
	ev := &s.ev
	ev.EventID, ev.LeadID, ev.CRD = string(s.id), l.ID, l.CRD
	ev.HasEmail, ev.HasLinkedIn = l.HasEmail, l.HasLinkedIn
	ev.EventTime = at.Truncate(time.Millisecond)
	val, err := s.codec.AppendLeadChanged(nil, ev)
	if err != nil {
		return out, fmt.Errorf("loadgen: encode event %d: %w", n, err)
	}
	return append(out, &kgo.Record{Key: []byte(l.ID), Value: val}), nil
}

// dueAt is when the n-th event is due: start + n/rate, or now when the
// rate is open.
func dueAt(start time.Time, n int, rate float64, now time.Time) time.Time {
	if rate <= 0 {
		return now
	}
	return start.Add(time.Duration(float64(n) / rate * float64(time.Second)))
}

// Prepared holds the records of every event of a fixed-rate run, made
// before it so that encoding them does not take the CPU from what the run
// measures. They are held in memory: 101 MB for the 160,000 change events
// of 8 s at 20,000/s, made in 1.8 s. A Prepared serves one run: the client
// stamps its records as it sends them.
type Prepared struct {
	start time.Time
	rate  float64
	recs  []*kgo.Record
	ends  []int // the n-th event's records are recs[ends[n-1]:ends[n]]
}

// Start is when the first event is due.
func (p *Prepared) Start() time.Time { return p.start }

func (p *Prepared) events() int { return len(p.ends) }

func (p *Prepared) event(n int) []*kgo.Record {
	from := 0
	if n > 0 {
		from = p.ends[n-1]
	}
	return p.recs[from:p.ends[n]]
}

// Prepare makes the records of every event that Run with opts (a fixed
// rate and a duration) offers, each stamped with its due time from a start
// far enough ahead that making them ends before it. A first guess of the
// time that takes is corrected once it is measured: the events are made
// again, the same ones, for a later start.
func Prepare(opts Options) (*Prepared, error) {
	if opts.Rate <= 0 || opts.Duration <= 0 {
		return nil, errors.New("loadgen: preparing the events needs a rate and a duration")
	}
	opts, err := checked(opts)
	if err != nil {
		return nil, err
	}
	p, _, err := prepare(opts, 15*time.Microsecond, 200*time.Millisecond)
	return p, err
}

// prepare is Prepare with its first guess of the time an event takes to
// make, perEvent, and the least time left before the start, slack/2. It
// also returns how many times it made the events.
func prepare(opts Options, perEvent, slack time.Duration) (*Prepared, int, error) {
	count := int(math.Ceil(opts.Rate * opts.Duration.Seconds()))
	if opts.Count > 0 {
		count = min(count, opts.Count)
	}
	guess := time.Duration(count)*perEvent + slack
	for made := 1; ; made++ {
		began := time.Now()
		p := &Prepared{start: began.Add(guess), rate: opts.Rate, ends: make([]int, 0, count)}
		src := newSource(opts, p.start)
		for n := 0; n < count; n++ {
			var err error
			if p.recs, err = src.next(p.recs, n, dueAt(p.start, n, opts.Rate, p.start)); err != nil {
				return nil, made, err
			}
			p.ends = append(p.ends, len(p.recs))
		}
		took := time.Since(began)
		if time.Until(p.start) >= slack/2 {
			return p, made, nil
		}
		guess = took*5/4 + slack
	}
}

// sleepUntil waits until t or ctx's end.
func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CDCMix is the change-event mix of ShapeCDC for a run of events events:
// the demo's day in an org's life (creates, partial updates, status
// changes, merged events, echoes, conversions, deletes, gap events, an
// overflow), without its malformed records and its burst of duplicates.
func CDCMix(events int) cdcsim.Mix {
	m := cdcsim.DefaultMix(events, 0)
	m.Poison, m.Duplicates = 0, 0
	return m
}

// expectedEvents is how many events a run makes, as far as its options
// say: the Lead pool of ShapeCDC is a fifth of it.
func expectedEvents(o Options) int {
	n := o.Count
	if d := int(o.Rate * o.Duration.Seconds()); d > 0 && (n <= 0 || d < n) {
		n = d
	}
	if n <= 0 {
		n = 5 * len(o.Leads)
	}
	return n
}

func cdcLeads(ls []Lead) []cdcsim.Lead {
	out := make([]cdcsim.Lead, len(ls))
	for i, l := range ls {
		out[i] = cdcsim.Lead{ID: l.ID, CRD: l.CRD, HasEmail: l.HasEmail, HasLinkedIn: l.HasLinkedIn}
	}
	return out
}

// picker chooses leads with a Zipf distribution over a shuffled order.
type picker struct {
	leads []Lead
	zipf  *rand.Zipf
}

func newPicker(leads []Lead, s float64, seed uint64) *picker {
	rng := rand.New(rand.NewPCG(seed, 0x10ad))
	shuffled := append([]Lead(nil), leads...)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	return &picker{leads: shuffled, zipf: rand.NewZipf(rng, s, 1, uint64(len(leads)-1))}
}

func (p *picker) next() *Lead { return &p.leads[p.zipf.Uint64()] }
