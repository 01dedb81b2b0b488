// Package featurestore keeps the raw advisor and firm attributes the scorer
// enriches lead-change events with, and the last record written to the
// Salesforce sink for each lead, in Redis.
//
// The key layout and every field's encoding are in docs/REDIS.md. Reads are
// strict: a stored value that does not parse is a *MalformedError naming the
// key and field, never a silent zero.
//
// A Store is safe for concurrent use. Lookup costs two pipelined round
// trips per batch whatever the batch size, three in a batch after a firm
// was rewritten.
package featurestore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/leadscorer/leadscorer/features"
)

// DefaultPrefix starts every key the store reads or writes unless New is
// given another prefix.
const DefaultPrefix = "leadscorer:"

// putChunk is how many records one write pipeline carries: large enough that
// a load is dominated by Redis work rather than round trips, small enough
// that one pipeline's request and reply stay a few hundred kilobytes.
const putChunk = 500

// Store reads and writes feature records in Redis.
type Store struct {
	rdb     redis.UniversalClient
	prefix  string
	metrics *metrics
	scratch sync.Pool // *lookupScratch
	firms   firmCache
}

// New returns a Store on rdb whose keys start with prefix (DefaultPrefix when
// prefix is empty). It adds a hook to rdb that counts round trips and errors
// into metrics registered on reg (none when reg is nil): every command sent
// through rdb is counted, not only the store's. A metric already registered
// on reg by another Store is shared.
func New(rdb redis.UniversalClient, prefix string, reg prometheus.Registerer) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	s := &Store{rdb: rdb, prefix: prefix, metrics: newMetrics(reg)}
	rdb.AddHook(s.metrics)
	return s
}

// Prefix returns the key prefix the store uses.
func (s *Store) Prefix() string { return s.prefix }

// AdvisorKey returns the key of the advisor with crd.
func (s *Store) AdvisorKey(crd int64) string {
	return s.prefix + "advisor:" + strconv.FormatInt(crd, 10)
}

// FirmKey returns the key of the firm hash for crd.
func (s *Store) FirmKey(crd int64) string { return s.prefix + "firm:" + strconv.FormatInt(crd, 10) }

// keys returns the key of every id under each kind in turn ("sink:",
// ...), all of them substrings of one string: one allocation for their
// bytes, not one per key.
func (s *Store) keys(ids []string, kinds ...string) []string {
	size := 0
	for _, kind := range kinds {
		for _, id := range ids {
			size += len(s.prefix) + len(kind) + len(id)
		}
	}
	kb := make([]byte, 0, size)
	ends := make([]int, 0, len(kinds)*len(ids))
	for _, kind := range kinds {
		for _, id := range ids {
			kb = append(append(append(kb, s.prefix...), kind...), id...)
			ends = append(ends, len(kb))
		}
	}
	ks := string(kb)
	keys := make([]string, len(ends))
	start := 0
	for i, end := range ends {
		keys[i], start = ks[start:end], end
	}
	return keys
}

// SinkKey returns the key of the sink state string for a Salesforce Lead Id.
func (s *Store) SinkKey(leadID string) string { return s.prefix + "sink:" + leadID }

// Request asks for the attributes of one event's advisor and the last sink
// record of its lead.
type Request struct {
	// CRD is the advisor's CRD; zero or negative means the lead has none and
	// nothing is looked up for it.
	CRD int64
	// LeadID is the Salesforce Lead Id; empty means no sink state is read.
	LeadID string
}

// Result is what Lookup found for one Request.
type Result struct {
	Advisor      features.Advisor
	AdvisorFound bool
	// Firm is the advisor's current firm; FirmFound is false when the
	// advisor is not found, has no firm, or the firm is not in the store.
	Firm      features.Firm
	FirmFound bool
	LastSink  SinkState
	// HasLastSink is true when a sink record was saved for the lead.
	HasLastSink bool
	// Err is a *MalformedError when a record this request needs is stored
	// malformed; the other fields are then incomplete and must not be used
	// to score. It belongs to this request only.
	Err error
}

// SinkState is the last record written to the Salesforce sink for a lead:
// what the Lead shows now. The producer compares a new score with it and
// skips the write, and the Salesforce API call, when nothing shown changed.
type SinkState struct {
	LeadID       string
	Score        float64 // raw model score, 0..1
	Percentile   int     // 1..100
	Deprioritize bool
	Version      string // model version, e.g. "v4.1.0"
	// ExplanationHash identifies the explanation text written, so a changed
	// explanation is a change without storing the text.
	ExplanationHash uint64
}

