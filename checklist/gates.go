// Package checklist evaluates the pre-deployment gates of the deployment
// checklist on a model version of the registry, from its model file, a
// labelled holdout and the trainer's parity export: the file is there,
// unchanged and loads; its features are the registry's and our feature
// code's; it beats the baseline's test AUC; its top-decile lift and its
// train-test AUC gap are within the checklist's limits; its explanations
// add up; its scores equal the trainer's; its score distribution matches
// the registry's reference. Each gate is a scoring.Gate (figure, threshold,
// pass, detail); the result is stored with the version by
// scoring.Registry.RecordCheck, and a promotion needs it to pass.
//
// The package imports scoring, features and validation, neither Kafka nor
// Redis; docs/REGISTRY.md lists the gates and why their limits are what
// they are.
package checklist

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/leadscorer/leadscorer/features"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/leadscorer/leadscorer/validation"
)

// Gate names, in the order Check evaluates them.
const (
	GateModelFile         = "model_file"
	GateModelSHA256       = "model_sha256"
	GateModelLoads        = "model_loads"
	GateFeatures          = "features"
	GateAUCVsBaseline     = "auc_vs_baseline"
	GateTopDecileLift     = "top_decile_lift"
	GateOverfitting       = "overfitting"
	GateExplanations      = "explanations"
	GateParity            = "parity"
	GateScoreDistribution = "score_distribution"
)

// GateNames lists every gate in order.
var GateNames = []string{GateModelFile, GateModelSHA256, GateModelLoads, GateFeatures, GateAUCVsBaseline,
	GateTopDecileLift, GateOverfitting, GateExplanations, GateParity, GateScoreDistribution}

// items are the checklist's words for what each gate checks.
var items = map[string]string{
	GateModelFile:         "Production model directory created: model file present",
	GateModelSHA256:       "Registry updated: the file is the one registered (sha256)",
	GateModelLoads:        "Model loads with our evaluator",
	GateFeatures:          "Feature list validated: model = registry = our feature code",
	GateAUCVsBaseline:     "Test AUC > baseline",
	GateTopDecileLift:     "Top decile lift > 1.5x",
	GateOverfitting:       "Overfitting controlled: train AUC - test AUC below the limit",
	GateExplanations:      "SHAP interpretability: TreeSHAP values sum to the margin",
	GateParity:            "Verify scores match local inference results",
	GateScoreDistribution: "Verify score distribution matches expected",
}

// Options say what to check and with what.
type Options struct {
	// Registry is the registry read with scoring.ReadRegistry or
	// LoadRegistry (the gates read the model files themselves);
	// RegistryPath locates the model files, relative to its folder.
	Registry     *scoring.Registry
	RegistryPath string
	// Version is the version to check.
	Version string
	// Baseline is the version whose test AUC must be beaten on the same
	// holdout. Empty: the production version, or when Version is the
	// production version, the one it replaced (the history's latest
	// demote).
	Baseline string
	// Holdout is the labelled holdout (ReadHoldout).
	Holdout *Holdout
	// ParityDir holds the trainer's export per version:
	// <ParityDir>/<version>/features.csv and predictions.csv.
	ParityDir string
	// Time and By are recorded with the result.
	Time time.Time
	By   string
}

// DefaultBaseline returns the baseline Check compares version with when
// none is given: the production version, or when version is production,
// the version it replaced; "" when there is none.
func DefaultBaseline(r *scoring.Registry, version string) string {
	if p := r.Production(); p != nil && p.Name != version {
		return p.Name
	}
	for i := len(r.History) - 1; i >= 0; i-- {
		h := r.History[i]
		if h.Action == scoring.ActionDemote && h.Version != version {
			if _, ok := r.Version(h.Version); ok {
				return h.Version
			}
		}
	}
	return ""
}

