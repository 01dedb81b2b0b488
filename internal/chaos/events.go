package chaos

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/leadscorer/leadscorer/internal/cdcsim"
	"github.com/leadscorer/leadscorer/internal/poison"
	"github.com/leadscorer/leadscorer/internal/synth"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// HeaderEvent names the header every input record carries with its unique
// id in the stream. The scorer copies input headers into dead letters, so a
// DLQ record is matched to the record it came from even when its bytes say
// nothing (random bytes, a truncated body).
const HeaderEvent = "chaos.event"

// Kind is what an input record is, and so what the scorer must make of it.
type Kind uint8

const (
	// Good is a valid lead change: one shadow record, a sink record unless
	// the quota guard suppresses it.
	Good Kind = iota
	// Echo is the sink's own write echoed back (only V4_* fields changed):
	// no output at all.
	Echo
	// Poison is a malformed record: exactly one DLQ record, of Class.
	Poison
	// Withheld is a change of a converted Lead, or a GAP_DELETE: one
	// shadow record, no sink record (change events only).
	Withheld
	// Removed is a Lead's deletion: no output, and the Lead shows nothing
	// the sink must keep true until it comes back (change events only).
	Removed
	// RefreshOnly is a GAP_OVERFLOW: no shadow, sink or DLQ record (a
	// refresh request of the whole object), and nothing changes for the
	// check (change events only).
	RefreshOnly
)

// Sent is one input record as the stream generator made it: the truth the
// outputs are checked against.
type Sent struct {
	ID    string // the event id (and the HeaderEvent value)
	Kind  Kind
	Lead  string // the Lead Id (the record key)
	CRD   int64
	Email bool
	// LinkedIn is the Lead's has_linkedin.
	LinkedIn bool
	// Poison only: the DLQ class the record must get and what was done to it.
	Class, Fault string
}

// PoisonKinds lists every malformed input the decoder can meet, with its
// DLQ class.
var PoisonKinds = poison.Kinds

// OversizedBytes is the size of the oversized poison value: 2 MB, above the
// scorer's max_record_bytes and above the broker's default message size, so
// the input topic has to be configured to take it.
const OversizedBytes = 2 << 20

// MaxOversized caps the 2 MB records of a stream: a few prove the path,
// a thousand would only measure the disk.
const MaxOversized = 10

// Mix says what a stream holds.
type Mix struct {
	Events int     // total input records
	Poison float64 // share of malformed records (every kind in turn)
	Echoes float64 // share of the sink's echoes
	// Flip is the chance that an event changes the Lead's has_email or
	// has_linkedin, so scores move and the sink has changes to write.
	Flip float64
	Seed uint64
	At   time.Time // event time
}

// Stream builds the input records of a scenario and what each one is. Every
// record has a unique event id; leads come from a pool a fifth the size of
// the stream, so most leads change several times and the quota guard has
// something to suppress. Poison kinds are used in turn, so every kind is
// present once the stream has at least len(PoisonKinds) poison records
// (the 2 MB one at most MaxOversized times).
func Stream(codec *schemas.Codec, topic, prefix string, pop *synth.Population, mix Mix) ([]*kgo.Record, []Sent, error) {
	rng := rand.New(rand.NewPCG(mix.Seed, 0xc4a05))
	pool := min(max(mix.Events/5, 1), len(pop.Leads))
	recs := make([]*kgo.Record, 0, mix.Events)
	sent := make([]Sent, 0, mix.Events)
	// The Lead as the stream last showed it, so that flips accumulate.
	state := map[string][2]bool{}
	var turn poisonTurn
	for i := range mix.Events {
		l := &pop.Leads[rng.IntN(pool)]
		st, ok := state[l.ID]
		if !ok {
			st = [2]bool{l.HasEmail, l.HasLinkedIn}
		}
		if rng.Float64() < mix.Flip {
			j := rng.IntN(2)
			st[j] = !st[j]
		}
		s := Sent{ID: fmt.Sprintf("%s-%d", prefix, i), Lead: l.ID, CRD: l.CRD, Email: st[0], LinkedIn: st[1]}
		e := schemas.LeadChanged{
			EventID: s.ID, LeadID: l.ID, CRD: l.CRD, HasCRD: true, HasEmail: st[0], HasLinkedIn: st[1],
			Stage: "Contacting", ChangedFields: []string{"Status"}, EventTime: mix.At,
		}
		var (
			val []byte
			err error
		)
		switch r := rng.Float64(); {
		case r < mix.Poison:
			k := PoisonKinds[turn.pick(len(PoisonKinds), func(i int) bool { return PoisonKinds[i] == poison.Oversized })]
			s.Kind, s.Class, s.Fault = Poison, k.Class, k.Name
			val, err = poison.Value(codec, &e, k, rng, OversizedBytes)
		case r < mix.Poison+mix.Echoes:
			s.Kind = Echo
			e.ChangedFields = []string{"V4_Score__c", "V4_Score_Percentile__c", "V4_Scored_At__c"}
			val, err = codec.AppendLeadChanged(nil, &e)
		default:
			state[l.ID] = st
			val, err = codec.AppendLeadChanged(nil, &e)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("chaos: event %d: %w", i, err)
		}
		recs = append(recs, inputRecord(topic, l.ID, s.ID, val))
		sent = append(sent, s)
	}
	return recs, sent, nil
}

// inputRecord is an input record of the Lead, with its event id in the
// HeaderEvent header.
func inputRecord(topic, lead, id string, val []byte) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: []byte(lead), Value: val,
		Headers: []kgo.RecordHeader{{Key: HeaderEvent, Value: []byte(id)}}}
}

