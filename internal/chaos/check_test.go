package chaos

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/schemas"
)

// fakeOracle scores an event from its CRD, Lead flags and scoring time by a
// rule of its own, so the check is tested without models.
type fakeOracle struct{}

func (fakeOracle) Expect(s *Sent, when time.Time) (*Expected, error) {
	score := float64(s.CRD%100) / 100
	if s.Email {
		score += 0.005
	}
	score += float64(when.Sub(at).Milliseconds()) * 1e-9
	pct := int(s.CRD%100) + 1
	return &Expected{
		Scores: []schemas.VersionScore{{Version: "v1", Role: "production", Score: score, Percentile: pct}},
		Sink:   SinkView{Score: score, Percentile: pct, Version: "v1", Explanation: fmt.Sprintf("+ crd %d", s.CRD)},
	}, nil
}

var at = time.Date(2025, 12, 31, 12, 0, 0, 0, time.UTC)

// world is a small stream: lead A changes three times (the second change
// flips has_email, the third flips it back), lead B twice the same way, one
// echo and two poison records.
func world() []Sent {
	return []Sent{
		{ID: "e1", Kind: Good, Lead: "A", CRD: 7},
		{ID: "e2", Kind: Good, Lead: "A", CRD: 7, Email: true},
		{ID: "e3", Kind: Good, Lead: "B", CRD: 42},
		{ID: "e4", Kind: Echo, Lead: "B", CRD: 42},
		{ID: "e5", Kind: Poison, Lead: "A", Class: producer.ClassDecode, Fault: "random bytes"},
		{ID: "e6", Kind: Good, Lead: "A", CRD: 7},
		{ID: "e7", Kind: Poison, Lead: "B", Class: producer.ClassValidation, Fault: "missing crd"},
		{ID: "e8", Kind: Good, Lead: "B", CRD: 42}, // nothing the Lead shows changes: no sink record
	}
}

// perfect is what a correct scorer writes for world: a shadow record per
// good event, a sink record per change the Lead shows, the poison in the DLQ.
func perfect(t *testing.T, sent []Sent) *Outputs {
	t.Helper()
	out := &Outputs{}
	shows := map[string]SinkView{}
	for i := range sent {
		s := &sent[i]
		out.Input = append(out.Input, s.ID)
		switch s.Kind {
		case Good, Withheld:
			e, _ := fakeOracle{}.Expect(s, at)
			out.Shadow = append(out.Shadow, ShadowOut{EventID: s.ID, LeadID: s.Lead, ScoredAt: at, Scores: e.Scores})
			if v, ok := shows[s.Lead]; s.Kind == Good && (!ok || v != e.Sink) {
				out.Sink = append(out.Sink, SinkOut{EventID: s.ID, LeadID: s.Lead, Offset: int64(i), ScoredAt: at, View: e.Sink})
				shows[s.Lead] = e.Sink
			}
		case Removed:
			delete(shows, s.Lead)
		case Poison:
			out.DLQ = append(out.DLQ, DLQOut{Event: s.ID, Class: s.Class})
		}
	}
	return out
}

func sinkIndex(out *Outputs, id string) int {
	for i, s := range out.Sink {
		if s.EventID == id {
			return i
		}
	}
	panic("no sink record " + id)
}

