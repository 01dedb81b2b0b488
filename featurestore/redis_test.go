package featurestore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
)

// testRedisURL is the Redis the tests use: REDIS_URL when set, else the
// local default. The tests fail, not skip, when it is not reachable.
func testRedisURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// newTestClient connects to the test Redis and fails the test if it is down.
func newTestClient(tb testing.TB) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(testRedisURL())
	if err != nil {
		tb.Fatalf("REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		tb.Fatalf("Redis at %s is required for these tests: %v", testRedisURL(), err)
	}
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// newTestStore returns a Store on a key prefix of its own, whose keys are
// deleted when the test ends, and the registry its metrics are on.
func newTestStore(tb testing.TB) (*Store, *redis.Client) {
	tb.Helper()
	rdb := newTestClient(tb)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(tb.Name())
	prefix := "lstest:" + name + ":" + hex.EncodeToString(b[:]) + ":"
	tb.Cleanup(func() { deletePrefix(tb, rdb, prefix) })
	return New(rdb, prefix, prometheus.NewRegistry()), rdb
}

func deletePrefix(tb testing.TB, rdb *redis.Client, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		tb.Errorf("cleaning up %s*: %v", prefix, err)
		return
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if err := rdb.Del(ctx, keys[:n]...).Err(); err != nil {
			tb.Errorf("cleaning up %s*: %v", prefix, err)
			return
		}
		keys = keys[n:]
	}
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