// Check evaluates every gate on opts.Version. It fails only when it cannot
// start (an unknown version or baseline, no holdout); a failing gate is a
// result, not an error.
func Check(opts Options) (scoring.CheckResult, error) {
	r := opts.Registry
	v, ok := r.Version(opts.Version)
	if !ok {
		return scoring.CheckResult{}, fmt.Errorf("check: version %q is not in the registry", opts.Version)
	}
	if opts.Holdout == nil {
		return scoring.CheckResult{}, errors.New("check: no holdout")
	}
	baseline := opts.Baseline
	if baseline == "" {
		baseline = DefaultBaseline(r, v.Name)
	}
	var base *scoring.Version
	if baseline != "" {
		if baseline == v.Name {
			return scoring.CheckResult{}, fmt.Errorf("check: %s cannot be its own baseline", v.Name)
		}
		if base, ok = r.Version(baseline); !ok {
			return scoring.CheckResult{}, fmt.Errorf("check: baseline %q is not in the registry", baseline)
		}
	}
	at := opts.Time
	if at.IsZero() {
		at = time.Now()
	}
	c := &checker{opts: opts, v: v, base: base, lim: v.GateLimits(), dir: filepath.Dir(opts.RegistryPath), h: opts.Holdout}
	c.run()
	res := scoring.CheckResult{Time: at.UTC().Truncate(time.Second), By: opts.By, SHA256: strings.ToLower(v.SHA256), Baseline: baseline,
		Holdout: opts.Holdout.Path, HoldoutSHA256: opts.Holdout.SHA256, HoldoutRows: opts.Holdout.Rows(),
		HoldoutConversions: opts.Holdout.Conversions(), Gates: c.gates}
	res.Passed = len(res.Failed()) == 0
	return res, nil
}

type checker struct {
	opts  Options
	v     *scoring.Version
	base  *scoring.Version
	lim   scoring.GateLimits
	dir   string
	h     *Holdout
	gates []scoring.Gate

	model  scoring.Model
	x      [][]float64 // the holdout in the version's feature order
	scores []float64
	stats  validation.Stats
}

func (c *checker) add(name, figure, threshold string, pass bool, detail string, value float64) {
	g := scoring.Gate{Name: name, Item: items[name], Figure: figure, Threshold: threshold, Pass: pass, Detail: detail}
	if !math.IsNaN(value) && !math.IsInf(value, 0) {
		g.Value = &value
	}
	c.gates = append(c.gates, g)
}

// figure formats a measured value; "n/a" when it is undefined (an AUC
// without conversions, a sum of NaN contributions).
func figure(format string, v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf(format, v)
}

// fail records a gate that could not be measured.
func (c *checker) fail(name, threshold, why string) {
	c.add(name, "-", threshold, false, why, math.NaN())
}

