package scoring

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// The deployment checklist as the registry records it: the results of the
// pre-deployment gates stored with each version, who signed off what in
// the history, the promotion those allow, and the sunset of the version
// it replaced. The gates themselves are computed by package checklist;
// docs/REGISTRY.md describes every field.

// History actions of the checklist.
const (
	ActionCheck    = "check"    // the pre-deployment gates ran; status passed or failed
	ActionSignOff  = "signoff"  // someone approved a checklist item, named by signoff
	ActionOverride = "override" // a promotion went ahead with checklist items missing; the reason says which
	ActionSunset   = "sunset"   // the version was archived after its successor's week-2 sign-off
)

// Statuses of a check entry and of a stored CheckResult.
const (
	StatusPassed = "passed"
	StatusFailed = "failed"
)

// Sign-offs of the checklist: three before a promotion, two after it.
const (
	SignOffDataScience = "data-science" // model validated and ready
	SignOffEngineering = "engineering"  // pipeline tested and ready
	SignOffBusiness    = "business"     // business requirements met
	SignOffWeek1       = "week1"        // performance metrics validated
	SignOffWeek2       = "week2"        // no regressions detected
)

// PreDeploymentSignOffs must all be recorded, with passing gates, before
// PromoteChecked promotes a version.
var PreDeploymentSignOffs = []string{SignOffDataScience, SignOffEngineering, SignOffBusiness}

// PostDeploymentSignOffs are recorded for the production version after its
// promotion, in order; the week-2 one allows the sunset of its predecessor.
var PostDeploymentSignOffs = []string{SignOffWeek1, SignOffWeek2}

// SignOffItem is the checklist's wording of what a sign-off approves.
func SignOffItem(kind string) string {
	switch kind {
	case SignOffDataScience:
		return "model validated and ready"
	case SignOffEngineering:
		return "pipeline tested and ready"
	case SignOffBusiness:
		return "business requirements met"
	case SignOffWeek1:
		return "performance metrics validated"
	case SignOffWeek2:
		return "no regressions detected"
	}
	return ""
}

// GateThresholds are a version's limits for the pre-deployment gates, as
// gate_thresholds in the registry. A field left out takes its default from
// DefaultGateLimits.
type GateThresholds struct {
	MinAUCGain       *float64 `json:"min_auc_gain,omitempty"`
	MaxAUCP          *float64 `json:"max_auc_p,omitempty"`
	MinTopDecileLift *float64 `json:"min_top_decile_lift,omitempty"`
	MaxAUCGap        *float64 `json:"max_auc_gap,omitempty"`
	MaxSHAPError     *float64 `json:"max_shap_error,omitempty"`
	// MaxParityRows is the most rows of the trainer's parity export whose
	// score may differ from XGBoost's in any bit (default 0).
	MaxParityRows *float64 `json:"max_parity_rows,omitempty"`
	// MaxParityError is read from registries written before the parity
	// gate became exact, and not used: scores equal XGBoost's float32
	// predictions bit for bit, so a tolerance has nothing left to allow.
	MaxParityError *float64 `json:"max_parity_error,omitempty"`
	MaxPSI         *float64 `json:"max_psi,omitempty"`
}

// GateLimits are the resolved limits of the pre-deployment gates.
type GateLimits struct {
	// MinAUCGain: the test AUC must exceed the baseline's on the same
	// holdout by more than this.
	MinAUCGain float64
	// MaxAUCP: DeLong's one-sided p-value of "the version ranks no better
	// than the baseline" must be at most this; 1 (the default) does not
	// ask for significance, as the checklist does not.
	MaxAUCP float64
	// MinTopDecileLift: the top decile's lift on the holdout must exceed it.
	MinTopDecileLift float64
	// MaxAUCGap: train AUC minus test AUC must stay below it (overfitting).
	MaxAUCGap float64
	// MaxSHAPError: on every holdout row the TreeSHAP values must sum to
	// the margin within it.
	MaxSHAPError float64
	// MaxParityRows: at most this many rows of the trainer's parity
	// export may have a score that is not XGBoost's prediction, as a
	// float32, bit for bit (0: every row equal).
	MaxParityRows float64
	// MaxPSI: the population stability index of the holdout's scores
	// against the registry's reference distribution must stay below it.
	MaxPSI float64
}

