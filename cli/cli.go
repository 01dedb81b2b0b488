// Package cli is the subcommand framework of the two binaries, leadscorer
// (the service and its operations) and leadscorer-dev (the demo and the
// harnesses): dispatch, usage, exit codes, signals and the logger.
//
// Each subcommand lives in its own file of its binary and registers itself
// in an init function; its flag set and writers are its own, so a test can
// drive it through Set.Run and capture what it prints.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only at LEADSCORER_PPROF_ADDR
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// RunFunc runs one subcommand with its arguments (the subcommand's name
// removed). It returns flag.ErrHelp when asked for help.
type RunFunc func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error

type command struct {
	summary string
	run     RunFunc
}

// Set is the subcommands of one binary.
type Set struct {
	name     string
	commands map[string]command
}

// New returns the empty set of subcommands of the binary name.
func New(name string) *Set {
	return &Set{name: name, commands: map[string]command{}}
}

// Register adds a subcommand; a second registration of name panics.
func (s *Set) Register(name, summary string, run RunFunc) {
	if _, dup := s.commands[name]; dup {
		panic("cli: " + s.name + " " + name + " registered twice")
	}
	s.commands[name] = command{summary: summary, run: run}
}

// Run runs the subcommand args[0]. With no arguments it prints the usage
// and fails; with -h, --help or help it prints the usage and returns
// flag.ErrHelp.
func (s *Set) Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		s.usage(stderr)
		return errors.New("no command given")
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		s.usage(stdout)
		return flag.ErrHelp
	}
	c, ok := s.commands[args[0]]
	if !ok {
		s.usage(stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return c.run(ctx, args[1:], stdin, stdout, stderr)
}

func (s *Set) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s COMMAND [flags]   (%s COMMAND --help for its flags)\n\n", s.name, s.name)
	names := make([]string, 0, len(s.commands))
	for n := range s.commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, s.commands[n].summary)
	}
}

// PprofEnv names the variable that, when set to host:port, makes any
// subcommand serve net/http/pprof there (the benchmark harness profiles the
// scorer this way). Unset, nothing is served.
const PprofEnv = "LEADSCORER_PPROF_ADDR"

// Main runs the subcommand named by os.Args until SIGINT or SIGTERM
// cancels its context, and exits: 0 on success or when help was asked
// for, 1 on an error, which it prints.
func Main(s *Set) {
	redis.SetLogger(redisLog{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if addr := os.Getenv(PprofEnv); addr != "" {
		go func() { _ = http.ListenAndServe(addr, http.DefaultServeMux) }()
	}
	err := s.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.name, err)
		os.Exit(1)
	}
}

// redisLog drops go-redis's own log lines ("failed to dial after 5
// attempts"), which it prints to stderr in its own format: every Redis
// failure reaches our code as an error, which the service logs with slog and
// counts in leadscorer_redis_errors_total.
type redisLog struct{}

func (redisLog) Printf(context.Context, string, ...any) {}

// RequireAction checks that a subcommand with one action (features load,
// dlq replay) was given it; otherwise it prints the usage and says what is
// wrong (flag.ErrHelp for -h).
func RequireAction(cmd, want, usageText string, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == want {
		return nil
	}
	switch {
	case len(args) == 0:
		fmt.Fprint(stderr, usageText)
		return fmt.Errorf("%s: no action given (want %s)", cmd, want)
	case args[0] == "-h" || args[0] == "--help":
		fmt.Fprint(stdout, usageText)
		return flag.ErrHelp
	}
	fmt.Fprint(stderr, usageText)
	return fmt.Errorf("%s: unknown action %q (want %s)", cmd, args[0], want)
}

// NewLogger returns a JSON logger writing to w at level (debug, info, warn
// or error; anything else is info).
func NewLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
