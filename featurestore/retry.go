package featurestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff is a capped exponential backoff with jitter for retrying a batch
// after a transient Redis error. The zero Backoff retries at once, without
// waiting: use it in tests.
type Backoff struct {
	// Initial is the wait after the first failure; each further failure
	// doubles it up to Max. Zero means no wait at all.
	Initial time.Duration
	// Max caps the wait before the jitter; zero means 30s.
	Max time.Duration
	// Attempts stops after that many calls of fn; zero retries until the
	// context is done, which is what a consumer that must not skip a batch
	// wants.
	Attempts int

	// sleep waits d or until ctx is done; tests replace it to record waits.
	sleep func(ctx context.Context, d time.Duration) error
	// rand returns a uniform value in [0,1); tests fix it.
	rand func() float64
}

// DefaultBackoff waits 50ms after the first failure, doubling up to 5s, and
// never gives up while the context lives.
var DefaultBackoff = Backoff{Initial: 50 * time.Millisecond, Max: 5 * time.Second}

const defaultMaxWait = 30 * time.Second

// Delay returns the wait before retry number attempt (1 for the first
// retry), given a uniform random value r in [0,1): half the capped
// exponential delay plus a random part of the other half, so that many
// consumers failing together do not retry in step.
func (b Backoff) Delay(attempt int, r float64) time.Duration {
	if b.Initial <= 0 || attempt < 1 {
		return 0
	}
	maxWait := b.Max
	if maxWait <= 0 {
		maxWait = defaultMaxWait
	}
	d := b.Initial
	for i := 1; i < attempt && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	half := d / 2
	return half + time.Duration(r*float64(d-half))
}

// Retry calls fn until it succeeds, returns an error that retrying cannot
// fix, runs out of attempts, or ctx is done, waiting b.Delay between calls.
//
// A *MalformedError, or an error wrapping context.Canceled or
// context.DeadlineExceeded, is returned at once: stored data does not repair
// itself, and a cancelled caller wants to stop. Any other error is taken as
// transient (connection refused, timeout, LOADING, failover).
//
// When ctx ends first, the returned error wraps both ctx.Err() and the last
// error of fn.
func Retry(ctx context.Context, b Backoff, fn func(ctx context.Context) error) error {
	sleep, rnd := b.sleep, b.rand
	if sleep == nil {
		sleep = sleepCtx
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		var mal *MalformedError
		if errors.As(err, &mal) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if b.Attempts > 0 && attempt >= b.Attempts {
			return fmt.Errorf("featurestore: gave up after %d attempts: %w", attempt, err)
		}
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("featurestore: stopped retrying after %d attempts: %w; last error: %w", attempt, cerr, err)
		}
		if cerr := sleep(ctx, b.Delay(attempt, rnd())); cerr != nil {
			return fmt.Errorf("featurestore: stopped retrying after %d attempts: %w; last error: %w", attempt, cerr, err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
