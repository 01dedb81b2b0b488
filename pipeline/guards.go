package pipeline

import (
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

// hash is the 64-bit FNV-1a of s (hash/fnv's New64a, without its
// allocation): the quota states in Redis hold it, so it must not change.
func hash(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

func hashBytes(b []byte) uint64 {
	h := uint64(fnvOffset64)
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime64
	}
	return h
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)