// DefaultGateLimits are the checklist's figures (lift above 1.5x, AUC gap
// below 0.15, test AUC above the baseline's) and this project's choices
// where the checklist gives none; docs/REGISTRY.md gives the reasons.
var DefaultGateLimits = GateLimits{
	MinAUCGain:       0,
	MaxAUCP:          1,
	MinTopDecileLift: 1.5,
	MaxAUCGap:        0.15,
	MaxSHAPError:     1e-5,
	MaxParityRows:    0,
	MaxPSI:           0.10,
}

// GateLimits returns the version's gate limits: its gate_thresholds, and
// the defaults for any left out.
func (v *Version) GateLimits() GateLimits {
	l := DefaultGateLimits
	t := v.GateThresholds
	if t == nil {
		return l
	}
	for _, f := range []struct {
		src *float64
		dst *float64
	}{
		{t.MinAUCGain, &l.MinAUCGain}, {t.MaxAUCP, &l.MaxAUCP}, {t.MinTopDecileLift, &l.MinTopDecileLift}, {t.MaxAUCGap, &l.MaxAUCGap},
		{t.MaxSHAPError, &l.MaxSHAPError}, {t.MaxParityRows, &l.MaxParityRows}, {t.MaxPSI, &l.MaxPSI},
	} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	return l
}

func (t *GateThresholds) validate() error {
	if t == nil {
		return nil
	}
	for _, f := range []struct {
		name string
		v    *float64
	}{
		{"min_auc_gain", t.MinAUCGain}, {"max_auc_p", t.MaxAUCP}, {"min_top_decile_lift", t.MinTopDecileLift}, {"max_auc_gap", t.MaxAUCGap},
		{"max_shap_error", t.MaxSHAPError}, {"max_parity_rows", t.MaxParityRows}, {"max_parity_error", t.MaxParityError}, {"max_psi", t.MaxPSI},
	} {
		if f.v != nil && (math.IsNaN(*f.v) || math.IsInf(*f.v, 0) || *f.v < 0) {
			return fmt.Errorf("%s: %v is not a finite number >= 0", f.name, *f.v)
		}
	}
	return nil
}

// Gate is the result of one pre-deployment gate.
type Gate struct {
	Name      string `json:"name"`      // e.g. top_decile_lift
	Item      string `json:"item"`      // the checklist item it checks, in the checklist's words
	Figure    string `json:"figure"`    // what was measured, formatted ("1.97x"); "-" when nothing could be
	Threshold string `json:"threshold"` // what passes ("> 1.5x")
	Pass      bool   `json:"pass"`
	Detail    string `json:"detail,omitempty"` // how it was measured, or why it failed
	// Value is the figure as a number, when it is one and finite.
	Value *float64 `json:"value,omitempty"`
}

// CheckResult is the outcome of the pre-deployment gates on one version,
// stored with the version as checks.
type CheckResult struct {
	Time time.Time `json:"time"`
	By   string    `json:"by,omitempty"`
	// SHA256 is the model file the gates examined: a result for another
	// file does not allow a promotion.
	SHA256 string `json:"sha256"`
	// Baseline is the version the test AUC was compared with; empty when
	// there was none.
	Baseline string `json:"baseline,omitempty"`
	// Holdout is the labelled holdout file as given, with its SHA-256,
	// rows and conversions.
	Holdout            string `json:"holdout"`
	HoldoutSHA256      string `json:"holdout_sha256"`
	HoldoutRows        int    `json:"holdout_rows"`
	HoldoutConversions int    `json:"holdout_conversions"`
	// Passed is true when every gate passed.
	Passed bool   `json:"passed"`
	Gates  []Gate `json:"gates"`
}

