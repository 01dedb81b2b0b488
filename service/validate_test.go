package service

import (
	"testing"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/validation"
)

// The rollback settings' defaults are the rule the simulation in
// docs/VALIDATION.md chose, and each setting reaches its field of the rule.
func TestRollbackRuleOfTheSettings(t *testing.T) {
	if got := RollbackRule(config.Default()); got != validation.DefaultEvidenceRule {
		t.Errorf("the default settings give %+v, want validation.DefaultEvidenceRule %+v", got, validation.DefaultEvidenceRule)
	}
	cfg := config.Default()
	cfg.RollbackWindowWeeks, cfg.RollbackMinConversions, cfg.RollbackConfidence, cfg.RollbackAUCConfidence = 6, 40, 0.9, 0.8
	want := validation.EvidenceRule{WindowWeeks: 6, MinConversions: 40, Confidence: 0.9, AUCConfidence: 0.8}
	if got := RollbackRule(cfg); got != want {
		t.Errorf("RollbackRule = %+v, want %+v", got, want)
	}
}