func (c *checker) run() {
	lim := c.lim
	thresholds := map[string]string{
		GateAUCVsBaseline:     "> baseline",
		GateTopDecileLift:     fmt.Sprintf("> %.2fx", lim.MinTopDecileLift),
		GateOverfitting:       fmt.Sprintf("< %g", lim.MaxAUCGap),
		GateExplanations:      fmt.Sprintf("<= %g", lim.MaxSHAPError),
		GateParity:            fmt.Sprintf("<= %g rows differ", lim.MaxParityRows),
		GateScoreDistribution: fmt.Sprintf("< %g", lim.MaxPSI),
	}
	if c.base != nil {
		thresholds[GateAUCVsBaseline] = "> " + c.base.Name
		if lim.MinAUCGain > 0 {
			thresholds[GateAUCVsBaseline] += fmt.Sprintf(" + %g", lim.MinAUCGain)
		}
		if lim.MaxAUCP < 1 {
			thresholds[GateAUCVsBaseline] = fmt.Sprintf("DeLong p <= %g, %s", lim.MaxAUCP, thresholds[GateAUCVsBaseline])
		}
	}
	// What the later gates need, and why they cannot run without it.
	rest := []string{GateAUCVsBaseline, GateTopDecileLift, GateOverfitting, GateExplanations, GateParity, GateScoreDistribution}
	failRest := func(why string) {
		for _, name := range rest {
			c.fail(name, thresholds[name], why)
		}
	}

	m, ok := c.modelGates()
	c.featuresGate(m)
	if !ok {
		failRest("not evaluated: the model does not load")
		return
	}
	c.model = m
	x, err := c.h.Matrix(c.v.Features)
	if err != nil {
		failRest("not evaluated: " + err.Error())
		return
	}
	c.x = x
	c.scores = make([]float64, len(x))
	rows := make([]validation.Row, len(x))
	for i, row := range x {
		c.scores[i] = m.Score(row)
		rows[i] = validation.Row{Score: c.scores[i], Converted: c.h.Converted[i]}
	}
	c.stats, err = validation.Compute(rows)
	if err != nil {
		failRest("not evaluated: " + err.Error())
		return
	}
	c.aucGate(thresholds[GateAUCVsBaseline])
	c.liftGate(thresholds[GateTopDecileLift])
	c.overfittingGate(thresholds[GateOverfitting])
	c.explanationsGate(thresholds[GateExplanations])
	c.parityGate(thresholds[GateParity])
	c.distributionGate(thresholds[GateScoreDistribution])
}

// modelGates: the file is there, is the registered one, and loads.
func (c *checker) modelGates() (scoring.Model, bool) {
	v := c.v
	path := filepath.Join(c.dir, v.Path)
	b, err := os.ReadFile(path)
	if err != nil {
		c.add(GateModelFile, "missing", "present", false, fmt.Sprintf("%s: %v", v.Path, err), math.NaN())
		c.fail(GateModelSHA256, "= registry", "not evaluated: no model file")
		c.fail(GateModelLoads, "loads", "not evaluated: no model file")
		return nil, false
	}
	c.add(GateModelFile, "present", "present", true, fmt.Sprintf("%s, %d bytes", v.Path, len(b)), math.NaN())
	sum := sha256.Sum256(b)
	got := hex.EncodeToString(sum[:])
	shaOK := got == strings.ToLower(v.SHA256)
	detail := "sha256 " + got
	if !shaOK {
		detail = fmt.Sprintf("the file's sha256 is %s, the registry says %s: the file changed after registration", got, v.SHA256)
	}
	c.add(GateModelSHA256, got[:12], "= registry "+strings.ToLower(v.SHA256)[:min(12, len(v.SHA256))], shaOK, detail, math.NaN())
	m, err := loadModel(v.Format, b)
	if err != nil {
		c.add(GateModelLoads, "refused", "loads", false, err.Error(), math.NaN())
		return nil, false
	}
	detail = v.Format
	if x, ok := m.(*scoring.XGBoost); ok {
		detail = fmt.Sprintf("%s, %s, %d trees", v.Format, x.Objective(), x.NumTrees())
	}
	c.add(GateModelLoads, "loads", "loads", true, detail, math.NaN())
	// A file that is not the registered one is measured all the same: the
	// figures show what it would do, and the sha256 gate fails the check.
	return m, true
}

func loadModel(format string, b []byte) (scoring.Model, error) {
	switch format {
	case scoring.FormatXGBoostJSON:
		return scoring.LoadXGBoostJSON(bytes.NewReader(b))
	case scoring.FormatLightGBMText:
		return scoring.LoadLightGBM(bytes.NewReader(b))
	}
	return nil, fmt.Errorf("format %q has no evaluator", format)
}

