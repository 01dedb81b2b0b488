package schemas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
)

// Reading the Salesforce CDC connector's records.
//
// The connector writes one flat record per change event: Id, ReplayId, the
// nested ChangeEventHeader, every field of the object (optional), then
// _ObjectType and _EventType. Its schema is the connector's, not ours: it
// follows the org's Lead fields and the connector's version. CDCReader
// therefore reads any writer schema by field name, as resolve.go does for
// our own records, but compiled: the first record of a schema id turns the
// writer schema into a plan (per writer field: skip it, or which header
// field or requested Lead field it fills), and every record is then read
// straight from its bytes with the plan, without goavro's maps. Fields the
// plan does not want are skipped with the bounds-checked scanner of
// bounds.go, so hostile counts and lengths are refused before anything is
// allocated.
//
// Schemaless JSON (value.converter.schemas.enable=false: a plain JSON
// object) is read with encoding/json; the JsonConverter's schema envelope
// ({"schema":...,"payload":...}) is unwrapped. The first byte tells the
// encodings apart: the Confluent wire format starts with the magic byte 0,
// a JSON object with '{'.

// ValueKind is the type of a Lead field's value.
type ValueKind uint8

const (
	ValueNull   ValueKind = iota // null, or the field is not carried
	ValueString                  // string, enum symbol or bytes
	ValueBool
	ValueInt   // int, long; a date as days, a datetime as milliseconds since the epoch
	ValueFloat // float, double
	ValueOther // a record, array or map: not usable as a Lead field value
)

// FieldValue is one Lead field's value in a change event.
type FieldValue struct {
	Kind  ValueKind
	Str   string
	Int   int64
	Float float64
	Bool  bool
}

// IsNull reports whether the value is null.
func (v FieldValue) IsNull() bool { return v.Kind == ValueNull }

// LeadChange is what the scorer reads of a Lead change event.
type LeadChange struct {
	ID       string
	ReplayID string
	Header   ChangeEventHeader
	// Values holds the value of each field the reader was made for, in
	// its order; null when the record does not carry it.
	Values []FieldValue
	// Missing has bit i set when the record's schema (or JSON object) has
	// no field i at all: the field mapping names a field the connector does
	// not send.
	Missing uint64
	// JSON is true when the record was schemaless JSON, false for Avro.
	JSON bool
}

// MaxCDCFields is how many Lead fields one reader can be asked for.
const MaxCDCFields = 64

// CDCReader reads Lead change events in either encoding the connector
// writes. It is safe for concurrent use.
type CDCReader struct {
	codec  *Codec
	fields []string
	slot   map[string]int
	intern map[string]string

	mu    sync.RWMutex
	plans map[int]*cdcPlan
}

// systemFields are the fields Salesforce changes on every write.
var systemFields = []string{"LastModifiedDate", "LastModifiedById", "SystemModstamp"}

// NewCDCReader returns a reader of the Lead fields named, whose writer
// schemas it looks up with codec. Strings that recur in every record
// (change types, the entity, the fields named, system fields and the names
// given in common) are shared rather than allocated per record.
func NewCDCReader(codec *Codec, fields []string, common ...string) (*CDCReader, error) {
	if len(fields) > MaxCDCFields {
		return nil, fmt.Errorf("schemas: %d CDC fields, at most %d", len(fields), MaxCDCFields)
	}
	r := &CDCReader{codec: codec, fields: slices.Clone(fields), slot: map[string]int{}, intern: map[string]string{},
		plans: map[int]*cdcPlan{}}
	for i, f := range fields {
		if _, dup := r.slot[f]; dup {
			return nil, fmt.Errorf("schemas: CDC field %q named twice", f)
		}
		r.slot[f] = i
	}
	for _, group := range [][]string{fields, ChangeTypes, systemFields, common, {LeadEntity, LeadWildcard, EmptyRecordID}} {
		for _, s := range group {
			r.intern[s] = s
		}
	}
	return r, nil
}

// Fields returns the fields the reader reads, in the order of Values.
func (r *CDCReader) Fields() []string { return r.fields }

