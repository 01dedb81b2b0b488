// Command leadscorer is the production binary: the streaming scorer and the
// commands that operate it (configuration, registry, validation, dead
// letters, rescoring, offline scoring). See the README for its
// subcommands. The demo and the test harnesses are in leadscorer-dev.
package main

import (
	"context"
	"io"

	"github.com/leadscorer/leadscorer/cli"
)

var commands = cli.New("leadscorer")

func register(name, summary string, run cli.RunFunc) { commands.Register(name, summary, run) }

func main() { cli.Main(commands) }

// run is the binary's entry point for tests.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return commands.Run(ctx, args, stdin, stdout, stderr)
}
