package featurestore

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/leadscorer/leadscorer/features"
)

// Hash field names. The layout is documented in docs/REDIS.md; a change here
// is a change of the stored format and must be made there too.
const (
	fieldAdvFirm    = "firm"
	fieldAdvFirmDay = "firm_start"
	fieldAdvIndDay  = "industry_start"
	fieldAdvRepType = "rep_type"
	fieldAdvHistory = "history"
	fieldSnapshot   = "snapshot_at"
	fieldFirmReps   = "reps"
	fieldFirmWire   = "wirehouse"
	fieldFirmBroker = "broker_protocol"
	fieldFirmRIA    = "independent_ria"
	fieldFirmArrive = "arrivals"
	fieldFirmDepart = "departures"
	fieldFirmDigest = "digest"
)

// The parts of a sink state value, in their stored order. They are not hash
// fields (the state is one string, read with one MGET for a whole batch) but
// a MalformedError names the part that is wrong as its Field.
const (
	fieldSinkScore   = "score"
	fieldSinkPct     = "percentile"
	fieldSinkDeprio  = "deprioritize"
	fieldSinkExpl    = "explanation_hash"
	fieldSinkVersion = "version"
)

// The field lists, in the order HMGET asks for them and the decoders read
// them; an advisor's are the parts of its value, in their stored order.
var (
	advisorFields = []string{fieldAdvFirm, fieldAdvFirmDay, fieldAdvIndDay, fieldAdvRepType, fieldAdvHistory, fieldSnapshot}
	firmFields    = [...]string{fieldFirmReps, fieldFirmWire, fieldFirmBroker, fieldFirmRIA, fieldFirmArrive, fieldFirmDepart, fieldSnapshot}
	// firmReadFields is what a full read of a firm asks for: its fields,
	// then the digest of their values.
	firmReadFields = append(firmFields[:len(firmFields):len(firmFields)], fieldFirmDigest)
	sinkFields     = []string{fieldSinkScore, fieldSinkPct, fieldSinkDeprio, fieldSinkExpl, fieldSinkVersion}
)

// MalformedError reports a stored record that cannot be decoded: a field
// missing from a hash that exists, a value that does not parse, or a key of
// the wrong Redis type. It belongs to the one record, never to the batch:
// the scorer sends the event that needed it to the DLQ with class
// "features" and goes on with the others.
type MalformedError struct {
	Key   string // full Redis key, prefix included
	Field string // hash field; empty when the key as a whole is wrong
	Value string // the stored value, as read
	Err   error  // what is wrong with it
}

func (e *MalformedError) Error() string {
	v := e.Value
	if len(v) > 64 {
		v = v[:64] + "..."
	}
	if e.Field == "" {
		return fmt.Sprintf("featurestore: malformed record %q: %v", e.Key, e.Err)
	}
	return fmt.Sprintf("featurestore: malformed record %q field %q value %q: %v", e.Key, e.Field, v, e.Err)
}

func (e *MalformedError) Unwrap() error { return e.Err }

var (
	errMissing  = errors.New("field missing from the hash")
	errNotBool  = errors.New(`want "0" or "1"`)
	errNotAsc   = errors.New("days are not in ascending order")
	errRepType  = errors.New(`want "IA", "DR", "BR" or empty`)
	errNotValue = errors.New("not a string value")
)

// ---- encoding (writes) ----

// appendDay appends a time as its UTC day number, or nothing when t is the
// zero time (unknown).
func appendDay(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	return strconv.AppendInt(b, int64(features.DayOf(t)), 10)
}

func appendSnapshot(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	return strconv.AppendInt(b, t.Unix(), 10)
}

func boolField(v bool) string {
	if v {
		return "1"
	}
	return "0"
}

// appendDays appends days as the first day then the non-negative gaps
// between consecutive days, comma separated: 20100,0,3,12.
func appendDays(b []byte, days []features.Day) []byte {
	for i, d := range days {
		if i == 0 {
			b = strconv.AppendInt(b, int64(d), 10)
			continue
		}
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(d-days[i-1]), 10)
	}
	return b
}

func validRepType(s string) bool {
	switch s {
	case "", "IA", "DR", "BR":
		return true
	}
	return false
}

