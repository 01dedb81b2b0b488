// Package cdcsim plays a Salesforce org and Confluent's Salesforce CDC
// Source connector for the demo, the load generator and tests: it makes the
// connector's LeadChangeEvent records (Avro with lead_change_event.avsc as
// the writer schema, or schemaless JSON) for the synthetic population's
// Leads, with what a real org sends: creates, partial updates, status
// changes that become outcomes, merged multi-Lead events, gap events, an
// overflow, deletes and undeletes, conversions, the sink's own writes
// echoed back by its integration user, malformed records, and a burst of
// duplicates as from a restarted connector.
package cdcsim

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/leadscorer/leadscorer/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Lead is what the org holds of one population Lead at its creation.
type Lead struct {
	ID          string
	CRD         int64
	HasEmail    bool
	HasLinkedIn bool
}

// SinkUser is the simulated sink connector's integration user: the echoes
// of its writes are committed by it.
const SinkUser = "0055e000001SiNKAAA"

// Statuses a Lead goes through, in order; the defaults of
// contacted_statuses and call_scheduled_statuses name the second and third.
var Statuses = []string{"Open - Not Contacted", "Contacted", "Call Scheduled", "Qualified"}

// Options configures a Generator.
type Options struct {
	// Codec writes Avro; its ChangeEvents schema id must be registered.
	Codec *schemas.Codec
	Topic string
	// JSON writes schemaless JSON instead of Avro.
	JSON bool
	Seed uint64
	// Start is the commit time of the first event; each next one commits
	// up to half a second later.
	Start time.Time
}

// Generator makes change events, remembering what the org holds so that
// each event is one a real org could send next.
type Generator struct {
	opts  Options
	rng   *rand.Rand
	leads map[string]*orgLead
	tx    int
	ts    int64
	step  int64 // most milliseconds between two commits
	// clocked: the commit times are the load generator's due times
	// (SetClock), several events may share a millisecond.
	clocked bool
}

type orgLead struct {
	Lead
	created, deleted, converted bool
	status                      int
}

// New returns a Generator.
func New(opts Options) *Generator {
	return &Generator{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, 0xcdc)), leads: map[string]*orgLead{},
		ts: opts.Start.UnixMilli(), step: 500}
}

func (g *Generator) lead(l Lead) *orgLead {
	o, ok := g.leads[l.ID]
	if !ok {
		o = &orgLead{Lead: l}
		g.leads[l.ID] = o
	}
	return o
}

// event starts the next change event: a transaction of its own, committed
// a little after the previous one, by an ordinary user.
func (g *Generator) event(changeType string, ids ...string) *schemas.ChangeEvent {
	g.tx++
	if !g.clocked {
		g.ts += 1 + g.rng.Int64N(g.step)
	}
	e := &schemas.ChangeEvent{ID: ids[0], ReplayID: fmt.Sprint(40000000 + g.tx), EventType: "R1-FSrKj5SMSfaXy7QNdEw",
		Header: schemas.ChangeEventHeader{EntityName: schemas.LeadEntity, RecordIDs: ids, ChangeType: changeType,
			ChangedFields: []string{}, ChangeOrigin: "com/salesforce/api/soap/60.0;client=SfdcInternalAPI",
			TransactionKey: fmt.Sprintf("%08x-%04x-sim", g.tx, g.rng.IntN(1<<16)), SequenceNumber: 1,
			CommitTimestamp: g.ts, CommitNumber: 10767459616286 + int64(g.tx), CommitUser: "0055e000000UsR1AAC"},
		Fields: map[string]any{}}
	return e
}

// update makes e an UPDATE of fields, LastModifiedDate included, as
// Salesforce sends one. The changed fields are named in sorted order, so
// that a seed makes the same bytes every time.
func (g *Generator) update(e *schemas.ChangeEvent, fields map[string]any) {
	for _, f := range slices.Sorted(maps.Keys(fields)) {
		e.Fields[f] = fields[f]
		e.Header.ChangedFields = append(e.Header.ChangedFields, f)
	}
	e.Fields["LastModifiedDate"] = time.UnixMilli(g.ts).UTC()
	e.Header.ChangedFields = append(e.Header.ChangedFields, "LastModifiedDate")
}

