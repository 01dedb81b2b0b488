package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/consumer"
	"github.com/leadscorer/leadscorer/internal/loadgen"
	"github.com/leadscorer/leadscorer/internal/synth"
	"github.com/leadscorer/leadscorer/schemas"
)

const loadgenUsage = `usage: leadscorer-dev loadgen [flags]                 produce lead-change events
       leadscorer-dev loadgen bench [flags]           the end-to-end benchmark (make bench-e2e)
       leadscorer-dev loadgen passthrough [flags]     the broker-ceiling consumer: copies, scores nothing

loadgen produces lead changes for the synthetic population's leads: by
default Salesforce change events as the CDC connector writes them (Avro, or
JSON with --json; one partition unless --spread-partitions) in the CDC
simulation's shape (--shape cdc: the change-event mix of a Salesforce org,
each event naming a Lead drawn uniformly from a pool of a fifth as many
Leads as events, creation first), or with --shape zipf one kind of update
over Zipf-skewed keys (a few hot Leads; the only shape of LeadChanged
records, --format leadchanged). It produces at a fixed rate (open loop: the
event's time is its due time) or, with --rate 0, as fast as the broker
takes them, for --duration or --count events.
`

func init() {
	register("loadgen", "produce lead-change events at a fixed or maximum rate; run the end-to-end benchmark", runLoadgen)
}

func runLoadgen(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "bench":
			return runLoadgenBench(ctx, args[1:], stdout, stderr)
		case "passthrough":
			return runPassthrough(ctx, args[1:], stderr)
		}
	}
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, loadgenUsage); fs.PrintDefaults() }
	brokers := fs.String("brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma separated")
	registry := fs.String("schema-registry", "http://127.0.0.1:8081", "Schema Registry URL")
	topic := fs.String("topic", schemas.DefaultTopics().LeadChanged, "topic to produce to")
	rate := fs.Float64("rate", 1000, "events per second; 0 for as fast as possible")
	duration := fs.Duration("duration", 10*time.Second, "how long to produce; 0 for no limit (then --count)")
	count := fs.Int("count", 0, "how many events; 0 for no limit (then --duration)")
	advisors := fs.Int("advisors", 100_000, "advisors of the synthetic population whose leads are keyed (as loaded in Redis)")
	popSeed := fs.Uint64("population-seed", 0, "seed of the synthetic population")
	seed := fs.Uint64("seed", 1, "seed of the key choice and event ids")
	shape := fs.String("shape", "", "load shape: cdc (the CDC simulation's mix and key spread; the default with change events) or zipf (the default and only shape of leadchanged)")
	zipf := fs.Float64("zipf", loadgen.DefaultZipfS, "with --shape zipf: Zipf exponent of the key spread (> 1; larger is more skewed)")
	spread := fs.Bool("spread-partitions", false, "with change events: write each to the partition of its key, not partition 0 as the connector does")
	format := fs.String("format", config.InputSalesforceCDC, "salesforce-cdc (change events) or leadchanged")
	jsonEnc := fs.Bool("json", false, "with salesforce-cdc: schemaless JSON instead of Avro")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("loadgen: unexpected arguments %q", fs.Args())
	}
	pop, err := synth.Generate(synth.Options{Seed: *popSeed, Advisors: *advisors})
	if err != nil {
		return fmt.Errorf("loadgen: --advisors: %w", err)
	}
	srcl, err := sr.NewClient(sr.URLs(*registry))
	if err != nil {
		return fmt.Errorf("loadgen: --schema-registry: %w", err)
	}
	topics := schemas.Topics{LeadChanged: *topic}
	switch *format {
	case config.InputSalesforceCDC:
		topics = schemas.Topics{ChangeEvents: *topic} // as the connector registers it
	case config.InputLeadChanged:
	default:
		return fmt.Errorf("loadgen: --format %q: want %s or %s", *format, config.InputSalesforceCDC, config.InputLeadChanged)
	}
	ids, err := schemas.Register(ctx, srcl, topics)
	if err != nil {
		return err
	}
	st, err := loadgen.Run(ctx, loadgen.Options{
		Brokers: strings.Split(*brokers, ","), Topic: *topic, Codec: schemas.NewCodec(srcl, ids),
		Leads: loadgen.LeadsOf(pop), Rate: *rate, Duration: *duration, Count: *count, ZipfS: *zipf, Seed: *seed,
		Format: *format, JSON: *jsonEnc, Shape: *shape, SpreadPartitions: *spread,
	})
	fmt.Fprintf(stdout, "sent=%d failed=%d elapsed_s=%.3f rate_eps=%.0f max_behind_ms=%d\n",
		st.Sent, st.Failed, st.Elapsed.Seconds(), st.Rate(), st.MaxBehind.Milliseconds())
	return err
}

func runLoadgenBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadgen bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scorer := fs.String("scorer-bin", "", "leadscorer binary whose run is measured (default: the leadscorer beside this binary); an older build to compare")
	scorerArgs := fs.String("scorer-args", "", "extra flags of run, space separated")
	redisURL := fs.String("redis-url", "redis://127.0.0.1:6379/0", "Redis the features are loaded into")
	prefix := fs.String("redis-prefix", "leadscorer-bench:", "key prefix of the benchmark's features; removed at the end")
	registry := fs.String("registry", "models/registry.json", "model registry file the scorer loads")
	advisors := fs.Int("advisors", 100_000, "advisors of the synthetic population loaded in Redis")
	events := fs.Int("events", 400_000, "events of the saturation backlog")
	rates := fs.String("rates", "5000,20000,50000", "fixed rates of the latency runs, events/s, comma separated; empty for none")
	rateDur := fs.Duration("rate-duration", 10*time.Second, "length of each latency run")
	scorers := fs.String("scorers", "1,2", "scorer process counts to measure, comma separated")
	noCeiling := fs.Bool("no-ceiling", false, "skip the broker-ceiling run")
	profileDir := fs.String("profile-dir", "", "save CPU profiles of one scorer over the saturation drain and at the highest rate here (scripts/profile-stages.py: CPU per event by stage)")
	profileSecs := fs.Int("profile-seconds", 30, "length of the drain's CPU profile: longer than the drain")
	shape := fs.String("shape", loadgen.ShapeCDC, "load: cdc (change events, the CDC simulation's mix and key spread) or zipf (LeadChanged records, Zipf-spread keys: the benchmark before)")
	memo := fs.String("memo", "off,on", "score_memo settings to measure every figure with, comma separated; keys of memo-on runs end in _memo")
	kafka := fs.String("kafka", envOr("BENCH_KAFKA", "sandbox"), "the broker: sandbox (a kfake process per run) or real (an Apache Kafka cluster of scripts/stack.sh for the whole benchmark); default $BENCH_KAFKA, else sandbox")
	brokers := fs.Int("brokers", 1, "brokers of the real cluster: 1 or 3")
	stackScript := fs.String("stack", "scripts/stack.sh", "the script that runs the real cluster")
	stackDir := fs.String("stack-dir", os.Getenv("STACK_DIR"), "the real cluster's run folder (default $STACK_DIR, else a temporary folder); a healthy stack already running there is used and left running")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kafka == "real" && *stackDir == "" {
		d, err := os.MkdirTemp("", "leadscorer-bench-stack-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*stackDir = d
	}
	dev, scorerBin, err := binaries(*scorer)
	if err != nil {
		return fmt.Errorf("--scorer-bin: %w", err)
	}
	opts := loadgen.BenchOptions{
		DevBin: dev, ScorerBin: scorerBin, ScorerArgs: strings.Fields(*scorerArgs), RedisURL: *redisURL,
		Prefix: *prefix, Registry: *registry, Advisors: *advisors, SaturationEvents: *events,
		RateDuration: *rateDur, SkipCeiling: *noCeiling, ProfileDir: *profileDir, ProfileSeconds: *profileSecs,
		Shape: *shape, Out: stdout, Log: stderr, Rates: []float64{},
		Kafka: *kafka, Brokers: *brokers, StackScript: *stackScript, StackDir: *stackDir,
	}
	for _, f := range strings.Split(*memo, ",") {
		switch strings.TrimSpace(f) {
		case "off":
			opts.Memo = append(opts.Memo, false)
		case "on":
			opts.Memo = append(opts.Memo, true)
		default:
			return fmt.Errorf("loadgen bench: --memo: %q is neither off nor on", f)
		}
	}
	for _, f := range strings.Split(*rates, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || r <= 0 {
			return fmt.Errorf("loadgen bench: --rates: %q is not a positive rate", f)
		}
		opts.Rates = append(opts.Rates, r)
	}
	for _, f := range strings.Split(*scorers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("loadgen bench: --scorers: %q is not a process count", f)
		}
		opts.Scorers = append(opts.Scorers, n)
	}
	return loadgen.Bench(ctx, opts)
}

func runPassthrough(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadgen passthrough", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma separated")
	group := fs.String("group", "leadscorer", "consumer group")
	txid := fs.String("transactional-id", "leadscorer-passthrough", "transactional id")
	in := fs.String("topic-in", schemas.DefaultTopics().LeadChanged, "input topic")
	out := fs.String("topics-out", "", "topics each input record is copied to, comma separated")
	batch := fs.Int("batch-max-records", 0, "records per transaction (0: the scorer's default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("loadgen passthrough: --topics-out is required")
	}
	c, err := consumer.New(consumer.Options{
		Brokers: strings.Split(*brokers, ","), Group: *group, Topic: *in, TransactionalID: *txid,
		BatchMaxRecords: *batch,
	}, &loadgen.Passthrough{Topics: strings.Split(*out, ",")})
	if err != nil {
		return err
	}
	return c.Run(ctx)
}