func TestCheckCountsWhatTheOutputsGetWrong(t *testing.T) {
	tests := []checkCase{
		{name: "a correct run passes", break_: func(*Outputs) {}},
		{name: "a good event without a shadow record is lost", lost: 1, problem: "e3 lost",
			break_: func(o *Outputs) { o.Shadow = append(o.Shadow[:2], o.Shadow[3:]...) }},
		{name: "a second shadow record of an event is duplicated", dup: 1,
			break_: func(o *Outputs) { o.Shadow = append(o.Shadow, o.Shadow[0]) }},
		{name: "a shadow score one ulp off is wrong", wrong: 1, problem: "e2",
			break_: func(o *Outputs) {
				sc := append([]schemas.VersionScore(nil), o.Shadow[1].Scores...)
				sc[0].Score += 1e-17
				o.Shadow[1].Scores = sc
			}},
		{name: "a shadow record whose scores are not those of its scored_at is wrong", wrong: 1, problem: "e8",
			break_: func(o *Outputs) { o.Shadow[4].ScoredAt = at.Add(time.Millisecond) }}, // e8 has no sink record
		{name: "a sink record scored at another time than its shadow record is wrong", wrong: 1, problem: "its shadow record",
			break_: func(o *Outputs) {
				i := sinkIndex(o, "e3")
				o.Sink[i].ScoredAt = at.Add(time.Millisecond)
				e, _ := fakeOracle{}.Expect(&Sent{CRD: 42}, o.Sink[i].ScoredAt)
				o.Sink[i].View = e.Sink
			}},
		{name: "a shadow record for an echo is wrong", wrong: 1, problem: "not a good event",
			break_: func(o *Outputs) { o.Shadow = append(o.Shadow, ShadowOut{EventID: "e4", LeadID: "B", ScoredAt: at}) }},
		{name: "a sink record written twice for one event is duplicated", dup: 1,
			break_: func(o *Outputs) {
				r := o.Sink[sinkIndex(o, "e3")]
				r.Offset = 100
				o.Sink = append(o.Sink, r)
			}},
		{name: "a sink record for poison is wrong", wrong: 1,
			break_: func(o *Outputs) {
				o.Sink = append(o.Sink, SinkOut{EventID: "e7", LeadID: "B", Offset: 100, ScoredAt: at})
			}},
		{name: "a Lead whose only change left no sink record is lost", lost: 1, problem: "lead B",
			break_: func(o *Outputs) { o.Sink = append(o.Sink[:sinkIndex(o, "e3")], o.Sink[sinkIndex(o, "e3")+1:]...) }},
		// The quota guard's state lost after e2's commit: e3's twin for A
		// (e6, same as e1) compared with e1's state is suppressed, and the
		// Lead keeps showing e2.
		{name: "a Lead left showing an update its last change undid is wrong", wrong: 1, problem: "left showing",
			break_: func(o *Outputs) { o.Sink = append(o.Sink[:sinkIndex(o, "e6")], o.Sink[sinkIndex(o, "e6")+1:]...) }},
		{name: "a repeated sink update of an unchanged Lead is only counted", reps: 1,
			break_: func(o *Outputs) {
				e, _ := fakeOracle{}.Expect(&Sent{CRD: 42}, at)
				o.Sink = append(o.Sink, SinkOut{EventID: "e8", LeadID: "B", Offset: 100, ScoredAt: at, View: e.Sink})
			}},
		{name: "poison missing from the DLQ is lost", lost: 1, problem: "missing crd",
			break_: func(o *Outputs) { o.DLQ = o.DLQ[:1] }},
		{name: "poison dead-lettered with the wrong class is wrong", wrong: 1, problem: "want validation",
			break_: func(o *Outputs) { o.DLQ[1].Class = producer.ClassDecode }},
		{name: "a dead letter of a good event is wrong", wrong: 1,
			break_: func(o *Outputs) { o.DLQ = append(o.DLQ, DLQOut{Event: "e1", Class: "features"}) }},
		{name: "poison dead-lettered twice is duplicated", dup: 1,
			break_: func(o *Outputs) { o.DLQ = append(o.DLQ, o.DLQ[0]) }},
		{name: "an input the stream holds twice is a problem: the run proves nothing", problem: "input",
			break_: func(o *Outputs) { o.Input = append(o.Input, "e1") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, world()) })
	}
}

// checkCase breaks the outputs a correct scorer writes for a stream and
// says what the check must then count and report.
type checkCase struct {
	name                   string
	break_                 func(out *Outputs)
	lost, dup, wrong, reps int
	problem                string
}

