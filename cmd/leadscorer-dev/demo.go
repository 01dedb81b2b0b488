package main

import (
	"context"
	"flag"
	"io"
	"strings"
	"time"

	"github.com/leadscorer/leadscorer/cli"
	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/internal/demo"
)

func init() {
	register("demo", "run the whole stream on this machine and summarise it (the README's first command)", runDemo)
}

func runDemo(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "", "external Kafka brokers (comma separated); default: an in-process broker")
	registry := fs.String("registry", "", "external Schema Registry URL, with --brokers")
	redisURL := fs.String("redis-url", envOr("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis to use when reachable (else an embedded one); env REDIS_URL")
	models := fs.String("models", "models/registry.json", "model registry file")
	events := fs.Int("events", 50000, "lead-change events to stream")
	format := fs.String("format", config.InputSalesforceCDC, "input format: salesforce-cdc (change events as the CDC connector writes them) or leadchanged")
	jsonEnc := fs.Bool("json", false, "with salesforce-cdc: write the change events as schemaless JSON instead of Avro")
	advisors := fs.Int("advisors", 40000, "advisors in the synthetic population")
	seed := fs.Uint64("seed", 1, "seed of the population and the event stream")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up scoring after this long")
	verbose := fs.Bool("v", false, "log the scorer's own messages to stderr")
	validate := fs.Bool("validation", true, "follow the stream with weeks of simulated contacts and outcomes, the validator and its report")
	underperform := fs.Bool("underperform", false, "make v4.1.0 underperform once promoted: the rollback criteria fire")
	autoRollback := fs.Bool("auto-rollback", true, "let the validator roll the registry copy back when a criterion fires")
	htmlOut := fs.String("html", "validation-report.html", "where the validation's HTML report goes; empty: none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := demo.Options{
		RedisURL: *redisURL, Registry: *models, Events: *events, Advisors: *advisors, Format: *format, JSON: *jsonEnc,
		Seed: *seed, Timeout: *timeout, Progress: stderr,
	}
	if *brokers != "" {
		opts.Brokers = strings.Split(*brokers, ",")
		opts.RegistryURL = *registry
		if opts.RegistryURL == "" {
			opts.RegistryURL = "http://127.0.0.1:8081"
		}
	}
	if *validate {
		opts.Validation = &demo.ValidationOptions{PromoteAfterWeeks: 2, Underperform: *underperform,
			AutoRollback: *autoRollback, HTML: *htmlOut, Seed: *seed}
	}
	if *verbose {
		opts.Log = cli.NewLogger(stderr, "info")
	}
	_, err := demo.Run(ctx, opts, stdout)
	return err
}
