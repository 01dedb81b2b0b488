package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/leadscorer/leadscorer/cli"
	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/progress"
	"github.com/leadscorer/leadscorer/replay"
	"github.com/leadscorer/leadscorer/service"
)

const dlqUsage = `usage: leadscorer dlq replay [filters] [--dry-run] [Kafka settings]

Re-produces dead letters of the DLQ topic (topic_dlq) to the topic each came
from, with its original key, bytes and headers, after the fix that makes them
scorable. Idempotent: each dead letter is replayed once, whatever the filters
of earlier replays; what was replayed is kept in the ledger topic, written in
the same transaction as the replayed records. A dead letter cut to fit the
DLQ (class size) is reported, not replayed. Kafka settings (brokers, TLS,
SASL, topic_dlq) are those of "leadscorer run": --config FILE, LEADSCORER_*
variables or flags. A running count goes to stderr when it is a terminal,
the summary to stdout.

Filters (all optional, combined with AND):
  --class CLASS[,CLASS]     dlq.error.class: size, decode, schema, validation, features
  --partition N             source partition
  --from-offset N           source offset, inclusive
  --to-offset N             source offset, inclusive
  --since TIME --until TIME when dead-lettered (RFC 3339), since inclusive, until exclusive
`

func init() {
	register("dlq", "replay dead letters to their source topic after a fix (idempotent, filtered)", runDLQ)
}

func runDLQ(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if err := cli.RequireAction("dlq", "replay", dlqUsage, args, stdout, stderr); err != nil {
		return err
	}
	fs := flag.NewFlagSet("dlq replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	settings := config.Bind(fs, config.Kafka, "topic_dlq")
	classes := fs.String("class", "", "replay only these error classes, comma separated")
	partition := fs.Int("partition", -1, "replay only dead letters from this source partition")
	fromOffset := fs.Int64("from-offset", -1, "replay only source offsets at or after this")
	toOffset := fs.Int64("to-offset", -1, "replay only source offsets at or before this")
	since := fs.String("since", "", "replay only records dead-lettered at or after this time (RFC 3339)")
	until := fs.String("until", "", "replay only records dead-lettered before this time (RFC 3339)")
	topic := fs.String("topic", "", "produce to this topic instead of each record's source topic")
	ledger := fs.String("ledger-topic", "", "topic recording what was replayed (default <topic_dlq>.replayed)")
	dryRun := fs.Bool("dry-run", false, "count what would be replayed; write nothing")
	fs.Usage = func() { fmt.Fprint(stderr, dlqUsage); fs.PrintDefaults() }
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("dlq replay: unexpected arguments %q", fs.Args())
	}
	cfg, err := settings.Load(os.Getenv)
	if err != nil {
		return err
	}
	f := replay.AllRecords()
	for _, c := range strings.Split(*classes, ",") {
		if c = strings.TrimSpace(c); c != "" {
			f.Classes = append(f.Classes, c)
		}
	}
	f.Partition, f.FromOffset, f.ToOffset = int32(*partition), *fromOffset, *toOffset
	if *fromOffset >= 0 && *toOffset >= 0 && *fromOffset > *toOffset {
		return fmt.Errorf("dlq replay: --from-offset %d is after --to-offset %d", *fromOffset, *toOffset)
	}
	for _, tf := range []struct {
		name, v string
		dst     *time.Time
	}{{"since", *since, &f.Since}, {"until", *until, &f.Until}} {
		if tf.v == "" {
			continue
		}
		if *tf.dst, err = time.Parse(time.RFC3339Nano, tf.v); err != nil {
			return fmt.Errorf("dlq replay: --%s: %w", tf.name, err)
		}
	}
	kopts, err := service.KafkaClientOpts(cfg)
	if err != nil {
		return fmt.Errorf("dlq replay: %w", err)
	}
	bar := progress.New(stderr, "dlq replay", 0) // the DLQ's size is not known up front
	count := func(s replay.Summary) {
		bar.Set(int64(s.Read), fmt.Sprintf("%d dead letters read, %d replayed", s.Read, s.Replayed))
	}
	sum, err := replay.Replay(ctx, replay.Options{
		Brokers: cfg.Brokers, ClientOpts: kopts, DLQTopic: cfg.TopicDLQ, LedgerTopic: *ledger,
		Topic: *topic, Filter: f, DryRun: *dryRun, Progress: count,
	})
	count(sum)
	bar.Finish()
	prefix := ""
	if *dryRun {
		prefix = "dry run, nothing written: "
	}
	fmt.Fprintf(stdout, "dlq replay from %s: %s%s\n", cfg.TopicDLQ, prefix, sum)
	return err
}
