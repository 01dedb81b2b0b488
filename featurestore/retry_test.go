package featurestore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second}
	tests := []struct {
		name    string
		b       Backoff
		attempt int
		r       float64
		want    time.Duration
	}{
		{"the first retry waits between half and all of Initial (low jitter)", b, 1, 0, 50 * time.Millisecond},
		{"the first retry waits between half and all of Initial (high jitter)", b, 1, 0.999999, 99999950 * time.Nanosecond},
		{"each failure doubles the wait", b, 3, 0, 200 * time.Millisecond},
		{"the wait is capped at Max", b, 10, 0.5, 750 * time.Millisecond},
		{"a huge attempt number does not overflow", b, 1 << 30, 0, 500 * time.Millisecond},
		{"a zero Max caps at 30s", Backoff{Initial: time.Second}, 20, 0, 15 * time.Second},
		{"the zero Backoff never waits", Backoff{}, 5, 0.7, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.b.Delay(tc.attempt, tc.r); got != tc.want {
				t.Errorf("Delay(%d, %v) = %v, want %v", tc.attempt, tc.r, got, tc.want)
			}
		})
	}
}

// fakeClock records the waits Retry asks for instead of sleeping.
type fakeClock struct{ waits []time.Duration }

func (c *fakeClock) backoff(b Backoff) Backoff {
	b.sleep = func(ctx context.Context, d time.Duration) error {
		c.waits = append(c.waits, d)
		return ctx.Err()
	}
	b.rand = func() float64 { return 0 }
	return b
}

func TestRetry(t *testing.T) {
	transient := errors.New("dial tcp: connection refused")
	malformed := &MalformedError{Key: "k", Field: "f", Err: errors.New("bad")}
	tests := []struct {
		name      string
		b         Backoff
		errs      []error // fn returns these in turn, then nil
		wantCalls int
		wantErr   error
		wantWaits []time.Duration
	}{
		{"a success is not retried", Backoff{Initial: time.Second}, nil, 1, nil, nil},
		{"transient errors are retried with growing waits until success",
			Backoff{Initial: 10 * time.Millisecond, Max: time.Second}, []error{transient, transient, transient}, 4, nil,
			[]time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}},
		{"a malformed record is returned at once", Backoff{Initial: time.Second}, []error{malformed}, 1, malformed, nil},
		{"a cancelled call is returned at once", Backoff{Initial: time.Second}, []error{context.Canceled}, 1, context.Canceled, nil},
		{"Attempts bounds the calls", Backoff{Attempts: 2}, []error{transient, transient, transient}, 2, transient, []time.Duration{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var clock fakeClock
			calls := 0
			err := Retry(context.Background(), clock.backoff(tc.b), func(context.Context) error {
				calls++
				if calls <= len(tc.errs) {
					return tc.errs[calls-1]
				}
				return nil
			})
			if calls != tc.wantCalls {
				t.Errorf("fn called %d times, want %d", calls, tc.wantCalls)
			}
			if (tc.wantErr == nil) != (err == nil) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if len(clock.waits) != len(tc.wantWaits) {
				t.Fatalf("waits = %v, want %v", clock.waits, tc.wantWaits)
			}
			for i := range clock.waits {
				if clock.waits[i] != tc.wantWaits[i] {
					t.Errorf("waits = %v, want %v", clock.waits, tc.wantWaits)
				}
			}
		})
	}
}

func TestRetryStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	transient := errors.New("i/o timeout")
	calls := 0
	// The zero Backoff does not wait; the third failure cancels the context.
	err := Retry(ctx, Backoff{}, func(context.Context) error {
		calls++
		if calls == 3 {
			cancel()
		}
		return transient
	})
	if calls != 3 {
		t.Errorf("fn called %d times, want 3", calls)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, transient) {
		t.Errorf("err = %v, want it to wrap both context.Canceled and the last error", err)
	}
	if !strings.Contains(err.Error(), "3 attempts") {
		t.Errorf("err = %v, want the number of attempts", err)
	}
}

func TestSleepEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// An hour-long wait must end with the context, not the timer.
	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleepCtx = %v, want context.Canceled", err)
	}
	if err := sleepCtx(context.Background(), 0); err != nil {
		t.Errorf("a zero wait returned %v", err)
	}
}