// Failed returns the names of the gates that failed, in order.
func (c *CheckResult) Failed() []string {
	var out []string
	for _, g := range c.Gates {
		if !g.Pass {
			out = append(out, g.Name)
		}
	}
	return out
}

// Summary is the result in a few words: "10 of 10 gates passed" or
// "2 of 10 gates failed: top_decile_lift, parity".
func (c *CheckResult) Summary() string {
	failed := c.Failed()
	if len(failed) == 0 {
		return fmt.Sprintf("%d of %d gates passed", len(c.Gates), len(c.Gates))
	}
	return fmt.Sprintf("%d of %d gates failed: %s", len(failed), len(c.Gates), strings.Join(failed, ", "))
}

func (c *CheckResult) validate() error {
	switch {
	case c.Time.IsZero():
		return errors.New("time: missing")
	case len(c.Gates) == 0:
		return errors.New("gates: none")
	}
	if b, err := hex.DecodeString(c.SHA256); err != nil || len(b) != 32 {
		return fmt.Errorf("sha256: %q is not 64 hex digits", c.SHA256)
	}
	if c.Passed != (len(c.Failed()) == 0) {
		return fmt.Errorf("passed: %v, but the gates say %s", c.Passed, c.Summary())
	}
	for i, g := range c.Gates {
		if g.Name == "" {
			return fmt.Errorf("gates[%d]: name: empty", i)
		}
	}
	return nil
}

func (h HistoryEntry) validate() error {
	switch h.Action {
	case ActionSignOff:
		if !slices.Contains(PreDeploymentSignOffs, h.SignOff) && !slices.Contains(PostDeploymentSignOffs, h.SignOff) {
			return fmt.Errorf("signoff: %q is not one of %s", h.SignOff, strings.Join(append(slices.Clone(PreDeploymentSignOffs), PostDeploymentSignOffs...), ", "))
		}
		if h.By == "" {
			return errors.New("by: a sign-off names who signed")
		}
	case ActionCheck:
		if h.Status != StatusPassed && h.Status != StatusFailed {
			return fmt.Errorf("status: %q is not %s or %s", h.Status, StatusPassed, StatusFailed)
		}
	case ActionOverride, ActionSunset:
		if h.By == "" {
			return fmt.Errorf("by: %s names who did it", h.Action)
		}
	}
	return nil
}

// RecordCheck stores res as version name's latest gate results and records
// the check in the history (status passed or failed). res must be for the
// model file the registry names now.
func (r *Registry) RecordCheck(name string, res CheckResult) error {
	v, ok := r.Version(name)
	if !ok {
		return fmt.Errorf("registry: check: version %q is not in the registry", name)
	}
	if !strings.EqualFold(res.SHA256, v.SHA256) {
		return fmt.Errorf("registry: check: the gates examined model file %.12s, the registry names %.12s for %s", res.SHA256, v.SHA256, name)
	}
	res.Time = res.Time.UTC().Truncate(time.Second)
	res.Passed = len(res.Failed()) == 0
	if err := res.validate(); err != nil {
		return fmt.Errorf("registry: check: %w", err)
	}
	v.Checks = &res
	status := StatusFailed
	if res.Passed {
		status = StatusPassed
	}
	r.History = append(r.History, HistoryEntry{Time: res.Time, Action: ActionCheck, Version: name,
		Reason: res.Summary(), By: res.By, Status: status})
	return nil
}