// nextChange is the org's next change of the Lead: mostly what cdcsim
// makes next, but one live Lead's change in fifty is its deletion, one in
// fifty its conversion, one in a hundred a GAP_UPDATE and one in two
// hundred a deletion delivered as a GAP_DELETE; one draw in five hundred
// is a GAP_OVERFLOW; and a deleted Lead comes back by undeletion half the
// time (by a new creation otherwise).
func nextChange(org *cdcsim.Generator, l cdcsim.Lead, rng *rand.Rand) *schemas.ChangeEvent {
	created, deleted, converted := org.State(l.ID)
	live := created && !deleted
	switch r := rng.IntN(1000); {
	case deleted:
		if r < 500 {
			return org.Undelete(l)
		}
	case live && r < 20:
		return org.Delete(l)
	case live && r < 40:
		if !converted {
			return org.Convert(l)
		}
	case live && r < 50:
		// Changes Salesforce could not deliver: the scorer rescores what
		// it stored and asks for the Lead to be read again.
		return org.Gap(schemas.ChangeGapUpdate, []cdcsim.Lead{l})
	case live && r < 55:
		// A deletion delivered as a gap: rescored, never written.
		e := org.Delete(l)
		e.Header.ChangeType = schemas.ChangeGapDelete
		return e
	case r < 57:
		return org.Overflow()
	}
	return org.Next(l)
}

// poisonTurn takes the poison kinds in turn, leaving out the oversized one
// once MaxOversized records of it were made.
type poisonTurn struct{ next, oversized int }

// pick is the index of the next of n kinds; oversized says which is the
// oversized one.
func (p *poisonTurn) pick(n int, oversized func(int) bool) int {
	i := p.next % n
	p.next++
	if oversized(i) {
		if p.oversized < MaxOversized {
			p.oversized++
			return i
		}
		i = p.next % n
		p.next++
	}
	return i
}

// StreamCDC builds a scenario's input as Salesforce change events, as the
// CDC connector writes them (Avro): each Lead of a pool a fifth the size of
// the stream is created the first time it is drawn, then updated (its
// email or LinkedIn profile set or cleared, another field, its status
// moved on) or echoed by the sink, as cdcsim makes an org's changes; now
// and then converted (its later changes are scored, never written to the
// sink), deleted and undeleted or created again, or named by a gap event
// (rescored from the stored state) or an overflow (see nextChange). No
// change names several Leads: the input's partitions would order them
// apart, which the connector's one partition never does. Only a creation
// or an undeletion carries the Lead's CRD and contact fields: every other
// change is scored on the state the scorer stored for the Lead, so a state
// lost or written twice shows as a wrong or lost output. A scored event's id
// is the one the scorer gives the change: transaction key, sequence number
// and Lead Id. Poison (mix.Poison of the records, every CDC kind in turn)
// is made from changes of a generator of its own, so that the org's state
// never holds them. mix.Echoes and mix.Flip are the generator's own: about
// one update in ten is an echo, and about a third flip a contact field.
func StreamCDC(codec *schemas.Codec, topic string, pop *synth.Population, mix Mix) ([]*kgo.Record, []Sent, error) {
	rng := rand.New(rand.NewPCG(mix.Seed, 0xc4a05))
	pool := min(max(mix.Events/5, 1), len(pop.Leads))
	org := cdcsim.New(cdcsim.Options{Codec: codec, Topic: topic, Seed: mix.Seed, Start: mix.At})
	bad := cdcsim.New(cdcsim.Options{Codec: codec, Topic: topic, Seed: mix.Seed + 1, Start: mix.At})
	recs := make([]*kgo.Record, 0, mix.Events)
	sent := make([]Sent, 0, mix.Events)
	var turn poisonTurn
	for i := range mix.Events {
		pl := &pop.Leads[rng.IntN(pool)]
		l := cdcsim.Lead{ID: pl.ID, CRD: pl.CRD, HasEmail: pl.HasEmail, HasLinkedIn: pl.HasLinkedIn}
		var (
			s   Sent
			val []byte
			err error
		)
		if rng.Float64() < mix.Poison {
			k := poison.CDCKinds[turn.pick(len(poison.CDCKinds), func(i int) bool { return poison.CDCKinds[i].Kind == poison.Oversized })]
			s = Sent{ID: fmt.Sprintf("poison-%d", i), Kind: Poison, Lead: l.ID, CRD: l.CRD, Class: k.Class, Fault: k.Name}
			val, err = poison.CDCValue(codec, bad.Create(l), false, k, rng, OversizedBytes)
		} else {
			e := nextChange(org, l, rng)
			h := &e.Header
			s = Sent{ID: h.TransactionKey + ":" + strconv.FormatInt(h.SequenceNumber, 10) + ":" + h.RecordIDs[0], Lead: l.ID, CRD: l.CRD}
			s.Email, s.LinkedIn = org.Contact(l.ID)
			_, _, converted := org.State(l.ID)
			switch {
			case h.ChangeType == schemas.ChangeGapOverflow:
				s.Kind = RefreshOnly
			case h.ChangeType == schemas.ChangeDelete:
				s.Kind = Removed
			case h.CommitUser == cdcsim.SinkUser:
				s.Kind = Echo
			case converted, h.ChangeType == schemas.ChangeGapDelete:
				s.Kind = Withheld
			}
			val, err = codec.AppendChangeEvent(nil, e)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("chaos: event %d: %w", i, err)
		}
		recs = append(recs, inputRecord(topic, l.ID, s.ID, val))
		sent = append(sent, s)
	}
	return recs, sent, nil
}