// featuresGate: the registry's list equals the model's, name for name and
// in order, every feature is one our feature code computes, and none is
// listed twice. m is nil when the model did not load.
func (c *checker) featuresGate(m scoring.Model) {
	reg := c.v.Features
	var problems []string
	if m == nil {
		problems = append(problems, "the model did not load, so its feature list is unknown")
	} else {
		model := m.FeatureNames()
		if extra := minus(model, reg); len(extra) > 0 {
			problems = append(problems, "the model has features the registry lacks: "+strings.Join(extra, ", "))
		}
		if missing := minus(reg, model); len(missing) > 0 {
			problems = append(problems, "the registry lists features the model lacks: "+strings.Join(missing, ", "))
		}
		if len(problems) == 0 && !slices.Equal(model, reg) {
			for i := range reg {
				if reg[i] != model[i] {
					problems = append(problems, fmt.Sprintf("order differs: position %d is %s in the registry, %s in the model", i, reg[i], model[i]))
					break
				}
			}
		}
	}
	var unknown []string
	seen := map[string]bool{}
	for _, f := range reg {
		if seen[f] {
			problems = append(problems, "listed twice: "+f)
		}
		seen[f] = true
		if _, ok := features.Lookup(f); !ok {
			unknown = append(unknown, f)
		}
	}
	if len(unknown) > 0 {
		problems = append(problems, "not computed by our feature code: "+strings.Join(unknown, ", "))
	}
	detail := "model = registry = feature code, in order"
	if len(problems) > 0 {
		detail = strings.Join(problems, "; ")
	}
	c.add(GateFeatures, fmt.Sprintf("%d features", len(reg)), "model = registry = feature code", len(problems) == 0, detail, float64(len(reg)))
}

// minus returns the names of a not in b, in a's order.
func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// aucGate: the version's AUC on the holdout above the baseline's on the
// same rows.
func (c *checker) aucGate(threshold string) {
	auc := c.stats.AUC
	if c.base == nil {
		c.add(GateAUCVsBaseline, figure("%.4f", auc), threshold, false,
			"no baseline version to compare with: the registry has no other production version; give --baseline", auc)
		return
	}
	b, err := os.ReadFile(filepath.Join(c.dir, c.base.Path))
	if err != nil {
		c.add(GateAUCVsBaseline, figure("%.4f", auc), threshold, false, fmt.Sprintf("baseline %s: %v", c.base.Name, err), auc)
		return
	}
	bm, err := loadModel(c.base.Format, b)
	if err != nil {
		c.add(GateAUCVsBaseline, figure("%.4f", auc), threshold, false, fmt.Sprintf("baseline %s does not load: %v", c.base.Name, err), auc)
		return
	}
	bx, err := c.h.Matrix(c.base.Features)
	if err != nil {
		c.add(GateAUCVsBaseline, figure("%.4f", auc), threshold, false, fmt.Sprintf("baseline %s: %v", c.base.Name, err), auc)
		return
	}
	baseScores := make([]float64, len(bx))
	for i, row := range bx {
		baseScores[i] = bm.Score(row)
	}
	cmp := CompareAUC(c.scores, baseScores, c.h.Converted)
	pass := cmp.Candidate > cmp.Baseline+c.lim.MinAUCGain && cmp.PNotBetter <= c.lim.MaxAUCP
	detail := fmt.Sprintf("%s %.4f on the same %d rows (%d converted); DeLong's paired test: difference %+.4f, SE %.4f, %g%% interval [%+.4f, %+.4f], one-sided p %.3f that %s is no better",
		c.base.Name, cmp.Baseline, c.h.Rows(), c.h.Conversions(), cmp.Diff, cmp.SE, 100*cmp.Interval.Level, cmp.Interval.Lo, cmp.Interval.Hi,
		cmp.PNotBetter, c.v.Name)
	c.add(GateAUCVsBaseline, figure("%.4f", cmp.Candidate), fmt.Sprintf("%s (%.4f)", threshold, cmp.Baseline+c.lim.MinAUCGain), pass, detail, cmp.Candidate)
}

