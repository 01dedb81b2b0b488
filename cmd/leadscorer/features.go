package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/leadscorer/leadscorer/cli"
	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/featurestore"
	"github.com/leadscorer/leadscorer/progress"
	"github.com/leadscorer/leadscorer/service"
)

const featuresUsage = `usage: leadscorer features load --input FILE [Redis settings]

Loads a population file (JSON lines, each {"advisor": {...}} or {"firm": {...}},
as "leadscorer-dev population" writes features.jsonl) into the Redis feature store
the scorer enriches events from. Records are replaced whole; loading the same
file twice is harmless. A progress bar goes to stderr when it is a terminal,
the summary to stdout.
`

func init() {
	register("features", "load advisor and firm attributes into the Redis feature store", runFeatures)
}

// runFeatures is the "features" subcommand; its only action is "load".
func runFeatures(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if err := cli.RequireAction("features", "load", featuresUsage, args, stdout, stderr); err != nil {
		return err
	}
	fs := flag.NewFlagSet("features load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, featuresUsage); fs.PrintDefaults() }
	input := fs.String("input", "", `population file to load (JSON lines, gzipped or not), "-" for stdin; required`)
	// The same Redis settings as run (URL, ACL user, TLS, key prefix), so
	// the scorer reads what this writes.
	settings := config.Bind(fs, config.Redis)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *input == "" {
		fs.Usage()
		return errors.New("features load: --input is required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("features load: unexpected arguments %q", fs.Args())
	}
	cfg, err := settings.Load(os.Getenv)
	if err != nil {
		return fmt.Errorf("features load: %w", err)
	}
	if cfg.RedisPrefix == "" {
		return errors.New("features load: redis_prefix must not be empty")
	}
	opt, err := service.RedisOptions(cfg)
	if err != nil {
		return fmt.Errorf("features load: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("features load: Redis at %s: %w", opt.Addr, err)
	}
	prefix := cfg.RedisPrefix

	in, size := stdin, int64(-1) // stdin: a running count, no percentage
	if *input != "-" {
		f, err := os.Open(*input)
		if err != nil {
			return fmt.Errorf("features load: --input: %w", err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		in = f
	}
	bar := progress.New(stderr, "loading", size)
	sum, err := featurestore.Load(ctx, featurestore.New(rdb, prefix, nil), in, func(read int64, s featurestore.Summary) {
		bar.Set(read, fmt.Sprintf("%d lines  %d advisors  %d firms", s.Lines, s.Advisors, s.Firms))
	})
	bar.Finish()
	if err != nil {
		return fmt.Errorf("features load %s: %w", *input, err)
	}
	fmt.Fprintf(stdout, "%s into Redis at %s, prefix %q\n", sum, opt.Addr, prefix)
	return nil
}
