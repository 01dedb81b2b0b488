package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/leadscorer/leadscorer/internal/chaos"
)

func init() {
	register("chaos", "the fault suite: kill, rebalance, broker restart, Redis outage, poison, bad model (make chaos)", runChaos)
}

func runChaos(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("bin", "", "leadscorer binary the scorers run (default: the leadscorer beside this binary)")
	registry := fs.String("registry", "models/registry.json", "model registry; its folder is copied for each scenario")
	redisAddr := fs.String("redis-addr", "127.0.0.1:6379", "Redis host:port (database 0; each scenario uses its own key prefix and deletes it)")
	workDir := fs.String("work-dir", "", "folder for broker data, model copies and process logs (default: a temporary folder, removed when every scenario passes)")
	events := fs.Int("events", 100_000, "input records per scenario")
	seed := fs.Uint64("seed", 1, "seed of the population and the streams")
	streamFor := fs.Duration("stream-for", 15*time.Second, "how long the production of a scenario's events is spread over")
	scenarioTimeout := fs.Duration("scenario-timeout", 4*time.Minute, "longest a scenario may take")
	timeout := fs.Duration("timeout", 14*time.Minute, "longest the whole suite may take")
	only := fs.String("scenarios", strings.Join(chaos.Scenarios, ","), "scenarios to run, comma separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dev, scorer, err := binaries(*bin)
	if err != nil {
		return fmt.Errorf("--bin: %w", err)
	}
	keep := *workDir != ""
	if !keep {
		if *workDir, err = os.MkdirTemp("", "leadscorer-chaos-"); err != nil {
			return fmt.Errorf("--work-dir: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	suite, closeSuite, err := chaos.New(ctx, chaos.Options{
		Bin: scorer, DevBin: dev, Registry: *registry, RedisAddr: *redisAddr, WorkDir: *workDir, Events: *events, Seed: *seed,
		StreamFor: *streamFor, ScenarioTimeout: *scenarioTimeout, Progress: stderr,
	})
	if err != nil {
		return err
	}
	defer closeSuite()
	var failed []string
	for _, name := range strings.Split(*only, ",") {
		name = strings.TrimSpace(name)
		r, err := suite.Run(ctx, name)
		if err != nil {
			fmt.Fprintf(stdout, "scenario=%s error=%q\n", name, err.Error())
			failed = append(failed, name)
			continue
		}
		fmt.Fprintln(stdout, r.Line())
		for _, n := range r.Notes {
			fmt.Fprintf(stdout, "  note: %s\n", n)
		}
		for _, p := range r.Problems {
			fmt.Fprintf(stdout, "  problem: %s\n", p)
		}
		if !r.Pass() {
			failed = append(failed, name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("chaos: %d scenarios failed: %s (process logs in %s)", len(failed), strings.Join(failed, ", "), *workDir)
	}
	if !keep {
		_ = os.RemoveAll(*workDir)
	}
	if ctx.Err() != nil {
		return errors.New("chaos: the suite ran out of time")
	}
	return nil
}
