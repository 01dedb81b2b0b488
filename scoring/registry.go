package scoring

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Roles a version plays; see docs/REGISTRY.md.
const (
	RoleProduction = "production" // scores every event and writes to Salesforce; exactly one
	RoleShadow     = "shadow"     // scores every event for comparison only
	RoleDeprecated = "deprecated" // kept, and loaded, so that a rollback can return to it
	RoleArchived   = "archived"   // kept for the record; its model file is not read
)

// Model file formats.
const (
	FormatXGBoostJSON  = "xgboost-json"
	FormatLightGBMText = "lightgbm-text"
)

// NumCutPoints is the number of reference cut points a version carries:
// they split the reference scores into 100 percentiles.
const NumCutPoints = 99

// Registry is the parsed models/registry.json: every model version the
// service knows, the role each plays, and the append-only history of
// changes. It marshals back to the same JSON. A loaded Registry is not
// modified by this package and is safe for concurrent reads.
type Registry struct {
	Versions []*Version     `json:"versions"`
	History  []HistoryEntry `json:"history"`

	revision string // hex SHA-256 of the file content it was read from
}

// Revision is the hex SHA-256 of the file content the registry was read
// from: EditRegistryIf replaces the file only while it still has this
// content. Empty for a registry not read from a file.
func (r *Registry) Revision() string { return r.revision }

// HistoryEntry is one change of the registry: the deployment checklist's
// change log.
type HistoryEntry struct {
	Time    time.Time `json:"time"`
	Action  string    `json:"action"`
	Version string    `json:"version"`
	Reason  string    `json:"reason"`
	// By is who made the change or signed; required for sign-offs,
	// overrides and sunsets.
	By string `json:"by,omitempty"`
	// SignOff is what a signoff entry approves: a pre-deployment role
	// (data-science, engineering, business) or a post-deployment stage
	// (week1, week2).
	SignOff string `json:"signoff,omitempty"`
	// Status is a check entry's outcome: passed or failed.
	Status string `json:"status,omitempty"`
}

// Thresholds are the percentile cut-offs of the business rules.
type Thresholds struct {
	// DeprioritizePercentile: a lead at or below it is not called.
	DeprioritizePercentile int `json:"deprioritize_percentile"`
	// UpgradePercentile: a lead at or above it is an upgrade candidate.
	UpgradePercentile int `json:"upgrade_percentile"`
}

// Version is one model version of the registry. Model is nil for archived
// versions, whose files are not read.
type Version struct {
	Name         string
	Role         string
	Format       string
	Path         string // model file, relative to the registry file's folder
	SHA256       string // hex SHA-256 of the model file
	Features     []string
	Descriptions map[string]string // feature -> "phrase|phrase when 0|phrase when missing", with {value}
	Metrics      map[string]float64
	Thresholds   Thresholds
	CutPoints    []float64 // 99 ascending reference scores
	// GateThresholds are the limits of the pre-deployment gates; nil or a
	// field left out takes the checklist's default (GateLimits).
	GateThresholds *GateThresholds
	// Checks is the latest result of the pre-deployment gates on this
	// version; nil until `leadscorer registry check` has run.
	Checks *CheckResult
	Model  Model
}

// versionJSON is Version as docs/REGISTRY.md spells it.
type versionJSON struct {
	Version      string             `json:"version"`
	Role         string             `json:"role"`
	Format       string             `json:"format"`
	Path         string             `json:"path"`
	SHA256       string             `json:"sha256"`
	Features     []string           `json:"features"`
	Descriptions map[string]string  `json:"feature_descriptions,omitempty"`
	Metrics      map[string]float64 `json:"metrics,omitempty"`
	Thresholds   Thresholds         `json:"thresholds"`
	Reference    struct {
		CutPoints []float64 `json:"cut_points"`
	} `json:"reference"`
	GateThresholds *GateThresholds `json:"gate_thresholds,omitempty"`
	Checks         *CheckResult    `json:"checks,omitempty"`
}

