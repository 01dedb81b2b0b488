package featurestore

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// metrics counts Redis round trips as a go-redis hook: one per single
// command and one per pipeline, which is what a Lookup's cost is measured in.
type metrics struct {
	roundTrips prometheus.Counter
	errs       prometheus.Counter
	duration   prometheus.Histogram
}

var _ redis.Hook = (*metrics)(nil)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		roundTrips: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscorer_redis_roundtrips_total",
			Help: "Redis round trips sent: one per single command and one per pipeline.",
		}),
		errs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscorer_redis_errors_total",
			Help: "Redis round trips that failed, by network error or error reply.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "leadscorer_redis_roundtrip_duration_seconds",
			Help:    "Time from sending a Redis command or pipeline to reading its last reply.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9), // 100µs .. 6.5s
		}),
	}
	if reg != nil {
		m.roundTrips = register(reg, m.roundTrips)
		m.errs = register(reg, m.errs)
		m.duration = register(reg, m.duration)
	}
	return m
}

// register registers c on reg, or returns the collector of the same name
// already there (another Store on the same registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a different metric under our name: a programming error
	}
	return c
}

func (m *metrics) observe(start time.Time, err error) {
	m.roundTrips.Inc()
	m.duration.Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, redis.Nil) {
		m.errs.Inc()
	}
}

func (m *metrics) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (m *metrics) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		m.observe(start, err)
		return err
	}
}

func (m *metrics) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		m.observe(start, err)
		return err
	}
}
