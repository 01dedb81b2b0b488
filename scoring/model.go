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

// ErrNoContributions is returned by Model.Contributions when the model's
// backend cannot explain a score (LightGBM models through leaves).
var ErrNoContributions = errors.New("scoring: model cannot compute feature contributions")