// MarshalJSON writes the version with the field names of docs/REGISTRY.md.
func (v *Version) MarshalJSON() ([]byte, error) {
	j := versionJSON{
		Version: v.Name, Role: v.Role, Format: v.Format, Path: v.Path, SHA256: v.SHA256,
		Features: v.Features, Descriptions: v.Descriptions, Metrics: v.Metrics, Thresholds: v.Thresholds,
		GateThresholds: v.GateThresholds, Checks: v.Checks,
	}
	j.Reference.CutPoints = v.CutPoints
	return json.Marshal(j)
}

// UnmarshalJSON reads the version with the field names of docs/REGISTRY.md;
// unknown fields are refused so that a misspelt key cannot pass unnoticed.
func (v *Version) UnmarshalJSON(b []byte) error {
	var j versionJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	*v = Version{
		Name: j.Version, Role: j.Role, Format: j.Format, Path: j.Path, SHA256: j.SHA256,
		Features: j.Features, Descriptions: j.Descriptions, Metrics: j.Metrics,
		Thresholds: j.Thresholds, CutPoints: j.Reference.CutPoints,
		GateThresholds: j.GateThresholds, Checks: j.Checks,
	}
	return nil
}

// LoadRegistry reads and validates the registry file at path and loads the
// model of every version that is not archived, verifying its SHA-256 and
// that its features equal the version's. Any problem fails the whole
// registry with an error naming the version and the field.
func LoadRegistry(path string) (*Registry, error) {
	r, err := ReadRegistry(path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	for _, v := range r.Versions {
		if v.Role == RoleArchived {
			continue
		}
		if err := v.load(dir); err != nil {
			return nil, fmt.Errorf("registry: version %q: %w", v.Name, err)
		}
	}
	return r, nil
}

// ReadRegistry reads and validates the registry file at path like
// LoadRegistry but reads no model file: every Version.Model is nil. The
// pre-deployment gates use it to examine a version whose model may be
// missing or broken (they load it themselves), which LoadRegistry would
// refuse as a whole.
func ReadRegistry(path string) (*Registry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	var r Registry
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("registry: %s: %w", path, err)
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	r.revision = hex.EncodeToString(sum[:])
	return &r, nil
}

// validate checks everything that does not need the model files.
func (r *Registry) validate() error {
	if len(r.Versions) == 0 {
		return errors.New("registry: versions: none listed")
	}
	seen := map[string]bool{}
	var production []string
	for i, v := range r.Versions {
		if v == nil {
			return fmt.Errorf("registry: versions[%d]: null", i)
		}
		if v.Name == "" {
			return fmt.Errorf("registry: versions[%d]: version: empty name", i)
		}
		if seen[v.Name] {
			return fmt.Errorf("registry: version %q: version: listed twice", v.Name)
		}
		seen[v.Name] = true
		if err := v.validate(); err != nil {
			return fmt.Errorf("registry: version %q: %w", v.Name, err)
		}
		if v.Role == RoleProduction {
			production = append(production, v.Name)
		}
	}
	switch len(production) {
	case 0:
		return errors.New("registry: role: no production version (exactly one is required)")
	case 1:
	default:
		return fmt.Errorf("registry: role: %d production versions %q (exactly one is required)", len(production), production)
	}
	for i, h := range r.History {
		switch {
		case h.Time.IsZero():
			return fmt.Errorf("registry: history[%d]: time: missing", i)
		case h.Action == "":
			return fmt.Errorf("registry: history[%d]: action: missing", i)
		case h.Version == "":
			return fmt.Errorf("registry: history[%d]: version: missing", i)
		}
		if err := h.validate(); err != nil {
			return fmt.Errorf("registry: history[%d]: %w", i, err)
		}
	}
	return nil
}

func (v *Version) validate() error {
	switch v.Role {
	case RoleProduction, RoleShadow, RoleDeprecated, RoleArchived:
	default:
		return fmt.Errorf("role: %q is not production, shadow, deprecated or archived", v.Role)
	}
	switch v.Format {
	case FormatXGBoostJSON, FormatLightGBMText:
	default:
		return fmt.Errorf("format: %q is not %s or %s", v.Format, FormatXGBoostJSON, FormatLightGBMText)
	}
	if v.Path == "" {
		return errors.New("path: empty")
	}
	if filepath.IsAbs(v.Path) {
		return fmt.Errorf("path: %q must be relative to the registry file's folder", v.Path)
	}
	if _, err := hex.DecodeString(v.SHA256); err != nil || len(v.SHA256) != 2*sha256.Size {
		return fmt.Errorf("sha256: %q is not 64 hex digits", v.SHA256)
	}
	if len(v.Features) == 0 {
		return errors.New("features: empty")
	}
	names := map[string]bool{}
	for _, f := range v.Features {
		if names[f] {
			return fmt.Errorf("features: %q listed twice", f)
		}
		names[f] = true
	}
	for f := range v.Descriptions {
		if !names[f] {
			return fmt.Errorf("feature_descriptions: %q is not one of the features", f)
		}
	}
	t := v.Thresholds
	if t.DeprioritizePercentile < 1 || t.DeprioritizePercentile > 100 {
		return fmt.Errorf("thresholds.deprioritize_percentile: %d is outside 1..100", t.DeprioritizePercentile)
	}
	if t.UpgradePercentile < 1 || t.UpgradePercentile > 100 {
		return fmt.Errorf("thresholds.upgrade_percentile: %d is outside 1..100", t.UpgradePercentile)
	}
	if t.DeprioritizePercentile >= t.UpgradePercentile {
		return fmt.Errorf("thresholds: deprioritize_percentile %d is not below upgrade_percentile %d", t.DeprioritizePercentile, t.UpgradePercentile)
	}
	if len(v.CutPoints) != NumCutPoints {
		return fmt.Errorf("reference.cut_points: %d values, want %d", len(v.CutPoints), NumCutPoints)
	}
	for k, c := range v.CutPoints {
		if math.IsNaN(c) || math.IsInf(c, 0) {
			return fmt.Errorf("reference.cut_points[%d]: %v is not finite", k, c)
		}
		if k > 0 && c < v.CutPoints[k-1] {
			return fmt.Errorf("reference.cut_points[%d]: %v is below cut_points[%d] %v (must ascend)", k, c, k-1, v.CutPoints[k-1])
		}
	}
	if err := v.GateThresholds.validate(); err != nil {
		return fmt.Errorf("gate_thresholds.%w", err)
	}
	if v.Checks != nil {
		if err := v.Checks.validate(); err != nil {
			return fmt.Errorf("checks: %w", err)
		}
	}
	return nil
}

// load reads the version's model file, checks its SHA-256 and features.
func (v *Version) load(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, v.Path))
	if err != nil {
		return fmt.Errorf("path: %w", err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != strings.ToLower(v.SHA256) {
		return fmt.Errorf("sha256: file has %s, registry says %s", got, v.SHA256)
	}
	var m Model
	switch v.Format {
	case FormatXGBoostJSON:
		m, err = LoadXGBoostJSON(bytes.NewReader(b))
	case FormatLightGBMText:
		m, err = LoadLightGBM(bytes.NewReader(b))
	}
	if err != nil {
		return fmt.Errorf("path %s: %w", v.Path, err)
	}
	if err := sameFeatures(v.Features, m.FeatureNames()); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	v.Model = m
	return nil
}

func sameFeatures(registry, model []string) error {
	for i := 0; i < max(len(registry), len(model)); i++ {
		var r, m string
		if i < len(registry) {
			r = registry[i]
		}
		if i < len(model) {
			m = model[i]
		}
		if r != m {
			return fmt.Errorf("position %d is %q in the registry but %q in the model (%d registry features, %d model features)", i, r, m, len(registry), len(model))
		}
	}
	return nil
}

// Production returns the production version.
func (r *Registry) Production() *Version {
	for _, v := range r.Versions {
		if v.Role == RoleProduction {
			return v
		}
	}
	return nil
}

// Serving returns the versions that score every event: production first,
// then the shadows in file order.
func (r *Registry) Serving() []*Version {
	out := []*Version{r.Production()}
	for _, v := range r.Versions {
		if v.Role == RoleShadow {
			out = append(out, v)
		}
	}
	return out
}

// Version returns the version with the given name.
func (r *Registry) Version(name string) (*Version, bool) {
	for _, v := range r.Versions {
		if v.Name == name {
			return v, true
		}
	}
	return nil, false
}

// Percentile places a score within the version's reference population:
// 1 + the number of cut points at or below the score, 1..100. For a row of
// the reference population it equals ceil(100 x (rows scoring <= s) / n),
// so ties share a percentile. A NaN score gets 1.
func (v *Version) Percentile(score float64) int {
	// cut points ascend: those <= score are a prefix.
	return 1 + sort.Search(len(v.CutPoints), func(k int) bool { return !(score >= v.CutPoints[k]) })
}

// Decile returns ceil(percentile / 10), 1..10, for a percentile in 1..100.
func Decile(percentile int) int {
	return (min(max(percentile, 1), 100) + 9) / 10
}

// Deprioritize reports whether a lead at this percentile is not called.
func (v *Version) Deprioritize(percentile int) bool {
	return percentile <= v.Thresholds.DeprioritizePercentile
}

// Upgrade reports whether a lead at this percentile is an upgrade candidate.
func (v *Version) Upgrade(percentile int) bool {
	return percentile >= v.Thresholds.UpgradePercentile
}

// Factor is one feature's part in a score.
type Factor struct {
	Feature      string
	Index        int     // the feature's position in the version's features
	Value        float64 // the feature's value; NaN when missing
	Contribution float64 // its SHAP value, in margin units
	Phrase       string  // the version's description with {value} substituted
}

// TopFactors fills dst with the len(dst) features of largest
// |contribution| (ties by feature order), largest first, and returns the
// filled prefix (shorter when the model has fewer features). x is the row
// and contrib its Contributions (the bias, last, is never a factor). The
// phrase is the feature's description with {value} replaced by the value
// (integers without decimals, otherwise at most two decimals, "unknown"
// when missing), or "feature = value" without a description.
func (v *Version) TopFactors(x, contrib []float64, dst []Factor) []Factor {
	dst = v.TopContributions(x, contrib, dst)
	for i := range dst {
		dst[i].Phrase = v.Phrase(dst[i].Feature, dst[i].Value)
	}
	return dst
}

// TopContributions is TopFactors without the phrases (Phrase is left
// empty), so it allocates nothing: a caller that keeps phrases by feature
// and value renders each one once (Phrase).
func (v *Version) TopContributions(x, contrib []float64, dst []Factor) []Factor {
	nf := min(len(v.Features), len(contrib), len(x))
	n := min(len(dst), nf)
	k := 0 // dst[:k] is filled, by |contribution| descending
	for i := range nf {
		a := math.Abs(contrib[i])
		if k == n {
			if n == 0 || !(a > math.Abs(dst[n-1].Contribution)) {
				continue
			}
			k-- // the smallest gives way
		}
		j := k
		for j > 0 && a > math.Abs(dst[j-1].Contribution) {
			dst[j] = dst[j-1]
			j--
		}
		dst[j] = Factor{Feature: v.Features[i], Index: i, Value: x[i], Contribution: contrib[i]}
		k++
	}
	return dst[:k]
}

// Phrase renders a feature's description for a value. A description is
// up to three alternatives separated by "|": the phrase for a value, the
// phrase when the value is 0, the phrase when it is missing; "{value}" in
// any of them is replaced by the value. Without a zero or missing
// alternative the first one serves; without a description the phrase is
// "feature = value".
func (v *Version) Phrase(feature string, value float64) string {
	s := formatValue(value)
	d, ok := v.Descriptions[feature]
	if !ok {
		return feature + " = " + s
	}
	alts := strings.SplitN(d, "|", 3)
	text := alts[0]
	switch {
	case math.IsNaN(value) && len(alts) == 3:
		text = alts[2]
	case value == 0 && len(alts) >= 2:
		text = alts[1]
	}
	return strings.ReplaceAll(text, "{value}", s)
}

func formatValue(x float64) string {
	switch {
	case math.IsNaN(x):
		return "unknown"
	case x == math.Trunc(x) && math.Abs(x) < 1e15:
		return strconv.FormatFloat(x, 'f', 0, 64)
	default:
		s := strconv.FormatFloat(x, 'f', 2, 64)
		return strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
}
