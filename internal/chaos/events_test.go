package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"

	"github.com/leadscorer/leadscorer/internal/cdcsim"
	"github.com/leadscorer/leadscorer/internal/poison"
	"github.com/leadscorer/leadscorer/internal/synth"
	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// streamWorld is a codec of topics registered in a fake Schema Registry,
// and a population of 2,000 advisors.
func streamWorld(t *testing.T, topics schemas.Topics) (*schemas.Codec, *synth.Population) {
	t.Helper()
	srv := httptest.NewServer(srfake.NewRegistry().Handler())
	t.Cleanup(srv.Close)
	cl, err := sr.NewClient(sr.URLs(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := schemas.Register(context.Background(), cl, topics)
	if err != nil {
		t.Fatal(err)
	}
	pop, err := synth.Generate(synth.Options{Seed: 3, Advisors: 2000})
	if err != nil {
		t.Fatal(err)
	}
	return schemas.NewCodec(cl, ids), pop
}

// checkIdentity fails t unless record i carries its own event id in the
// HeaderEvent header, and no earlier one (seen) had it.
func checkIdentity(t *testing.T, i int, r *kgo.Record, s Sent, seen map[string]bool) {
	t.Helper()
	if seen[s.ID] {
		t.Fatalf("event id %s used twice", s.ID)
	}
	seen[s.ID] = true
	if got := producer.Header(r, HeaderEvent); got != s.ID {
		t.Fatalf("record %d carries %s %q, want %q", i, HeaderEvent, got, s.ID)
	}
}

// The stream's truth must be right before it can judge the scorer: every
// event id unique, every poison kind present, and each poison record
// refused by the decoder and validator with exactly the class the stream
// expects for it.
func TestStreamPoisonGetsTheClassItIsExpectedToGet(t *testing.T) {
	ctx := context.Background()
	codec, pop := streamWorld(t, schemas.DefaultTopics())
	const maxRecordBytes = 256 << 10 // the scorer's default max_record_bytes
	recs, sent, err := Stream(codec, "in", "t", pop, Mix{Events: 3000, Poison: 0.1, Echoes: 0.05, Flip: 0.2, Seed: 1, At: EventTime})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3000 || len(sent) != 3000 {
		t.Fatalf("%d records, %d sent, want 3000", len(recs), len(sent))
	}
	seen := map[string]bool{}
	kinds := map[string]int{}
	counts := map[Kind]int{}
	for i, r := range recs {
		s := sent[i]
		counts[s.Kind]++
		checkIdentity(t, i, r, s, seen)
		class := ""
		if len(r.Value) > maxRecordBytes {
			class = producer.ClassSize
		} else {
			var e schemas.LeadChanged
			err := codec.DecodeLeadChanged(ctx, r.Value, &e)
			if err == nil {
				err = e.Validate()
			}
			var re *schemas.RecordError
			switch {
			case errors.As(err, &re):
				class, _ = producer.ClassOf(re)
			case err != nil:
				t.Fatalf("%s: %v", s.ID, err)
			case e.EventID != s.ID || e.LeadID != s.Lead || e.CRD != s.CRD || e.HasEmail != s.Email || e.HasLinkedIn != s.LinkedIn:
				t.Fatalf("%s decodes to %+v, the stream says %+v", s.ID, e, s)
			}
		}
		if s.Kind == Poison {
			kinds[s.Fault]++
			if class != s.Class {
				t.Errorf("%s (%s): the decoder says class %q, the stream expects %q", s.ID, s.Fault, class, s.Class)
			}
		} else if class != "" {
			t.Errorf("%s (kind %d) is refused with class %q", s.ID, s.Kind, class)
		}
	}
	for _, k := range PoisonKinds {
		if kinds[k.Name] == 0 {
			t.Errorf("no %q poison in the stream", k.Name)
		}
	}
	if n := kinds[poison.Oversized.Name]; n > MaxOversized {
		t.Errorf("%d oversized records, want at most %d", n, MaxOversized)
	}
	if counts[Echo] == 0 || counts[Good] < 2000 {
		t.Errorf("kinds %v: want echoes and mostly good events", counts)
	}
}

// The change-event stream's truth, read back with the scorer's own reader:
// a good event's id is the scorer's (transaction key, sequence number,
// Lead Id), only a Lead's creation carries its CRD, the contact fields the
// stream expects are those its changes add up to, echoes are the sink's
// own writes, and every kind of malformed change event is present.
func TestStreamCDCSaysWhatItsChangesAddUpTo(t *testing.T) {
	ctx := context.Background()
	codec, pop := streamWorld(t, schemas.CDCTopics())
	recs, sent, err := StreamCDC(codec, "in", pop, Mix{Events: 4000, Poison: 0.02, Seed: 1, At: EventTime})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4000 || len(sent) != 4000 {
		t.Fatalf("%d records, %d sent, want 4000", len(recs), len(sent))
	}
	const crd, email, linkedIn, isConverted = 0, 1, 2, 3
	reader, err := schemas.NewCDCReader(codec, []string{"FA_CRD__c", "Email", "LinkedIn_Profile__c", "IsConverted"})
	if err != nil {
		t.Fatal(err)
	}
	contact, wasConverted, changes := map[string][2]bool{}, map[string]bool{}, map[string]int{}
	seen, faults, counts := map[string]bool{}, map[string]int{}, map[Kind]int{}
	for i, r := range recs {
		s := sent[i]
		counts[s.Kind]++
		checkIdentity(t, i, r, s, seen)
		if s.Kind == Poison {
			faults[s.Fault]++
			continue
		}
		var c schemas.LeadChange
		if err := reader.Decode(ctx, r.Value, &c); err != nil {
			t.Fatalf("%s: %v", s.ID, err)
		}
		h := &c.Header
		changes[h.ChangeType]++
		overflow := h.ChangeType == schemas.ChangeGapOverflow
		if want := fmt.Sprintf("%s:%d:%s", h.TransactionKey, h.SequenceNumber, h.RecordIDs[0]); s.ID != want || !overflow && s.Lead != h.RecordIDs[0] {
			t.Fatalf("event %s (lead %s) is the scorer's %s", s.ID, s.Lead, want)
		}
		if echo := h.CommitUser == cdcsim.SinkUser; echo != (s.Kind == Echo) {
			t.Fatalf("%s: committed by %s, kind %d", s.ID, h.CommitUser, s.Kind)
		}
		if (h.ChangeType == schemas.ChangeDelete) != (s.Kind == Removed) || overflow != (s.Kind == RefreshOnly) {
			t.Fatalf("%s: a %s of kind %d", s.ID, h.ChangeType, s.Kind)
		}
		if s.Kind == Echo || s.Kind == Removed || s.Kind == RefreshOnly {
			continue
		}
		if v := c.Values[isConverted]; v.Kind == schemas.ValueBool && v.Bool {
			wasConverted[s.Lead] = true
		}
		if withheld := wasConverted[s.Lead] || h.ChangeType == schemas.ChangeGapDelete; withheld != (s.Kind == Withheld) {
			t.Fatalf("%s: kind %d of a Lead converted %v, a %s", s.ID, s.Kind, wasConverted[s.Lead], h.ChangeType)
		}
		st := contact[s.Lead]
		switch h.ChangeType {
		case schemas.ChangeCreate, schemas.ChangeUndelete:
			if c.Values[crd].Str != strconv.FormatInt(s.CRD, 10) {
				t.Fatalf("%s: a creation with CRD %+v, want %d", s.ID, c.Values[crd], s.CRD)
			}
			st = [2]bool{!c.Values[email].IsNull(), !c.Values[linkedIn].IsNull()}
		case schemas.ChangeUpdate:
			if !c.Values[crd].IsNull() {
				t.Fatalf("%s: an update carries the CRD", s.ID)
			}
			if slices.Contains(h.ChangedFields, "Email") {
				st[0] = !c.Values[email].IsNull()
			}
			if slices.Contains(h.ChangedFields, "LinkedIn_Profile__c") {
				st[1] = !c.Values[linkedIn].IsNull()
			}
		case schemas.ChangeGapUpdate, schemas.ChangeGapDelete:
			// Header only: the Lead is rescored as the scorer stored it.
			if !c.Values[crd].IsNull() || len(h.ChangedFields) > 0 {
				t.Fatalf("%s: a gap event carries fields", s.ID)
			}
		default:
			t.Fatalf("%s: a %s", s.ID, h.ChangeType)
		}
		contact[s.Lead] = st
		if st != [2]bool{s.Email, s.LinkedIn} {
			t.Fatalf("%s: the changes add up to email, LinkedIn %v, the stream says %v, %v", s.ID, st, s.Email, s.LinkedIn)
		}
	}
	for _, k := range poison.CDCKinds {
		if faults[k.Name] == 0 {
			t.Errorf("no %q poison in the stream", k.Name)
		}
	}
	if counts[Echo] == 0 || counts[Withheld] == 0 || counts[Removed] == 0 || counts[RefreshOnly] == 0 || counts[Good] < 2500 {
		t.Errorf("kinds %v: want echoes, withheld changes, removals, overflows and mostly good events", counts)
	}
	for _, ct := range []string{schemas.ChangeGapUpdate, schemas.ChangeGapDelete, schemas.ChangeGapOverflow, schemas.ChangeUndelete} {
		if changes[ct] == 0 {
			t.Errorf("change types %v: no %s", changes, ct)
		}
	}
}
