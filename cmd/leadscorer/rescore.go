package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/progress"
	"github.com/leadscorer/leadscorer/replay"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/service"
)

const rescoreUsage = `usage: leadscorer rescore --input FILE [--dry-run] [Kafka and Schema Registry settings]

Produces a lead-change event (changed_fields ["rescore"]) to the input topic
(topic_in) for every lead of FILE, so the running scorers score the whole
population as of now: the on-demand replacement of the monthly batch job.
FILE is a CSV with a header naming the Lead Id (lead_id, "Lead Id" or Id),
the CRD (crd or FA_CRD__c), has_email and has_linkedin, such as the
population export leads.csv; "-" reads stdin. Sink records follow only for
leads whose Salesforce fields change (the scorer's quota guard). Kafka and
Schema Registry settings are those of "leadscorer run". A progress bar goes
to stderr when it is a terminal, the summary to stdout.
`

func init() {
	register("rescore", "produce a rescore lead change for every lead of a population file", runRescore)
}

func runRescore(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rescore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	settings := config.Bind(fs, config.Kafka|config.SchemaRegistry, "topic_in")
	input := fs.String("input", "", `population CSV, "-" for stdin; required`)
	dryRun := fs.Bool("dry-run", false, "read and check the file; produce nothing")
	fs.Usage = func() { fmt.Fprint(stderr, rescoreUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *input == "" {
		fs.Usage()
		return errors.New("rescore: --input is required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("rescore: unexpected arguments %q", fs.Args())
	}
	cfg, err := settings.Load(os.Getenv)
	if err != nil {
		return err
	}
	in := stdin
	if *input != "-" {
		f, err := os.Open(*input)
		if err != nil {
			return fmt.Errorf("rescore: --input: %w", err)
		}
		defer f.Close()
		in = f
	}
	leads, err := replay.ReadLeads(in)
	if err != nil {
		return fmt.Errorf("rescore %s: %w", *input, err)
	}
	if *dryRun {
		fmt.Fprintf(stdout, "rescore: dry run, nothing produced: %d leads in %s\n", len(leads), *input)
		return nil
	}
	kopts, err := service.KafkaClientOpts(cfg)
	if err != nil {
		return fmt.Errorf("rescore: %w", err)
	}
	rc, err := service.SchemaRegistryClient(cfg)
	if err != nil {
		return fmt.Errorf("rescore: %w", err)
	}
	ids, err := schemas.Register(ctx, rc, schemas.Topics{LeadChanged: cfg.TopicIn})
	if err != nil {
		return fmt.Errorf("rescore: schema of %s: %w", cfg.TopicIn, err)
	}
	bar := progress.New(stderr, "rescore", int64(len(leads)))
	n, err := replay.Rescore(ctx, leads, replay.RescoreOptions{
		Brokers: cfg.Brokers, ClientOpts: kopts, Topic: cfg.TopicIn,
		Codec:    schemas.NewCodec(rc, ids),
		Progress: func(done int) { bar.Set(int64(done), fmt.Sprintf("%d/%d leads", done, len(leads))) },
	})
	bar.Finish()
	fmt.Fprintf(stdout, "rescore: %d of %d leads produced to %s\n", n, len(leads), cfg.TopicIn)
	return err
}
