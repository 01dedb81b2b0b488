package featurestore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
)

// LeadState is the compact state of one Salesforce Lead the scorer keeps
// from its change events, so that an update carrying only the changed
// fields can be merged: only what the features and outcomes need, and the
// change last applied. Layout in docs/REDIS.md.
type LeadState struct {
	// The commit position of the last change applied: an older change, or
	// the same one again, changes nothing.
	CommitTimestamp int64 // milliseconds since the epoch
	CommitNumber    int64
	TransactionKey  string
	SequenceNumber  int64

	// Deleted: the Lead was deleted; only the position is kept (a
	// tombstone, so a replayed older change cannot bring it back).
	Deleted bool
	// Partial: the first change seen was an update, so only what updates
	// carried is known.
	Partial bool

	CRD           string // the CRD field's value as Salesforce holds it; "" when null
	HasEmail      bool
	HasLinkedIn   bool
	Status        string
	CallScheduled bool // the call-scheduled field is set
	Converted     bool

	// Outcomes already derived, so each is written once per Lead.
	ContactedSent, CallSent bool
}

// InputPosition is where a change came from in the input topic.
type InputPosition struct {
	Partition int32
	Offset    int64
}

// LeadRecord is what the store holds for a Lead: the state after the last
// batch that changed it (State, written by the input record At) and the
// state before that batch (Prev, PrevAt). A batch that was aborted or
// crashed before its commit leaves its state behind; the batch that redoes
// it recognises it (At at or after the batch's first offset) and starts
// again from Prev, so the redo computes what the first attempt did.
type LeadRecord struct {
	Found   bool
	State   LeadState
	At      InputPosition
	HasPrev bool
	Prev    LeadState
	PrevAt  InputPosition

	// LastSink is the Lead's quota-guard state, read in the same round trip.
	LastSink    SinkState
	HasLastSink bool

	// raw is the stored value as read: a write replaces it only if it is
	// still there (see SaveLeads).
	raw string
}

// LeadWrite is a Lead's record to write before the batch commits.
type LeadWrite struct {
	LeadID string
	Record LeadRecord // State, At, Prev, PrevAt; its raw value as read
	// TTL, when positive, expires the record (a deleted Lead's tombstone).
	TTL time.Duration
}

// ErrLeadStateMoved is returned by SaveLeads when a Lead's record changed
// since the batch read it: another scorer owns the Lead's partition now. The
// batch must not commit.
var ErrLeadStateMoved = errors.New("featurestore: a lead's state changed since it was read: another scorer wrote it")

// LeadKey returns the key of a Lead's state.
func (s *Store) LeadKey(leadID string) string { return s.prefix + "lead:" + leadID }

// LoadLeads reads the record and the quota-guard state of each Lead in one
// round trip (one MGET). out must have len(leadIDs). The state before the
// last batch (Prev) is decoded only for the records whose At redo reports
// (the batch redoes that attempt and starts from Prev; nil: every record);
// the others have PrevAt and HasPrev, and a zero Prev. A stored value that
// does not parse, in a part decoded, is a *MalformedError for the whole
// call: the Lead's history cannot be merged safely, and it will not repair
// itself.
func (s *Store) LoadLeads(ctx context.Context, leadIDs []string, out []LeadRecord, redo func(InputPosition) bool) error {
	if len(out) != len(leadIDs) {
		return fmt.Errorf("featurestore: load of %d leads into %d records", len(leadIDs), len(out))
	}
	if len(leadIDs) == 0 {
		return nil
	}
	keys := s.keys(leadIDs, "lead:", "sink:")
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return fmt.Errorf("featurestore: load lead states: %w", err)
	}
	n := len(leadIDs)
	for i, id := range leadIDs {
		out[i] = LeadRecord{}
		if v, ok := vals[i].(string); ok {
			if err := decodeLeadRecord(v, &out[i], redo); err != nil {
				return &MalformedError{Key: keys[i], Value: v, Err: err}
			}
			out[i].Found, out[i].raw = true, v
		}
		if v, ok := vals[n+i].(string); ok {
			if mal := decodeSink(keys[n+i], v, id, &out[i].LastSink); mal == nil {
				out[i].HasLastSink = true
			}
		}
	}
	return nil
}