// Decode reads one record into dst, reusing its slices. A record that is
// not a change event of the connector's shape is a *RecordError: decode
// (neither Avro in the wire format nor a JSON object, or malformed), schema
// (no ChangeEventHeader, no recordIds or changeType, a schema id the
// registry does not know). Any other error (the registry unreachable) means
// retry. Decode does not check values: see LeadChange.Validate.
func (r *CDCReader) Decode(ctx context.Context, b []byte, dst *LeadChange) error {
	dst.reset(len(r.fields))
	switch first := firstByte(b); first {
	case 0:
		return r.decodeAvro(ctx, b, dst)
	case '{':
		dst.JSON = true
		return r.decodeJSON(b, dst)
	}
	return &RecordError{Fault: FaultDecode, Err: errors.New("neither Avro in the Confluent wire format (magic byte 0) nor a JSON object")}
}

func firstByte(b []byte) int {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return int(c)
	}
	return -1
}

func (c *LeadChange) reset(n int) {
	h := &c.Header
	*c = LeadChange{Values: c.Values[:0], Header: ChangeEventHeader{RecordIDs: h.RecordIDs[:0], ChangedFields: h.ChangedFields[:0]}}
	for range n {
		c.Values = append(c.Values, FieldValue{})
	}
}

// ---- Avro ----

// Targets of a top-level writer field; a Lead field's is its slot (>= 0).
const (
	tSkip = -1 - iota
	tID
	tReplayID
	tHeader
)

// Targets of a header field.
const (
	hSkip = iota
	hEntity
	hRecordIDs
	hChangeType
	hChangedFields
	hOrigin
	hTxKey
	hSeq
	hCommitTS
	hCommitUser
	hCommitNumber
)

var headerTargets = map[string]int{
	"entityName": hEntity, "recordIds": hRecordIDs, "changeType": hChangeType, "changedFields": hChangedFields,
	"changeOrigin": hOrigin, "transactionKey": hTxKey, "sequenceNumber": hSeq, "commitTimestamp": hCommitTS,
	"commitUser": hCommitUser, "commitNumber": hCommitNumber,
}

type step struct {
	typ    *node
	target int
}

// cdcPlan is how to read records of one writer schema.
type cdcPlan struct {
	top, header []step
	headerUnion int // union branch of the header record, -1 when not a union
	sizes       map[*node]int
	missing     uint64
	err         error // a *RecordError when the schema is not the connector's shape
}

func (r *CDCReader) plan(ctx context.Context, id int) (*cdcPlan, error) {
	r.mu.RLock()
	p, ok := r.plans[id]
	r.mu.RUnlock()
	if ok {
		return p, nil
	}
	w, err := r.codec.writerFor(ctx, id)
	if err != nil {
		return nil, err
	}
	if w.node == nil { // the registry's schema could not be used at all
		p = &cdcPlan{err: w.errs[kindChangeEvent]}
	} else {
		p = r.compile(w.node)
	}
	r.mu.Lock()
	r.plans[id] = p
	r.mu.Unlock()
	return p, nil
}

func schemaErr(format string, a ...any) *cdcPlan {
	return &cdcPlan{err: &RecordError{Fault: FaultSchema, Err: fmt.Errorf(format, a...)}}
}

