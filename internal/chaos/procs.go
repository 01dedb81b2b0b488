package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/leadscorer/leadscorer/internal/process"
)

// startProc starts a child of the suite (a sandbox broker or a scorer) with
// its output appended to logPath, between start and exit lines.
func startProc(name, logPath, bin string, args ...string) (*process.Process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("chaos: %s log: %w", name, err)
	}
	fmt.Fprintf(f, "=== %s start %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
	p, err := process.Start(name, bin, args, nil, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("chaos: %w", err)
	}
	go func() {
		<-p.Done()
		fmt.Fprintf(f, "=== %s exit: %v\n", time.Now().Format(time.RFC3339Nano), p.Err())
		f.Close()
	}()
	return p, nil
}

// waitServing polls the scorer's /healthz until it answers 200 (true), the
// scorer exits, or wait passes or ctx ends (false). The scorer serves HTTP
// once it runs, long after its SIGTERM handler is in place. (Not /readyz:
// that waits for a poll to return records, which a scorer restarted after
// the last input was committed never gets.)
func waitServing(ctx context.Context, sc *scorer, wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+sc.http+"/healthz", nil)
		if err != nil {
			return false
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-sc.p.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// diedOf reports whether a process's exit error says it was killed by sig.
func diedOf(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}
