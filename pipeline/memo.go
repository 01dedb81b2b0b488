package pipeline

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/prometheus/client_golang/prometheus"
)

// TopFactors is how many factors each score carries.
const TopFactors = 3

// snapshot is one registry with what scoring needs per serving version.
type snapshot struct {
	reg     *scoring.Registry
	serving []*served
}

// served is one serving version: its model, its working memory for a
// batch and, when the memo is on, its score memo.
//
// A batch is scored in three passes (score.go): each change's features
// are written as a row of every version (add), each version then scores
// and explains all its rows that the memo did not answer in one batch
// call (run), and the outputs are built change by change from the
// results. Every buffer here is reused batch after batch: with the memo
// off, scoring a batch allocates nothing once they have grown to the batch
// size.
type served struct {
	v       *scoring.Version
	layout  features.Layout
	nf      int
	batch   scoring.BatchModel // nil: the model scores one row at a time
	explain bool
	// text: the sink's explanation is rendered for this version (the
	// production one).
	text bool
	obs  prometheus.Observer
	// Memo lookups and hits of the batch, added to the counters once.
	lookups, hits       int
	lookupsCtr, hitsCtr prometheus.Counter

	// Per batch.
	rows     []float64        // row i (change i) at rows[i*nf:(i+1)*nf]
	outs     []*vectorScore   // change i's result; nil when not scored
	missRows [][]float64      // rows to compute: the memo does not have them
	missOuts []*vectorScore   // where each one's result goes
	scores   []float64        // of a block of misses
	contribs []float64        // of a block of misses, nf+1 per row
	top      []scoring.Factor // TopFactors' scratch
	// Results of the batch when the memo is off, their factors and
	// explanation texts: reused by the next batch.
	slab    []vectorScore
	factors []schemas.Factor
	texts   []byte

	// memo maps a feature vector (its float64 bits) to what scoring it
	// gives; nil when the memo is off. A model's score, contributions and
	// factors are a function of the vector alone, so the memo only skips
	// work; its entries are allocated and kept.
	memo map[string]*vectorScore
	key  []byte

	// phrases keeps each rendered factor phrase by feature and value: the
	// features are bucketed or counts, so few values recur and a phrase is
	// rendered once, not per score.
	phrases map[phraseKey]string
}

type phraseKey struct {
	feature int
	value   uint64 // float64 bits
}

// vectorScore is what one version gives for one feature vector. Shared by
// every change with that vector: read only once computed.
type vectorScore struct {
	score       float64
	pct         int
	factors     []schemas.Factor
	explanation string // the sink's text of factors (production version only)
	explHash    uint64
}

// maxMemo bounds each version's memo; a full memo starts over. 16k entries
// of about 500 bytes each: a few MB per version.
const maxMemo = 1 << 14

// maxPhrases bounds each version's phrase cache; a full cache starts over.
const maxPhrases = 1 << 12

// missBlock is how many rows one batch call scores and explains: the
// block's contributions (64 rows of 23 float64s, 12 KB) stay in the cache
// while its factors are picked.
const missBlock = 64

func newServed(v *scoring.Version, memo bool, m *Metrics) (*served, error) {
	l, err := features.NewLayout(v.Features)
	if err != nil {
		return nil, fmt.Errorf("pipeline: version %s: %w", v.Name, err)
	}
	n := len(v.Features)
	sv := &served{v: v, layout: l, nf: n, obs: m.scores.WithLabelValues(v.Name), text: v.Role == scoring.RoleProduction,
		lookupsCtr: m.memoLookups.WithLabelValues(v.Name), hitsCtr: m.memoHits.WithLabelValues(v.Name),
		top: make([]scoring.Factor, TopFactors), phrases: map[phraseKey]string{}}
	sv.batch, _ = v.Model.(scoring.BatchModel)
	sv.explain = v.Model.Contributions(make([]float64, n), make([]float64, n+1)) == nil
	if memo {
		sv.memo = map[string]*vectorScore{}
	}
	return sv, nil
}

// begin readies the version for a batch of n changes.
func (sv *served) begin(n int) {
	sv.rows = grow(sv.rows, n*sv.nf)
	sv.outs = grow(sv.outs, n)
	clear(sv.outs)
	sv.missRows, sv.missOuts = sv.missRows[:0], sv.missOuts[:0]
	// Room for every change: the slab and the factors never move during
	// the batch (the texts may: a string made from them keeps the old
	// memory alive).
	sv.slab = grow(sv.slab, n)[:0]
	sv.factors = grow(sv.factors, n*TopFactors)[:0]
	sv.texts = sv.texts[:0]
}