// ValidateAdvisor reports what would make a an unstorable record.
func ValidateAdvisor(a *features.Advisor) error {
	if a.CRD <= 0 {
		return fmt.Errorf("advisor crd %d: must be positive", a.CRD)
	}
	if a.FirmCRD < 0 {
		return fmt.Errorf("advisor %d firm_crd %d: must not be negative", a.CRD, a.FirmCRD)
	}
	if !validRepType(a.RepType) {
		return fmt.Errorf("advisor %d rep_type %q: %w", a.CRD, a.RepType, errRepType)
	}
	for i, e := range a.History {
		if e.FirmCRD <= 0 {
			return fmt.Errorf("advisor %d history[%d].firm_crd %d: must be positive", a.CRD, i, e.FirmCRD)
		}
	}
	return nil
}

// ValidateFirm reports what would make f an unstorable record.
func ValidateFirm(f *features.Firm) error {
	if f.CRD <= 0 {
		return fmt.Errorf("firm crd %d: must be positive", f.CRD)
	}
	if f.RepCount < 0 {
		return fmt.Errorf("firm %d rep_count %d: must not be negative", f.CRD, f.RepCount)
	}
	for name, days := range map[string][]features.Day{"arrivals": f.Arrivals, "departures": f.Departures} {
		for i := 1; i < len(days); i++ {
			if days[i] < days[i-1] {
				return fmt.Errorf("firm %d %s[%d] = %d after %d: %w", f.CRD, name, i, days[i], days[i-1], errNotAsc)
			}
		}
	}
	return nil
}

func validateSink(st *SinkState) error {
	switch {
	case st.LeadID == "":
		return errors.New("sink state lead_id: empty")
	case math.IsNaN(st.Score) || math.IsInf(st.Score, 0):
		return fmt.Errorf("sink state for lead %s score %v: not finite", st.LeadID, st.Score)
	case st.Percentile < 1 || st.Percentile > 100:
		return fmt.Errorf("sink state for lead %s percentile %d: want 1..100", st.LeadID, st.Percentile)
	case st.Version == "" || strings.ContainsAny(st.Version, "|\r\n"):
		return fmt.Errorf("sink state for lead %s version %q: want a non-empty name without '|'", st.LeadID, st.Version)
	}
	return nil
}

// appendAdvisorValue appends a's stored value to b: its parts in the order
// of advisorFields, joined by '|' (no part can hold one). Every part is
// written every time, so a rewrite leaves nothing stale behind.
func appendAdvisorValue(b []byte, a *features.Advisor) []byte {
	b = strconv.AppendInt(b, a.FirmCRD, 10)
	b = append(b, '|')
	b = appendDay(b, a.FirmStart)
	b = append(b, '|')
	b = appendDay(b, a.IndustryStart)
	b = append(b, '|')
	b = append(b, a.RepType...)
	b = append(b, '|')
	for i, e := range a.History {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, e.FirmCRD, 10)
		b = append(b, ':')
		b = appendDay(b, e.Start)
	}
	b = append(b, '|')
	return appendSnapshot(b, a.SnapshotAt)
}

// firmValues returns the HSET field/value pairs of f, its digest last.
func firmValues(f *features.Firm, buf []byte) []any {
	// One statement each: buf is reused, and a conversion is not a call,
	// so within one expression it may run after the next append.
	arrivals := string(appendDays(buf[:0], f.Arrivals))
	departures := string(appendDays(buf[:0], f.Departures))
	snapshot := string(appendSnapshot(buf[:0], f.SnapshotAt))
	vals := [...]string{
		strconv.Itoa(f.RepCount),
		boolField(f.Wirehouse),
		boolField(f.BrokerProtocol),
		boolField(f.IndependentRIA),
		arrivals, departures, snapshot,
	}
	out := make([]any, 0, 2*len(firmReadFields))
	for i, v := range vals {
		out = append(out, firmFields[i], v)
	}
	return append(out, fieldFirmDigest, firmDigest(vals[:]))
}

// firmDigest is the digest field of a firm whose values, in firmFields
// order, are vals: the 64-bit FNV-1a of the values, each followed by a
// newline, in lower-case hex. A reader that holds the firm decoded under
// the same digest need not read the values again. It hashes the strings
// in place (hash/fnv would copy each into a []byte: tens of kilobytes for
// a wirehouse, on every full read of a firm stored without a digest).
func firmDigest(vals []string) string {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	for _, v := range vals {
		for i := 0; i < len(v); i++ {
			h = (h ^ uint64(v[i])) * prime64
		}
		h = (h ^ '\n') * prime64
	}
	return strconv.FormatUint(h, 16)
}

