package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/leadscorer/leadscorer/schemas"
)

// Outputs are the committed records of a scenario's topics, decoded.
type Outputs struct {
	// Input lists the HeaderEvent of every record on the input topic: the
	// check first proves the stream itself holds each event exactly once.
	Input  []string
	Shadow []ShadowOut
	Sink   []SinkOut
	DLQ    []DLQOut
}

// ShadowOut is one shadow record.
type ShadowOut struct {
	EventID, LeadID string
	ScoredAt        time.Time
	Scores          []schemas.VersionScore
}

// SinkOut is one sink record, with its place in the topic (a Lead's records
// share a partition, so offsets order them).
type SinkOut struct {
	EventID, LeadID string
	Partition       int32
	Offset          int64
	ScoredAt        time.Time
	View            SinkView
}

// DLQOut is one dead letter: the HeaderEvent it carried over from its input
// record and its error class.
type DLQOut struct {
	Event, Class string
}

// Result is one scenario's verdict.
type Result struct {
	Scenario string
	Events   int // input records
	// Lost: good events without a shadow record, Leads whose changes left
	// no sink record, poison missing from the DLQ.
	Lost int
	// Duplicated: output records beyond the first for an event (shadow,
	// sink or DLQ).
	Duplicated int
	// Wrong: output records that differ from the offline computation, that
	// belong to no event that should have one, a dead letter of the wrong
	// class, and Leads left showing something other than their last
	// change.
	Wrong int
	DLQ   int // dead letters
	// Sink is the number of sink records; SinkRepeats those beyond what the
	// quota guard lets through when its state is never lost (each one a
	// repeated, idempotent Salesforce update).
	Sink, SinkRepeats int
	Elapsed           time.Duration
	// Notes say what the scenario did (kills, restarts, metrics read).
	Notes []string
	// Problems describe the first failures found.
	Problems []string
}

// Pass reports whether nothing was lost, duplicated or wrong.
func (r *Result) Pass() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.Wrong == 0 && len(r.Problems) == 0
}

// Line is the scenario's one-line summary.
func (r *Result) Line() string {
	return fmt.Sprintf("scenario=%s events=%d lost=%d duplicated=%d wrong=%d dlq=%d sink=%d sink_repeats=%d elapsed=%.1fs",
		r.Scenario, r.Events, r.Lost, r.Duplicated, r.Wrong, r.DLQ, r.Sink, r.SinkRepeats, r.Elapsed.Seconds())
}

const maxProblems = 10