// saveLeads writes each Lead's record (KEYS[i], with ARGV[3i-2] the value
// the batch read, ARGV[3i-1] the new value, ARGV[3i] the TTL in
// milliseconds, 0 for none) only if its key still holds the value read (or
// still does not exist), atomically, and returns how many it did not
// write. One script for the batch: one command to build, send and answer,
// not one per Lead.
const saveLeadsSource = `
local moved = 0
for i, key in ipairs(KEYS) do
  local a = 3 * (i - 1)
  local cur = redis.call('GET', key)
  if (cur or '') == ARGV[a + 1] then
    local ttl = tonumber(ARGV[a + 3])
    if ttl > 0 then
      redis.call('SET', key, ARGV[a + 2], 'PX', ttl)
    else
      redis.call('SET', key, ARGV[a + 2])
    end
  else
    moved = moved + 1
  end
end
return moved`

var saveLeads = redis.NewScript(saveLeadsSource)

// SaveLeads writes the Leads' records in one round trip, before the
// batch's transaction commits. Each record is written only if its key still
// holds what LoadLeads read: when another scorer wrote it since, SaveLeads
// returns ErrLeadStateMoved (the others are written) and the batch must be
// aborted. It only reads writes, so a batch may run it while it goes on
// scoring.
func (s *Store) SaveLeads(ctx context.Context, writes []LeadWrite) error {
	if len(writes) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	pipe.ScriptLoad(ctx, saveLeadsSource) // so EVALSHA finds it, whatever Redis restarted
	// The keys and the new values are substrings of one string each,
	// built in buffers sized once: a new value is about its state and the
	// state read, which is most of the value read.
	ksize, vsize := 0, 0
	for i := range writes {
		ksize += len(s.prefix) + len("lead:") + len(writes[i].LeadID)
		vsize += len(writes[i].Record.raw) + leadRecordSlack
	}
	kb, vb := make([]byte, 0, ksize), make([]byte, 0, vsize)
	kEnd := make([]int, len(writes))
	vEnd := make([]int, len(writes))
	for i := range writes {
		kb = append(append(kb, s.prefix...), "lead:"...)
		kb = append(kb, writes[i].LeadID...)
		kEnd[i] = len(kb)
		vb = appendLeadRecord(vb, &writes[i].Record)
		vEnd[i] = len(vb)
	}
	// Neither buffer is written again: the strings can be their bytes.
	ks, vs := unsafe.String(unsafe.SliceData(kb), len(kb)), unsafe.String(unsafe.SliceData(vb), len(vb))
	keys := make([]string, len(writes))
	args := make([]any, 0, 3*len(writes))
	k0, v0 := 0, 0
	for i := range writes {
		keys[i] = ks[k0:kEnd[i]]
		args = append(args, writes[i].Record.raw, vs[v0:vEnd[i]], writes[i].TTL.Milliseconds())
		k0, v0 = kEnd[i], vEnd[i]
	}
	save := pipe.EvalSha(ctx, saveLeads.Hash(), keys, args...)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("featurestore: save lead states: %w", err)
	}
	if n, err := save.Int(); err != nil || n != 0 {
		return ErrLeadStateMoved
	}
	return nil
}

// leadRecordSlack is what SaveLeads allows a Lead's new record beyond the
// one it read: a state with every part at its longest usual size.
const leadRecordSlack = 160

// Encoding: "v1|<at>|<state>|<prev at>|<prev state>", a position
// "<partition>:<offset>" (empty when there is no prev), a state its parts
// joined by ",": commit timestamp, commit number, transaction key,
// sequence number, flags, CRD, status; strings query-escaped. Flags are
// letters: D deleted, P partial, E email, L LinkedIn, S call scheduled,
// V converted, c contacted outcome sent, s call outcome sent.

const leadVersion = "v1"

func appendLeadRecord(b []byte, r *LeadRecord) []byte {
	b = append(b, leadVersion...)
	b = append(b, '|')
	b = appendPosition(b, r.At)
	b = append(b, '|')
	b = appendLeadState(b, &r.State)
	b = append(b, '|')
	if r.HasPrev {
		b = appendPosition(b, r.PrevAt)
		b = append(b, '|')
		b = appendLeadState(b, &r.Prev)
	} else {
		b = append(b, '|')
	}
	return b
}

func appendPosition(b []byte, p InputPosition) []byte {
	b = strconv.AppendInt(b, int64(p.Partition), 10)
	b = append(b, ':')
	return strconv.AppendInt(b, p.Offset, 10)
}

var leadFlags = []struct {
	c   byte
	get func(*LeadState) *bool
}{
	{'D', func(s *LeadState) *bool { return &s.Deleted }},
	{'P', func(s *LeadState) *bool { return &s.Partial }},
	{'E', func(s *LeadState) *bool { return &s.HasEmail }},
	{'L', func(s *LeadState) *bool { return &s.HasLinkedIn }},
	{'S', func(s *LeadState) *bool { return &s.CallScheduled }},
	{'V', func(s *LeadState) *bool { return &s.Converted }},
	{'c', func(s *LeadState) *bool { return &s.ContactedSent }},
	{'s', func(s *LeadState) *bool { return &s.CallSent }},
}

