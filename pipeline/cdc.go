package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/featurestore"
	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Salesforce change events (input_format salesforce-cdc). What each change
// type does is in docs/SALESFORCE.md; in short: a record is decoded and
// validated, echoes of the sink's writes are skipped, an overflow or a
// wildcard Id asks for the whole object to be re-read, and every other
// event is applied to each Lead it names, in order, on the Lead's state
// from Redis: duplicates change nothing, creates replace the state, updates
// merge into it, deletes leave a tombstone, gap events rescore the stored
// state and ask for a re-read. Outcomes are derived as states change. The
// Lead states are written back, conditionally and with the input position
// that produced them, in the round trip before the commit.

// CDCOptions configures the reading of Salesforce change events.
type CDCOptions struct {
	// The Lead fields (API names) the features and outcomes read.
	CRDField, EmailField, LinkedInField, StatusField string
	// CallScheduledField, when set, is a field whose becoming non-null
	// means a call was scheduled.
	CallScheduledField string
	// ContactedStatuses and CallScheduledStatuses are the status values
	// that mean contacted and call scheduled.
	ContactedStatuses, CallScheduledStatuses []string
	// ConvertedOutcome is the outcome a conversion records: "",
	// schemas.OutcomeContacted or schemas.OutcomeCallScheduled.
	ConvertedOutcome string
	// SinkUserID is the Salesforce user the sink connector writes as; when
	// set, only its changes can be echoes.
	SinkUserID string
	// DeriveOutcomes writes LeadOutcome records to OutcomesTopic.
	DeriveOutcomes bool
	OutcomesTopic  string
	// RefreshTopic receives the refresh requests.
	RefreshTopic string
}

// Field slots of the CDC reader.
const (
	slotCRD = iota
	slotEmail
	slotLinkedIn
	slotStatus
	slotConverted
	slotCall
)

// isConvertedField is the standard Lead field of a conversion.
const isConvertedField = "IsConverted"

// cdcFieldSettings names the setting of each slot, for the report of a
// field the records never carry.
var cdcFieldSettings = []string{"crd_field", "email_field", "linkedin_field", "status_field", "converted", "call_scheduled_field"}

// cdc is the pipeline's working state for change events.
type cdc struct {
	opts    CDCOptions
	reader  *schemas.CDCReader
	fields  []string
	missing uint64 // fields already reported missing

	events []schemas.LeadChange // decoded, reused
	ins    []*kgo.Record        // events[i] came from ins[i]
	order  []int                // the order events are applied in
	ids    []string             // distinct Leads of the batch
	// text holds the batch's event ids: each is a string over its own
	// bytes here, written once and read until the batch's outputs are
	// built (it is reset when the next batch starts).
	text   []byte
	recs   []featurestore.LeadRecord
	leads  map[string]*leadSlot
	slots  []leadSlot      // the batch's Leads, which leads points into
	txSeen map[string]int  // events per transaction key in the batch
	first  map[int32]int64 // first offset of each input partition in the batch
	writes []featurestore.LeadWrite
	gone   []string // deleted Leads: their quota state is forgotten
	// saving: startSaveLeads is writing writes, and will send the result
	// on saved.
	saving bool
	saved  chan error
}

// leadSlot is one Lead during a batch.
type leadSlot struct {
	rec   *featurestore.LeadRecord
	base  featurestore.LeadState // committed state the batch starts from
	found bool                   // base exists
	// exists: the Lead has a state (found, or made by a change of the
	// batch), a tombstone included.
	exists bool
	state  featurestore.LeadState // after the changes applied so far
	dirty  bool
	// sinkKnown: the quota state read can be trusted (false once the Lead
	// was deleted or its V4 fields changed by someone else in this batch).
	sinkKnown bool
	// at is the input record of the last change applied to the Lead.
	at featurestore.InputPosition
}

func newCDC(codec *schemas.Codec, o CDCOptions) (*cdc, error) {
	fields := []string{o.CRDField, o.EmailField, o.LinkedInField, o.StatusField, isConvertedField}
	if o.CallScheduledField != "" {
		fields = append(fields, o.CallScheduledField)
	}
	r, err := schemas.NewCDCReader(codec, fields, sinkFieldNames()...)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	return &cdc{opts: o, reader: r, fields: fields, leads: map[string]*leadSlot{}, first: map[int32]int64{},
		txSeen: map[string]int{}, saved: make(chan error, 1)}, nil
}