// lookupScratch is the per-call working memory of Lookup, pooled so a
// steady stream of batches allocates little beyond what go-redis does.
type lookupScratch struct {
	args     []any         // backing array of every command's arguments
	sinkIdx  []int         // request -> index into the MGET reply, -1 for none
	advIdx   map[int64]int // CRD -> index into the MGET reply: the advisors come first
	firmIdx  map[int64]int // firm CRD -> index into firmCmds and firms
	firmCmds []*redis.SliceCmd
	// firmCached[j] is the cached firm whose digest firmCmds[j] asks
	// for, nil when it reads the firm in full.
	firmCached  []*cachedFirm
	refetch     []int // indexes into firmCmds of the firms read again in full
	refetchCmds []*redis.SliceCmd
	firmCRDs    []int64
	firms       []*features.Firm
	firmErrs    []error
	reqAdv      []int // request -> index into the MGET reply of its advisor, -1 for none
	advParts    [6]string
	key         []byte
	// mgetStart is where the MGET's arguments start in args.
	mgetStart int
}

// Pre-boxed command names and fields: an interface holding a package-level
// value costs no allocation when copied into a command's arguments.
var (
	argHMGet   any = "hmget"
	firmArgs       = boxed(firmReadFields)
	digestArgs     = boxed([]string{fieldFirmDigest})
	argMGet    any = "mget"
	argMSet    any = "mset"
)

