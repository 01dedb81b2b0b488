package featurestore

import (
	"testing"

	"github.com/leadscorer/leadscorer/internal/testenv"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
)

// newTestStore returns a Store on a key prefix of its own in the test
// Redis (testenv: the test fails when Redis does not answer), whose keys
// are deleted when the test ends, and the client.
func newTestStore(tb testing.TB) (*Store, *redis.Client) {
	tb.Helper()
	r := testenv.NewRedis(tb)
	return New(r.Client, r.Prefix, prometheus.NewRegistry()), r.Client
}

func counterValue(tb testing.TB, c prometheus.Counter) float64 {
	tb.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		tb.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// roundTrips returns the store's round trip counter, which is the metric
// leadscorer_redis_roundtrips_total.
func roundTrips(tb testing.TB, s *Store) float64 { return counterValue(tb, s.metrics.roundTrips) }