// sinkFieldNames are the Lead fields the sink record writes.
func sinkFieldNames() []string {
	return []string{"V4_Score__c", "V4_Score_Percentile__c", "V4_Deprioritize__c", "V4_Model_Version__c",
		"V4_Scored_At__c", "V4_Score_Explanation__c"}
}

// isScorerOrSystemField reports whether a changed field is one the scorer
// writes (V4_*) or one Salesforce changes on every write.
func isScorerOrSystemField(f string) bool {
	switch f {
	case "LastModifiedDate", "LastModifiedById", "SystemModstamp":
		return true
	}
	return strings.HasPrefix(f, "V4_")
}

// isCDCEcho applies the echo rules: an UPDATE that changed only fields the
// scorer writes or system fields, committed (when sinkUser is set) by the
// sink's integration user.
func isCDCEcho(h *schemas.ChangeEventHeader, sinkUser string) bool {
	if h.ChangeType != schemas.ChangeUpdate || len(h.ChangedFields) == 0 {
		return false
	}
	if sinkUser != "" && h.CommitUser != sinkUser {
		return false
	}
	for _, f := range h.ChangedFields {
		if !isScorerOrSystemField(f) {
			return false
		}
	}
	return true
}

// decodeCDC decodes and validates the batch's records into c.events; a bad
// record becomes a dead letter, an echo is skipped, an event naming no Lead
// in particular becomes one refresh request for the whole object.
func (p *Pipeline) decodeCDC(ctx context.Context, in, out []*kgo.Record, now time.Time) ([]*kgo.Record, error) {
	c := p.cdc
	n := 0
	c.ins = c.ins[:0]
	clear(c.first)
	for _, r := range in {
		if f, ok := c.first[r.Partition]; !ok || r.Offset < f {
			c.first[r.Partition] = r.Offset
		}
		if len(r.Value) > p.opts.MaxRecordBytes {
			out = p.deadLetter(out, r, producer.ClassSize,
				fmt.Sprintf("record of %d bytes exceeds max_record_bytes %d", len(r.Value), p.opts.MaxRecordBytes), now)
			continue
		}
		if n == len(c.events) {
			c.events = append(c.events, schemas.LeadChange{})
		}
		e := &c.events[n]
		err := c.reader.Decode(ctx, r.Value, e)
		if err == nil {
			err = e.Validate()
		}
		if err == nil {
			err = c.checkCRD(e)
		}
		if err != nil {
			class, ok := producer.ClassOf(err)
			if !ok {
				return out, fmt.Errorf("pipeline: decode: %w", err) // registry unreachable: retry the batch
			}
			out = p.deadLetter(out, r, class, err.Error(), now)
			continue
		}
		p.reportMissing(e.Missing)
		h := &e.Header
		if isCDCEcho(h, c.opts.SinkUserID) {
			p.m.echoes.Inc()
			continue
		}
		if h.ChangeType == schemas.ChangeGapOverflow || slices.Contains(h.RecordIDs, schemas.LeadWildcard) {
			reason := schemas.RefreshWildcard
			if h.ChangeType == schemas.ChangeGapOverflow {
				reason = schemas.RefreshOverflow
			}
			p.log.Warn("change event names no Lead in particular: asking for every Lead to be re-read",
				"change_type", h.ChangeType, "transaction_key", h.TransactionKey, "reason", reason)
			var err error
			if out, err = p.refresh(out, e, nil, reason, now); err != nil {
				return out, err
			}
			continue
		}
		c.ins = append(c.ins, r)
		n++
	}
	c.applyOrder(n)
	return out, nil
}

// checkCRD refuses a record whose CRD field holds something that is not a
// CRD number: the record is bad, not the Lead.
func (c *cdc) checkCRD(e *schemas.LeadChange) error {
	if _, err := crdOf(e.Values[slotCRD]); err != nil {
		return &schemas.RecordError{Fault: schemas.FaultValidation, Err: fmt.Errorf("%s: %w", c.opts.CRDField, err)}
	}
	return nil
}

