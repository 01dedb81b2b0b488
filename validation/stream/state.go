// Package stream is the parallel validation of the model versions the
// scorer serves, from its topics: every version's score of each lead
// change (leads.scored.shadow.v1) and what happened to the leads
// (leads.outcomes.v1). It rebuilds its state from the topics on start
// (Kafka is the source of truth), dedupes both by event id, and reports per
// version and per window (day, ISO week, since the version's promotion) the
// figures of package validation, score drift against the registry's
// reference distribution, the agreement of the versions' flags, and the
// deployment checklist's rollback criteria for the production version.
//
// The label is the checklist's: a lead converts when a call is scheduled
// within 43 days of its first contact; a lead contacted less than 43 days
// ago without a call is pending and not counted. The score that counts for
// a lead is, per version, its latest score at or before first contact.
//
// State holds the records and computes a Report; Validator feeds a State
// from Kafka, exports the report as Prometheus gauges, serves it on
// /dashboard and can roll the registry back when a criterion fires.
package stream

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/leadscorer/leadscorer/schemas"
)

// LabelWindow is how long after first contact a scheduled call counts as a
// conversion.
const LabelWindow = 43 * 24 * time.Hour

// State is what the validator knows: every distinct shadow record and
// outcome. Its Report depends only on the set of records added, not on
// their order or on duplicates, so a validator rebuilt from the topics
// reports exactly what the one before it did. Safe for concurrent use.
type State struct {
	mu          sync.Mutex
	seenShadow  map[string]struct{}
	seenOutcome map[string]struct{}
	leads       map[string]*lead
	events      []scoredEvent
	versions    map[string]struct{}
	duplicates  int
}

// point is one version's score of one lead change.
type point struct {
	version      string
	score        float64
	percentile   int
	decile       int
	deprioritize bool
}

// scoredEvent is one shadow record: every serving version's score of one
// lead change.
type scoredEvent struct {
	eventID  string
	scoredAt time.Time
	points   []point
}

type lead struct {
	scores  []int // indexes into State.events
	contact time.Time
	calls   []time.Time
}

// NewState returns an empty State.
func NewState() *State {
	return &State{
		seenShadow: map[string]struct{}{}, seenOutcome: map[string]struct{}{},
		leads: map[string]*lead{}, versions: map[string]struct{}{},
	}
}

func (s *State) lead(id string) *lead {
	l := s.leads[id]
	if l == nil {
		l = &lead{}
		s.leads[id] = l
	}
	return l
}

// AddShadow adds a shadow record; it reports false for an event id already
// added (a duplicate, ignored).
func (s *State) AddShadow(r *schemas.LeadScoreShadow) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.seenShadow[r.EventID]; dup {
		s.duplicates++
		return false
	}
	s.seenShadow[r.EventID] = struct{}{}
	e := scoredEvent{eventID: r.EventID, scoredAt: r.ScoredAt.UTC(), points: make([]point, len(r.Scores))}
	for i, v := range r.Scores {
		e.points[i] = point{version: v.Version, score: v.Score, percentile: v.Percentile, decile: v.Decile, deprioritize: v.Deprioritize}
		s.versions[v.Version] = struct{}{}
	}
	s.events = append(s.events, e)
	l := s.lead(r.LeadID)
	l.scores = append(l.scores, len(s.events)-1)
	return true
}

// AddOutcome adds an outcome; it reports false for an event id already
// added (a duplicate, ignored) and for an unknown kind.
func (s *State) AddOutcome(o *schemas.LeadOutcome) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.seenOutcome[o.EventID]; dup {
		s.duplicates++
		return false
	}
	t := o.Time.UTC()
	switch o.Kind {
	case schemas.OutcomeContacted:
		l := s.lead(o.LeadID)
		if l.contact.IsZero() || t.Before(l.contact) {
			l.contact = t
		}
	case schemas.OutcomeCallScheduled:
		l := s.lead(o.LeadID)
		l.calls = append(l.calls, t)
	default:
		return false
	}
	s.seenOutcome[o.EventID] = struct{}{}
	return true
}

// Counts are the sizes of a State.
type Counts struct {
	ShadowRecords int `json:"shadow_records"` // distinct shadow records
	Outcomes      int `json:"outcomes"`       // distinct outcomes
	Duplicates    int `json:"duplicates"`     // records ignored as already seen
	Leads         int `json:"leads"`          // distinct Lead Ids seen
	Contacted     int `json:"contacted"`      // leads with a first contact
}

// Counts returns the sizes of the state.
func (s *State) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := Counts{ShadowRecords: len(s.seenShadow), Outcomes: len(s.seenOutcome), Duplicates: s.duplicates, Leads: len(s.leads)}
	for _, l := range s.leads {
		if !l.contact.IsZero() {
			c.Contacted++
		}
	}
	return c
}

// labelled is one contacted lead as the report counts it.
type labelled struct {
	contact   time.Time
	status    int // labelPending, labelConverted, labelNot
	byVersion map[string]point
}

const (
	labelPending = iota
	labelConverted
	labelNot
)

// snapshot copies out what a report needs, under the lock: the contacted
// leads with their counting scores and labels as of now, and the events.
func (s *State) snapshot(now time.Time) ([]labelled, []scoredEvent, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []labelled
	for _, l := range s.leads {
		if l.contact.IsZero() {
			continue
		}
		c := labelled{contact: l.contact, byVersion: map[string]point{}}
		// Per version: the latest score at or before first contact; among
		// records scored at the same instant the greatest event id, so
		// that the choice does not depend on arrival order.
		best := map[string]*scoredEvent{}
		for _, i := range l.scores {
			e := &s.events[i]
			if e.scoredAt.After(l.contact) {
				continue
			}
			for _, p := range e.points {
				b := best[p.version]
				if b == nil || e.scoredAt.After(b.scoredAt) || e.scoredAt.Equal(b.scoredAt) && e.eventID > b.eventID {
					best[p.version] = e
					c.byVersion[p.version] = p
				}
			}
		}
		deadline := l.contact.Add(LabelWindow)
		c.status = labelPending
		for _, t := range l.calls {
			if !t.Before(l.contact) && !t.After(deadline) {
				c.status = labelConverted
				break
			}
		}
		if c.status == labelPending && !now.Before(deadline) {
			c.status = labelNot
		}
		out = append(out, c)
	}
	events := slices.Clone(s.events)
	slices.SortFunc(events, func(a, b scoredEvent) int { return cmp.Compare(a.eventID, b.eventID) })
	versions := make([]string, 0, len(s.versions))
	for v := range s.versions {
		versions = append(versions, v)
	}
	slices.Sort(versions)
	return out, events, versions
}
