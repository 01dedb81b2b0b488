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
// instead of silently lowering the offered rate.
package loadgen

import (
	"context"
	"errors"
	"fmt"
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
	if len(opts.Leads) == 0 {
		return Stats{}, errors.New("loadgen: no leads")
	}
	if opts.Duration <= 0 && opts.Count <= 0 {
		return Stats{}, errors.New("loadgen: set a duration or a count")
	}
	if opts.Rate < 0 {
		return Stats{}, fmt.Errorf("loadgen: rate %v is negative", opts.Rate)
	}
	if opts.ZipfS == 0 {
		opts.ZipfS = DefaultZipfS
	}
	if opts.ZipfS <= 1 {
		return Stats{}, fmt.Errorf("loadgen: zipf exponent %v must be above 1", opts.ZipfS)
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
		return Stats{}, fmt.Errorf("loadgen: shape %q: want %s or %s", opts.Shape, ShapeCDC, ShapeZipf)
	case opts.Shape == ShapeCDC && !cdc:
		return Stats{}, fmt.Errorf("loadgen: shape %s needs change events, not %s records", ShapeCDC, opts.Format)
	}
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

	keys := newPicker(opts.Leads, opts.ZipfS, opts.Seed)
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
	prefix := "lg-" + strconv.FormatUint(opts.Seed, 36) + "-"
	var (
		gen *cdcsim.Generator
		mix *cdcsim.Mixer
	)
	if cdc {
		gen = cdcsim.New(cdcsim.Options{Codec: opts.Codec, Topic: opts.Topic, JSON: opts.JSON, Seed: opts.Seed, Start: time.Now()})
	}
	if opts.Shape == ShapeCDC {
		mix = cdcsim.NewMixer(gen, cdcLeads(opts.Leads), CDCMix(expectedEvents(opts)))
	}
	var (
		st       Stats
		start    = time.Now()
		deadline time.Time
		n        int
		ev       = schemas.LeadChanged{HasCRD: true, Stage: "Contacting", ChangedFields: []string{"Status"}}
		id       []byte
	)
	if opts.Duration > 0 {
		deadline = start.Add(opts.Duration)
	}
	more := func(now time.Time) bool {
		return (opts.Count <= 0 || n < opts.Count) && (deadline.IsZero() || now.Before(deadline)) && ctx.Err() == nil
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
		for ; n < due; n++ {
			at := now
			if opts.Rate > 0 {
				at = start.Add(time.Duration(float64(n) / opts.Rate * float64(time.Second)))
			}
			if mix != nil {
				gen.SetClock(at)
				if err := mix.Next(); err != nil {
					return st, fmt.Errorf("loadgen: %w", err)
				}
				for _, r := range mix.Take() {
					cl.Produce(ctx, r, done)
				}
				continue
			}
			l := keys.next()
			if gen != nil {
				gen.SetClock(at)
				r, err := gen.Record(gen.Next(cdcsim.Lead{ID: l.ID, CRD: l.CRD, HasEmail: l.HasEmail, HasLinkedIn: l.HasLinkedIn}))
				if err != nil {
					return st, fmt.Errorf("loadgen: encode event %d: %w", n, err)
				}
				cl.Produce(ctx, r, done)
				continue
			}
			id = strconv.AppendInt(append(id[:0], prefix...), int64(n), 10)
			ev.EventID, ev.LeadID, ev.CRD = string(id), l.ID, l.CRD
			ev.HasEmail, ev.HasLinkedIn = l.HasEmail, l.HasLinkedIn
			ev.EventTime = at.Truncate(time.Millisecond)
			val, err := opts.Codec.AppendLeadChanged(nil, &ev)
			if err != nil {
				return st, fmt.Errorf("loadgen: encode event %d: %w", n, err)
			}
			cl.Produce(ctx, &kgo.Record{Key: []byte(l.ID), Value: val}, done)
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