func (tt checkCase) run(t *testing.T, sent []Sent) {
	t.Helper()
	out := perfect(t, sent)
	tt.break_(out)
	r, err := Check("t", sent, out, fakeOracle{}, 0.001)
	if err != nil {
		t.Fatal(err)
	}
	if r.Lost != tt.lost || r.Duplicated != tt.dup || r.Wrong != tt.wrong || r.SinkRepeats != tt.reps {
		t.Errorf("lost=%d duplicated=%d wrong=%d repeats=%d, want %d %d %d %d; problems %q",
			r.Lost, r.Duplicated, r.Wrong, r.SinkRepeats, tt.lost, tt.dup, tt.wrong, tt.reps, r.Problems)
	}
	joined := strings.Join(r.Problems, "\n")
	if tt.problem != "" && !strings.Contains(joined, tt.problem) {
		t.Errorf("problems %q do not mention %q", r.Problems, tt.problem)
	}
	wantPass := tt.lost+tt.dup+tt.wrong == 0 && tt.problem == ""
	if r.Pass() != wantPass {
		t.Errorf("Pass() = %v, want %v (problems %q)", r.Pass(), wantPass, r.Problems)
	}
	if r.DLQ != len(out.DLQ) || r.Events != len(sent) {
		t.Errorf("dlq=%d events=%d, want %d %d", r.DLQ, r.Events, len(out.DLQ), len(sent))
	}
}

// The kinds only change events have: a converted Lead's changes are scored
// and never written to the sink; a removal has no output, leaves its Lead
// nothing to show, and makes the next change of a Lead that comes back a
// sink record the quota guard must write again; an overflow has no output
// and changes nothing.
func TestCheckOfConvertedAndRemovedLeads(t *testing.T) {
	sent := []Sent{
		{ID: "c1", Kind: Good, Lead: "C", CRD: 9},
		{ID: "o1", Kind: RefreshOnly, Lead: "C", CRD: 9},
		{ID: "c2", Kind: Withheld, Lead: "C", CRD: 9, Email: true},
		{ID: "d1", Kind: Good, Lead: "D", CRD: 11},
		{ID: "d2", Kind: Removed, Lead: "D", CRD: 11},
		{ID: "f1", Kind: Good, Lead: "F", CRD: 13},
		{ID: "f2", Kind: Removed, Lead: "F", CRD: 13},
		{ID: "f3", Kind: Good, Lead: "F", CRD: 13}, // back as it was: written again
	}
	without := func(id string) func(o *Outputs) {
		return func(o *Outputs) { o.Sink = append(o.Sink[:sinkIndex(o, id)], o.Sink[sinkIndex(o, id)+1:]...) }
	}
	tests := []checkCase{
		{name: "a correct run passes, the Lead back counted as a needed write", break_: func(*Outputs) {}},
		{name: "a sink record for a withheld change is wrong", wrong: 1, problem: "c2",
			break_: func(o *Outputs) {
				e, _ := fakeOracle{}.Expect(&sent[2], at)
				o.Sink = append(o.Sink, SinkOut{EventID: "c2", LeadID: "C", Offset: 100, ScoredAt: at, View: e.Sink})
			}},
		{name: "a withheld change without a shadow record is lost", lost: 1, problem: "c2 lost",
			break_: func(o *Outputs) { o.Shadow = append(o.Shadow[:1], o.Shadow[2:]...) }},
		{name: "a shadow record for an overflow is wrong", wrong: 1, problem: "o1",
			break_: func(o *Outputs) { o.Shadow = append(o.Shadow, ShadowOut{EventID: "o1", LeadID: "C", ScoredAt: at}) }},
		{name: "a sink record for an overflow is wrong", wrong: 1, problem: "o1",
			break_: func(o *Outputs) {
				e, _ := fakeOracle{}.Expect(&sent[1], at)
				o.Sink = append(o.Sink, SinkOut{EventID: "o1", LeadID: "C", Offset: 101, ScoredAt: at, View: e.Sink})
			}},
		{name: "a shadow record for a removal is wrong", wrong: 1, problem: "d2",
			break_: func(o *Outputs) { o.Shadow = append(o.Shadow, ShadowOut{EventID: "d2", LeadID: "D", ScoredAt: at}) }},
		{name: "a removed Lead needs no sink record", break_: without("d1")},
		{name: "a Lead back after its removal needs its sink record", lost: 1, problem: "lead F",
			break_: func(o *Outputs) { without("f3")(o); without("f1")(o) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, sent) })
	}
}

func TestResultLineHasTheAgreedFields(t *testing.T) {
	r := &Result{Scenario: "kill9", Events: 100000, Lost: 1, Duplicated: 2, Wrong: 3, DLQ: 4}
	want := "scenario=kill9 events=100000 lost=1 duplicated=2 wrong=3 dlq=4 "
	if got := r.Line(); !strings.HasPrefix(got, want) {
		t.Errorf("line %q does not start with %q", got, want)
	}
}
