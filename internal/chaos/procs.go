package chaos

import (
	"fmt"
	"os"
	"strings"
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