func appendLeadState(b []byte, s *LeadState) []byte {
	b = strconv.AppendInt(b, s.CommitTimestamp, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, s.CommitNumber, 10)
	b = append(b, ',')
	b = appendQueryEscaped(b, s.TransactionKey)
	b = append(b, ',')
	b = strconv.AppendInt(b, s.SequenceNumber, 10)
	b = append(b, ',')
	for _, f := range leadFlags {
		if *f.get(s) {
			b = append(b, f.c)
		}
	}
	b = append(b, ',')
	b = appendQueryEscaped(b, s.CRD)
	b = append(b, ',')
	return appendQueryEscaped(b, s.Status)
}

// appendQueryEscaped appends url.QueryEscape(s) to b without a string of its
// own: letters, digits and -_.~ as they are, a space as +, any other byte
// as %XX.
func appendQueryEscaped(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b = append(b, c)
		case c == ' ':
			b = append(b, '+')
		default:
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return b
}

// split cuts s at every sep into dst, without allocating, and returns how
// many parts s has (more than len(dst) when dst could not hold them all).
func split(s string, sep byte, dst []string) int {
	n := 0
	for {
		i := strings.IndexByte(s, sep)
		if i < 0 {
			if n < len(dst) {
				dst[n] = s
			}
			return n + 1
		}
		if n < len(dst) {
			dst[n] = s[:i]
		}
		n++
		s = s[i+1:]
	}
}

// decodeLeadRecord decodes v into r, its Prev only when redo is nil or
// reports r.At.
func decodeLeadRecord(v string, r *LeadRecord, redo func(InputPosition) bool) error {
	var buf [5]string
	parts := buf[:]
	if split(v, '|', parts) != 5 || parts[0] != leadVersion {
		return fmt.Errorf("want %s and 4 parts joined by |", leadVersion)
	}
	var err error
	if r.At, err = parsePosition(parts[1]); err != nil {
		return fmt.Errorf("at: %w", err)
	}
	if err := parseLeadState(parts[2], &r.State); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if parts[3] == "" {
		return nil
	}
	r.HasPrev = true
	if r.PrevAt, err = parsePosition(parts[3]); err != nil {
		return fmt.Errorf("prev at: %w", err)
	}
	if redo != nil && !redo(r.At) {
		return nil
	}
	if err := parseLeadState(parts[4], &r.Prev); err != nil {
		return fmt.Errorf("prev state: %w", err)
	}
	return nil
}

func parsePosition(s string) (InputPosition, error) {
	p, o, ok := strings.Cut(s, ":")
	if !ok {
		return InputPosition{}, fmt.Errorf("%q is not partition:offset", s)
	}
	pn, err1 := strconv.ParseInt(p, 10, 32)
	on, err2 := strconv.ParseInt(o, 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return InputPosition{}, err
	}
	return InputPosition{Partition: int32(pn), Offset: on}, nil
}

func parseLeadState(s string, st *LeadState) error {
	var buf [7]string
	parts := buf[:]
	if n := split(s, ',', parts); n != 7 {
		return fmt.Errorf("%d parts, want 7", n)
	}
	var errs [6]error
	st.CommitTimestamp, errs[0] = strconv.ParseInt(parts[0], 10, 64)
	st.CommitNumber, errs[1] = strconv.ParseInt(parts[1], 10, 64)
	st.TransactionKey, errs[2] = queryUnescape(parts[2])
	st.SequenceNumber, errs[3] = strconv.ParseInt(parts[3], 10, 64)
	st.CRD, errs[4] = queryUnescape(parts[5])
	st.Status, errs[5] = queryUnescape(parts[6])
	if err := errors.Join(errs[:]...); err != nil {
		return err
	}
	for i := 0; i < len(parts[4]); i++ {
		found := false
		for _, f := range leadFlags {
			if f.c == parts[4][i] {
				*f.get(st), found = true, true
			}
		}
		if !found {
			return fmt.Errorf("unknown flag %q", parts[4][i])
		}
	}
	return nil
}

// queryUnescape is url.QueryUnescape, without its work for the usual parts:
// nothing escaped, or only spaces (a status such as "Call+Scheduled").
func queryUnescape(s string) (string, error) {
	plus := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '%':
			return url.QueryUnescape(s)
		case '+':
			plus = true
		}
	}
	if !plus {
		return s, nil
	}
	return strings.ReplaceAll(s, "+", " "), nil
}
