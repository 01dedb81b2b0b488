// Package service assembles the streaming scorer from a configuration:
// registry and models, Redis, the Schema Registry, the pipeline, the
// exactly-once consumer and the HTTP endpoints, and runs it until its
// context ends.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/consumer"
	"github.com/leadscorer/leadscorer/featurestore"
	"github.com/leadscorer/leadscorer/pipeline"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/leadscorer/leadscorer/validation/stream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

// Version is the build's version, set with -ldflags "-X ...service.Version=...".
var Version = "dev"

// Service is a started scorer.
type Service struct {
	cfg      *config.Config
	log      *slog.Logger
	reg      *prometheus.Registry
	rdb      *redis.Client
	pipeline *pipeline.Pipeline
	consumer *consumer.Consumer
	ln       net.Listener // /healthz, /readyz, and the rest unless metricsLn
	// metricsLn, when metrics_addr is set, serves /metrics and every
	// endpoint added with Handle; ln then serves the health checks only.
	metricsLn net.Listener
	mux       *http.ServeMux // the protected endpoints
	reload    *reloadMetrics
	validator *stream.Validator // with validate=true; nil otherwise
	done      atomic.Bool       // set by Run or Close, which then release the above
}

// Option adjusts a Service for tests and the demo.
type Option func(*options)

type options struct {
	now             func() time.Time
	listener        net.Listener
	metricsListener net.Listener
}

// WithClock makes now the scoring time source.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithListener serves the HTTP endpoints on ln instead of cfg.HTTPAddr;
// the Service closes it.
func WithListener(ln net.Listener) Option { return func(o *options) { o.listener = ln } }

// WithMetricsListener serves the protected endpoints on ln instead of
// cfg.MetricsAddr; the Service closes it.
func WithMetricsListener(ln net.Listener) Option {
	return func(o *options) { o.metricsListener = ln }
}

