package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/validation/stream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/sr"
)

func init() {
	register("validate", "the parallel validator: outcomes vs every version's scores, rollback criteria, /dashboard", runValidate)
	register("report", "print the validation table and write the HTML report, from the topics", runReport)
}

// validateFlags are the settings validate and report share.
type validateFlags struct {
	brokers, schemaRegistry, shadow, outcomes, registryTopic, registry string
	minWeekConversions                                                 int
}

func bindValidateFlags(fs *flag.FlagSet) *validateFlags {
	f := &validateFlags{}
	fs.StringVar(&f.brokers, "brokers", envOr("LEADSCORER_BROKERS", "127.0.0.1:9092"), "Kafka bootstrap brokers, comma separated")
	fs.StringVar(&f.schemaRegistry, "schema-registry", envOr("LEADSCORER_SCHEMA_REGISTRY", "http://127.0.0.1:8081"), "Schema Registry URL")
	fs.StringVar(&f.shadow, "topic-shadow", "leads.scored.shadow.v1", "shadow score topic")
	fs.StringVar(&f.outcomes, "topic-outcomes", "leads.outcomes.v1", "lead outcome topic")
	fs.StringVar(&f.registryTopic, "topic-registry", "leads.registry.v1", "topic of registry change events (auto-rollback)")
	fs.StringVar(&f.registry, "registry", envOr("LEADSCORER_REGISTRY", "models/registry.json"), "model registry file")
	fs.IntVar(&f.minWeekConversions, "min-week-conversions", 5, "fewest conversions a week needs for the rollback criteria to judge it")
	return f
}

func (f *validateFlags) config(ctx context.Context, log *slog.Logger) (stream.Config, error) {
	cl, err := sr.NewClient(sr.URLs(f.schemaRegistry))
	if err != nil {
		return stream.Config{}, fmt.Errorf("schema-registry: %w", err)
	}
	ids, err := schemas.Register(ctx, cl, schemas.Topics{Shadow: f.shadow, Outcomes: f.outcomes})
	if err != nil {
		return stream.Config{}, err
	}
	return stream.Config{
		Brokers: strings.Split(f.brokers, ","), ShadowTopic: f.shadow, OutcomeTopic: f.outcomes,
		RegistryTopic: f.registryTopic, Registry: f.registry, Codec: schemas.NewCodec(cl, ids),
		Report: stream.Options{MinWeekConversions: f.minWeekConversions}, Logger: log,
	}, nil
}

func runValidate(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := bindValidateFlags(fs)
	httpAddr := fs.String("http-addr", "127.0.0.1:9465", "address of /metrics, /dashboard and /dashboard.json")
	interval := fs.Duration("interval", 30*time.Second, "time between evaluations")
	auto := fs.Bool("auto-rollback", false, "roll the registry back when a rollback criterion fires for the production version")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := newLogger(stderr, *logLevel)
	cfg, err := f.config(ctx, log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Registerer, cfg.Interval, cfg.AutoRollback = reg, *interval, *auto
	v, err := stream.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("http-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /dashboard", stream.Handler(v.Report))
	mux.Handle("GET /dashboard.json", stream.Handler(v.Report))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	log.Info("validating", "shadow", f.shadow, "outcomes", f.outcomes, "http", ln.Addr().String(), "auto_rollback", *auto)
	return v.Run(ctx)
}

func runReport(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := bindValidateFlags(fs)
	out := fs.String("html", "validation-report.html", "where to write the HTML report; empty: none")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up reading the topics after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cfg, err := f.config(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	rep, err := readReport(ctx, cfg)
	if err != nil {
		return err
	}
	return writeReport(rep, stdout, *out)
}

// readReport reads both topics to their end and returns the report.
func readReport(ctx context.Context, cfg stream.Config) (*stream.Report, error) {
	cfg.Interval = time.Hour
	v, err := stream.New(cfg)
	if err != nil {
		return nil, err
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- v.Run(rctx) }()
	select {
	case <-v.CaughtUp():
	case err := <-done:
		stop()
		if err == nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("report: topics not read to their end: %w", err)
	}
	stop()
	<-done
	if rep := v.Report(); rep != nil {
		return rep, nil
	}
	return nil, errors.New("report: no evaluation")
}

func writeReport(rep *stream.Report, stdout io.Writer, htmlPath string) error {
	if err := stream.WriteTable(stdout, rep); err != nil {
		return err
	}
	if htmlPath == "" {
		return nil
	}
	var b strings.Builder
	if err := stream.WriteHTML(&b, rep, false); err != nil {
		return err
	}
	if err := os.WriteFile(htmlPath, []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nHTML report written to %s\n", htmlPath)
	return nil
}