// fullRecord fills a CREATE or UNDELETE with the Lead's fields.
func (g *Generator) fullRecord(e *schemas.ChangeEvent, o *orgLead) {
	at := time.UnixMilli(g.ts).UTC()
	f := e.Fields
	f["LastName"], f["FirstName"], f["Company"] = "Advisor "+o.ID[12:], "Pat", "Firm of "+fmt.Sprint(o.CRD)
	f["FA_CRD__c"], f["Status"], f["IsConverted"] = fmt.Sprint(o.CRD), Statuses[o.status], o.converted
	f["LeadSource"], f["OwnerId"] = "Advisor data set", "0055e000000OwNRAAS"
	f["CreatedDate"], f["LastModifiedDate"] = at, at
	if o.HasEmail {
		f["Email"] = "advisor" + o.ID[9:15] + "@example.com"
	}
	if o.HasLinkedIn {
		f["LinkedIn_Profile__c"] = "https://www.linkedin.com/in/" + o.ID[9:15]
	}
	if o.status >= 2 {
		f["Initial_Call_Scheduled_Date__c"] = at.Truncate(24 * time.Hour)
	}
}

// Create is the Lead's creation.
func (g *Generator) Create(l Lead) *schemas.ChangeEvent {
	o := g.lead(l)
	o.created, o.deleted = true, false
	e := g.event(schemas.ChangeCreate, l.ID)
	g.fullRecord(e, o)
	return e
}

// Touch is a partial update of one field: the email or the LinkedIn
// profile set or cleared, or a field the features do not read.
func (g *Generator) Touch(l Lead) *schemas.ChangeEvent {
	o := g.lead(l)
	e := g.event(schemas.ChangeUpdate, l.ID)
	switch g.rng.IntN(4) {
	case 0:
		o.HasEmail = !o.HasEmail
		var v any
		if o.HasEmail {
			v = "advisor" + l.ID[9:15] + "@example.com"
		}
		g.update(e, map[string]any{"Email": v})
	case 1:
		o.HasLinkedIn = !o.HasLinkedIn
		var v any
		if o.HasLinkedIn {
			v = "https://www.linkedin.com/in/" + l.ID[9:15]
		}
		g.update(e, map[string]any{"LinkedIn_Profile__c": v})
	case 2:
		g.update(e, map[string]any{"Phone": fmt.Sprintf("+1 415 555 %04d", g.rng.IntN(10000))})
	default:
		g.update(e, map[string]any{"Title": []string{"Financial Advisor", "Wealth Manager", "Partner"}[g.rng.IntN(3)]})
	}
	return e
}

// Progress moves the Lead's status one step (Contacted, Call Scheduled
// with its date, Qualified); nil when it has no step left.
func (g *Generator) Progress(l Lead) *schemas.ChangeEvent {
	o := g.lead(l)
	if o.status+1 >= len(Statuses) {
		return nil
	}
	o.status++
	e := g.event(schemas.ChangeUpdate, l.ID)
	fields := map[string]any{"Status": Statuses[o.status]}
	if o.status == 2 {
		fields["Initial_Call_Scheduled_Date__c"] = time.UnixMilli(g.ts).UTC().Truncate(24 * time.Hour)
	}
	g.update(e, fields)
	return e
}

// Reassign is one change of owner to several Leads, which Salesforce
// merges into one event naming them all.
func (g *Generator) Reassign(ls []Lead) *schemas.ChangeEvent {
	ids := make([]string, len(ls))
	for i, l := range ls {
		ids[i] = l.ID
		g.lead(l)
	}
	e := g.event(schemas.ChangeUpdate, ids...)
	g.update(e, map[string]any{"OwnerId": fmt.Sprintf("0055e000000Ow%02dAAS", g.rng.IntN(100))})
	return e
}

// Convert is the Lead's conversion: status, IsConverted and the converted
// date, without LastModifiedDate, as Salesforce sends it.
func (g *Generator) Convert(l Lead) *schemas.ChangeEvent {
	o := g.lead(l)
	o.converted = true
	e := g.event(schemas.ChangeUpdate, l.ID)
	f := e.Fields
	f["Status"], f["IsConverted"] = "Converted", true
	f["ConvertedDate"], f["ConvertedContactId"] = time.UnixMilli(g.ts).UTC().Truncate(24*time.Hour), "0035e00000"+l.ID[10:]
	e.Header.ChangedFields = append(e.Header.ChangedFields, "Status", "IsConverted", "ConvertedDate", "ConvertedContactId")
	return e
}