// AUCComparison compares two versions' ROC AUCs on the same labelled leads
// with DeLong's paired test.
type AUCComparison struct {
	Candidate, Baseline float64
	// Diff is Candidate - Baseline, SE its standard error from DeLong's
	// covariance of the two (correlated: the same leads), Interval its 95%
	// normal interval.
	Diff, SE float64
	Interval validation.Interval
	// PNotBetter is the one-sided p-value of "the candidate ranks no
	// better than the baseline", Φ(-Diff/SE); NaN when SE is 0 or
	// undefined.
	PNotBetter float64
}

// CompareAUC compares the AUCs of two scores of the same leads with
// validation.DeLongPaired. NaN AUCs compare false.
func CompareAUC(candidate, baseline []float64, converted []bool) AUCComparison {
	p := validation.DeLongPaired(candidate, baseline, converted, 0.95)
	out := AUCComparison{Candidate: p.AUCA, Baseline: p.AUCB, Diff: p.Diff, SE: p.SE, Interval: p.Interval, PNotBetter: math.NaN()}
	if !math.IsNaN(p.PLess) {
		out.PNotBetter = 1 - p.PLess // PLess is Φ(z), against "the candidate is not worse"
	}
	return out
}

func (c *checker) liftGate(threshold string) {
	lift := c.stats.LiftByDecile[9]
	c.add(GateTopDecileLift, figure("%.2fx", lift), threshold, lift > c.lim.MinTopDecileLift,
		fmt.Sprintf("top-decile conversion %.2f%% vs %.2f%% overall, deciles of the holdout's own scores", 100*c.stats.TopDecileConversion, 100*c.stats.ConversionRate), lift)
}

func (c *checker) overfittingGate(threshold string) {
	train, ok := c.v.Metrics["train_auc"]
	if !ok {
		c.fail(GateOverfitting, threshold, "no train AUC recorded (the registry's metrics.train_auc, written at training)")
		return
	}
	gap := train - c.stats.AUC
	c.add(GateOverfitting, figure("%.4f", gap), threshold, gap < c.lim.MaxAUCGap,
		fmt.Sprintf("train AUC %.4f (metrics.train_auc, from training) - test AUC %.4f (holdout)", train, c.stats.AUC), gap)
}

// explanationsGate: on every holdout row the TreeSHAP values (and the
// bias) sum to the model's margin.
func (c *checker) explanationsGate(threshold string) {
	mm, ok := c.model.(interface{ Margin([]float64) float64 })
	if !ok {
		c.fail(GateExplanations, threshold, "the model does not give its margin")
		return
	}
	out := make([]float64, len(c.v.Features)+1)
	worst, worstRow := 0.0, 0
	for i, row := range c.x {
		if err := c.model.Contributions(row, out); err != nil {
			c.fail(GateExplanations, threshold, "no explanations: "+err.Error())
			return
		}
		sum := 0.0
		for _, o := range out {
			sum += o
		}
		d := math.Abs(sum - mm.Margin(row))
		if !(d <= worst) { // NaN counts as the worst
			worst, worstRow = d, i
			if math.IsNaN(d) {
				break
			}
		}
	}
	detail := fmt.Sprintf("max |sum of TreeSHAP values - margin| over %d holdout rows", len(c.x))
	if worst > c.lim.MaxSHAPError || math.IsNaN(worst) {
		detail += fmt.Sprintf(", at row %d", worstRow+2)
	}
	c.add(GateExplanations, figure("%.3g", worst), threshold, worst <= c.lim.MaxSHAPError, detail, worst)
}