func boxed(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// hmget builds an HMGET command whose arguments live in sc.args.
func (sc *lookupScratch) hmget(ctx context.Context, key string, fields []any) *redis.SliceCmd {
	start := len(sc.args)
	sc.args = append(sc.args, argHMGet, key)
	sc.args = append(sc.args, fields...)
	return redis.NewSliceCmd(ctx, sc.args[start:len(sc.args):len(sc.args)]...)
}

func (sc *lookupScratch) appendKey(prefix, kind string, id int64) string {
	b := append(sc.key[:0], prefix...)
	b = append(b, kind...)
	b = strconv.AppendInt(b, id, 10)
	sc.key = b
	return string(b)
}

func (sc *lookupScratch) reset() {
	clear(sc.args)
	sc.args = sc.args[:0]
	sc.sinkIdx = sc.sinkIdx[:0]
	clear(sc.firmCmds)
	sc.firmCmds = sc.firmCmds[:0]
	clear(sc.firmCached)
	sc.firmCached = sc.firmCached[:0]
	sc.refetch = sc.refetch[:0]
	clear(sc.refetchCmds)
	sc.refetchCmds = sc.refetchCmds[:0]
	clear(sc.advIdx)
	clear(sc.firmIdx)
	sc.firmCRDs = sc.firmCRDs[:0]
	sc.reqAdv = sc.reqAdv[:0]
	clear(sc.advParts[:])
	clear(sc.firmErrs)
	sc.firmErrs = sc.firmErrs[:0]
	clear(sc.firms)
	sc.firms = sc.firms[:0]
}

// Lookup enriches a batch: out[i] receives what the store holds for reqs[i].
// It costs two pipelined round trips: the advisors and sink states of all
// requests, then the distinct current firms of the advisors found; a third
// only when a firm's digest changed since the store cached it (readFirms).
// Requests for the same CRD share one read.
//
// out must have len(reqs). Lookup reuses the slices already in out (advisor
// history), so a caller that passes the same out for every batch must not
// keep those slices across calls. A firm's Arrivals and Departures are
// shared by every result of that firm and with later calls: read only.
//
// A Redis or network error fails the whole batch and is returned as is: it
// is transient and the caller retries the batch (see Retry). A malformed
// stored record is set as out[i].Err for the requests that need it and does
// not fail the others; Lookup then returns nil.
func (s *Store) Lookup(ctx context.Context, reqs []Request, out []Result) error {
	if len(out) != len(reqs) {
		return fmt.Errorf("featurestore: lookup of %d requests into %d results", len(reqs), len(out))
	}
	sc, _ := s.scratch.Get().(*lookupScratch)
	if sc == nil {
		sc = &lookupScratch{advIdx: map[int64]int{}, firmIdx: map[int64]int{}}
	}
	defer func() { sc.reset(); s.scratch.Put(sc) }()

	// Round trip 1: advisors (deduplicated) and sink states.
	vals, err := s.readAdvisorsAndSinks(ctx, sc, reqs)
	if err != nil {
		return err
	}
	for i := range reqs {
		resetResult(&out[i])
		s.decodeAdvisor(sc, i, &reqs[i], &out[i], vals)
		s.decodeSink(sc, i, &reqs[i], &out[i], vals)
	}
	if len(sc.firmCRDs) == 0 {
		return nil
	}
	// Round trip 2: the distinct firms of the advisors found.
	if err := s.readFirms(ctx, sc); err != nil {
		return err
	}
	for i := range reqs {
		sc.attachFirm(&out[i])
	}
	return nil
}

// readAdvisorsAndSinks sends the first round trip: one MGET of every
// distinct advisor and of every request's sink state, whose values it
// returns (nil when it asks for nothing).
func (s *Store) readAdvisorsAndSinks(ctx context.Context, sc *lookupScratch, reqs []Request) ([]any, error) {
	sc.mgetStart = len(sc.args)
	sc.args = append(sc.args, argMGet)
	for i := range reqs {
		r := &reqs[i]
		idx := -1
		if r.CRD > 0 {
			var ok bool
			if idx, ok = sc.advIdx[r.CRD]; !ok {
				idx = len(sc.advIdx)
				sc.advIdx[r.CRD] = idx
				sc.args = append(sc.args, sc.appendKey(s.prefix, "advisor:", r.CRD))
			}
		}
		sc.reqAdv = append(sc.reqAdv, idx)
	}
	// The sink states after the advisors.
	for i := range reqs {
		idx := -1
		if reqs[i].LeadID != "" {
			idx = len(sc.args) - sc.mgetStart - 1
			sc.args = append(sc.args, s.SinkKey(reqs[i].LeadID))
		}
		sc.sinkIdx = append(sc.sinkIdx, idx)
	}
	if len(sc.args) == sc.mgetStart+1 {
		return nil, nil
	}
	cmd := redis.NewSliceCmd(ctx, sc.args[sc.mgetStart:len(sc.args):len(sc.args)]...)
	if err := s.rdb.Process(ctx, cmd); err != nil { // MGET fails only with the connection
		return nil, fmt.Errorf("featurestore: lookup advisors and sink states: %w", err)
	}
	return cmd.Val(), nil
}

// decodeAdvisor fills res with request i's advisor from the MGET reply,
// and notes the advisor's current firm for the second round trip.
func (s *Store) decodeAdvisor(sc *lookupScratch, i int, req *Request, res *Result, vals []any) {
	a := sc.reqAdv[i]
	if a < 0 {
		return
	}
	// nil: no such advisor (or a key of another type, which MGET answers
	// the same way).
	if v, ok := vals[a].(string); ok {
		key := sc.args[sc.mgetStart+1+a].(string)
		if mal := decodeAdvisorValue(key, v, req.CRD, &res.Advisor, &sc.advParts); mal != nil {
			res.Err = mal
		} else {
			res.AdvisorFound = true
		}
	}
	if res.AdvisorFound && res.Advisor.FirmCRD > 0 {
		if _, ok := sc.firmIdx[res.Advisor.FirmCRD]; !ok {
			sc.firmIdx[res.Advisor.FirmCRD] = len(sc.firmCRDs)
			sc.firmCRDs = append(sc.firmCRDs, res.Advisor.FirmCRD)
		}
	}
}

// decodeSink fills res with request i's sink state from the MGET reply.
func (s *Store) decodeSink(sc *lookupScratch, i int, req *Request, res *Result, sinkVals []any) {
	j := sc.sinkIdx[i]
	if j < 0 {
		return
	}
	switch v := sinkVals[j].(type) {
	case nil: // no state saved (or a key of another type)
	case string:
		key := sc.args[sc.mgetStart+1+j].(string)
		if mal := decodeSink(key, v, req.LeadID, &res.LastSink); mal != nil {
			if res.Err == nil {
				res.Err = mal
			}
		} else {
			res.HasLastSink = true
		}
	default:
		if res.Err == nil {
			res.Err = &MalformedError{Key: s.SinkKey(req.LeadID), Value: fmt.Sprint(v), Err: errNotValue}
		}
	}
}

// readFirms sends the second round trip, one HMGET per distinct firm, and
// decodes each firm once. A firm cached under the digest the store holds
// with it is asked for its digest only: a firm's arrivals and departures
// are tens of kilobytes for the largest, read by nearly every batch. A
// firm whose digest changed since it was cached (rewritten, deleted) is
// read in full in a third round trip, the only one.
func (s *Store) readFirms(ctx context.Context, sc *lookupScratch) error {
	pipe := s.rdb.Pipeline()
	for _, crd := range sc.firmCRDs {
		key := sc.appendKey(s.prefix, "firm:", crd)
		e := s.firms.withDigest(key)
		args := firmArgs
		if e != nil {
			args = digestArgs
		}
		cmd := sc.hmget(ctx, key, args)
		sc.firmCmds = append(sc.firmCmds, cmd)
		sc.firmCached = append(sc.firmCached, e)
		_ = pipe.Process(ctx, cmd)
	}
	if _, err := pipe.Exec(ctx); err != nil && !allReplyErrors(sc.firmCmds) {
		return fmt.Errorf("featurestore: lookup firms: %w", err)
	}
	sc.firms = append(sc.firms, make([]*features.Firm, len(sc.firmCmds))...)
	sc.firmErrs = append(sc.firmErrs, make([]error, len(sc.firmCmds))...)
	for j, cmd := range sc.firmCmds {
		if e := sc.firmCached[j]; e != nil {
			// Anything but the cached digest (another digest, none, an
			// error reply) is read again in full.
			if vals := cmd.Val(); cmd.Err() == nil && len(vals) == 1 && vals[0] == any(e.digest) {
				sc.firms[j] = e.firm
			} else {
				sc.refetch = append(sc.refetch, j)
			}
			continue
		}
		sc.firms[j], sc.firmErrs[j] = s.firmFromReply(cmd, sc.firmCRDs[j])
	}
	if len(sc.refetch) == 0 {
		return nil
	}
	pipe = s.rdb.Pipeline()
	for _, j := range sc.refetch {
		cmd := sc.hmget(ctx, sc.firmCmds[j].Args()[1].(string), firmArgs)
		sc.refetchCmds = append(sc.refetchCmds, cmd)
		_ = pipe.Process(ctx, cmd)
	}
	if _, err := pipe.Exec(ctx); err != nil && !allReplyErrors(sc.refetchCmds) {
		return fmt.Errorf("featurestore: lookup changed firms: %w", err)
	}
	for k, j := range sc.refetch {
		sc.firms[j], sc.firmErrs[j] = s.firmFromReply(sc.refetchCmds[k], sc.firmCRDs[j])
	}
	return nil
}

// firmFromReply is the firm a full read (an HMGET of firmReadFields)
// found: errNotFound when the firm is not stored, a *MalformedError when it
// is stored malformed.
func (s *Store) firmFromReply(cmd *redis.SliceCmd, crd int64) (*features.Firm, error) {
	key := cmd.Args()[1].(string)
	if err := cmd.Err(); err != nil {
		return nil, &MalformedError{Key: key, Err: err}
	}
	vals := cmd.Val()
	if !(&decoder{vals: vals}).found() {
		s.firms.forget(key)
		return nil, errNotFound
	}
	return s.firms.get(key, crd, vals)
}

// attachFirm gives res its advisor's firm as readFirms found it.
func (sc *lookupScratch) attachFirm(res *Result) {
	if !res.AdvisorFound || res.Advisor.FirmCRD <= 0 {
		return
	}
	j := sc.firmIdx[res.Advisor.FirmCRD]
	switch err := sc.firmErrs[j]; {
	case err == errNotFound:
	case err != nil:
		if res.Err == nil {
			res.Err = err
		}
	default:
		res.Firm = *sc.firms[j]
		res.FirmFound = true
	}
}

var errNotFound = errors.New("not found")

// resetResult clears what an earlier batch left in r, keeping the backing
// arrays of its slices for reuse.
func resetResult(r *Result) {
	*r = Result{
		Advisor: features.Advisor{History: r.Advisor.History[:0]},
	}
}

// firmCache keeps each firm decoded, under the digest of the stored values
// it was decoded from. A firm's arrival and departure lists are long (one
// day per rep move over years) and shared by every advisor of the firm:
// parsing and copying them per event was a third of the scorer's
// allocations, and reading them per batch a tenth of its CPU. A firm stored
// with its digest (docs/REDIS.md) is read again only when the digest
// changes; one stored without it (an older writer) is read in full every
// batch and decoded again only when its values change.
type firmCache struct {
	mu sync.Mutex
	m  map[string]*cachedFirm
}

type cachedFirm struct {
	// digest is firmDigest of the values the firm was decoded from;
	// stored tells whether the store holds it as the firm's digest field.
	digest string
	stored bool
	firm   *features.Firm
}

// maxCachedFirms bounds the cache; a full cache starts over.
const maxCachedFirms = 1 << 16

// withDigest returns the cached firm of key when the store holds its
// digest, so that reading the digest tells whether it changed; else nil.
func (c *firmCache) withDigest(key string) *cachedFirm {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[key]; e != nil && e.stored {
		return e
	}
	return nil
}

func (c *firmCache) forget(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

// get returns the firm that vals (an HMGET of firmReadFields, not all nil)
// decode to, from the cache when the values have the digest of the cached
// firm, or the *MalformedError decoding them gives. A stored digest that
// is not the values' own is malformed: a field was written without it,
// and a cache trusting it would serve what the store no longer holds. The
// firm is shared: read only.
func (c *firmCache) get(key string, crd int64, vals []any) (*features.Firm, error) {
	d := decoder{key: key, fields: firmReadFields, vals: vals}
	var strs [len(firmFields)]string
	for i := range strs {
		strs[i], _ = d.str(i)
	}
	if d.err != nil {
		return nil, d.err
	}
	digest := firmDigest(strs[:])
	c.mu.Lock()
	e := c.m[key]
	c.mu.Unlock()
	var f *features.Firm
	if e != nil && e.digest == digest {
		f = e.firm
	} else {
		f = &features.Firm{}
		decodeFirm(&d, crd, f)
		if d.err != nil {
			return nil, d.err
		}
	}
	stored, hasDigest := vals[len(strs)].(string)
	if hasDigest && stored != digest {
		return nil, &MalformedError{Key: key, Field: fieldFirmDigest, Value: stored,
			Err: fmt.Errorf("the values' digest is %s: a field was written without its digest", digest)}
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedFirms {
		c.m = map[string]*cachedFirm{}
	}
	c.m[key] = &cachedFirm{digest: digest, stored: hasDigest, firm: f}
	c.mu.Unlock()
	return f, nil
}

// allReplyErrors reports whether every failed command failed with an error
// reply from Redis (such as WRONGTYPE for a key holding something else):
// those are per-record problems, not a failed round trip.
func allReplyErrors(cmds []*redis.SliceCmd) bool {
	for _, cmd := range cmds {
		if cmd.Err() == nil {
			continue
		}
		var rerr redis.Error
		if !errors.As(cmd.Err(), &rerr) || isConnError(cmd.Err()) {
			return false
		}
	}
	return true
}

// isConnError tells network and context errors, which go-redis also
// reports through types satisfying redis.Error in some versions, from
// genuine error replies.
func isConnError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, redis.ErrClosed) || redis.HasErrorPrefix(err, "LOADING") ||
		redis.HasErrorPrefix(err, "READONLY") || redis.HasErrorPrefix(err, "CLUSTERDOWN") ||
		redis.HasErrorPrefix(err, "TRYAGAIN") || redis.HasErrorPrefix(err, "MASTERDOWN")
}

// SaveSink writes the sink state of many leads with one MSET per putChunk
// states, all in one pipelined round trip: a command to build and answer
// per 500 leads, not one per lead. Each state replaces the whole value of
// its key, so saving the same state twice leaves the same record:
// at-least-once callers may repeat it.
// A state that cannot be stored (empty lead id, score not finite,
// percentile outside 1..100, empty version or one containing '|') fails the
// call before anything is written.
func (s *Store) SaveSink(ctx context.Context, states []SinkState) error {
	for i := range states {
		if err := validateSink(&states[i]); err != nil {
			return fmt.Errorf("featurestore: save sink state %d: %w", i, err)
		}
	}
	if len(states) == 0 {
		return nil
	}
	// One MSET per putChunk states, all in one round trip. Every key and
	// value is a substring of one string: one allocation for them all.
	var b []byte
	var ends []int
	for i := range states {
		b = append(append(append(b, s.prefix...), "sink:"...), states[i].LeadID...)
		ends = append(ends, len(b))
		b = sinkValue(&states[i], b)
		ends = append(ends, len(b))
	}
	all := string(b)
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, 0, (len(states)+putChunk-1)/putChunk)
	from := 0
	for start := 0; start < len(states); start += putChunk {
		n := min(putChunk, len(states)-start)
		args := make([]any, 1, 1+2*n)
		args[0] = argMSet
		for _, end := range ends[2*start : 2*(start+n)] {
			args = append(args, all[from:end])
			from = end
		}
		cmds = append(cmds, pipe.Do(ctx, args...))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		for i, cmd := range cmds {
			if cmd.Err() != nil {
				start := i * putChunk
				return fmt.Errorf("featurestore: write sink states %d..%d: %w", start, min(start+putChunk, len(states))-1, cmd.Err())
			}
		}
		return fmt.Errorf("featurestore: write sink states: %w", err)
	}
	return nil
}