// compile turns a writer schema into a plan, or a plan whose err says why
// the schema is not a change event's.
func (r *CDCReader) compile(w *node) *cdcPlan {
	if w.kind != "record" {
		return schemaErr("writer schema %s is not a record: not a change event", w.typeName())
	}
	p := &cdcPlan{sizes: map[*node]int{}, headerUnion: -1}
	seen := make([]bool, len(r.fields))
	var hdr *node
	for _, f := range w.fields {
		st := step{typ: f.typ, target: tSkip}
		switch f.name {
		case "Id":
			st.target = tID
		case "ReplayId":
			st.target = tReplayID
		case "ChangeEventHeader":
			h, branch := recordOf(f.typ)
			if h == nil {
				return schemaErr("ChangeEventHeader is a %s, not a record", f.typ.typeName())
			}
			st.target, hdr, p.headerUnion = tHeader, h, branch
		default:
			if i, ok := r.slot[f.name]; ok {
				st.target, seen[i] = i, true
			}
		}
		p.top = append(p.top, st)
	}
	if hdr == nil {
		return schemaErr("writer schema %s has no ChangeEventHeader: not a change event of the CDC connector", w.name)
	}
	has := map[int]bool{}
	for _, f := range hdr.fields {
		t := headerTargets[f.name]
		switch t {
		case hRecordIDs, hChangedFields:
			if !isStringArray(f.typ) {
				return schemaErr("ChangeEventHeader.%s is a %s, not an array of strings", f.name, f.typ.typeName())
			}
		case hSkip:
		default:
			if !isScalar(f.typ) {
				return schemaErr("ChangeEventHeader.%s is a %s, not a plain value", f.name, f.typ.typeName())
			}
		}
		has[t] = true
		p.header = append(p.header, step{typ: f.typ, target: t})
	}
	for t, name := range map[int]string{hRecordIDs: "recordIds", hChangeType: "changeType"} {
		if !has[t] {
			return schemaErr("ChangeEventHeader has no %s", name)
		}
	}
	for i, ok := range seen {
		if !ok {
			p.missing |= 1 << i
		}
	}
	fillSizes(w, p.sizes)
	return p
}

// recordOf returns n when it is a record, or the record branch of a
// union (and the branch's index).
func recordOf(n *node) (*node, int) {
	if n.kind == "record" {
		return n, -1
	}
	if n.kind == "union" {
		for i, b := range n.union {
			if b.kind == "record" {
				return b, i
			}
		}
	}
	return nil, -1
}

// nonNull returns the branches of n other than null (n itself when not a
// union).
func nonNull(n *node) []*node {
	if n.kind != "union" {
		return []*node{n}
	}
	var out []*node
	for _, b := range n.union {
		if b.kind != "null" {
			out = append(out, b)
		}
	}
	return out
}

func isScalar(n *node) bool {
	for _, b := range nonNull(n) {
		switch b.kind {
		case "record", "array", "map", "union":
			return false
		}
	}
	return true
}

func isStringArray(n *node) bool {
	bs := nonNull(n)
	if len(bs) != 1 || bs[0].kind != "array" {
		return false
	}
	items := nonNull(bs[0].items)
	return len(items) == 1 && items[0].kind == "string"
}

// fillSizes computes the minimum size of every node reachable from n, so
// that reading a record never writes the shared map.
func fillSizes(n *node, sizes map[*node]int) {
	s := scanner{sizes: sizes}
	var walk func(n *node)
	visited := map[*node]bool{}
	walk = func(n *node) {
		if visited[n] {
			return
		}
		visited[n] = true
		s.minSize(n)
		for _, f := range n.fields {
			walk(f.typ)
		}
		for _, b := range n.union {
			walk(b)
		}
		if n.items != nil {
			walk(n.items)
		}
	}
	walk(n)
}

type cdcDecoder struct {
	s scanner
	r *CDCReader
	// text is the record's body as a string, made on the first string
	// value that is not interned: every other such value of the record is
	// a substring of it, so a record costs one allocation for its strings
	// rather than one per string.
	text string
}

// str returns the string at s.b[start:end]: an interned one, or a
// substring of the record's text.
func (d *cdcDecoder) str(start, end int) string {
	if v, ok := d.r.intern[string(d.s.b[start:end])]; ok {
		return v
	}
	if d.text == "" {
		d.text = string(d.s.b)
	}
	return d.text[start:end]
}

