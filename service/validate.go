package service

import (
	"context"
	"log/slog"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/validation"
	"github.com/leadscorer/leadscorer/validation/stream"
)

// RollbackRule is the rollback rule of the settings rollback_window_weeks,
// rollback_min_conversions, rollback_confidence and
// rollback_auc_confidence (docs/VALIDATION.md).
func RollbackRule(cfg *config.Config) validation.EvidenceRule {
	return validation.EvidenceRule{WindowWeeks: cfg.RollbackWindowWeeks, MinConversions: cfg.RollbackMinConversions,
		Confidence: cfg.RollbackConfidence, AUCConfidence: cfg.RollbackAUCConfidence}
}

// ValidatorConfig returns the parallel validator's settings for cfg: the
// same brokers, Schema Registry, security settings, topics and registry
// file as the scorer, and the rollback rule of its settings, whose
// detection curve the dashboard shows. `run` with validate=true,
// `leadscorer validate` and `leadscorer report` all build their validator
// from it.
func ValidatorConfig(ctx context.Context, cfg *config.Config, log *slog.Logger) (stream.Config, error) {
	kopts, err := kafkaOpts(cfg)
	if err != nil {
		return stream.Config{}, err
	}
	srcl, err := SchemaRegistryClient(cfg)
	if err != nil {
		return stream.Config{}, err
	}
	ids, err := schemas.Register(ctx, srcl, schemas.Topics{Shadow: cfg.TopicShadow, Outcomes: cfg.TopicOutcomes})
	if err != nil {
		return stream.Config{}, explainRegistryErr(cfg, err)
	}
	return stream.Config{
		Brokers: cfg.Brokers, ClientOpts: kopts,
		ShadowTopic: cfg.TopicShadow, OutcomeTopic: cfg.TopicOutcomes, RegistryTopic: cfg.TopicRegistry,
		Registry: cfg.Registry, Codec: schemas.NewCodec(srcl, ids), AutoRollback: cfg.AutoRollback, Logger: log,
		Report: stream.Options{Rule: RollbackRule(cfg)}, DetectionPeriods: stream.DetectionPeriods,
	}, nil
}

// startValidator builds the in-process validator of `run` (validate=true)
// and serves its dashboard on the service's protected endpoints.
func (s *Service) startValidator(ctx context.Context) error {
	vcfg, err := ValidatorConfig(ctx, s.cfg, s.log)
	if err != nil {
		return err
	}
	vcfg.Registerer = s.reg
	v, err := stream.New(vcfg)
	if err != nil {
		return err
	}
	s.validator = v
	h := stream.Handler(v.Report)
	s.Handle("GET /dashboard", h)
	s.Handle("GET /dashboard.json", h)
	return nil
}
