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

	"github.com/leadscorer/leadscorer/cli"
	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/service"
	"github.com/leadscorer/leadscorer/validation"
	"github.com/leadscorer/leadscorer/validation/stream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func init() {
	register("validate", "the parallel validator: outcomes vs every version's scores, rollback criteria, /dashboard; validate simulate: how often the rollback rule rolls back", runValidate)
	register("report", "print the validation table and write the HTML report, from the topics", runReport)
}

// rollbackRuleKeys are the rollback rule's settings: report and validate
// simulate bind them without the rest of the Validator group (they roll
// nothing back).
var rollbackRuleKeys = []string{"rollback_window_weeks", "rollback_min_conversions", "rollback_confidence", "rollback_auc_confidence"}

// validatorFlags binds the settings the validator shares with run (Kafka,
// Schema Registry, its topics, the model registry, the rollback rule, the
// log level); serve adds auto_rollback and the HTTP endpoint's.
type validatorFlags struct {
	cfg *config.Flags
}

func bindValidatorFlags(fs *flag.FlagSet, serve bool) *validatorFlags {
	keys := append([]string{"topic_shadow", "topic_outcomes", "topic_registry"}, rollbackRuleKeys...)
	groups := config.Kafka | config.SchemaRegistry | config.Models | config.Logging
	if serve {
		groups |= config.Validator
		keys = append(keys, "http_addr", "http_bearer_token", "http_bearer_token_file")
	}
	return &validatorFlags{cfg: config.Bind(fs, groups, keys...)}
}

// load resolves the settings and the validator's configuration, logging to
// logOut at the configured level.
func (f *validatorFlags) load(ctx context.Context, logOut io.Writer) (*config.Config, stream.Config, *slog.Logger, error) {
	cfg, err := f.cfg.Load(os.Getenv)
	if err != nil {
		return nil, stream.Config{}, nil, err
	}
	log := cli.NewLogger(logOut, cfg.LogLevel)
	vcfg, err := service.ValidatorConfig(ctx, cfg, log)
	if err != nil {
		return nil, stream.Config{}, nil, err
	}
	return cfg, vcfg, log, nil
}

// validateUsage heads validate --help: the validator, and its one action.
const validateUsage = `usage: leadscorer validate [flags]            run the parallel validator (flags below)
       leadscorer validate simulate [flags]   how often the rollback rule rolls a version back, in simulated
                                              periods: literal rules vs the configured evidence rule
                                              (leadscorer validate simulate --help)

flags of validate:
`

func runValidate(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "simulate" {
		return runSimulate(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, validateUsage)
		return fmt.Errorf("validate: unknown action %q (the one action is simulate; without one, validate runs the validator)", args[0])
	}
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), validateUsage)
		fs.PrintDefaults()
	}
	f := bindValidatorFlags(fs, true)
	interval := fs.Duration("interval", 30*time.Second, "time between evaluations")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, vcfg, log, err := f.load(ctx, stderr)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	vcfg.Registerer, vcfg.Interval = reg, *interval
	v, err := stream.New(vcfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("config: http_addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /dashboard", stream.Handler(v.Report))
	mux.Handle("GET /dashboard.json", stream.Handler(v.Report))
	root := http.NewServeMux()
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	root.Handle("/", service.RequireBearer(cfg.HTTPBearerToken, mux))
	srv := &http.Server{Handler: root, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	log.Info("validating", "shadow", cfg.TopicShadow, "outcomes", cfg.TopicOutcomes, "http", ln.Addr().String(), "auto_rollback", cfg.AutoRollback)
	return v.Run(ctx)
}

func runReport(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := bindValidatorFlags(fs, false)
	out := fs.String("html", "validation-report.html", "where to write the HTML report; empty: none")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up reading the topics after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	_, vcfg, _, err := f.load(ctx, io.Discard)
	if err != nil {
		return err
	}
	// The HTML report plots the rule's detection curve: simulated here,
	// on every CPU, while the topics are read.
	vcfg.DetectionPeriods = 0
	type curve struct {
		t   *validation.Table
		err error
	}
	curvec := make(chan curve, 1)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *out != "" {
		go func() {
			t, err := stream.DetectionCurve(cctx, vcfg.Report.Rule, stream.DetectionPeriods)
			curvec <- curve{t, err}
		}()
	} else {
		curvec <- curve{}
	}
	rep, err := readReport(ctx, vcfg)
	if err != nil {
		cancel()
	}
	c := <-curvec
	if err != nil {
		return err
	}
	if c.err != nil {
		return fmt.Errorf("report: detection curve: %w", c.err)
	}
	rep.Detection = c.t
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
