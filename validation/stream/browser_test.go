//go:build browser

package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/validation"
)

// The dashboard in a real browser: Debian's chromium, headless, renders
// /dashboard; the charts are in the DOM it built and every figure in the
// table equals the JSON endpoint's. Run by `make browser-test`, which
// installs chromium; this test installs nothing and fails without it.
// SCREENSHOT=file.png also saves a screenshot of the page.
func TestDashboardInChromium(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not found: run make browser-test (it installs Debian's chromium)")
	}
	s := NewState()
	rng := rand.New(rand.NewPCG(7, 8))
	start := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	for w := range 4 {
		weekOfLeads(s, rng, start.AddDate(0, 0, 7*w), 300, 12, fmt.Sprint("w", w))
	}
	curve, err := DetectionCurve(context.Background(), validation.DefaultEvidenceRule, 40)
	if err != nil {
		t.Fatal(err)
	}
	asOf, reg, opts := start.AddDate(0, 0, 28).Add(LabelWindow), testRegistry("good", start.AddDate(0, 0, 7), "good", "bad"), Options{Detection: curve}
	rep := s.Report(asOf, reg, opts)
	rep.PostDeployment = PostDeployment(s, reg, asOf, opts)
	srv := httptest.NewServer(Handler(func() *Report { return rep }))
	defer srv.Close()

	chrome := func(args ...string) []byte {
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + t.TempDir()}
		cmd := exec.Command(bin, append(base, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", args, err)
		}
		return out
	}
	dom := string(chrome("--dump-dom", srv.URL+"/dashboard"))

	for _, want := range []string{`<svg class="chart" id="lift-chart"`, `<svg class="chart" id="heatmap"`, `id="verdict"`, `id="criteria"`,
		`<svg class="chart" id="detection-chart" data-periods="40"`, `class="mc-error"`} {
		if !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(dom) {
			t.Errorf("rendered page lacks %s", want)
		}
	}
	nv := len(rep.Versions) // good, bad (the registry's) and coin (only in the data)
	if n := len(regexp.MustCompile(`<svg class="chart hist"`).FindAllString(dom, -1)); n != nv {
		t.Errorf("%d score histograms rendered, want one per version (%d)", n, nv)
	}
	if n := len(regexp.MustCompile(`<rect class="bar"`).FindAllString(dom, -1)); n != 10*nv {
		t.Errorf("%d lift bars rendered, want 10 deciles x %d versions", n, nv)
	}
	if n := len(regexp.MustCompile(`<rect class="cell"`).FindAllString(dom, -1)); n != 100*(nv-1) {
		t.Errorf("%d heat-map cells rendered, want 100 per version compared with production (%d)", n, 100*(nv-1))
	}

	// Numbers in the page equal the JSON endpoint's.
	resp, err := http.Get(srv.URL + "/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got Report
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	var main *Window
	for i := range got.Windows {
		if got.Windows[i].Kind == KindAll {
			main = &got.Windows[i]
		}
	}
	if main == nil {
		t.Fatal("JSON has no all-data window")
	}
	cells := regexp.MustCompile(`<td data-version="([^"]+)" data-key="([^"]+)" data-value="([^"]+)">`).FindAllStringSubmatch(dom, -1)
	if len(cells) < 2*8 {
		t.Fatalf("%d figure cells in the page, want at least 16", len(cells))
	}
	for _, c := range cells {
		var p *Performance
		for i := range main.Performance {
			if main.Performance[i].Version == c[1] {
				p = &main.Performance[i]
			}
		}
		if p == nil {
			t.Fatalf("page shows version %s the JSON does not have", c[1])
		}
		want := map[string]float64{
			"labelled": float64(p.Labelled), "conversions": float64(p.Conversions), "auc": float64(p.AUC),
			"auc_pr": float64(p.AUCPR), "top_decile_lift": float64(p.TopDecileLift), "top_decile_conversion": float64(p.TopDecileConversion),
			"bottom20_conversion": float64(p.Bottom20Conversion), "deprioritization_efficiency": float64(p.DeprioritizationEfficiency),
		}
		if c[2] == "psi" {
			for _, d := range main.Drift {
				if d.Version == c[1] {
					want["psi"] = float64(d.PSI)
				}
			}
		}
		w, ok := want[c[2]]
		if !ok {
			t.Errorf("unexpected figure %s in the page", c[2])
			continue
		}
		v, err := strconv.ParseFloat(c[3], 64)
		if c[3] == "null" {
			v, err = math.NaN(), nil
		}
		if err != nil || !(v == w || math.IsNaN(v) && math.IsNaN(w)) {
			t.Errorf("%s %s: page %s, JSON %v", c[1], c[2], c[3], w)
		}
	}
	// The post-deployment verdicts: one row per stage, with the JSON's
	// status.
	stages := regexp.MustCompile(`<tr data-stage="([^"]+)" data-status="([^"]+)">`).FindAllStringSubmatch(dom, -1)
	if len(stages) != 2 || len(got.PostDeployment) != 2 {
		t.Fatalf("%d post-deployment rows in the page, %d in the JSON; want week1 and week2", len(stages), len(got.PostDeployment))
	}
	for i, st := range stages {
		if j := got.PostDeployment[i]; st[1] != j.Stage || st[2] != j.Status {
			t.Errorf("post-deployment row %d: page %s %s, JSON %s %s", i, st[1], st[2], j.Stage, j.Status)
		}
	}
	// The rollback criteria's intervals: one error bar per criterion, its
	// bounds and threshold those of the JSON, and the paired comparison's.
	bars := regexp.MustCompile(`<svg class="interval" data-criterion="([^"]+)" data-estimate="([^"]+)" data-lo="([^"]+)" data-hi="([^"]+)" data-threshold="([^"]+)"[^>]*>(.*?)</svg>`).FindAllStringSubmatch(dom, -1)
	want := map[string][3]float64{} // lo, hi, threshold
	for _, r := range got.Criteria.Rules {
		want[r.Name] = [3]float64{float64(r.Interval.Lo), float64(r.Interval.Hi), r.Threshold}
	}
	if p := got.Criteria.Paired; p != nil {
		want["auc_diff"] = [3]float64{float64(p.AUCDiffInterval.Lo), float64(p.AUCDiffInterval.Hi), 0}
		want["lift_diff"] = [3]float64{float64(p.LiftDiffInterval.Lo), float64(p.LiftDiffInterval.Hi), 0}
	}
	if len(got.Criteria.Rules) != 3 || got.Criteria.Paired == nil {
		t.Fatalf("the report judges %d criteria, paired %v: want 3 and a paired comparison", len(got.Criteria.Rules), got.Criteria.Paired)
	}
	if len(bars) != len(want) {
		t.Errorf("%d interval bars rendered, want %d (3 criteria and 2 paired differences)", len(bars), len(want))
	}
	num := func(s string) float64 {
		if s == "null" {
			return math.NaN()
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		return v
	}
	same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
	for _, b := range bars {
		w, ok := want[b[1]]
		if !ok {
			t.Errorf("interval bar for %s, which the JSON does not have", b[1])
			continue
		}
		if !same(num(b[3]), w[0]) || !same(num(b[4]), w[1]) || num(b[5]) != w[2] {
			t.Errorf("%s: bar [%s, %s] threshold %s, JSON [%v, %v] threshold %v", b[1], b[3], b[4], b[5], w[0], w[1], w[2])
		}
		if !math.IsNaN(w[0]) && !strings.Contains(b[6], `class="bar"`) {
			t.Errorf("%s: the interval's bar is not drawn: %s", b[1], b[6])
		}
	}
	if m := regexp.MustCompile(`id="pending" data-value="(\d+)"`).FindStringSubmatch(dom); m == nil || m[1] != strconv.Itoa(got.Criteria.Pending) {
		t.Errorf("pending count in the page %v, JSON %d", m, got.Criteria.Pending)
	}
	// The detection curve: one line per scenario and rule, through the
	// JSON's shares, and a point per week.
	if got.Detection == nil || len(got.Detection.Rows) != 6 {
		t.Fatalf("JSON detection curve %+v: want 3 scenarios x 2 rules", got.Detection)
	}
	series := regexp.MustCompile(`<polyline class="detection" data-scenario="([^"]+)" data-rule="([^"]+)" data-within="([^"]+)" points="([^"]+)"`).FindAllStringSubmatch(dom, -1)
	if len(series) != len(got.Detection.Rows) {
		t.Errorf("%d detection lines rendered, want %d", len(series), len(got.Detection.Rows))
	}
	seen := map[string]bool{}
	for _, l := range series {
		r := got.Detection.Row(l[1], l[2])
		if r == nil {
			t.Errorf("detection line %s %s, which the JSON does not have", l[1], l[2])
			continue
		}
		seen[l[1]+"/"+l[2]] = true
		vals := strings.Split(l[3], ",")
		if len(vals) != len(r.Within) || len(strings.Fields(l[4])) != len(r.Within) {
			t.Errorf("%s %s: %d shares and %d points rendered, want %d weeks", l[1], l[2], len(vals), len(strings.Fields(l[4])), len(r.Within))
			continue
		}
		for i, v := range vals {
			if num(v) != r.Within[i] {
				t.Errorf("%s %s week %d: page %s, JSON %v", l[1], l[2], i+1, v, r.Within[i])
			}
		}
	}
	for _, sc := range []string{validation.ScenarioValidated, validation.ScenarioNoSkill, validation.ScenarioBoundary} {
		for _, rule := range []string{"literal", "evidence"} {
			if !seen[sc+"/"+rule] {
				t.Errorf("no detection line for %s, %s rule", sc, rule)
			}
		}
	}
	if shot := os.Getenv("SCREENSHOT"); shot != "" {
		abs, _ := filepath.Abs(shot)
		chrome("--screenshot="+abs, "--window-size=1150,3750", "--hide-scrollbars", srv.URL+"/dashboard")
	}
}