// SignOff records that by approved checklist item kind for version name,
// with an optional note. A pre-deployment sign-off (data-science,
// engineering, business) is for a version that is not production; a
// post-deployment one (week1, week2) is for the production version, after
// its promotion and not before the stage's week (StageWeek) has ended,
// week2 after week1. Each counts once: a second sign-off of
// the same item is refused, naming the first.
func (r *Registry) SignOff(name, kind, by, note string, at time.Time) error {
	v, ok := r.Version(name)
	if !ok {
		return fmt.Errorf("registry: signoff: version %q is not in the registry", name)
	}
	by = strings.TrimSpace(by)
	if by == "" {
		return errors.New("registry: signoff: who signs is required")
	}
	switch {
	case slices.Contains(PreDeploymentSignOffs, kind):
		switch v.Role {
		case RoleProduction:
			return fmt.Errorf("registry: signoff %s: version %q is already production; pre-deployment sign-offs come before the promotion", kind, name)
		case RoleArchived:
			return fmt.Errorf("registry: signoff %s: version %q is archived", kind, name)
		}
	case slices.Contains(PostDeploymentSignOffs, kind):
		if v.Role != RoleProduction {
			return fmt.Errorf("registry: signoff %s: version %q is %s; post-deployment sign-offs are for the production version", kind, name, v.Role)
		}
		if _, ok := r.PromotedAt(name); !ok {
			return fmt.Errorf("registry: signoff %s: the history records no promotion of %q to follow up", kind, name)
		}
		if _, end, _ := r.StageWeek(name, kind); at.Before(end) {
			return fmt.Errorf("registry: signoff %s: %s's %s ends on %s (its verdict needs that week's outcomes): too early to sign", kind, name, kind, end.Format(time.DateOnly))
		}
		if kind == SignOffWeek2 {
			if _, ok := r.SignedOff(name, SignOffWeek1); !ok {
				return fmt.Errorf("registry: signoff week2: version %q has no week-1 sign-off since its promotion", name)
			}
		}
	default:
		return fmt.Errorf("registry: signoff: %q is not one of %s", kind, strings.Join(append(slices.Clone(PreDeploymentSignOffs), PostDeploymentSignOffs...), ", "))
	}
	if h, ok := r.SignedOff(name, kind); ok {
		return fmt.Errorf("registry: signoff %s: version %q was already signed off by %s on %s", kind, name, h.By, h.Time.Format(time.DateOnly))
	}
	r.History = append(r.History, HistoryEntry{Time: at.UTC().Truncate(time.Second), Action: ActionSignOff, Version: name,
		Reason: note, By: by, SignOff: kind})
	return nil
}

// StageWeek returns the calendar week a post-deployment stage of version
// name is about: week k is the k-th week (Monday 00:00 UTC to the next)
// starting at or after the version's latest promotion. ok is false
// without a recorded promotion or for another kind.
func (r *Registry) StageWeek(name, kind string) (start, end time.Time, ok bool) {
	k := slices.Index(PostDeploymentSignOffs, kind)
	since, promoted := r.PromotedAt(name)
	if k < 0 || !promoted {
		return time.Time{}, time.Time{}, false
	}
	y, m, d := since.UTC().Date()
	first := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	first = first.AddDate(0, 0, -((int(first.Weekday()) + 6) % 7)) // its Monday
	if first.Before(since) {
		first = first.AddDate(0, 0, 7)
	}
	start = first.AddDate(0, 0, 7*k)
	return start, start.AddDate(0, 0, 7), true
}

// SignedOff returns the sign-off of item kind for version name that counts
// now: a pre-deployment one recorded since the version's latest register
// entry (a retrained model needs new approvals), a post-deployment one
// since its latest promotion.
func (r *Registry) SignedOff(name, kind string) (HistoryEntry, bool) {
	post := slices.Contains(PostDeploymentSignOffs, kind)
	for i := len(r.History) - 1; i >= 0; i-- {
		h := r.History[i]
		if h.Version != name {
			continue
		}
		switch {
		case h.Action == ActionSignOff && h.SignOff == kind:
			return h, true
		case post && (h.Action == ActionPromote || h.Action == ActionRollback):
			return HistoryEntry{}, false // earlier ones followed an earlier promotion
		case !post && h.Action == ActionRegister:
			return HistoryEntry{}, false // earlier ones approved an earlier model
		}
	}
	return HistoryEntry{}, false
}

