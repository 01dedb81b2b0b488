package pipeline

import (
	"hash/fnv"
	"math"
	"strings"

	"github.com/leadscorer/leadscorer/featurestore"
)

// The two guards that keep the scorer from costing Salesforce API calls for
// nothing: the echo guard skips the sink's own writes coming back as
// changes, the quota guard skips a sink record that would show the Lead
// what it already shows.

// isEcho reports whether a change touched only the V4_* score fields: the
// sink's own write, echoed back by change data capture.
func isEcho(changed []string) bool {
	if len(changed) == 0 {
		return false
	}
	for _, f := range changed {
		if !strings.HasPrefix(f, "V4_") {
			return false
		}
	}
	return true
}

// unchanged reports whether the Lead would show the same thing: same
// percentile, flag, version and explanation, and a score within eps.
func unchanged(last, next featurestore.SinkState, eps float64) bool {
	return last.Percentile == next.Percentile && last.Deprioritize == next.Deprioritize &&
		last.Version == next.Version && last.ExplanationHash == next.ExplanationHash &&
		math.Abs(last.Score-next.Score) < eps
}

func hash(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}