// Delete and Undelete remove and restore the Lead.
func (g *Generator) Delete(l Lead) *schemas.ChangeEvent {
	g.lead(l).deleted = true
	return g.event(schemas.ChangeDelete, l.ID)
}

func (g *Generator) Undelete(l Lead) *schemas.ChangeEvent {
	o := g.lead(l)
	o.deleted = false
	e := g.event(schemas.ChangeUndelete, l.ID)
	g.fullRecord(e, o)
	return e
}

// Echo is the sink connector's write of the Lead's score coming back: the
// V4 fields and the system fields, committed by the integration user.
func (g *Generator) Echo(l Lead) *schemas.ChangeEvent {
	e := g.event(schemas.ChangeUpdate, l.ID)
	e.Header.CommitUser = SinkUser
	e.Header.ChangeOrigin = "com/salesforce/api/rest/60.0"
	g.update(e, map[string]any{"V4_Score__c": 0.3 + 0.3*g.rng.Float64(), "V4_Score_Percentile__c": float64(1 + g.rng.IntN(100)),
		"V4_Scored_At__c": time.UnixMilli(g.ts).UTC()})
	e.Fields["LastModifiedById"] = SinkUser
	e.Header.ChangedFields = append(e.Header.ChangedFields, "LastModifiedById")
	return e
}

// Gap is a gap event (header only) for the Leads.
func (g *Generator) Gap(changeType string, ls []Lead) *schemas.ChangeEvent {
	ids := make([]string, len(ls))
	for i, l := range ls {
		ids[i] = l.ID
	}
	return g.event(changeType, ids...)
}

// Overflow is the GAP_OVERFLOW of a transaction past 100,000 changes.
func (g *Generator) Overflow() *schemas.ChangeEvent {
	return g.event(schemas.ChangeGapOverflow, schemas.EmptyRecordID)
}

// SetClock makes the next events commit at t, or when the previous one
// did when that is later: the load generator's due times. Events of one
// millisecond share its commit timestamp, as Salesforce's do; their
// commit numbers still increase.
func (g *Generator) SetClock(t time.Time) {
	g.ts, g.clocked = max(t.UnixMilli(), g.ts), true
}

// Next is the next change of the Lead: its creation the first time, then
// mostly partial updates, some status steps and echoes of the sink's
// writes.
func (g *Generator) Next(l Lead) *schemas.ChangeEvent {
	created, deleted, _ := g.State(l.ID)
	if !created || deleted {
		return g.Create(l)
	}
	switch r := g.rng.IntN(20); {
	case r < 4:
		if e := g.Progress(l); e != nil {
			return e
		}
	case r < 6:
		return g.Echo(l)
	}
	return g.Touch(l)
}

// State says what the org holds of a Lead.
func (g *Generator) State(id string) (created, deleted, converted bool) {
	o, ok := g.leads[id]
	if !ok {
		return false, false, false
	}
	return o.created, o.deleted, o.converted
}

// Contact says whether the org holds an email and a LinkedIn profile for
// the Lead (as created when it has not changed them since).
func (g *Generator) Contact(id string) (hasEmail, hasLinkedIn bool) {
	o, ok := g.leads[id]
	if !ok {
		return false, false
	}
	return o.HasEmail, o.HasLinkedIn
}

// Record encodes e as the connector writes it.
func (g *Generator) Record(e *schemas.ChangeEvent) (*kgo.Record, error) {
	var (
		v   []byte
		err error
	)
	if g.opts.JSON {
		v, err = schemas.ChangeEventJSON(e)
	} else {
		v, err = g.opts.Codec.AppendChangeEvent(nil, e)
	}
	if err != nil {
		return nil, fmt.Errorf("cdcsim: %w", err)
	}
	return &kgo.Record{Topic: g.opts.Topic, Key: []byte(e.ID), Value: v}, nil
}