// PromotionBlockers lists what the checklist still lacks before version
// name may be promoted: passing gate results for its current model file
// and the three pre-deployment sign-offs. Empty when nothing is missing.
func (r *Registry) PromotionBlockers(name string) []string {
	v, ok := r.Version(name)
	if !ok {
		return []string{fmt.Sprintf("version %q is not in the registry", name)}
	}
	var missing []string
	switch c := v.Checks; {
	case c == nil:
		missing = append(missing, "pre-deployment gates not run (leadscorer registry check "+name+")")
	case !strings.EqualFold(c.SHA256, v.SHA256):
		missing = append(missing, fmt.Sprintf("gate results are for another model file (sha256 %.12s, the registry names %.12s): run the check again", c.SHA256, v.SHA256))
	case !c.Passed:
		missing = append(missing, "gates failed: "+strings.Join(c.Failed(), ", "))
	}
	for _, kind := range PreDeploymentSignOffs {
		if _, ok := r.SignedOff(name, kind); !ok {
			missing = append(missing, "sign-off "+kind+" missing")
		}
	}
	return missing
}

// PromotionRefusedError is PromoteChecked's refusal: what the checklist
// still lacks.
type PromotionRefusedError struct {
	Version string
	Missing []string
}

func (e *PromotionRefusedError) Error() string {
	return fmt.Sprintf("registry: promote %s refused: %s (--override --reason TEXT promotes anyway and records the override)", e.Version, strings.Join(e.Missing, "; "))
}

// PromoteChecked is the checklist's promotion: it promotes version name
// (as Promote) only when PromotionBlockers is empty, and otherwise returns a
// *PromotionRefusedError naming each missing item. With a non-empty
// override reason it promotes anyway and records an override entry (by,
// the reason and what was missing) before the promotion. by is recorded
// with the promotion; an override requires it.
//
// Promote itself stays the unchecked role change: the validator's
// automatic rollback (Rollback) is never blocked by sign-offs.
func (r *Registry) PromoteChecked(name, reason, by string, at time.Time, override string) error {
	v, ok := r.Version(name)
	if !ok {
		return fmt.Errorf("registry: promote: version %q is not in the registry", name)
	}
	if v.Role == RoleProduction {
		return fmt.Errorf("registry: promote: version %q is already production", name)
	}
	by = strings.TrimSpace(by)
	missing := r.PromotionBlockers(name)
	if len(missing) > 0 {
		if strings.TrimSpace(override) == "" {
			return &PromotionRefusedError{Version: name, Missing: missing}
		}
		if by == "" {
			return errors.New("registry: promote: an override names who takes it (--by)")
		}
	}
	n := len(r.History)
	if err := r.Promote(name, reason, at); err != nil {
		return err
	}
	r.History[n].By = by
	if len(missing) > 0 {
		r.History = slices.Insert(r.History, n, HistoryEntry{Time: at.UTC().Truncate(time.Second), Action: ActionOverride,
			Version: name, Reason: strings.TrimSpace(override) + " (missing: " + strings.Join(missing, "; ") + ")", By: by})
	}
	return nil
}

