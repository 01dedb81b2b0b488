package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/service"
)

func init() {
	register("run", "run the streaming scorer (Kafka in, Redis enrichment, sink + shadow + DLQ out)", runRun)
	register("config", "print the effective configuration of run, secrets redacted", runConfig)
}

// loadConfig parses run's flags and resolves the configuration.
func loadConfig(name string, args []string, stderr io.Writer) (*config.Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := config.Bind(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return f.Load(os.Getenv)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

func runRun(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := config.Bind(fs)
	// For tests only (the fault suite): a fixed scoring time makes every
	// score reproducible offline. Not a setting: production scores as of now.
	scoringTime := fs.String("scoring-time", "", "for tests only: score as of this RFC 3339 time instead of the wall clock")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := f.Load(os.Getenv)
	if err != nil {
		return err
	}
	var opts []service.Option
	if *scoringTime != "" {
		at, err := time.Parse(time.RFC3339Nano, *scoringTime)
		if err != nil {
			return fmt.Errorf("--scoring-time: %w", err)
		}
		opts = append(opts, service.WithClock(func() time.Time { return at }))
	}
	// The soft memory limit is the process's, so it is set here rather than
	// in the service; GOMEMLIMIT in the environment wins.
	if cfg.MemoryLimitMB > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(cfg.MemoryLimitMB) << 20)
	}
	log := newLogger(stderr, cfg.LogLevel)
	svc, err := service.New(ctx, cfg, log, opts...)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

func runConfig(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("config", args, stderr)
	if err != nil {
		return err
	}
	return cfg.Write(stdout)
}
