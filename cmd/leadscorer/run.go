package main

import (
	"context"
	"flag"
	"io"
	"os"
	"runtime/debug"

	"github.com/leadscorer/leadscorer/cli"
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
	f := config.Bind(fs, config.All)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return f.Load(os.Getenv)
}

func runRun(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) error {
	cfg, err := loadConfig("run", args, stderr)
	if err != nil {
		return err
	}
	// The soft memory limit is the process's, so it is set here rather than
	// in the service; GOMEMLIMIT in the environment wins.
	if cfg.MemoryLimitMB > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(cfg.MemoryLimitMB) << 20)
	}
	svc, err := service.New(ctx, cfg, cli.NewLogger(stderr, cfg.LogLevel))
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
