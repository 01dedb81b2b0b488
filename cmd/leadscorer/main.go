// Command leadscorer scores Salesforce leads in real time with XGBoost
// models: see the README for its subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	_ "net/http/pprof" // served only at LEADSCORER_PPROF_ADDR
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// command is one subcommand; each lives in its own file and registers
// itself in an init function.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

func register(name, summary string, run func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error) {
	commands[name] = command{summary: summary, run: run}
}

// pprofEnv names the variable that, when set to host:port, makes any
// subcommand serve net/http/pprof there (the benchmark harness profiles the
// scorer this way). Unset, nothing is served.
const pprofEnv = "LEADSCORER_PPROF_ADDR"

// redisLog drops go-redis's own log lines ("failed to dial after 5
// attempts"), which it prints to stderr in its own format: every Redis
// failure reaches our code as an error, which the service logs with slog and
// counts in leadscorer_redis_errors_total.
type redisLog struct{}

func (redisLog) Printf(context.Context, string, ...any) {}

func main() {
	redis.SetLogger(redisLog{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if addr := os.Getenv(pprofEnv); addr != "" {
		go func() { _ = http.ListenAndServe(addr, http.DefaultServeMux) }()
	}
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "leadscorer:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return c.run(ctx, args[1:], stdin, stdout, stderr)
}

// requireAction checks that a subcommand with one action (features load,
// dlq replay) was given it; otherwise it prints the usage and says what is
// wrong (flag.ErrHelp for -h).
func requireAction(cmd, want, usageText string, args []string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == want {
		return nil
	}
	fmt.Fprint(stderr, usageText)
	switch {
	case len(args) == 0:
		return fmt.Errorf("%s: no action given (want %s)", cmd, want)
	case args[0] == "-h" || args[0] == "--help":
		return flag.ErrHelp
	}
	return fmt.Errorf("%s: unknown action %q (want %s)", cmd, args[0], want)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: leadscorer COMMAND [flags]   (leadscorer COMMAND --help for its flags)")
	fmt.Fprintln(w)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
}