// Sunset is the checklist's last step for a replaced version: it archives
// version name (its model is no longer read, so a reloading scorer stops
// scoring it, and a rollback can no longer return to it) and records the
// sunset. It is refused while name is production, and while the production
// version lacks its week-2 sign-off (no regressions detected) since its
// promotion.
func (r *Registry) Sunset(name, by, reason string, at time.Time) error {
	v, ok := r.Version(name)
	if !ok {
		return fmt.Errorf("registry: sunset: version %q is not in the registry", name)
	}
	by = strings.TrimSpace(by)
	if by == "" {
		return errors.New("registry: sunset: who sunsets is required")
	}
	switch v.Role {
	case RoleProduction:
		return fmt.Errorf("registry: sunset: version %q is production; promote its successor first", name)
	case RoleArchived:
		return fmt.Errorf("registry: sunset: version %q is already archived", name)
	}
	prod := r.Production()
	if prod == nil {
		return errors.New("registry: sunset: no production version")
	}
	w2, ok := r.SignedOff(prod.Name, SignOffWeek2)
	if !ok {
		since := "the history records no promotion of it"
		if at, ok := r.PromotedAt(prod.Name); ok {
			since = "promoted " + at.Format(time.DateOnly)
		}
		return fmt.Errorf("registry: sunset %s refused: production version %s (%s) has no week-2 sign-off (no regressions detected) yet", name, prod.Name, since)
	}
	if strings.TrimSpace(reason) == "" {
		reason = fmt.Sprintf("replaced by %s; its week 2 signed off by %s on %s", prod.Name, w2.By, w2.Time.Format(time.DateOnly))
	}
	v.Role = RoleArchived
	v.Model = nil
	r.History = append(r.History, HistoryEntry{Time: at.UTC().Truncate(time.Second), Action: ActionSunset, Version: name, Reason: reason, By: by})
	return nil
}

// StatusPending marks a checklist item Pending lists.
const StatusPending = "pending"

// Pending lists the checklist items still open, as history entries without
// a time, status pending (failed for gates that ran and failed), in
// checklist order:
//   - for each candidate (a shadow version not production since it was
//     registered): the gates, each missing pre-deployment sign-off, the
//     promotion;
//   - for the production version, once promoted: the week-1 and week-2
//     sign-offs it lacks, then the sunset of every version that was
//     production before it and is not archived yet.
func (r *Registry) Pending() []HistoryEntry {
	var out []HistoryEntry
	item := func(action, version, signoff, status, reason string) {
		out = append(out, HistoryEntry{Action: action, Version: version, SignOff: signoff, Status: status, Reason: reason})
	}
	for _, v := range r.Versions {
		if v.Role != RoleShadow || r.wasProductionSinceRegister(v.Name) {
			continue
		}
		switch c := v.Checks; {
		case c == nil || !strings.EqualFold(c.SHA256, v.SHA256):
			item(ActionCheck, v.Name, "", StatusPending, "pre-deployment gates")
		case !c.Passed:
			item(ActionCheck, v.Name, "", StatusFailed, c.Summary())
		}
		for _, kind := range PreDeploymentSignOffs {
			if _, ok := r.SignedOff(v.Name, kind); !ok {
				item(ActionSignOff, v.Name, kind, StatusPending, SignOffItem(kind))
			}
		}
		item(ActionPromote, v.Name, "", StatusPending, "production rollout")
	}
	prod := r.Production()
	if prod == nil {
		return out
	}
	if _, ok := r.PromotedAt(prod.Name); ok {
		for _, kind := range PostDeploymentSignOffs {
			if _, ok := r.SignedOff(prod.Name, kind); !ok {
				item(ActionSignOff, prod.Name, kind, StatusPending, SignOffItem(kind))
			}
		}
		for _, v := range r.Versions {
			if v != prod && v.Role != RoleArchived && r.wasProductionSinceRegister(v.Name) {
				item(ActionSunset, v.Name, "", StatusPending, "after "+prod.Name+"'s week-2 sign-off")
			}
		}
	}
	return out
}

// wasProductionSinceRegister reports whether the history shows version name
// leaving production (a demote, or a deprecate after a rollback) since its
// latest register entry.
func (r *Registry) wasProductionSinceRegister(name string) bool {
	for i := len(r.History) - 1; i >= 0; i-- {
		h := r.History[i]
		if h.Version != name {
			continue
		}
		switch h.Action {
		case ActionRegister:
			return false
		case ActionPromote, ActionRollback, ActionDemote:
			return true
		}
	}
	return false
}