func (r *CDCReader) decodeAvro(ctx context.Context, b []byte, dst *LeadChange) error {
	id, body, err := header.DecodeID(b)
	if err != nil {
		return &RecordError{Fault: FaultDecode, Err: fmt.Errorf("wire header: %w", err)}
	}
	p, err := r.plan(ctx, id)
	if err != nil {
		return err
	}
	if p.err != nil {
		return p.err
	}
	dst.Missing = p.missing
	d := cdcDecoder{s: scanner{b: body, sizes: p.sizes}, r: r}
	for _, st := range p.top {
		if err := d.topField(st, p, dst); err != nil {
			return &RecordError{Fault: FaultDecode, Err: fmt.Errorf("change event (schema id %d): %w", id, err)}
		}
	}
	if d.s.pos != len(body) {
		return &RecordError{Fault: FaultDecode, Err: fmt.Errorf("change event (schema id %d): %d trailing bytes", id, len(body)-d.s.pos)}
	}
	return nil
}

func (d *cdcDecoder) topField(st step, p *cdcPlan, dst *LeadChange) error {
	switch {
	case st.target == tSkip:
		return d.s.skip(st.typ, 1)
	case st.target == tID:
		v, err := d.scalar(st.typ)
		dst.ID = v.Str
		return err
	case st.target == tReplayID:
		v, err := d.scalar(st.typ)
		dst.ReplayID = v.Str
		if v.Kind == ValueInt {
			dst.ReplayID = fmt.Sprint(v.Int)
		}
		return err
	case st.target == tHeader:
		if p.headerUnion >= 0 {
			branch, err := d.s.varint()
			if err != nil {
				return err
			}
			if branch != int64(p.headerUnion) {
				return fmt.Errorf("ChangeEventHeader is null")
			}
		}
		for _, hs := range p.header {
			if err := d.headerField(hs, &dst.Header); err != nil {
				return fmt.Errorf("ChangeEventHeader: %w", err)
			}
		}
		return nil
	}
	v, err := d.scalarOrSkip(st.typ)
	dst.Values[st.target] = v
	return err
}

func (d *cdcDecoder) headerField(st step, h *ChangeEventHeader) error {
	switch st.target {
	case hSkip:
		return d.s.skip(st.typ, 2)
	case hRecordIDs:
		var err error
		h.RecordIDs, err = d.strings(st.typ, h.RecordIDs)
		return err
	case hChangedFields:
		var err error
		h.ChangedFields, err = d.strings(st.typ, h.ChangedFields)
		return err
	}
	v, err := d.scalar(st.typ)
	if err != nil {
		return err
	}
	switch st.target {
	case hEntity:
		h.EntityName = v.Str
	case hChangeType:
		h.ChangeType = v.Str
	case hOrigin:
		h.ChangeOrigin = v.Str
	case hTxKey:
		h.TransactionKey = v.Str
	case hCommitUser:
		h.CommitUser = v.Str
	case hSeq:
		h.SequenceNumber = v.Int
	case hCommitTS:
		h.CommitTimestamp = v.Int
	case hCommitNumber:
		h.CommitNumber = v.Int
	}
	return nil
}

// branch reads a union's branch index and returns the branch.
func (d *cdcDecoder) branch(n *node) (*node, error) {
	i, err := d.s.varint()
	if err != nil {
		return nil, err
	}
	if i < 0 || i >= int64(len(n.union)) {
		return nil, fmt.Errorf("union branch %d out of range", i)
	}
	return n.union[i], nil
}

// scalarOrSkip reads a Lead field's value; a record, array or map is
// skipped and reported as ValueOther.
func (d *cdcDecoder) scalarOrSkip(n *node) (FieldValue, error) {
	for n.kind == "union" {
		b, err := d.branch(n)
		if err != nil {
			return FieldValue{}, err
		}
		n = b
	}
	switch n.kind {
	case "record", "array", "map", "fixed":
		return FieldValue{Kind: ValueOther}, d.s.skip(n, 2)
	}
	return d.scalar(n)
}

