// Command leadscorer-dev holds what only development needs: the embedded
// demo, the in-process sandbox, the fault suite, the load generator and
// benchmark, and the synthetic population. None of it is in the production
// binary, leadscorer.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/leadscorer/leadscorer/cli"
)

var commands = cli.New("leadscorer-dev")

func register(name, summary string, run cli.RunFunc) { commands.Register(name, summary, run) }

func main() { cli.Main(commands) }

// run is the binary's entry point for tests.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return commands.Run(ctx, args, stdin, stdout, stderr)
}

// binaries returns this binary's path and that of the production binary
// leadscorer: scorerBin when given, else the leadscorer beside this one
// (make builds both into bin/).
func binaries(scorerBin string) (dev, scorer string, err error) {
	if dev, err = os.Executable(); err != nil {
		return "", "", err
	}
	if scorer = scorerBin; scorer == "" {
		scorer = filepath.Join(filepath.Dir(dev), "leadscorer")
	}
	if scorer, err = filepath.Abs(scorer); err != nil {
		return "", "", err
	}
	if _, err := os.Stat(scorer); err != nil {
		return "", "", fmt.Errorf("the leadscorer binary: %w (build it with make build, or name it with --bin)", err)
	}
	return dev, scorer, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