// sinkValue encodes a sink state as one string:
// score|percentile|deprioritize|explanation hash in hex|version,
// e.g. "0.4213|17|1|fedcba9876543210|v4.1.0", appended to buf.
func sinkValue(st *SinkState, buf []byte) []byte {
	b := strconv.AppendFloat(buf, st.Score, 'g', -1, 64)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(st.Percentile), 10)
	b = append(b, '|')
	b = append(b, boolField(st.Deprioritize)...)
	b = append(b, '|')
	b = strconv.AppendUint(b, st.ExplanationHash, 16)
	b = append(b, '|')
	return append(b, st.Version...)
}

// ---- decoding (reads) ----

// decoder reads the values of one HMGET reply and remembers the first
// problem, naming the key and field.
type decoder struct {
	key    string
	fields []string
	vals   []any    // an HMGET reply
	parts  []string // or the parts of a value, every one present
	err    *MalformedError
}

// found reports whether the hash exists: HMGET answers nil for every field
// of a missing key. A hash that exists but lacks a field is malformed.
func (d *decoder) found() bool {
	for _, v := range d.vals {
		if v != nil {
			return true
		}
	}
	return false
}

func (d *decoder) fail(i int, val string, err error) {
	if d.err == nil {
		d.err = &MalformedError{Key: d.key, Field: d.fields[i], Value: val, Err: err}
	}
}

// value is field i's value, known to be present.
func (d *decoder) value(i int) string {
	if d.parts != nil {
		return d.parts[i]
	}
	return d.vals[i].(string)
}

func (d *decoder) str(i int) (string, bool) {
	if d.err != nil {
		return "", false
	}
	if d.parts != nil {
		return d.parts[i], true
	}
	switch v := d.vals[i].(type) {
	case string:
		return v, true
	case nil:
		d.fail(i, "", errMissing)
	default:
		d.fail(i, fmt.Sprint(v), errNotValue)
	}
	return "", false
}

func (d *decoder) int64(i int, min int64) int64 {
	s, ok := d.str(i)
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil && n < min {
		err = fmt.Errorf("below %d", min)
	}
	if err != nil {
		d.fail(i, s, err)
	}
	return n
}

func (d *decoder) bool(i int) bool {
	s, ok := d.str(i)
	if !ok {
		return false
	}
	switch s {
	case "0":
		return false
	case "1":
		return true
	}
	d.fail(i, s, errNotBool)
	return false
}

func parseDay(s string) (features.Day, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	return features.Day(n), err
}

// day reads a day number; empty means unknown (zero time).
func (d *decoder) day(i int) time.Time {
	s, ok := d.str(i)
	if !ok || s == "" {
		return time.Time{}
	}
	n, err := parseDay(s)
	if err != nil {
		d.fail(i, s, err)
		return time.Time{}
	}
	return n.Time()
}