// New loads and checks everything the scorer needs and fails naming what is
// wrong: the registry and models, Redis, the Schema Registry and the
// compatibility of our schemas with the registered ones, and Kafka (one
// metadata request with the configured TLS and SASL, so a wrong password
// stops start-up rather than a consumer retrying it forever). Errors never
// quote a secret.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, opts ...Option) (*Service, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "leadscorer_build_info", Help: "1, labelled with the build version."}, []string{"version"})
	buildInfo.WithLabelValues(Version).Set(1)
	reg.MustRegister(buildInfo)

	models, err := scoring.LoadRegistry(cfg.Registry)
	if err != nil {
		return nil, err
	}

	ropts, err := RedisOptions(cfg)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(ropts)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis at %s: %w", config.Redact(cfg.RedisURL), err)
	}
	store := featurestore.New(rdb, cfg.RedisPrefix, reg)
	if err := store.CheckLayout(ctx); err != nil {
		rdb.Close()
		return nil, err
	}

	srcl, err := SchemaRegistryClient(cfg)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	topics := schemas.Topics{LeadChanged: cfg.TopicIn, Sfdc: cfg.TopicSfdc, Shadow: cfg.TopicShadow, Outcomes: cfg.TopicOutcomes}
	cdc := CDCOptions(cfg)
	if cdc != nil {
		// The connector registers the input's schema; the scorer writes
		// refresh requests and outcomes too.
		topics.LeadChanged, topics.Refresh = "", cfg.TopicRefresh
	}
	ids, err := schemas.Register(ctx, srcl, topics)
	if err != nil {
		rdb.Close()
		return nil, explainRegistryErr(cfg, err)
	}
	codec := schemas.NewCodec(srcl, ids)

	pl, err := pipeline.New(pipeline.Options{
		SfdcTopic: cfg.TopicSfdc, ShadowTopic: cfg.TopicShadow, DLQTopic: cfg.TopicDLQ,
		MaxRecordBytes: cfg.MaxRecordBytes, FeatureMaxAge: cfg.FeatureMaxAge,
		UnknownAdvisorToDLQ: cfg.UnknownAdvisor == "dlq", ScoreEpsilon: cfg.ScoreEpsilon,
		ScoreMemo:    cfg.ScoreMemo,
		RedisBackoff: featurestore.DefaultBackoff, CDC: cdc, Now: o.now, Logger: log, Metrics: pipeline.NewMetrics(reg),
	}, codec, store, models)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	kopts, err := kafkaOpts(cfg)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	if err := pingKafka(ctx, cfg, kopts); err != nil {
		rdb.Close()
		return nil, err
	}
	c, err := consumer.New(consumer.Options{
		Brokers: cfg.Brokers, Group: cfg.Group, Topic: cfg.TopicIn, TransactionalID: cfg.TransactionalID,
		BatchMaxRecords: cfg.BatchMaxRecords, TopUpWait: cfg.BatchTopUpWait, TransactionTimeout: cfg.TransactionLimit,
		BatchTimeout: cfg.BatchTimeout, ClientOpts: kopts, Logger: log, Metrics: consumer.NewMetrics(reg),
	}, pl)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	s := &Service{cfg: cfg, log: log, reg: reg, rdb: rdb, pipeline: pl, consumer: c,
		ln: o.listener, metricsLn: o.metricsListener, mux: http.NewServeMux(), reload: newReloadMetrics(reg)}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	if cfg.Validate {
		if err := s.startValidator(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	if s.ln == nil && cfg.HTTPAddr != "" {
		if s.ln, err = listen("http_addr", cfg.HTTPAddr); err != nil {
			s.Close()
			return nil, err
		}
	}
	if s.metricsLn == nil && cfg.MetricsAddr != "" {
		if s.metricsLn, err = listen("metrics_addr", cfg.MetricsAddr); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close releases what New acquired, for a Service that will not run: the
// Kafka session (which has already joined the consumer group), Redis and
// the listeners. Run releases them itself: Close once Run has started does
// nothing, so a caller may defer Close right after New.
func (s *Service) Close() {
	if s.done.Swap(true) {
		return
	}
	s.consumer.Close()
	s.rdb.Close()
	for _, ln := range []net.Listener{s.ln, s.metricsLn} {
		if ln != nil {
			ln.Close()
		}
	}
}

// CDCOptions returns the pipeline's settings of Salesforce change events,
// or nil when the input is LeadChanged records.
func CDCOptions(cfg *config.Config) *pipeline.CDCOptions {
	if cfg.InputFormat != config.InputSalesforceCDC {
		return nil
	}
	converted := cfg.ConvertedOutcome
	if converted == "none" {
		converted = ""
	}
	return &pipeline.CDCOptions{
		CRDField: cfg.CRDField, EmailField: cfg.EmailField, LinkedInField: cfg.LinkedInField, StatusField: cfg.StatusField,
		CallScheduledField: cfg.CallScheduledField, ContactedStatuses: cfg.ContactedStatuses,
		CallScheduledStatuses: cfg.CallScheduledStatuses, ConvertedOutcome: converted, SinkUserID: cfg.SinkUserID,
		DeriveOutcomes: cfg.DeriveOutcomes, OutcomesTopic: cfg.TopicOutcomes, RefreshTopic: cfg.TopicRefresh,
	}
}

// Registry returns the Prometheus registry of the service's metrics.
func (s *Service) Registry() *prometheus.Registry { return s.reg }

// Handle adds an endpoint beside /metrics (a dashboard, a JSON API): it is
// served on metrics_addr when set, else on http_addr, and requires the
// bearer token when http_bearer_token is set. Call it before Run.
func (s *Service) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Pipeline returns the service's pipeline (registry reloads go through it).
func (s *Service) Pipeline() *pipeline.Pipeline { return s.pipeline }

// Run scores until ctx ends, then finishes the batch in hand, commits it,
// leaves the group and returns.
func (s *Service) Run(ctx context.Context) error {
	if s.done.Swap(true) {
		return errors.New("service: Run after Close or a previous Run")
	}
	defer s.rdb.Close()
	var wg sync.WaitGroup
	var servers []*http.Server
	serve := func(ln net.Listener, h http.Handler) {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
		servers = append(servers, srv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("http server", "addr", ln.Addr().String(), "err", err)
			}
		}()
	}
	protected := RequireBearer(s.cfg.HTTPBearerToken, s.mux)
	switch {
	case s.ln != nil && s.metricsLn != nil:
		serve(s.ln, s.health(nil))
		serve(s.metricsLn, protected)
	case s.ln != nil:
		serve(s.ln, s.health(protected))
	case s.metricsLn != nil:
		serve(s.metricsLn, protected)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.watchRegistry(wctx, 200*time.Millisecond)
	}()
	defer stopWatch()
	if s.validator != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.validator.Run(wctx); err != nil {
				s.log.Error("validator stopped", "err", err)
			}
		}()
	}
	s.log.Info("scoring", "input", s.cfg.TopicIn, "format", s.cfg.InputFormat, "group", s.cfg.Group, "production", s.pipeline.Registry().Production().Name)
	err := s.consumer.Run(ctx)
	stopWatch()
	for _, srv := range servers {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	wg.Wait()
	s.log.Info("stopped")
	return err
}

// health serves /healthz and /readyz without authentication (load
// balancers and orchestrators probe them; they reveal nothing) and hands
// every other path to rest, or answers 404 when rest is nil.
func (s *Service) health(rest http.Handler) http.Handler {
	mux := http.NewServeMux()
	if rest != nil {
		mux.Handle("/", rest)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.consumer.Ready() {
			http.Error(w, "not ready: no poll completed yet", http.StatusServiceUnavailable)
			return
		}
		if err := s.rdb.Ping(r.Context()).Err(); err != nil {
			http.Error(w, "not ready: redis unreachable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}