// ForgetSink deletes the sink state of the leads in one pipelined round
// trip, one DEL per putChunk leads. The scorer forgets the state of every
// lead it is about to write a sink record for before the batch's
// transaction ends, and saves the new state after the commit: a scorer that
// dies in between leaves no state rather than a stale one, and a lead
// without state always gets its sink record.
func (s *Store) ForgetSink(ctx context.Context, leadIDs []string) error {
	if len(leadIDs) == 0 {
		return nil
	}
	keys := s.keys(leadIDs, "sink:")
	pipe := s.rdb.Pipeline()
	for start := 0; start < len(keys); start += putChunk {
		pipe.Del(ctx, keys[start:min(start+putChunk, len(keys))]...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("featurestore: forget sink states of %d leads: %w", len(leadIDs), err)
	}
	return nil
}

// PutAdvisors writes advisors in pipelined chunks, replacing each advisor's
// whole value (whatever the key held before, a hash of an older layout
// included). All advisors are validated before anything is
// written; an invalid one fails the call with an error naming it.
func (s *Store) PutAdvisors(ctx context.Context, advisors []features.Advisor) error {
	for i := range advisors {
		if err := ValidateAdvisor(&advisors[i]); err != nil {
			return fmt.Errorf("featurestore: put advisor %d: %w", i, err)
		}
	}
	return s.putChunked(ctx, "advisors", len(advisors), func(pipe redis.Pipeliner, i int, buf []byte) []byte {
		a := &advisors[i]
		buf = appendAdvisorValue(buf[:0], a)
		pipe.Set(ctx, s.AdvisorKey(a.CRD), string(buf), 0)
		return buf
	})
}

// PutFirms writes firms in pipelined chunks, replacing every field of each
// firm's hash. All firms are validated before anything is written.
func (s *Store) PutFirms(ctx context.Context, firms []features.Firm) error {
	for i := range firms {
		if err := ValidateFirm(&firms[i]); err != nil {
			return fmt.Errorf("featurestore: put firm %d: %w", i, err)
		}
	}
	return s.putChunked(ctx, "firms", len(firms), func(pipe redis.Pipeliner, i int, buf []byte) []byte {
		f := &firms[i]
		pipe.HSet(ctx, s.FirmKey(f.CRD), firmValues(f, buf)...)
		return buf
	})
}

// putChunked queues add(i) for i in [0,n) and executes a pipeline every
// putChunk records.
func (s *Store) putChunked(ctx context.Context, what string, n int, add func(pipe redis.Pipeliner, i int, buf []byte) []byte) error {
	buf := make([]byte, 0, 256)
	for start := 0; start < n; start += putChunk {
		end := min(start+putChunk, n)
		pipe := s.rdb.Pipeline()
		for i := start; i < end; i++ {
			if b := add(pipe, i, buf); b != nil {
				buf = b
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("featurestore: write %s %d..%d: %w", what, start, end-1, err)
		}
	}
	return nil
}

// CheckLayout refuses a feature store whose advisors are still hashes, the
// layout before advisors were strings: a scorer would read every such
// advisor as unknown. It scans the advisor keys for one holding a hash,
// 10,000 keys of the database a call (SCAN visits every key, whatever its
// prefix: about 200 calls for 2 million keys, once at start).
func (s *Store) CheckLayout(ctx context.Context) error {
	var cursor uint64
	for {
		keys, next, err := s.rdb.ScanType(ctx, cursor, s.prefix+"advisor:*", 10_000, "hash").Result()
		if err != nil {
			return fmt.Errorf("featurestore: check the advisors' layout: %w", err)
		}
		if len(keys) > 0 {
			return fmt.Errorf("featurestore: %s is a hash, the advisor layout before advisors were strings: load the population again with `leadscorer features load` (docs/REDIS.md)", keys[0])
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}
