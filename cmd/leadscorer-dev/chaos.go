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

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/internal/chaos"
)

func init() {
	register("chaos", "the fault suite: kill, rebalance, broker restart, Redis outage, poison, bad model; broker kill and stall on a real cluster (make chaos)", runChaos)
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
	timeout := fs.Duration("timeout", 0, "longest the whole suite may take (default: the scenario timeout per scenario, plus 5m on a real cluster)")
	only := fs.String("scenarios", "", "scenarios to run, comma separated (default: "+strings.Join(chaos.Scenarios, ",")+
		", and on a real cluster "+strings.Join(chaos.ClusterScenarios, ",")+")")
	kafka := fs.String("kafka", envOr("CHAOS_KAFKA", chaos.KafkaSandbox), "the broker: sandbox (a kfake process per scenario) or real (an Apache Kafka cluster of scripts/stack.sh for the suite); default $CHAOS_KAFKA, else sandbox")
	brokers := fs.Int("brokers", 3, "brokers of the real cluster: 1 or 3")
	stackScript := fs.String("stack", "scripts/stack.sh", "the script that runs the real cluster")
	stackDir := fs.String("stack-dir", os.Getenv("STACK_DIR"), "the real cluster's run folder (default $STACK_DIR, else a folder in --work-dir); a healthy stack already running there is used and left running")
	input := fs.String("input", config.InputLeadChanged, "the streams and the scorers' input_format: leadchanged, or salesforce-cdc (change events: Leads created, updated and echoed, each scored on the state the scorer stored)")
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
	names := chaos.Scenarios
	if *kafka == chaos.KafkaReal {
		names = append(append([]string{}, chaos.Scenarios...), chaos.ClusterScenarios...)
	}
	if *only != "" {
		names = nil
		for _, n := range strings.Split(*only, ",") {
			names = append(names, strings.TrimSpace(n))
		}
	}
	if *timeout == 0 {
		*timeout = time.Duration(len(names)) * *scenarioTimeout
		if *kafka == chaos.KafkaReal {
			*timeout += 5 * time.Minute // the cluster's start and stop
		}
	}
	started := time.Now()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	suite, closeSuite, err := chaos.New(ctx, chaos.Options{
		Bin: scorer, DevBin: dev, Registry: *registry, RedisAddr: *redisAddr, WorkDir: *workDir, Events: *events, Seed: *seed,
		StreamFor: *streamFor, ScenarioTimeout: *scenarioTimeout, Progress: stderr,
		Kafka: *kafka, Brokers: *brokers, StackScript: *stackScript, StackDir: *stackDir, Input: *input,
	})
	if err != nil {
		return err
	}
	// The suite's processes (a real cluster among them, whose run folder
	// may be in the work folder) stop before the work folder goes.
	closed := false
	defer func() {
		if !closed {
			closeSuite()
		}
	}()
	fmt.Fprintf(stdout, "%s input=%s events=%d seed=%d\n", suite.Kafka(), *input, *events, *seed)
	var failed []string
	for _, name := range names {
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
	fmt.Fprintf(stdout, "suite: %d scenarios, %d failed, %.0fs\n", len(names), len(failed), time.Since(started).Seconds())
	if len(failed) > 0 {
		return fmt.Errorf("chaos: %d scenarios failed: %s (process logs in %s)", len(failed), strings.Join(failed, ", "), *workDir)
	}
	closeSuite()
	closed = true
	if !keep {
		_ = os.RemoveAll(*workDir)
	}
	if ctx.Err() != nil {
		return errors.New("chaos: the suite ran out of time")
	}
	return nil
}