// add writes change i's features as the version's row i and finds its
// result in the memo, or queues the row to be computed.
func (sv *served) add(i int, vals *features.Values) {
	row := sv.rows[i*sv.nf : (i+1)*sv.nf : (i+1)*sv.nf]
	sv.layout.Fill(vals, row)
	var o *vectorScore
	if sv.memo != nil {
		sv.key = sv.key[:0]
		for _, f := range row {
			sv.key = binary.LittleEndian.AppendUint64(sv.key, math.Float64bits(f))
		}
		sv.lookups++
		if o = sv.memo[string(sv.key)]; o != nil {
			sv.hits++
			sv.outs[i] = o
			return
		}
		if len(sv.memo) >= maxMemo {
			clear(sv.memo)
		}
		// Queued and in the memo at once: a later change of the batch with
		// the same vector shares the result computed for this one.
		o = &vectorScore{}
		sv.memo[string(sv.key)] = o
	} else {
		sv.slab = append(sv.slab, vectorScore{})
		o = &sv.slab[len(sv.slab)-1]
	}
	sv.outs[i] = o
	sv.missRows = append(sv.missRows, row)
	sv.missOuts = append(sv.missOuts, o)
}

// run computes every queued row: scores and contributions by the batch
// call of the model in blocks of missBlock rows (or row by row for a model
// without one), then each row's percentile, factors and explanation.
func (sv *served) run() error {
	if sv.lookups > 0 {
		sv.lookupsCtr.Add(float64(sv.lookups))
		sv.hitsCtr.Add(float64(sv.hits))
		sv.lookups, sv.hits = 0, 0
	}
	nf := sv.nf
	sv.scores = grow(sv.scores, missBlock)
	if sv.explain {
		sv.contribs = grow(sv.contribs, missBlock*(nf+1))
	}
	for start := 0; start < len(sv.missRows); start += missBlock {
		rows := sv.missRows[start:min(start+missBlock, len(sv.missRows))]
		outs := sv.missOuts[start : start+len(rows)]
		scores := sv.scores[:len(rows)]
		var contribs []float64
		if sv.explain {
			contribs = sv.contribs[:len(rows)*(nf+1)]
		}
		if err := sv.compute(rows, scores, contribs); err != nil {
			// The memo already holds the queued vectors, not computed:
			// none of them may answer a later batch.
			clear(sv.memo)
			return fmt.Errorf("pipeline: explain %s: %w", sv.v.Name, err)
		}
		for k, row := range rows {
			var c []float64
			if sv.explain {
				c = contribs[k*(nf+1) : (k+1)*(nf+1)]
			}
			sv.finish(outs[k], row, scores[k], c)
		}
	}
	return nil
}

// compute scores rows, and explains them when contribs is not nil.
func (sv *served) compute(rows [][]float64, scores, contribs []float64) error {
	nf := sv.nf
	switch {
	case sv.batch != nil && contribs != nil:
		return sv.batch.ExplainBatch(rows, scores, contribs)
	case sv.batch != nil:
		sv.batch.ScoreBatch(rows, scores)
		return nil
	}
	for k, row := range rows {
		scores[k] = sv.v.Model.Score(row)
		if contribs != nil {
			if err := sv.v.Model.Contributions(row, contribs[k*(nf+1):(k+1)*(nf+1)]); err != nil {
				return err
			}
		}
	}
	return nil
}

// finish fills o from a row's score and contributions (nil when the model
// cannot explain).
func (sv *served) finish(o *vectorScore, row []float64, score float64, contrib []float64) {
	v := sv.v
	o.score = score
	o.pct = v.Percentile(score)
	top := sv.top[:0]
	if contrib != nil {
		top = v.TopContributions(row, contrib, sv.top[:TopFactors])
	}
	// With the memo, the result outlives the batch: its own memory.
	// Without, the batch's reused memory.
	if sv.memo != nil {
		o.factors = make([]schemas.Factor, len(top))
	} else {
		at := len(sv.factors)
		sv.factors = sv.factors[:at+len(top)]
		o.factors = sv.factors[at : at+len(top) : at+len(top)]
	}
	for j, f := range top {
		o.factors[j] = schemas.Factor{Feature: f.Feature, Value: f.Value, Contribution: f.Contribution, Phrase: sv.phrase(f.Index, f.Value)}
	}
	if !sv.text {
		return
	}
	at := len(sv.texts)
	sv.texts = producer.AppendExplanation(sv.texts, o.factors, schemas.MaxExplanationLen)
	text := sv.texts[at:]
	o.explHash = hashBytes(text)
	switch {
	case len(text) == 0:
		o.explanation = ""
	case sv.memo != nil:
		o.explanation = string(text)
	default:
		// The text stays in sv.texts, unchanged, until the next batch
		// (whose outputs are built after this one's are produced and
		// committed); nothing keeps the string longer.
		o.explanation = unsafe.String(&text[0], len(text))
	}
}

// phrase returns the version's phrase of a feature's value, rendered once.
func (sv *served) phrase(feature int, value float64) string {
	k := phraseKey{feature, math.Float64bits(value)}
	if s, ok := sv.phrases[k]; ok {
		return s
	}
	if len(sv.phrases) >= maxPhrases {
		clear(sv.phrases)
	}
	s := sv.v.Phrase(sv.v.Features[feature], value)
	sv.phrases[k] = s
	return s
}

// grow returns s with length n, reusing its memory when it is large
// enough.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
