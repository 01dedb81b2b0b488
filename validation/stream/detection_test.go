package stream

import (
	"context"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/validation"
)

// goldenDetection is a fixed detection curve: 500 periods of 8 weeks, the
// three scenarios, both rules.
func goldenDetection() *validation.Table {
	t := &validation.Table{Periods: 500, Weeks: 8, LeadsPerWeek: 370, Seed: 1, ConversionsPerWeek: 16.4, PoolLeads: 3437, PoolConversions: 152,
		TestSet: validation.ParallelTestSetName, Literal: validation.LiteralRule{}.String(), Rule: validation.DefaultEvidenceRule.String()}
	for _, r := range []struct {
		scenario, rule string
		within         []float64
	}{
		{validation.ScenarioValidated, "literal", []float64{0.32, 0.5, 0.66, 0.76, 0.84, 0.9, 0.93, 0.958}},
		{validation.ScenarioValidated, "evidence", []float64{0, 0.016, 0.026, 0.03, 0.034, 0.036, 0.038, 0.038}},
		{validation.ScenarioNoSkill, "literal", []float64{0.97, 0.998, 1, 1, 1, 1, 1, 1}},
		{validation.ScenarioNoSkill, "evidence", []float64{0, 0.6, 0.888, 0.95, 0.976, 0.986, 0.994, 0.998}},
		{validation.ScenarioBoundary, "literal", []float64{0.9, 0.98, 0.992, 1, 1, 1, 1, 1}},
		{validation.ScenarioBoundary, "evidence", []float64{0, 0.3, 0.658, 0.76, 0.82, 0.86, 0.9, 0.932}},
	} {
		row := validation.SimRow{Scenario: r.scenario, Rule: r.rule, Within: r.within, ByCriterion: map[string]float64{}}
		for _, p := range r.within {
			row.MCSE = append(row.MCSE, t.MCSE(p))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// The detection chart draws one line per scenario and rule through its
// shares, the targets its periods reach, and says the Monte-Carlo error.
func TestDetectionChart(t *testing.T) {
	tab := goldenDetection()
	svg := string(detectionChart(tab))
	lines := regexp.MustCompile(`<polyline class="detection" data-scenario="([^"]+)" data-rule="([^"]+)" data-within="([^"]+)" points="([^"]+)"`).FindAllStringSubmatch(svg, -1)
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 3 scenarios x 2 rules:\n%s", len(lines), svg)
	}
	for i, l := range lines {
		r := tab.Rows[i]
		if l[1] != r.Scenario || l[2] != r.Rule {
			t.Errorf("line %d is %s %s, want %s %s", i, l[1], l[2], r.Scenario, r.Rule)
		}
		if n := len(strings.Fields(l[4])); n != 8 {
			t.Errorf("%s %s: %d points, want one per week", l[1], l[2], n)
		}
	}
	// A share of 0.5 in 500 periods has the largest error: 2.2 points.
	if !strings.Contains(svg, "500 simulated periods per scenario, 370 leads a week: each point ± at most 2.2 points") {
		t.Errorf("the chart does not state the Monte-Carlo error:\n%s", svg)
	}
	if n := strings.Count(svg, `<g class="target"`); n != 3 {
		t.Errorf("%d target markers, want 3", n)
	}
	// Shorter periods: only the targets they reach.
	tab.Weeks = 4
	for i := range tab.Rows {
		tab.Rows[i].Within = tab.Rows[i].Within[:4]
	}
	svg = string(detectionChart(tab))
	if n := strings.Count(svg, `<g class="target"`); n != 1 || !strings.Contains(svg, `data-scenario="no skill (lift 1.0)" data-week="3"`) {
		t.Errorf("4-week periods: %d target markers, want the no-skill one at week 3 only", n)
	}
}

// With DetectionPeriods the validator simulates its rule's detection curve
// once, on one CPU, and its reports carry it from then on: the same curve
// DetectionCurve gives on every CPU.
func TestValidatorSimulatesTheDetectionCurve(t *testing.T) {
	s := startStack(t)
	rule := validation.EvidenceRule{WindowWeeks: 6, MinConversions: 30, Confidence: 0.9, AUCConfidence: 0.8}
	v, err := New(Config{Brokers: s.k.Brokers, ShadowTopic: s.shadowTopic, OutcomeTopic: s.outcomeTopic, Registry: copyModels(t),
		Codec: s.codec, Now: func() time.Time { return asOf }, Interval: time.Hour, Report: Options{Rule: rule}, DetectionPeriods: 20})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-v.detected:
	case err := <-done:
		t.Fatalf("validator stopped: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("no detection curve after 2 minutes")
	}
	<-v.CaughtUp()
	rep, err := v.Evaluate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Detection
	if d == nil || d.Periods != 20 || d.Rule != rule.String() || len(d.Rows) != 6 {
		t.Fatalf("report's detection curve %+v: want 20 periods of the validator's rule (%s), 6 rows", d, rule)
	}
	want, err := DetectionCurve(ctx, rule, 20)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("the validator's curve on one CPU differs from DetectionCurve's on all:\n%+v\n%+v", d, want)
	}
}
