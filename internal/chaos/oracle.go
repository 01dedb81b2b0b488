package chaos

import (
	"fmt"
	"math"
	"time"

	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/internal/synth"
	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/scoring"
)

// Expected is what every serving version must say about one event, and
// what the Lead must show after the sink writes it.
type Expected struct {
	Scores []schemas.VersionScore // serving order; Factors left empty
	Sink   SinkView
}

// SinkView is what a Lead shows after a sink record: the fields the quota
// guard compares.
type SinkView struct {
	Score        float64
	Percentile   int
	Deprioritize bool
	Version      string
	Explanation  string
}

// Same reports whether a Lead showing v would show nothing different after
// w: the quota guard's rule (same percentile, flag, version and
// explanation, score within eps).
func (v SinkView) Same(w SinkView, eps float64) bool {
	return v.Percentile == w.Percentile && v.Deprioritize == w.Deprioritize && v.Version == w.Version &&
		v.Explanation == w.Explanation && math.Abs(v.Score-w.Score) < eps
}

// Oracle computes offline, from the population and the registry, what the
// scorer must output for an event scored as of a given time. It shares the
// feature and model code with the scorer (one definition of each) but none
// of the streaming plumbing: Kafka, Avro, Redis, batching, the quota guard.
type Oracle struct {
	pop   *synth.Population
	reg   *scoring.Registry
	cache map[oracleKey]*Expected
}

type oracleKey struct {
	crd             int64
	email, linkedin bool
	at              int64 // Unix milliseconds
}

// NewOracle returns an Oracle of the population's leads scored by the
// registry's serving versions.
func NewOracle(pop *synth.Population, reg *scoring.Registry) *Oracle {
	return &Oracle{pop: pop, reg: reg, cache: map[oracleKey]*Expected{}}
}

// Expect returns what the scorer must output for a good event scored as of
// at.
func (o *Oracle) Expect(s *Sent, at time.Time) (*Expected, error) {
	k := oracleKey{s.CRD, s.Email, s.LinkedIn, at.UnixMilli()}
	if e, ok := o.cache[k]; ok {
		return e, nil
	}
	adv := o.pop.Advisor(s.CRD)
	var firm *features.Firm
	if adv != nil && adv.FirmCRD > 0 {
		firm = o.pop.Firm(adv.FirmCRD)
	}
	var vals features.Values
	features.Derive(at, features.Lead{HasEmail: s.Email, HasLinkedIn: s.LinkedIn}, adv, firm, &vals)
	e := &Expected{}
	for _, v := range o.reg.Serving() {
		l, err := features.NewLayout(v.Features)
		if err != nil {
			return nil, fmt.Errorf("chaos: version %s: %w", v.Name, err)
		}
		x := make([]float64, len(v.Features))
		l.Fill(&vals, x)
		score := v.Model.Score(x)
		pct := v.Percentile(score)
		e.Scores = append(e.Scores, schemas.VersionScore{Version: v.Name, Role: v.Role, Score: score,
			Percentile: pct, Decile: scoring.Decile(pct), Deprioritize: v.Deprioritize(pct), UpgradeCandidate: v.Upgrade(pct)})
		if v.Role != scoring.RoleProduction {
			continue
		}
		var factors []scoring.Factor
		contrib := make([]float64, len(x)+1)
		if v.Model.Contributions(x, contrib) == nil {
			factors = v.TopFactors(x, contrib, make([]scoring.Factor, 3))
		}
		ph := make([]schemas.Factor, len(factors))
		for i, f := range factors {
			ph[i] = schemas.Factor{Phrase: f.Phrase, Contribution: f.Contribution}
		}
		e.Sink = SinkView{Score: score, Percentile: pct, Deprioritize: v.Deprioritize(pct), Version: v.Name,
			Explanation: producer.Explanation(ph, schemas.MaxExplanationLen)}
	}
	o.cache[k] = e
	return e, nil
}