func (d *decoder) snapshot(i int) time.Time {
	s, ok := d.str(i)
	if !ok || s == "" {
		return time.Time{}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		d.fail(i, s, err)
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

// days decodes a gap-encoded day list into dst[:0].
func (d *decoder) days(i int, dst []features.Day) []features.Day {
	dst = dst[:0]
	s, ok := d.str(i)
	if !ok || s == "" {
		return dst
	}
	var prev features.Day
	for n := 0; s != ""; n++ {
		part := s
		if j := strings.IndexByte(s, ','); j >= 0 {
			part, s = s[:j], s[j+1:]
			if s == "" { // trailing comma
				d.fail(i, d.value(i), fmt.Errorf("entry %d: empty", n+1))
				return dst[:0]
			}
		} else {
			s = ""
		}
		v, err := parseDay(part)
		if err != nil {
			d.fail(i, d.value(i), fmt.Errorf("entry %d: %w", n, err))
			return dst[:0]
		}
		if n > 0 {
			if v < 0 {
				d.fail(i, d.value(i), fmt.Errorf("entry %d: negative gap: %w", n, errNotAsc))
				return dst[:0]
			}
			v += prev
		}
		dst = append(dst, v)
		prev = v
	}
	return dst
}

// history decodes "firm:day,firm:day" (day empty when unknown) into dst[:0].
func (d *decoder) history(i int, dst []features.Employment) []features.Employment {
	dst = dst[:0]
	s, ok := d.str(i)
	if !ok || s == "" {
		return dst
	}
	whole := s
	for n := 0; ; n++ {
		part := s
		j := strings.IndexByte(s, ',')
		if j >= 0 {
			part, s = s[:j], s[j+1:]
		}
		c := strings.IndexByte(part, ':')
		if c < 0 {
			d.fail(i, whole, fmt.Errorf("entry %d %q: want firm:day", n, part))
			return dst[:0]
		}
		firm, err := strconv.ParseInt(part[:c], 10, 64)
		if err == nil && firm <= 0 {
			err = errors.New("firm crd must be positive")
		}
		if err != nil {
			d.fail(i, whole, fmt.Errorf("entry %d firm: %w", n, err))
			return dst[:0]
		}
		e := features.Employment{FirmCRD: firm}
		if c+1 < len(part) {
			day, err := parseDay(part[c+1:])
			if err != nil {
				d.fail(i, whole, fmt.Errorf("entry %d day: %w", n, err))
				return dst[:0]
			}
			e.Start = day.Time()
		}
		dst = append(dst, e)
		if j < 0 {
			return dst
		}
	}
}

// decodeAdvisorValue fills a from a value appendAdvisorValue wrote, reusing
// a.History's backing array, with parts as its working memory (a local
// array would escape: the decoder's errors keep its strings). A value
// without exactly one part per field of advisorFields is malformed; a part
// that does not parse is malformed with that part named as the field.
func decodeAdvisorValue(key, val string, crd int64, a *features.Advisor, parts *[6]string) *MalformedError {
	if n := split(val, '|', parts[:]); n != len(parts) {
		return &MalformedError{Key: key, Value: val, Err: fmt.Errorf("%d parts joined by '|', want %d (%s)", n, len(parts), strings.Join(advisorFields, ", "))}
	}
	d := decoder{key: key, fields: advisorFields, parts: parts[:]}
	hist := a.History
	*a = features.Advisor{
		CRD:           crd,
		FirmCRD:       d.int64(0, 0),
		FirmStart:     d.day(1),
		IndustryStart: d.day(2),
	}
	if rt, ok := d.str(3); ok {
		if !validRepType(rt) {
			d.fail(3, rt, errRepType)
		}
		a.RepType = rt
	}
	a.History = d.history(4, hist)
	a.SnapshotAt = d.snapshot(5)
	return d.err
}

// decodeFirm fills f from an HMGET reply over firmFields, reusing the
// backing arrays of f's day lists.
func decodeFirm(d *decoder, crd int64, f *features.Firm) {
	arr, dep := f.Arrivals, f.Departures
	reps := d.int64(0, 0)
	if reps > math.MaxInt32 {
		d.fail(0, strconv.FormatInt(reps, 10), errors.New("out of range"))
	}
	*f = features.Firm{
		CRD:            crd,
		RepCount:       int(reps),
		Wirehouse:      d.bool(1),
		BrokerProtocol: d.bool(2),
		IndependentRIA: d.bool(3),
	}
	f.Arrivals = d.days(4, arr)
	f.Departures = d.days(5, dep)
	f.SnapshotAt = d.snapshot(6)
}

// decodeSink parses a value written by sinkValue. The version is the last
// part and may not contain '|', so a value has exactly five parts.
func decodeSink(key, val, leadID string, st *SinkState) *MalformedError {
	var parts [5]string
	rest := val
	for i := range parts {
		j := strings.IndexByte(rest, '|')
		if i == len(parts)-1 {
			if j >= 0 {
				return &MalformedError{Key: key, Field: sinkFields[i], Value: val, Err: errors.New("more than 5 parts")}
			}
			parts[i] = rest
			break
		}
		if j < 0 {
			return &MalformedError{Key: key, Field: sinkFields[i], Value: val, Err: fmt.Errorf("want 5 parts separated by '|', found %d", i+1)}
		}
		parts[i], rest = rest[:j], rest[j+1:]
	}
	bad := func(i int, err error) *MalformedError {
		return &MalformedError{Key: key, Field: sinkFields[i], Value: val, Err: fmt.Errorf("%q: %w", parts[i], err)}
	}
	score, err := strconv.ParseFloat(parts[0], 64)
	if err == nil && (math.IsNaN(score) || math.IsInf(score, 0)) {
		err = errors.New("not finite")
	}
	if err != nil {
		return bad(0, err)
	}
	pct, err := strconv.Atoi(parts[1])
	if err == nil && (pct < 1 || pct > 100) {
		err = errors.New("want 1..100")
	}
	if err != nil {
		return bad(1, err)
	}
	var deprio bool
	switch parts[2] {
	case "0":
	case "1":
		deprio = true
	default:
		return bad(2, errNotBool)
	}
	h, err := strconv.ParseUint(parts[3], 16, 64)
	if err != nil {
		return bad(3, err)
	}
	if parts[4] == "" {
		return bad(4, errors.New("empty"))
	}
	*st = SinkState{LeadID: leadID, Score: score, Percentile: pct, Deprioritize: deprio, ExplanationHash: h, Version: parts[4]}
	return nil
}
