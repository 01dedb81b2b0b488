package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/leadscorer/leadscorer/cli"
	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/service"
	"github.com/leadscorer/leadscorer/topics"
	"github.com/twmb/franz-go/pkg/kgo"
)

const topicsUsage = `usage: leadscorer topics apply [--dry-run] [--replication-factor N] [Kafka settings]

Creates the service's topics as the project declares them (README, Topics)
and aligns existing ones: creates what is missing, sets the declared
settings (min.insync.replicas, cleanup.policy, retention.ms,
max.message.bytes) where they differ, adds partitions where the declaration
has more. Idempotent: a second run changes nothing. It never deletes a
topic or a partition: a topic with more partitions, or another replication
factor, than declared is reported as refused, and the command fails.
One line per topic on stdout. The names come from the topic settings
(topic_in, ...; the DLQ replay ledger is topic_dlq + ".replayed"), the
Kafka settings are those of "leadscorer run".
`

func init() {
	register("topics", "create the service's topics as declared, or align them (idempotent)", runTopics)
}

func runTopics(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if err := cli.RequireAction("topics", "apply", topicsUsage, args, stdout, stderr); err != nil {
		return err
	}
	fs := flag.NewFlagSet("topics apply", flag.ContinueOnError)
	fs.SetOutput(stderr)
	settings := config.Bind(fs, config.Kafka|config.Topics)
	dryRun := fs.Bool("dry-run", false, "report what would be created or changed; change nothing")
	rf := fs.Int("replication-factor", topics.DefaultReplicationFactor, "replication factor of the topics (min.insync.replicas is 2 from 3 up, else 1)")
	fs.Usage = func() { fmt.Fprint(stderr, topicsUsage); fs.PrintDefaults() }
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := settings.Load(os.Getenv)
	if err != nil {
		return err
	}
	if *rf < 1 || *rf > 32767 {
		return fmt.Errorf("topics apply: --replication-factor %d: want 1 or more", *rf)
	}
	kopts, err := service.KafkaClientOpts(cfg)
	if err != nil {
		return fmt.Errorf("topics apply: %w", err)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, kopts...)...)
	if err != nil {
		return fmt.Errorf("topics apply: %w", err)
	}
	defer cl.Close()
	results, err := topics.Apply(ctx, cl, topics.Declared(cfg, int16(*rf)), *dryRun)
	if err != nil {
		return fmt.Errorf("topics apply: %w", err)
	}
	bad := 0
	for _, r := range results {
		fmt.Fprintln(stdout, r)
		if !r.OK() {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("topics apply: %d of %d topics do not match the declaration (see above)", bad, len(results))
	}
	return nil
}