func (d *cdcDecoder) scalar(n *node) (FieldValue, error) {
	s := &d.s
	switch n.kind {
	case "union":
		b, err := d.branch(n)
		if err != nil {
			return FieldValue{}, err
		}
		return d.scalar(b)
	case "null":
		return FieldValue{}, nil
	case "string", "bytes":
		l, err := s.varint()
		if err != nil {
			return FieldValue{}, err
		}
		start := s.pos
		if err := s.advance(l); err != nil {
			return FieldValue{}, err
		}
		return FieldValue{Kind: ValueString, Str: d.str(start, s.pos)}, nil
	case "boolean":
		if s.pos >= len(s.b) {
			return FieldValue{}, errShort
		}
		c := s.b[s.pos]
		s.pos++
		if c > 1 {
			return FieldValue{}, fmt.Errorf("boolean byte %d", c)
		}
		return FieldValue{Kind: ValueBool, Bool: c == 1}, nil
	case "int", "long":
		v, err := s.varint()
		return FieldValue{Kind: ValueInt, Int: v}, err
	case "enum":
		i, err := s.varint()
		if err != nil {
			return FieldValue{}, err
		}
		if i < 0 || i >= int64(len(n.symbols)) {
			return FieldValue{}, fmt.Errorf("enum index %d out of range", i)
		}
		return FieldValue{Kind: ValueString, Str: n.symbols[i]}, nil
	case "float":
		if len(s.b)-s.pos < 4 {
			return FieldValue{}, errShort
		}
		bits := uint32(s.b[s.pos]) | uint32(s.b[s.pos+1])<<8 | uint32(s.b[s.pos+2])<<16 | uint32(s.b[s.pos+3])<<24
		s.pos += 4
		return FieldValue{Kind: ValueFloat, Float: float64(math.Float32frombits(bits))}, nil
	case "double":
		if len(s.b)-s.pos < 8 {
			return FieldValue{}, errShort
		}
		var bits uint64
		for i := 7; i >= 0; i-- {
			bits = bits<<8 | uint64(s.b[s.pos+i])
		}
		s.pos += 8
		return FieldValue{Kind: ValueFloat, Float: math.Float64frombits(bits)}, nil
	}
	return FieldValue{}, fmt.Errorf("a %s where a plain value was expected", n.typeName())
}

// strings reads an array of strings (possibly a nullable one) into dst.
func (d *cdcDecoder) strings(n *node, dst []string) ([]string, error) {
	for n.kind == "union" {
		b, err := d.branch(n)
		if err != nil {
			return dst, err
		}
		n = b
	}
	if n.kind == "null" {
		return dst, nil
	}
	s := &d.s
	for {
		count, err := s.varint()
		if err != nil {
			return dst, err
		}
		if count == 0 {
			return dst, nil
		}
		if count < 0 {
			if count == math.MinInt64 {
				return dst, fmt.Errorf("block count %d", count)
			}
			count = -count
			if _, err := s.varint(); err != nil {
				return dst, err
			}
		}
		if count > int64(len(s.b)-s.pos) { // every item takes a byte at least
			return dst, fmt.Errorf("block of %d items cannot fit in %d bytes", count, len(s.b)-s.pos)
		}
		for range count {
			v, err := d.scalar(n.items)
			if err != nil {
				return dst, err
			}
			dst = append(dst, v.Str)
		}
	}
}

// ---- JSON ----