// crdOf parses a CRD field's value: a string of digits (or a whole number);
// null is 0, no CRD.
func crdOf(v schemas.FieldValue) (int64, error) {
	switch v.Kind {
	case schemas.ValueNull:
		return 0, nil
	case schemas.ValueInt:
		if v.Int > 0 {
			return v.Int, nil
		}
	case schemas.ValueString:
		s := strings.TrimSpace(v.Str)
		if s == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err == nil && n > 0 {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%s is not a CRD number", describeValue(v))
}

// canonicalCRD is CRD n, which v holds, in decimal: v's own string when it
// is already that (the usual case: no string of its own).
func canonicalCRD(v schemas.FieldValue, n int64) string {
	if v.Kind == schemas.ValueString {
		if s := strings.TrimSpace(v.Str); s[0] != '0' && strings.Trim(s, "0123456789") == "" {
			return s
		}
	}
	return strconv.FormatInt(n, 10)
}

func describeValue(v schemas.FieldValue) string {
	switch v.Kind {
	case schemas.ValueString:
		return strconv.Quote(v.Str)
	case schemas.ValueInt:
		return strconv.FormatInt(v.Int, 10)
	case schemas.ValueFloat:
		return strconv.FormatFloat(v.Float, 'g', -1, 64)
	case schemas.ValueBool:
		return strconv.FormatBool(v.Bool)
	}
	return "a structured value"
}

// reportMissing reports, once per field, a mapped field the records do
// not carry at all: a mapping error to fix, not a null.
func (p *Pipeline) reportMissing(missing uint64) {
	c := p.cdc
	if fresh := missing &^ c.missing; fresh != 0 {
		for i, f := range c.fields {
			if fresh&(1<<i) != 0 {
				p.log.Warn("the change events do not carry a mapped Lead field: check the field mapping", "setting", cdcFieldSettings[i], "field", f)
				p.m.cdcMissing.WithLabelValues(cdcFieldSettings[i], f).Set(1)
			}
		}
		c.missing |= fresh
	}
}

// applyOrder sets c.order to the events in input order, except that the
// events of one transaction take the places they hold in sequenceNumber
// order.
func (c *cdc) applyOrder(n int) {
	c.order = c.order[:0]
	for i := range n {
		c.order = append(c.order, i)
	}
	// Most transactions change one record: only those with several
	// events in the batch are reordered.
	clear(c.txSeen)
	repeated := false
	for i := range n {
		if tk := c.events[i].Header.TransactionKey; tk != "" {
			c.txSeen[tk]++
			repeated = repeated || c.txSeen[tk] > 1
		}
	}
	if !repeated {
		return
	}
	byTx := map[string][]int{}
	for i := range n {
		if tk := c.events[i].Header.TransactionKey; tk != "" && c.txSeen[tk] > 1 {
			byTx[tk] = append(byTx[tk], i)
		}
	}
	for _, idx := range byTx {
		if len(idx) < 2 {
			continue
		}
		sorted := slices.Clone(idx)
		slices.SortStableFunc(sorted, func(a, b int) int {
			return cmpInt(c.events[a].Header.SequenceNumber, c.events[b].Header.SequenceNumber)
		})
		for k, pos := range idx {
			c.order[pos] = sorted[k]
		}
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// loadLeads reads the state of every Lead the batch names (one round trip)
// and picks each one's base: the stored state when the batch that wrote it
// committed, the state before it when that batch is this one, redone.
func (p *Pipeline) loadLeads(ctx context.Context) error {
	c := p.cdc
	clear(c.leads)
	c.ids = c.ids[:0]
	for _, i := range c.order {
		for _, id := range c.events[i].Header.RecordIDs {
			if _, ok := c.leads[id]; !ok {
				c.leads[id] = nil
				c.ids = append(c.ids, id)
			}
		}
	}
	if cap(c.recs) < len(c.ids) {
		c.recs = make([]featurestore.LeadRecord, len(c.ids))
	}
	c.recs = c.recs[:len(c.ids)]
	if len(c.ids) == 0 {
		return nil
	}
	err := featurestore.Retry(ctx, p.opts.RedisBackoff, func(ctx context.Context) error {
		err := p.store.LoadLeads(ctx, c.ids, c.recs, c.uncommitted)
		if err != nil {
			p.m.redisRetries.Inc()
			p.log.Warn("redis lead state lookup failed", "err", err)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("pipeline: load lead states: %w", err)
	}
	// The slots never move during the batch: leads points into them.
	if cap(c.slots) < len(c.ids) {
		c.slots = make([]leadSlot, len(c.ids))
	}
	c.slots = c.slots[:len(c.ids)]
	for i, id := range c.ids {
		rec := &c.recs[i]
		s := &c.slots[i]
		*s = leadSlot{rec: rec, sinkKnown: true}
		switch {
		case !rec.Found:
		case c.uncommitted(rec.At):
			s.base, s.found = rec.Prev, rec.HasPrev
		default:
			s.base, s.found = rec.State, true
		}
		s.state, s.exists = s.base, s.found
		c.leads[id] = s
	}
	return nil
}

// uncommitted reports whether a state was written by this batch before:
// by an earlier attempt, aborted or crashed before its commit, at an
// offset this batch holds again.
func (c *cdc) uncommitted(at featurestore.InputPosition) bool {
	first, ok := c.first[at.Partition]
	return ok && at.Offset >= first
}

// olderOrSame reports whether the change at (ts, num, tk, seq) is already
// reflected in st: the same change again, or an older commit.
func olderOrSame(st *featurestore.LeadState, h *schemas.ChangeEventHeader) bool {
	if st.CommitTimestamp == 0 && st.TransactionKey == "" {
		return false // nothing applied yet
	}
	if h.TransactionKey != "" && h.TransactionKey == st.TransactionKey {
		return h.SequenceNumber <= st.SequenceNumber
	}
	if h.CommitTimestamp != st.CommitTimestamp {
		return h.CommitTimestamp < st.CommitTimestamp
	}
	return h.CommitNumber < st.CommitNumber
}

// apply applies every event to each Lead it names, in order, appending
// the changes to score to p.changes and the outcome and refresh records to
// out.
func (p *Pipeline) apply(out []*kgo.Record, now time.Time) ([]*kgo.Record, error) {
	c := p.cdc
	p.changes = p.changes[:0]
	c.text = c.text[:0]
	c.gone = c.gone[:0]
	var err error
	for _, i := range c.order {
		e, in := &c.events[i], c.ins[i]
		h := &e.Header
		var refresh []string
		for _, id := range h.RecordIDs {
			s := c.leads[id]
			if olderOrSame(&s.state, h) {
				p.m.cdcDuplicates.Inc()
				continue
			}
			p.m.cdcChanges.WithLabelValues(h.ChangeType).Inc()
			before := s.state
			ch := change{in: in, eventID: c.eventID(e, id), leadID: id, eventTime: h.CommitTime(), changeType: h.ChangeType}
			score := true
			switch h.ChangeType {
			case schemas.ChangeCreate, schemas.ChangeUndelete:
				s.state = c.full(e, &before)
			case schemas.ChangeUpdate:
				if !s.exists || before.Deleted {
					s.state = featurestore.LeadState{Partial: true, ContactedSent: before.ContactedSent, CallSent: before.CallSent}
					refresh = append(refresh, id)
				}
				c.merge(e, &s.state)
				if slices.ContainsFunc(h.ChangedFields, func(f string) bool { return strings.HasPrefix(f, "V4_") }) {
					s.sinkKnown = false // someone else wrote the score fields: write them again
				}
			case schemas.ChangeDelete:
				s.state = featurestore.LeadState{Deleted: true, ContactedSent: before.ContactedSent, CallSent: before.CallSent}
				s.sinkKnown = false
				c.gone = append(c.gone, id)
				score = false
				p.withholdSink(id) // no write to a deleted Lead, from an earlier change of the batch either
			default: // a gap event: rescore what is stored, and have the Lead re-read
				refresh = append(refresh, id)
				score = s.exists && !before.Deleted
				if !s.exists {
					s.state.Partial = true // only the position is known
				}
				ch.gap = true
				if h.ChangeType == schemas.ChangeGapDelete {
					ch.noSink = true
				}
			}
			setPosition(&s.state, h)
			s.dirty, s.exists = true, true
			s.at = featurestore.InputPosition{Partition: in.Partition, Offset: in.Offset}
			if out, err = p.deriveOutcomes(out, id, &before, &s.state, h, now); err != nil {
				return out, err
			}
			if !score {
				continue
			}
			if s.state.CRD != "" { // digits only, or empty: 0 (and no parse error to make)
				ch.crd, _ = strconv.ParseInt(s.state.CRD, 10, 64)
			}

			ch.lead = features.Lead{HasEmail: s.state.HasEmail, HasLinkedIn: s.state.HasLinkedIn}
			ch.partial = s.state.Partial
			switch {
			case s.state.Converted:
				ch.noSink = true
				p.m.cdcWithheld.WithLabelValues("converted").Inc()
			case s.state.Partial && ch.crd == 0:
				ch.noSink = true
				p.m.cdcWithheld.WithLabelValues("partial_state").Inc()
			case ch.noSink:
				p.m.cdcWithheld.WithLabelValues("gap_delete").Inc()
			}
			if s.sinkKnown && s.rec.HasLastSink {
				ch.lastSink = &s.rec.LastSink
			}
			p.changes = append(p.changes, ch)
		}
		if len(refresh) > 0 {
			reason := schemas.RefreshGap
			if h.ChangeType == schemas.ChangeUpdate {
				reason = schemas.RefreshPartialState
			}
			if out, err = p.refresh(out, e, refresh, reason, now); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// eventID is the id of a Lead's change: transaction key, sequence number
// and Lead Id, or replay id and Lead Id. Made in c.text, without an
// allocation of its own.
func (c *cdc) eventID(e *schemas.LeadChange, leadID string) string {
	h := &e.Header
	at := len(c.text)
	if h.TransactionKey != "" {
		c.text = append(c.text, h.TransactionKey...)
		c.text = append(c.text, ':')
		c.text = strconv.AppendInt(c.text, h.SequenceNumber, 10)
	} else {
		c.text = append(c.text, e.ReplayID...)
	}
	c.text = append(c.text, ':')
	c.text = append(c.text, leadID...)
	// The bytes are never written again until the next batch, whose
	// changes replace this one's; a growing c.text leaves them where they
	// are (the string keeps them alive).
	return unsafe.String(&c.text[at], len(c.text)-at)
}

func setPosition(st *featurestore.LeadState, h *schemas.ChangeEventHeader) {
	st.CommitTimestamp, st.CommitNumber = h.CommitTimestamp, h.CommitNumber
	st.TransactionKey, st.SequenceNumber = h.TransactionKey, h.SequenceNumber
}

// full is the state a full record (CREATE, UNDELETE) gives: every field
// from the record, the outcomes already derived kept.
func (c *cdc) full(e *schemas.LeadChange, before *featurestore.LeadState) featurestore.LeadState {
	st := featurestore.LeadState{ContactedSent: before.ContactedSent, CallSent: before.CallSent}
	for slot := range c.fields {
		c.set(&st, slot, e.Values[slot])
	}
	return st
}

// merge applies an UPDATE: a field listed in changedFields takes the
// record's value, null included; a field not listed keeps its value unless
// the record carries a value for it anyway.
func (c *cdc) merge(e *schemas.LeadChange, st *featurestore.LeadState) {
	for slot, f := range c.fields {
		v := e.Values[slot]
		if v.IsNull() && !changed(e.Header.ChangedFields, f) {
			continue
		}
		c.set(st, slot, v)
	}
}

// changed reports whether field f is in changedFields, also as the
// component of a compound field (Name.FirstName names FirstName).
func changed(fields []string, f string) bool {
	for _, c := range fields {
		if c == f || strings.HasSuffix(c, "."+f) {
			return true
		}
	}
	return false
}

func (c *cdc) set(st *featurestore.LeadState, slot int, v schemas.FieldValue) {
	switch slot {
	case slotCRD:
		st.CRD = ""
		if n, err := crdOf(v); err == nil && n > 0 {
			st.CRD = canonicalCRD(v, n)
		}
	case slotEmail:
		st.HasEmail = present(v)
	case slotLinkedIn:
		st.HasLinkedIn = present(v)
	case slotStatus:
		st.Status = ""
		if v.Kind == schemas.ValueString {
			st.Status = v.Str
		}
	case slotConverted:
		st.Converted = v.Kind == schemas.ValueBool && v.Bool
	case slotCall:
		st.CallScheduled = present(v) && !(v.Kind == schemas.ValueBool && !v.Bool)
	}
}

// present reports whether a field holds something: not null, not an empty
// string.
func present(v schemas.FieldValue) bool {
	return v.Kind != schemas.ValueNull && !(v.Kind == schemas.ValueString && strings.TrimSpace(v.Str) == "")
}

// deriveOutcomes writes the outcomes a change produced, each once per
// Lead: contacted when the status becomes a contacted one; call scheduled
// when the status becomes a call-scheduled one or the call-scheduled field
// is set (a scheduled call means the Lead was contacted: contacted too, if
// not yet); the configured outcome when the Lead is converted.
func (p *Pipeline) deriveOutcomes(out []*kgo.Record, leadID string, before, after *featurestore.LeadState, h *schemas.ChangeEventHeader, now time.Time) ([]*kgo.Record, error) {
	o := &p.cdc.opts
	if !o.DeriveOutcomes || after.Deleted {
		return out, nil
	}
	call := slices.Contains(o.CallScheduledStatuses, after.Status) || after.CallScheduled
	contacted := call || slices.Contains(o.ContactedStatuses, after.Status)
	if after.Converted && !before.Converted {
		switch o.ConvertedOutcome {
		case schemas.OutcomeCallScheduled:
			call, contacted = true, true
		case schemas.OutcomeContacted:
			contacted = true
		}
	}
	var err error
	if contacted && !after.ContactedSent {
		after.ContactedSent = true
		if out, err = p.outcome(out, leadID, schemas.OutcomeContacted, h); err != nil {
			return out, err
		}
	}
	if call && !after.CallSent {
		after.CallSent = true
		if out, err = p.outcome(out, leadID, schemas.OutcomeCallScheduled, h); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (p *Pipeline) outcome(out []*kgo.Record, leadID, kind string, h *schemas.ChangeEventHeader) ([]*kgo.Record, error) {
	p.m.cdcOutcomes.WithLabelValues(kind).Inc()
	// One outcome of a kind per Lead: the id says which, so a consumer that
	// sees it twice (after a restore of the state) counts it once.
	o := schemas.LeadOutcome{EventID: "sfdc:" + kind + ":" + leadID, LeadID: leadID, Kind: kind, Time: h.CommitTime()}
	return p.out.Outcome(out, &o)
}

// refresh writes a refresh request for the Leads named, or for every Lead
// when ids is empty.
func (p *Pipeline) refresh(out []*kgo.Record, e *schemas.LeadChange, ids []string, reason string, now time.Time) ([]*kgo.Record, error) {
	p.m.cdcRefresh.WithLabelValues(reason).Inc()
	h := &e.Header
	r := schemas.LeadRefreshRequest{RequestID: h.TransactionKey + ":" + strconv.FormatInt(h.SequenceNumber, 10) + ":" + reason,
		Entity: schemas.LeadEntity, LeadIDs: ids, ChangeType: h.ChangeType, Reason: reason,
		CommitTime: h.CommitTime(), RequestedAt: now}
	return p.out.Refresh(out, &r)
}

// startSaveLeads starts writing the state of every Lead the batch changed,
// with the input position of its last change and the base it started
// from: one round trip, which runs while the batch is scored (the states
// are final once the changes are applied). BeforeCommit waits for it. It is
// not retried: a failure, or a state another scorer wrote meanwhile, fails
// the batch, which is then consumed again from the committed offsets.
func (p *Pipeline) startSaveLeads(ctx context.Context) {
	c := p.cdc
	c.writes = c.writes[:0]
	for i, id := range c.ids {
		s := c.leads[id]
		if !s.dirty {
			continue
		}
		w := featurestore.LeadWrite{LeadID: id, Record: c.recs[i]}
		w.Record.State = s.state
		w.Record.At = s.at
		w.Record.Prev, w.Record.PrevAt, w.Record.HasPrev = s.base, s.rec.At, s.found
		if s.found && c.uncommitted(s.rec.At) {
			w.Record.PrevAt = s.rec.PrevAt // the base is the prev of the attempt redone
		}
		if s.state.Deleted {
			w.TTL = TombstoneTTL
		}
		c.writes = append(c.writes, w)
	}
	if len(c.writes) == 0 {
		return
	}
	c.saving = true
	go func(writes []featurestore.LeadWrite) { c.saved <- p.store.SaveLeads(ctx, writes) }(c.writes)
}

// waitLeads waits for the Lead states' write startSaveLeads started, if
// any, and returns its error.
func (p *Pipeline) waitLeads() error {
	c := p.cdc
	if c == nil || !c.saving {
		return nil
	}
	c.saving = false
	if err := <-c.saved; err != nil {
		return fmt.Errorf("pipeline: save lead states: %w", err)
	}
	return nil
}

// TombstoneTTL is how long a deleted Lead's position is kept: longer than
// the 72 hours Salesforce retains change events, so no replay can outlive
// it.
const TombstoneTTL = 96 * time.Hour

// withholdSink keeps back the sink record of every change of the Lead
// queued so far in the batch.
func (p *Pipeline) withholdSink(leadID string) {
	for i := range p.changes {
		if p.changes[i].leadID == leadID {
			p.changes[i].noSink = true
		}
	}
}