// parityGate: our scores of the trainer's exported rows equal the
// trainer's (XGBoost's) own predictions.
func (c *checker) parityGate(threshold string) {
	dir := filepath.Join(c.opts.ParityDir, c.v.Name)
	header, feats, err := readNumericCSV(filepath.Join(dir, "features.csv"))
	if err != nil {
		c.fail(GateParity, threshold, "no trainer's export: "+err.Error())
		return
	}
	if !slices.Equal(header, c.v.Features) {
		c.fail(GateParity, threshold, fmt.Sprintf("%s has columns %v, not the version's features", filepath.Join(dir, "features.csv"), header))
		return
	}
	_, preds, err := readNumericCSV(filepath.Join(dir, "predictions.csv"))
	if err != nil {
		c.fail(GateParity, threshold, "no trainer's predictions: "+err.Error())
		return
	}
	if len(preds) != len(feats) || len(feats) == 0 {
		c.fail(GateParity, threshold, fmt.Sprintf("%d feature rows, %d predictions", len(feats), len(preds)))
		return
	}
	// XGBoost predicts in float32 and the trainer prints each prediction
	// so that it reads back as the same float32; our scores are those
	// float32s too (scoring is bit-exact), so a row either equals
	// XGBoost's prediction in every bit or differs.
	differ, first, worst := 0, -1, 0.0
	for i, row := range feats {
		got, want := float32(c.model.Score(row)), float32(preds[i][0])
		if math.Float32bits(got) == math.Float32bits(want) {
			continue
		}
		differ++
		if first < 0 {
			first = i
		}
		if d := math.Abs(float64(got) - float64(want)); !(d <= worst) {
			worst = d
		}
	}
	detail := fmt.Sprintf("rows of %s whose score is not XGBoost's float32 prediction bit for bit, of %d", dir, len(feats))
	if differ > 0 {
		detail += fmt.Sprintf("; first at row %d, largest difference %.3g", first+2, worst)
	}
	n := float64(differ)
	c.add(GateParity, fmt.Sprintf("%d", differ), threshold, n <= c.lim.MaxParityRows, detail, n)
}

// distributionGate: the population stability index of the holdout's
// reference deciles, the validator's formula (docs/VALIDATION.md).
func (c *checker) distributionGate(threshold string) {
	var shares [10]float64
	for _, s := range c.scores {
		shares[scoring.Decile(c.v.Percentile(s))-1]++
	}
	psi := 0.0
	parts := make([]string, len(shares))
	for k := range shares {
		shares[k] /= float64(len(c.scores))
		a := max(shares[k], 0.0001)
		psi += (a - 0.1) * math.Log(a/0.1)
		parts[k] = fmt.Sprintf("%.1f", 100*shares[k])
	}
	c.add(GateScoreDistribution, figure("%.4f", psi), threshold, psi < c.lim.MaxPSI,
		"PSI of the holdout's deciles of the registry's reference (10% each); shares % by decile: "+strings.Join(parts, " "), psi)
}

// readNumericCSV reads a CSV with a header and numeric cells (empty = NaN).
func readNumericCSV(path string) ([]string, [][]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(recs) == 0 {
		return nil, nil, fmt.Errorf("%s: empty", path)
	}
	rows := make([][]float64, 0, len(recs)-1)
	for i, rec := range recs[1:] {
		row := make([]float64, len(rec))
		for j, s := range rec {
			if s == "" {
				row[j] = math.NaN()
				continue
			}
			if row[j], err = strconv.ParseFloat(s, 64); err != nil {
				return nil, nil, fmt.Errorf("%s: row %d: %q is not a number", path, i+2, s)
			}
		}
		rows = append(rows, row)
	}
	return recs[0], rows, nil
}

// WriteText writes the result as one line per gate: name, figure,
// threshold, pass or FAIL, detail; then the summary.
func WriteText(w io.Writer, version string, res scoring.CheckResult) error {
	base := res.Baseline
	if base == "" {
		base = "none"
	}
	fmt.Fprintf(w, "%s: pre-deployment gates on %s (%d rows, %d converted), baseline %s\n",
		version, res.Holdout, res.HoldoutRows, res.HoldoutConversions, base)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GATE\tFIGURE\tTHRESHOLD\tRESULT\tDETAIL")
	for _, g := range res.Gates {
		result := "pass"
		if !g.Pass {
			result = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", g.Name, g.Figure, g.Threshold, result, g.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, res.Summary())
	return err
}