type jsonHeader struct {
	EntityName      *string  `json:"entityName"`
	RecordIDs       []string `json:"recordIds"`
	ChangeType      *string  `json:"changeType"`
	ChangedFields   []string `json:"changedFields"`
	ChangeOrigin    *string  `json:"changeOrigin"`
	TransactionKey  *string  `json:"transactionKey"`
	SequenceNumber  *int64   `json:"sequenceNumber"`
	CommitTimestamp *int64   `json:"commitTimestamp"`
	CommitUser      *string  `json:"commitUser"`
	CommitNumber    *int64   `json:"commitNumber"`
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

var jsonNull = []byte("null")

func (r *CDCReader) decodeJSON(b []byte, dst *LeadChange) error {
	bad := func(err error) error {
		return &RecordError{Fault: FaultDecode, Err: fmt.Errorf("change event JSON: %w", err)}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return bad(err)
	}
	if p, ok := top["payload"]; ok && len(top) == 2 && top["schema"] != nil {
		top = nil
		if err := json.Unmarshal(p, &top); err != nil {
			return bad(fmt.Errorf("payload: %w", err))
		}
	}
	raw, ok := top["ChangeEventHeader"]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), jsonNull) {
		return &RecordError{Fault: FaultSchema, Err: errors.New("JSON object has no ChangeEventHeader: not a change event of the CDC connector")}
	}
	var h jsonHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		return bad(fmt.Errorf("ChangeEventHeader: %w", err))
	}
	if h.RecordIDs == nil || h.ChangeType == nil {
		return &RecordError{Fault: FaultSchema, Err: errors.New("ChangeEventHeader has no recordIds or no changeType")}
	}
	dst.Header.EntityName = r.intern1(deref(h.EntityName))
	dst.Header.RecordIDs = append(dst.Header.RecordIDs, h.RecordIDs...)
	dst.Header.ChangeType = r.intern1(*h.ChangeType)
	for _, f := range h.ChangedFields {
		dst.Header.ChangedFields = append(dst.Header.ChangedFields, r.intern1(f))
	}
	dst.Header.ChangeOrigin = deref(h.ChangeOrigin)
	dst.Header.TransactionKey = deref(h.TransactionKey)
	dst.Header.SequenceNumber = deref(h.SequenceNumber)
	dst.Header.CommitTimestamp = deref(h.CommitTimestamp)
	dst.Header.CommitUser = deref(h.CommitUser)
	dst.Header.CommitNumber = deref(h.CommitNumber)
	dst.ID = jsonString(top["Id"])
	dst.ReplayID = strings.Trim(string(bytes.TrimSpace(top["ReplayId"])), `"`)
	if dst.ReplayID == "null" {
		dst.ReplayID = ""
	}
	for i, name := range r.fields {
		v, ok := top[name]
		if !ok {
			dst.Missing |= 1 << i
			continue
		}
		fv, err := jsonValue(v)
		if err != nil {
			return bad(fmt.Errorf("%s: %w", name, err))
		}
		dst.Values[i] = fv
	}
	return nil
}

func (r *CDCReader) intern1(s string) string {
	if v, ok := r.intern[s]; ok {
		return v
	}
	return s
}

func jsonString(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

func jsonValue(raw json.RawMessage) (FieldValue, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, jsonNull) {
		return FieldValue{}, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return FieldValue{}, err
		}
		return FieldValue{Kind: ValueString, Str: s}, nil
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return FieldValue{}, err
		}
		return FieldValue{Kind: ValueBool, Bool: b}, nil
	case '{', '[':
		return FieldValue{Kind: ValueOther}, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return FieldValue{}, err
	}
	if i, err := n.Int64(); err == nil {
		return FieldValue{Kind: ValueInt, Int: i}, nil
	}
	f, err := n.Float64()
	return FieldValue{Kind: ValueFloat, Float: f}, err
}

// ---- validation ----

// Validate checks what the scorer needs of a change event: a Lead change
// (entityName Lead), a change type it knows, and record ids that are Lead
// Ids (18 characters starting 00Q), the wildcard 00Q*, or, for an
// overflow, anything. The error is a *RecordError of fault validation.
func (c *LeadChange) Validate() error {
	bad := func(format string, a ...any) error {
		return &RecordError{Fault: FaultValidation, Err: fmt.Errorf(format, a...)}
	}
	h := &c.Header
	if h.EntityName != LeadEntity {
		return bad("entityName %q is not %s", h.EntityName, LeadEntity)
	}
	if !slices.Contains(ChangeTypes, h.ChangeType) {
		return bad("changeType %q is not one of %s", h.ChangeType, strings.Join(ChangeTypes, ", "))
	}
	if len(h.RecordIDs) == 0 {
		return bad("recordIds is empty")
	}
	if h.ChangeType == ChangeGapOverflow {
		return nil
	}
	for _, id := range h.RecordIDs {
		if id == LeadWildcard {
			continue
		}
		if err := checkLeadID(id); err != nil {
			return bad("recordIds: %w", err)
		}
		if !strings.HasPrefix(id, LeadKeyPrefix) {
			return bad("recordIds: %q is not a Lead Id (key prefix %s)", id, LeadKeyPrefix)
		}
	}
	return nil
}
