package cdcsim

import (
	"fmt"
	"math/rand/v2"

	"github.com/leadscorer/leadscorer/internal/poison"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Mix says what a stream holds besides creates and partial updates. Shares
// are of the stream's events.
type Mix struct {
	Events int
	// PartialFirst is the share of Leads whose first event is an update:
	// Leads created before the connector started.
	PartialFirst float64
	Status       float64 // status changes (contacted, call scheduled, qualified)
	Merged       float64 // one owner change to several Leads, merged
	Echoes       float64 // the sink's writes, echoed back by its integration user
	Conversions  float64
	Deletes      float64 // deletes, some undone by an undelete
	Gaps         float64 // gap events of one to three Leads
	Poison       float64 // malformed records, every kind in turn
	// Duplicates is how many of the last records are produced again at
	// the end, as a connector restarted from an older replay id does.
	Duplicates int
	// MaxRecordBytes is the scorer's limit, which oversized poison exceeds.
	MaxRecordBytes int
}

// DefaultMix is the demo's: a day in an org's life, compressed.
func DefaultMix(events, maxRecordBytes int) Mix {
	return Mix{Events: events, PartialFirst: 0.05, Status: 0.12, Merged: 0.02, Echoes: 0.05, Conversions: 0.005,
		Deletes: 0.004, Gaps: 0.002, Poison: 0.002, Duplicates: max(events/50, 1), MaxRecordBytes: maxRecordBytes}
}

// Sent is what a stream holds, by what the scorer must make of it.
type Sent struct {
	// Events and LeadChanges count the well-formed, first-delivered change
	// events by change type, and the Leads they name.
	Events, LeadChanges map[string]int
	Echoes              int
	// Duplicates counts the records produced again, and the Lead changes
	// they carry (echoes and whole-object events among them excluded).
	Duplicates, DuplicateChanges int
	Poison                       map[string]int // by the DLQ class each must get
	// Refreshes counts the refresh requests the scorer must write, by
	// reason.
	Refreshes map[string]int
	Records   int
}

// Stream makes a stream of mix.Events change events (and the duplicates
// after them) for leads, drawn from the first fifth so that most Leads
// change several times.
func Stream(g *Generator, leads []Lead, mix Mix) ([]*kgo.Record, *Sent, error) {
	m := NewMixer(g, leads, mix)
	for range mix.Events {
		if err := m.Next(); err != nil {
			return nil, nil, err
		}
	}
	m.duplicates()
	m.sent.Records = len(m.recs)
	return m.recs, m.sent, nil
}

// Mixer makes the events of a Mix one at a time: the key spread and the
// change-event mix of Stream, for a producer that sends them as it goes
// (the load generator).
type Mixer struct {
	g          *Generator
	mix        Mix
	rng        *rand.Rand
	sent       *Sent
	pool       []Lead
	kinds      []poison.CDCKind
	nextPoison int
	i          int
	// recs are the records made since the last Take; what[i] says what
	// recs[i] is: a Lead change (its Lead count), an echo (-1), an event
	// for the whole object (-2), poison (-3).
	recs []*kgo.Record
	what []int
}

// NewMixer returns a Mixer of mix over leads: each event picks one of the
// first fifth of mix.Events leads (all of them when there are fewer) at
// random, so that most Leads change several times, and is the change that
// Lead can take next (its creation first). mix.Events also places the
// overflow event (at its middle); Duplicates are Stream's alone.
func NewMixer(g *Generator, leads []Lead, mix Mix) *Mixer {
	m := &Mixer{g: g, mix: mix, rng: rand.New(rand.NewPCG(g.opts.Seed, 0x57)),
		sent: &Sent{Events: map[string]int{}, LeadChanges: map[string]int{}, Poison: map[string]int{}, Refreshes: map[string]int{}},
		pool: leads[:min(max(mix.Events/5, 4), len(leads))]}
	for _, k := range poison.CDCKinds {
		if !(k.AvroOnly && g.opts.JSON) {
			m.kinds = append(m.kinds, k)
		}
	}
	return m
}

// Sent is what the events made so far hold.
func (m *Mixer) Sent() *Sent { return m.sent }

// Take returns the records made since the last Take (one per Next).
func (m *Mixer) Take() []*kgo.Record {
	r := m.recs
	m.recs, m.what = m.recs[:0:0], m.what[:0:0]
	return r
}

func (m *Mixer) emit(e *schemas.ChangeEvent, countAs string) error {
	r, err := m.g.Record(e)
	if err != nil {
		return err
	}
	sent := m.sent
	m.recs = append(m.recs, r)
	sent.Events[e.Header.ChangeType]++
	switch {
	case countAs == "echo":
		sent.Events[e.Header.ChangeType]--
		sent.Echoes++
		m.what = append(m.what, -1)
	case e.Header.ChangeType == schemas.ChangeGapOverflow:
		m.what = append(m.what, -2)
	default:
		sent.LeadChanges[e.Header.ChangeType] += len(e.Header.RecordIDs)
		m.what = append(m.what, len(e.Header.RecordIDs))
	}
	return nil
}

func (m *Mixer) pick() Lead { return m.pool[m.rng.IntN(len(m.pool))] }

// live picks a created, not deleted Lead.
func (m *Mixer) live() (Lead, bool) {
	for range 20 {
		l := m.pick()
		if c, d, _ := m.g.State(l.ID); c && !d {
			return l, true
		}
	}
	return Lead{}, false
}

// Next makes the next event of the mix.
func (m *Mixer) Next() error {
	g, mix, rng, sent := m.g, m.mix, m.rng, m.sent
	i := m.i
	m.i++
	var err error
	r := rng.Float64()
	switch {
	case i == mix.Events/2:
		err = m.emit(g.Overflow(), "")
		sent.Refreshes[schemas.RefreshOverflow]++
	case r < mix.Poison:
		k := m.kinds[m.nextPoison%len(m.kinds)]
		m.nextPoison++
		l := m.pick()
		saved, had := g.leads[l.ID]
		if had {
			c := *saved
			saved = &c
		}
		e := g.Create(l)
		if had { // the org did not change: the record is bad on its way
			g.leads[l.ID] = saved
		} else {
			delete(g.leads, l.ID)
		}
		var v []byte
		v, err = poison.CDCValue(g.opts.Codec, e, g.opts.JSON, k, rng, mix.MaxRecordBytes+1)
		if err == nil {
			m.recs = append(m.recs, &kgo.Record{Topic: g.opts.Topic, Key: []byte(e.ID), Value: v})
			m.what = append(m.what, -3)
			sent.Poison[k.Class]++
		}
	default:
		err = g.next(rng, r-mix.Poison, mix, m.pick, m.live, m.emit, sent)
	}
	if err != nil {
		return fmt.Errorf("cdcsim: event %d: %w", i, err)
	}
	return nil
}

// duplicates appends the burst of a connector restarted from an older
// replay id: the last records it wrote come again (malformed ones did not
// come from it).
func (m *Mixer) duplicates() {
	recs, what, sent := m.recs, m.what, m.sent
	var burst []int
	for i := len(recs) - 1; i >= 0 && len(burst) < m.mix.Duplicates; i-- {
		if what[i] != -3 {
			burst = append(burst, i)
		}
	}
	for k := len(burst) - 1; k >= 0; k-- {
		i := burst[k]
		dup := *recs[i]
		recs = append(recs, &dup)
		sent.Duplicates++
		switch what[i] {
		case -1:
			sent.Echoes++ // skipped as an echo again
		case -2:
			sent.Refreshes[schemas.RefreshOverflow]++ // no Lead to remember it by: asked again
		default:
			sent.DuplicateChanges += what[i]
		}
	}
	m.recs = recs
}

// next emits one well-formed event of the mix; r is uniform in [0, 1-poison).
func (g *Generator) next(rng *rand.Rand, r float64, mix Mix, pick func() Lead, live func() (Lead, bool),
	emit func(*schemas.ChangeEvent, string) error, sent *Sent) error {
	l := pick()
	created, deleted, converted := g.State(l.ID)
	switch {
	case !created && !deleted:
		if rng.Float64() < mix.PartialFirst {
			g.lead(l).created = true // the org had it before the connector started
			sent.Refreshes[schemas.RefreshPartialState]++
			return emit(g.Touch(l), "")
		}
		return emit(g.Create(l), "")
	case deleted:
		return emit(g.Undelete(l), "")
	}
	edges := []float64{mix.Status, mix.Merged, mix.Echoes, mix.Conversions, mix.Deletes, mix.Gaps}
	for i, share := range edges {
		if r >= share {
			r -= share
			continue
		}
		switch i {
		case 0:
			if e := g.Progress(l); e != nil {
				return emit(e, "")
			}
		case 1:
			ls := []Lead{l}
			for range 1 + rng.IntN(4) {
				if o, ok := live(); ok && o.ID != l.ID {
					ls = append(ls, o)
				}
			}
			return emit(g.Reassign(ls), "")
		case 2:
			return emit(g.Echo(l), "echo")
		case 3:
			if !converted {
				return emit(g.Convert(l), "")
			}
		case 4:
			return emit(g.Delete(l), "")
		case 5:
			ls := []Lead{l}
			if o, ok := live(); ok && o.ID != l.ID && rng.IntN(2) == 0 {
				ls = append(ls, o)
			}
			sent.Refreshes[schemas.RefreshGap]++
			types := []string{schemas.ChangeGapUpdate, schemas.ChangeGapUpdate, schemas.ChangeGapCreate, schemas.ChangeGapUndelete,
				schemas.ChangeGapDelete}
			return emit(g.Gap(types[rng.IntN(len(types))], ls), "")
		}
		break
	}
	return emit(g.Touch(l), "")
}
