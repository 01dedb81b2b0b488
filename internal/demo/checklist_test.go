package demo

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/scoring"
	"github.com/leadscorer/leadscorer/validation/stream"
)

const committedRegistry = "../../models/registry.json"

// registryCopy copies the committed registry and its models to a
// temporary folder.
func registryCopy(t *testing.T) string {
	t.Helper()
	path, err := scoring.CopyRegistry(committedRegistry, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func stage(name, week, status string, final time.Time) stream.StageVerdict {
	return stream.StageVerdict{Stage: name, Item: scoring.SignOffItem(name), Week: week, Status: status, Version: "v4.1.0", FinalAt: &final,
		Reasons: []string{"reason of " + name}}
}

func squashed(s string) string { return strings.Join(strings.Fields(s), " ") }

// The whole checklist on the committed models: gates, sign-offs (the
// promotion refused before the last one), promotion, both week verdicts
// signed, the sunset of v4.0.0, the history; the committed registry is
// not touched.
func TestChecklistWalksTheWholeChecklist(t *testing.T) {
	before, err := os.ReadFile(committedRegistry)
	if err != nil {
		t.Fatal(err)
	}
	path := registryCopy(t)
	promoted := time.Date(2025, 9, 15, 0, 0, 0, 0, time.UTC)
	stages := []stream.StageVerdict{
		stage("week1", "2025-W38", stream.StagePassed, time.Date(2025, 11, 3, 0, 0, 0, 0, time.UTC)),
		stage("week2", "2025-W39", stream.StagePassed, time.Date(2025, 11, 10, 0, 0, 0, 0, time.UTC)),
	}
	var out bytes.Buffer
	if err := PreDeployment(&out, path, "../..", "v4.1.0", promoted); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	reg, err := scoring.ReadRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	if p := reg.Production(); p.Name != "v4.1.0" {
		t.Fatalf("production %s after the pre-deployment walk", p.Name)
	}
	sunset, err := PostDeployment(&out, path, "v4.1.0", stages)
	if err != nil || !sunset {
		t.Fatalf("sunset %v, %v\n%s", sunset, err, out.String())
	}
	got := squashed(out.String())
	for _, want := range []string{
		"2025-09-12 leadscorer registry check v4.1.0",
		"10 of 10 gates passed",
		"leadscorer registry promote v4.1.0: refused, as it should be: registry: promote v4.1.0 refused: sign-off business missing",
		`2025-09-13 leadscorer registry signoff v4.1.0 --role business --by "business owner"`,
		`2025-11-03 leadscorer registry signoff v4.1.0 --stage week1 --by "data science lead"`,
		"2025-11-10 leadscorer registry sunset v4.0.0: archived, no longer scored",
		"leadscorer registry history",
		"2025-09-12 00:00 check v4.1.0 ci passed 10 of 10 gates passed",
		"2025-09-15 00:00 promote v4.1.0 operations complete parallel validation week passed",
		"2025-11-10 00:00 signoff week2 v4.1.0 data science lead complete reason of week2",
		"2025-11-10 01:00 sunset v4.0.0 operations complete replaced by v4.1.0",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(got, "TBD") {
		t.Errorf("items left pending after the whole checklist:\n%s", out.String())
	}
	if reg, err = scoring.ReadRegistry(path); err != nil {
		t.Fatal(err)
	}
	for _, v := range reg.Serving() {
		if v.Name == "v4.0.0" {
			t.Error("v4.0.0 still serving after its sunset")
		}
	}
	if after, _ := os.ReadFile(committedRegistry); !bytes.Equal(before, after) {
		t.Fatal("the walk edited the committed registry")
	}
}

// A failed week after the validator rolled the version back: no sign-off,
// and the sunset of v4.0.0, production again, refused.
func TestChecklistStopsAtAFailedWeek(t *testing.T) {
	path := registryCopy(t)
	promoted := time.Date(2025, 9, 15, 0, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	if err := PreDeployment(&out, path, "../..", "v4.1.0", promoted); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	// The validator's automatic rollback, which no sign-off blocks.
	if err := edit(path, func(r *scoring.Registry) error {
		_, _, err := r.Rollback("auto-rollback: a criterion fired", time.Date(2025, 11, 3, 0, 0, 0, 0, time.UTC))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	stages := []stream.StageVerdict{
		stage("week1", "2025-W38", stream.StageFailed, time.Date(2025, 11, 3, 0, 0, 0, 0, time.UTC)),
		stage("week2", "2025-W39", stream.StageFailed, time.Date(2025, 11, 10, 0, 0, 0, 0, time.UTC)),
	}
	sunset, err := PostDeployment(&out, path, "v4.1.0", stages)
	if err != nil || sunset {
		t.Fatalf("sunset %v, %v\n%s", sunset, err, out.String())
	}
	got := squashed(out.String())
	for _, want := range []string{"v4.1.0 is no longer production: the validator rolled it back to v4.0.0; no post-deployment sign-off",
		"leadscorer registry sunset v4.0.0: refused, as it should be: registry: sunset: version \"v4.0.0\" is production",
		"2025-11-03 00:00 rollback v4.0.0 - complete auto-rollback: a criterion fired"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
