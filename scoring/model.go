// Package scoring evaluates lead-scoring models and the registry that says
// which model versions serve.
//
// Models are gradient-boosted tree ensembles. XGBoost models are read from
// XGBoost's own JSON format and evaluated by this package with XGBoost's
// exact semantics (inputs rounded to float32, a split sends float32(x) <
// condition left, missing values follow the node's default direction,
// margins summed in float32), so a score here equals the score XGBoost
// computes for the same row. Explanations are exact TreeSHAP values, the
// same numbers as XGBoost's pred_contribs. LightGBM text models are
// evaluated through github.com/dmitryikh/leaves and cannot be explained.
//
// The package imports neither Kafka nor Redis: it turns feature rows into
// scores, percentiles and explanations and nothing else.
package scoring

import "errors"

// Model scores one row of features. Implementations are safe for concurrent use.
type Model interface {
	FeatureNames() []string                         // ordered input features
	Score(x []float64) float64                      // output after the objective (a probability for binary:logistic); NaN in x = missing; allocation-free
	Contributions(x []float64, out []float64) error // len(out) == len(FeatureNames())+1, bias last, sum == margin; ErrNoContributions when the backend cannot explain
}

// BatchModel is a Model that also scores and explains several rows per
// call, faster than one at a time, with the same results bit for bit.
// *XGBoost implements it; LightGBM models do not. Callers check with a type
// assertion and otherwise loop over Score and Contributions. Both methods
// allocate nothing, keep their working memory on the calling goroutine's
// stack (a few KB) and are safe for concurrent use; the caller owns rows,
// scores and contribs and may reuse them as soon as the call returns.
type BatchModel interface {
	Model
	// ScoreBatch writes Score(rows[i]) to scores[i]; len(scores) >= len(rows).
	ScoreBatch(rows [][]float64, scores []float64)
	// ExplainBatch writes Score(rows[i]) to scores[i] (scores may be nil)
	// and what Contributions(rows[i], out) writes to
	// contribs[i*(n+1):(i+1)*(n+1)], n = len(FeatureNames()), so
	// len(contribs) == len(rows)*(n+1).
	ExplainBatch(rows [][]float64, scores, contribs []float64) error
	// ExplainTableBytes is the memory, in bytes, the model keeps to explain
	// rows quickly; fixed at load, for the service to log.
	ExplainTableBytes() int
}

// ErrNoContributions is returned by Model.Contributions when the model's
// backend cannot explain a score (LightGBM models through leaves).
var ErrNoContributions = errors.New("scoring: model cannot compute feature contributions")
