package chaos

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/leadscorer/leadscorer/internal/process"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// Kills is how many times the kill9 scenario kills the scorer.
const Kills = 6

// RedisOutage is how long the redis-outage scenario keeps Redis away.
const RedisOutage = 10 * time.Second

func planNone(context.Context, *env) error { return nil }

// planKill9 kills the scorer with SIGKILL at random moments of the stream
// and restarts it at once with the same transactional id.
func planKill9(ctx context.Context, e *env) error {
	var at []int64
	for range Kills {
		if err := sleep(ctx, 500*time.Millisecond+time.Duration(e.rng.Int64N(int64(2*time.Second)))); err != nil {
			return err
		}
		e.kill9(1)
		at = append(at, e.produced.Load())
		if err := e.startScorer(1); err != nil {
			return err
		}
	}
	e.note("killed scorer-1 with SIGKILL %d times, with %v events produced, restarting it each time", len(at), at)
	return nil
}

// planRebalance scales from one scorer to three and back to one.
func planRebalance(ctx context.Context, e *env) error {
	if err := e.await(ctx, 0.25); err != nil {
		return err
	}
	for _, id := range []int{2, 3} {
		if err := e.startScorer(id); err != nil {
			return err
		}
	}
	e.note("scaled to 3 scorers with %d events produced", e.produced.Load())
	if err := e.await(ctx, 0.65); err != nil {
		return err
	}
	for _, id := range []int{2, 3} {
		sc := e.scorer(id)
		n, err := process.Metric(ctx, sc.http, "leadscorer_kafka_transactions_committed_total")
		if err != nil {
			return fmt.Errorf("scorer-%d: %w", id, err)
		}
		if err := e.stopScorer(ctx, id); err != nil {
			return err
		}
		e.note("scorer-%d committed %v transactions, then stopped (SIGTERM)", id, n)
	}
	e.note("back to 1 scorer with %d events produced", e.produced.Load())
	return nil
}

// planBrokerRestart stops the broker process mid-stream and starts it
// again on its data directory: producer and scorer must ride it out.
// On a real cluster it is a rolling restart of every broker
// (planRollingRestart).
func planBrokerRestart(ctx context.Context, e *env) error {
	if e.s.stack != nil {
		return planRollingRestart(ctx, e)
	}
	if err := e.await(ctx, 0.4); err != nil {
		return err
	}
	stopped := time.Now()
	if !e.broker.Stop(30 * time.Second) {
		return fmt.Errorf("the broker did not stop within 30s of SIGTERM")
	}
	produced := e.produced.Load()
	if err := sleep(ctx, 3*time.Second); err != nil {
		return err
	}
	if err := e.startBroker(ctx); err != nil {
		return err
	}
	e.note("broker stopped with %d events produced and started again %.1fs later", produced, time.Since(stopped).Seconds())
	return nil
}

// planRedisOutage cuts the scorer's Redis connection for RedisOutage.
func planRedisOutage(ctx context.Context, e *env) error {
	if err := e.await(ctx, 0.3); err != nil {
		return err
	}
	e.proxy.Cut()
	produced := e.produced.Load()
	if err := sleep(ctx, RedisOutage); err != nil {
		return err
	}
	if err := e.proxy.Restore(); err != nil {
		return err
	}
	e.note("Redis unreachable for %v from %d events produced", RedisOutage, produced)
	return nil
}

// planBadModel corrupts the production model file of the scorer's registry
// and signals a reload: the scorer must refuse it, keep serving the
// registry it has (every score stays right) and say so in
// leadscorer_registry_reload_failing; once the file is good again, a
// reload clears the gauge.
func planBadModel(ctx context.Context, e *env) error {
	if err := e.await(ctx, 0.3); err != nil {
		return err
	}
	reg, err := scoring.LoadRegistry(e.registry)
	if err != nil {
		return err
	}
	file := filepath.Join(filepath.Dir(e.registry), reg.Production().Path)
	good, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, []byte(`{"learner": {"gradient_booster": corrupt`), 0o644); err != nil {
		return err
	}
	sc := e.scorer(1)
	if err := sc.p.Signal(syscall.SIGHUP); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := process.WaitMetric(wctx, sc.http, "leadscorer_registry_reload_failing", func(v float64) bool { return v == 1 }); err != nil {
		return err
	}
	e.note("corrupted %s and sent SIGHUP with %d events produced: leadscorer_registry_reload_failing=1", reg.Production().Path, e.produced.Load())
	if err := e.await(ctx, 0.7); err != nil {
		return err
	}
	if err := os.WriteFile(file, good, 0o644); err != nil {
		return err
	}
	if err := sc.p.Signal(syscall.SIGHUP); err != nil {
		return err
	}
	wctx, cancel = context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := process.WaitMetric(wctx, sc.http, "leadscorer_registry_reload_failing", func(v float64) bool { return v == 0 }); err != nil {
		return err
	}
	e.note("restored the model file and sent SIGHUP with %d events produced: leadscorer_registry_reload_failing=0", e.produced.Load())
	return nil
}

// startRegistry serves an in-memory Schema Registry on a loopback port.
func startRegistry() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("chaos: schema registry: %w", err)
	}
	srv := &http.Server{Handler: srfake.NewRegistry().Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