func (r *Result) problem(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// Expecter gives the outputs a good event must produce.
type Expecter interface {
	// Expect returns what a good event scored as of at must produce.
	Expect(s *Sent, at time.Time) (*Expected, error)
}

// Check compares a scenario's outputs with what its input must produce:
//   - input: each event exactly once (else the run proves nothing);
//   - shadow: exactly one record per good or withheld event, none for
//     echoes, removals, overflows or poison,
//     every version's score, percentile, decile and flags equal to the
//     offline computation as of the record's own scored_at (a scorer scores
//     a batch as of one instant, to the millisecond, and says which);
//   - sink: at most one record per event, only for good events (a removal
//     may withhold those of its batch), scored at
//     the same instant as the event's shadow record (they commit in one
//     transaction) and equal to the offline computation as of it; every
//     Lead with a good event since its last removal has a record,
//     and its last record shows what the Lead's last good change says
//     (within the quota guard's eps), so no suppressed update left it
//     stale;
//   - DLQ: exactly the poison, each once, with its class.
func Check(name string, sent []Sent, out *Outputs, o Expecter, eps float64) (*Result, error) {
	r := &Result{Scenario: name, Events: len(sent), DLQ: len(out.DLQ), Sink: len(out.Sink)}
	byID := make(map[string]*Sent, len(sent))
	for i := range sent {
		byID[sent[i].ID] = &sent[i]
	}

	seen := make(map[string]int, len(out.Input))
	for _, id := range out.Input {
		seen[id]++
	}
	for _, s := range sent {
		if n := seen[s.ID]; n != 1 {
			r.problem("input: event %s is on the input topic %d times", s.ID, n)
		}
	}
	if len(out.Input) != len(sent) {
		r.problem("input: %d records on the input topic, %d sent", len(out.Input), len(sent))
	}

	// Shadow.
	clear(seen)
	scoredAt := make(map[string]time.Time, len(out.Shadow))
	for _, sh := range out.Shadow {
		seen[sh.EventID]++
		if seen[sh.EventID] > 1 {
			r.Duplicated++
			r.problem("shadow: event %s duplicated", sh.EventID)
			continue
		}
		s, ok := byID[sh.EventID]
		if !ok || !s.Kind.scored() {
			r.Wrong++
			r.problem("shadow: record for event %q, which is not a good event", sh.EventID)
			continue
		}
		scoredAt[sh.EventID] = sh.ScoredAt
		e, err := o.Expect(s, sh.ScoredAt)
		if err != nil {
			return nil, err
		}
		if why := diffShadow(sh, s, e); why != "" {
			r.Wrong++
			r.problem("shadow: event %s: %s", sh.EventID, why)
		}
	}
	for _, s := range sent {
		if s.Kind.scored() && seen[s.ID] == 0 {
			r.Lost++
			r.problem("shadow: event %s lost", s.ID)
		}
	}

	// Sink.
	clear(seen)
	sink := append([]SinkOut(nil), out.Sink...)
	sort.SliceStable(sink, func(i, j int) bool {
		if sink[i].Partition != sink[j].Partition {
			return sink[i].Partition < sink[j].Partition
		}
		return sink[i].Offset < sink[j].Offset
	})
	last := map[string]SinkView{}
	valid := 0
	for _, sk := range sink {
		seen[sk.EventID]++
		if seen[sk.EventID] > 1 {
			r.Duplicated++
			r.problem("sink: event %s duplicated", sk.EventID)
			continue
		}
		s, ok := byID[sk.EventID]
		if !ok || s.Kind != Good || s.Lead != sk.LeadID {
			r.Wrong++
			r.problem("sink: record for event %q (lead %s), which is not a good event of that lead", sk.EventID, sk.LeadID)
			continue
		}
		e, err := o.Expect(s, sk.ScoredAt)
		if err != nil {
			return nil, err
		}
		if sk.View != e.Sink {
			r.Wrong++
			r.problem("sink: event %s: got %+v, want %+v as of %v", sk.EventID, sk.View, e.Sink, sk.ScoredAt)
		}
		if at, ok := scoredAt[sk.EventID]; ok && !sk.ScoredAt.Equal(at) {
			r.Wrong++
			r.problem("sink: event %s scored at %v, its shadow record at %v", sk.EventID, sk.ScoredAt, at)
		}
		last[sk.LeadID] = sk.View
		valid++
	}
	// What the Lead must show at the end, and how many sink records the
	// quota guard needs at least: replay each Lead's good events in order,
	// each as of when it was scored (a lost one is counted above). A
	// removal leaves nothing to show, and the quota state with it.
	need := map[string]SinkView{}
	minimum := 0
	for i := range sent {
		s := &sent[i]
		if s.Kind == Removed {
			delete(need, s.Lead)
			continue
		}
		at, scored := scoredAt[s.ID]
		if s.Kind != Good || !scored {
			continue
		}
		e, err := o.Expect(s, at)
		if err != nil {
			return nil, err
		}
		if v, ok := need[s.Lead]; !ok || !v.Same(e.Sink, eps) {
			minimum++
			need[s.Lead] = e.Sink
		}
	}
	leads := make([]string, 0, len(need))
	for l := range need {
		leads = append(leads, l)
	}
	sort.Strings(leads)
	for _, l := range leads {
		got, ok := last[l]
		switch {
		case !ok:
			r.Lost++
			r.problem("sink: lead %s has good events but no sink record", l)
		case !got.Same(need[l], eps):
			r.Wrong++
			r.problem("sink: lead %s left showing %+v, its last change says %+v", l, got, need[l])
		}
	}
	r.SinkRepeats = max(valid-minimum, 0) // fewer shows as lost or wrong above

	// DLQ.
	clear(seen)
	for _, d := range out.DLQ {
		seen[d.Event]++
		if seen[d.Event] > 1 {
			r.Duplicated++
			r.problem("dlq: event %s duplicated", d.Event)
			continue
		}
		s, ok := byID[d.Event]
		switch {
		case !ok || s.Kind != Poison:
			r.Wrong++
			r.problem("dlq: dead letter (class %s) for event %q, which is not poison", d.Class, d.Event)
		case d.Class != s.Class:
			r.Wrong++
			r.problem("dlq: %s (%s) has class %s, want %s", d.Event, s.Fault, d.Class, s.Class)
		}
	}
	for _, s := range sent {
		if s.Kind == Poison && seen[s.ID] == 0 {
			r.Lost++
			r.problem("dlq: poison %s (%s) missing", s.ID, s.Fault)
		}
	}
	return r, nil
}

// scored reports whether an event of kind k must have a shadow record.
func (k Kind) scored() bool { return k == Good || k == Withheld }

func diffShadow(sh ShadowOut, s *Sent, e *Expected) string {
	var why []string
	if sh.LeadID != s.Lead {
		why = append(why, fmt.Sprintf("lead %s, want %s", sh.LeadID, s.Lead))
	}
	if len(sh.Scores) != len(e.Scores) {
		return strings.Join(append(why, fmt.Sprintf("%d version scores, want %d", len(sh.Scores), len(e.Scores))), "; ")
	}
	for i, g := range sh.Scores {
		w := e.Scores[i]
		if g.Version != w.Version || g.Role != w.Role || g.Score != w.Score || g.Percentile != w.Percentile ||
			g.Decile != w.Decile || g.Deprioritize != w.Deprioritize || g.UpgradeCandidate != w.UpgradeCandidate {
			why = append(why, fmt.Sprintf("%s: got score %v pct %d, want %v pct %d", w.Version, g.Score, g.Percentile, w.Score, w.Percentile))
		}
	}
	return strings.Join(why, "; ")
}
