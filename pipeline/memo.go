package pipeline

import (
	"encoding/binary"
	"fmt"
	"math"

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

// served is one serving version with its working memory and score memo.
type served struct {
	v       *scoring.Version
	layout  features.Layout
	x       []float64
	contrib []float64
	factors []scoring.Factor
	explain bool
	obs     prometheus.Observer
	// memo maps a feature vector (its float64 bits) to what scoring it
	// gives. A model's score, contributions and factors are a function of
	// the vector alone, and leads share vectors (bucketed features, the
	// same advisor changed again), so most changes skip the trees.
	memo map[string]*vectorScore
	key  []byte
}

// vectorScore is what one version gives for one feature vector. Shared by
// every change with that vector: read only.
type vectorScore struct {
	score       float64
	pct         int
	factors     []schemas.Factor
	explanation string // the sink's text of factors
	explHash    uint64
}

// maxMemo bounds each version's memo; a full memo starts over. 16k entries
// of about 500 bytes each: a few MB per version.
const maxMemo = 1 << 14

func newServed(v *scoring.Version, obs prometheus.Observer) (*served, error) {
	l, err := features.NewLayout(v.Features)
	if err != nil {
		return nil, fmt.Errorf("pipeline: version %s: %w", v.Name, err)
	}
	n := len(v.Features)
	sv := &served{v: v, layout: l, x: make([]float64, n), contrib: make([]float64, n+1),
		factors: make([]scoring.Factor, 0, TopFactors), obs: obs, memo: map[string]*vectorScore{}}
	sv.explain = v.Model.Contributions(sv.x, sv.contrib) == nil
	return sv, nil
}

// score returns the memoised score of sv.x, computing it on a miss.
func (sv *served) score() (*vectorScore, error) {
	sv.key = sv.key[:0]
	for _, f := range sv.x {
		sv.key = binary.LittleEndian.AppendUint64(sv.key, math.Float64bits(f))
	}
	if o, ok := sv.memo[string(sv.key)]; ok {
		return o, nil
	}
	v := sv.v
	o := &vectorScore{score: v.Model.Score(sv.x)}
	o.pct = v.Percentile(o.score)
	sv.factors = sv.factors[:0]
	if sv.explain {
		if err := v.Model.Contributions(sv.x, sv.contrib); err != nil {
			return nil, fmt.Errorf("pipeline: explain %s: %w", v.Name, err)
		}
		sv.factors = v.TopFactors(sv.x, sv.contrib, sv.factors[:TopFactors])
	}
	o.factors = make([]schemas.Factor, len(sv.factors))
	for i, f := range sv.factors {
		o.factors[i] = schemas.Factor{Feature: f.Feature, Value: f.Value, Contribution: f.Contribution, Phrase: f.Phrase}
	}
	o.explanation = producer.Explanation(o.factors, schemas.MaxExplanationLen)
	o.explHash = hash(o.explanation)
	if len(sv.memo) >= maxMemo {
		clear(sv.memo)
	}
	sv.memo[string(sv.key)] = o
	return o, nil
}
