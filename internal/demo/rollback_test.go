package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The demo's parallel validation judges by the evidence rule: with the
// population's own outcomes v4.1.0 is not rolled back, and when it
// underperforms once promoted (--underperform) all three criteria fire and
// the validator rolls the registry copy back. Two seeds each, with the
// demo's defaults (leadscorer-dev demo's flags: 40,000 advisors, promotion
// after 2 weeks, auto-rollback) but a short first stream: the validation
// uses the population's test leads, whatever the number of events before
// it. Seeds 1 to 10 are checked by the command in docs/VALIDATION.md.
func TestDemoRollsBackOnlyWhenV410Underperforms(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		for _, under := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed %d underperform %v", seed, under), func(t *testing.T) {
				html := ""
				if seed == 1 && under {
					html = filepath.Join(t.TempDir(), "report.html") // and once, the HTML report
				}
				var out strings.Builder
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				defer cancel()
				sum, err := Run(ctx, Options{Registry: "../../models/registry.json", Events: 200, Advisors: 40000, Seed: seed, Timeout: time.Minute,
					Validation: &ValidationOptions{PromoteAfterWeeks: 2, Underperform: under, AutoRollback: true, HTML: html, Seed: seed}}, &out)
				if err != nil {
					t.Fatalf("%v\n%s", err, out.String())
				}
				rep := sum.Validation
				if rep == nil || rep.Criteria.Version != "v4.1.0" {
					t.Fatalf("no verdict on v4.1.0: %+v\n%s", rep, out.String())
				}
				recommended := strings.Contains(out.String(), "ROLLBACK RECOMMENDED")
				if rep.Criteria.Fired != under || recommended != under {
					t.Fatalf("criteria fired %v, printed a rollback %v; want %v:\n%s", rep.Criteria.Fired, recommended, under, out.String())
				}
				if !under {
					for _, r := range rep.Criteria.Rules {
						if r.Status != "not_fired" {
							t.Errorf("%s: %s, want judged and not fired (%s)", r.Name, r.Status, r.Detail)
						}
					}
					return
				}
				for _, r := range rep.Criteria.Rules {
					if !r.Fired {
						t.Errorf("%s did not fire on an underperforming v4.1.0: %s", r.Name, r.Detail)
					}
				}
				if !strings.Contains(out.String(), "auto-rollback: production is now v4.0.0") {
					t.Errorf("the validator did not roll the registry back:\n%s", out.String())
				}
				if html != "" {
					b, err := os.ReadFile(html)
					if err != nil {
						t.Fatal(err)
					}
					if !strings.Contains(string(b), `<svg class="chart" id="detection-chart" data-periods="500"`) {
						t.Error("the demo's HTML report has no detection curve")
					}
				}
			})
		}
	}
}
