package scoring

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func checkResult(v *Version, failing ...string) CheckResult {
	res := CheckResult{Time: editTime, By: "ci", SHA256: v.SHA256, Baseline: "v4.0.0", Holdout: "holdout.csv",
		HoldoutSHA256: strings.Repeat("ab", 32), HoldoutRows: 100, HoldoutConversions: 5}
	for _, name := range []string{"model_loads", "features", "top_decile_lift", "parity"} {
		res.Gates = append(res.Gates, Gate{Name: name, Figure: "x", Threshold: "y", Pass: !slices.Contains(failing, name)})
	}
	return res
}

// fixtureRegistry is the fixture's registry read back (models loaded).
func fixtureRegistry(t *testing.T) (*Registry, string) {
	t.Helper()
	dir, doc := registryFixture(t)
	path := writeRegistry(t, dir, doc)
	r, err := LoadRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	return r, path
}

func mustVersion(t *testing.T, r *Registry, name string) *Version {
	t.Helper()
	v, ok := r.Version(name)
	if !ok {
		t.Fatalf("no version %s", name)
	}
	return v
}

// signAll records the three pre-deployment sign-offs of v4.1.0 except skip.
func signAll(t *testing.T, r *Registry, skip string) {
	t.Helper()
	for _, kind := range PreDeploymentSignOffs {
		if kind == skip {
			continue
		}
		if err := r.SignOff("v4.1.0", kind, "signer of "+kind, "", editTime); err != nil {
			t.Fatal(err)
		}
	}
}

// Promote is refused for each missing item, naming exactly that item, and
// the registry is left as it was; with nothing missing it promotes and
// records who did.
func TestPromoteCheckedRefusesEachMissingItem(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(t *testing.T, r *Registry)
		missing string
	}{
		{"gates never run", func(t *testing.T, r *Registry) { signAll(t, r, "") }, "pre-deployment gates not run"},
		{"a gate failed", func(t *testing.T, r *Registry) {
			if err := r.RecordCheck("v4.1.0", checkResult(mustVersion(t, r, "v4.1.0"), "top_decile_lift")); err != nil {
				t.Fatal(err)
			}
			signAll(t, r, "")
		}, "gates failed: top_decile_lift"},
		{"gates passed on another model file", func(t *testing.T, r *Registry) {
			v := mustVersion(t, r, "v4.1.0")
			if err := r.RecordCheck("v4.1.0", checkResult(v)); err != nil {
				t.Fatal(err)
			}
			v.SHA256 = strings.Repeat("cd", 32)
			signAll(t, r, "")
		}, "gate results are for another model file"},
	}
	for _, kind := range PreDeploymentSignOffs {
		cases = append(cases, struct {
			name    string
			prepare func(t *testing.T, r *Registry)
			missing string
		}{"sign-off " + kind + " missing", func(t *testing.T, r *Registry) {
			if err := r.RecordCheck("v4.1.0", checkResult(mustVersion(t, r, "v4.1.0"))); err != nil {
				t.Fatal(err)
			}
			signAll(t, r, kind)
		}, "sign-off " + kind + " missing"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := fixtureRegistry(t)
			tc.prepare(t, r)
			n := len(r.History)
			err := r.PromoteChecked("v4.1.0", "parallel week passed", "ops", editTime, "")
			var refused *PromotionRefusedError
			if !errors.As(err, &refused) {
				t.Fatalf("promote: %v, want a PromotionRefusedError", err)
			}
			if len(refused.Missing) != 1 || !strings.Contains(refused.Missing[0], tc.missing) {
				t.Fatalf("missing %q, want exactly one item containing %q", refused.Missing, tc.missing)
			}
			if !strings.Contains(err.Error(), tc.missing) || !strings.Contains(err.Error(), "--override") {
				t.Errorf("message %q does not name %q and the override", err, tc.missing)
			}
			if r.Production().Name != "v4.0.0" || len(r.History) != n {
				t.Fatalf("a refused promotion changed the registry: production %s, %d history entries (was %d)", r.Production().Name, len(r.History), n)
			}
		})
	}

	r, _ := fixtureRegistry(t)
	if err := r.RecordCheck("v4.1.0", checkResult(mustVersion(t, r, "v4.1.0"))); err != nil {
		t.Fatal(err)
	}
	signAll(t, r, "")
	if got := r.PromotionBlockers("v4.1.0"); len(got) != 0 {
		t.Fatalf("blockers %q with passing gates and three sign-offs", got)
	}
	if err := r.PromoteChecked("v4.1.0", "parallel week passed", "ops", editTime, ""); err != nil {
		t.Fatal(err)
	}
	last := r.History[len(r.History)-2:]
	if r.Production().Name != "v4.1.0" || last[0].Action != ActionPromote || last[0].By != "ops" || last[1].Action != ActionDemote {
		t.Fatalf("production %s, history %+v", r.Production().Name, last)
	}
	if slices.ContainsFunc(r.History, func(h HistoryEntry) bool { return h.Action == ActionOverride }) {
		t.Error("an override was recorded for a promotion that needed none")
	}
}

// An override promotes anyway and records who, why and what was missing;
// it needs a name.
func TestPromoteCheckedOverrideIsRecorded(t *testing.T) {
	r, _ := fixtureRegistry(t)
	if err := r.RecordCheck("v4.1.0", checkResult(mustVersion(t, r, "v4.1.0"), "parity")); err != nil {
		t.Fatal(err)
	}
	signAll(t, r, SignOffBusiness)
	if err := r.PromoteChecked("v4.1.0", "hotfix", "", editTime, "quota incident"); err == nil || !strings.Contains(err.Error(), "--by") {
		t.Fatalf("override without a name: %v, want a refusal asking for --by", err)
	}
	if r.Production().Name != "v4.0.0" {
		t.Fatal("a refused override promoted")
	}
	if err := r.PromoteChecked("v4.1.0", "hotfix", "Dana Ops", editTime, "quota incident"); err != nil {
		t.Fatal(err)
	}
	if r.Production().Name != "v4.1.0" {
		t.Fatalf("production %s after an override", r.Production().Name)
	}
	got := r.History[len(r.History)-3:]
	if got[0].Action != ActionOverride || got[0].By != "Dana Ops" || got[1].Action != ActionPromote || got[2].Action != ActionDemote {
		t.Fatalf("history %+v: want override, promote, demote", got)
	}
	for _, want := range []string{"quota incident", "gates failed: parity", "sign-off business missing"} {
		if !strings.Contains(got[0].Reason, want) {
			t.Errorf("override reason %q lacks %q", got[0].Reason, want)
		}
	}
}

// The validator's automatic rollback is a Rollback, which no sign-off
// blocks: v4.0.0 never had any.
func TestRollbackIsNotBlockedBySignOffs(t *testing.T) {
	r, _ := fixtureRegistry(t)
	if err := r.PromoteChecked("v4.1.0", "x", "ops", editTime, "test"); err != nil {
		t.Fatal(err)
	}
	if len(r.PromotionBlockers("v4.0.0")) == 0 {
		t.Fatal("v4.0.0 has no blockers; the test needs a version without sign-offs")
	}
	from, to, err := r.Rollback("criteria fired", editTime.Add(time.Hour))
	if err != nil || from != "v4.1.0" || to != "v4.0.0" {
		t.Fatalf("rollback %s -> %s: %v", from, to, err)
	}
}

func TestSignOffRules(t *testing.T) {
	r, _ := fixtureRegistry(t)
	at := editTime                     // a Monday, 09:30: week 1 is the next week
	weeksLater := at.AddDate(0, 0, 30) // both weeks over
	steps := []struct {
		name          string
		version, kind string
		by            string
		at            time.Time // zero: at
		err           string
		edit          func()
	}{
		{name: "unknown item", version: "v4.1.0", kind: "legal", by: "x", err: `"legal" is not one of`},
		{name: "nobody", version: "v4.1.0", kind: SignOffDataScience, by: " ", err: "who signs is required"},
		{name: "unknown version", version: "v9", kind: SignOffDataScience, by: "x", err: `"v9" is not in the registry`},
		{name: "pre-deployment on production", version: "v4.0.0", kind: SignOffBusiness, by: "x", err: "already production"},
		{name: "pre-deployment on archived", version: "v3.0.0", kind: SignOffBusiness, by: "x", err: "archived"},
		{name: "week1 before the promotion", version: "v4.1.0", kind: SignOffWeek1, by: "x", err: "post-deployment sign-offs are for the production version"},
		{name: "data science", version: "v4.1.0", kind: SignOffDataScience, by: "Ana DS"},
		{name: "data science twice", version: "v4.1.0", kind: SignOffDataScience, by: "Bo", err: "already signed off by Ana DS on 2026-01-12"},
		{name: "promote", edit: func() {
			if err := r.PromoteChecked("v4.1.0", "x", "ops", at, "test"); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "week1 before its week is over", version: "v4.1.0", kind: SignOffWeek1, by: "x", at: time.Date(2026, 1, 25, 23, 0, 0, 0, time.UTC),
			err: "v4.1.0's week1 ends on 2026-01-26 (its verdict needs that week's outcomes): too early to sign"},
		{name: "week2 before week1", version: "v4.1.0", kind: SignOffWeek2, by: "x", at: weeksLater, err: "no week-1 sign-off"},
		{name: "week1", version: "v4.1.0", kind: SignOffWeek1, by: "Eng Lead", at: time.Date(2026, 1, 26, 0, 0, 0, 0, time.UTC)},
		{name: "week1 twice", version: "v4.1.0", kind: SignOffWeek1, by: "x", at: weeksLater, err: "already signed off by Eng Lead"},
		{name: "week2 before its week is over", version: "v4.1.0", kind: SignOffWeek2, by: "x", at: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), err: "ends on 2026-02-02"},
		{name: "week2", version: "v4.1.0", kind: SignOffWeek2, by: "Eng Lead", at: weeksLater},
		{name: "rollback then promote again", edit: func() {
			if _, _, err := r.Rollback("x", weeksLater.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := r.PromoteChecked("v4.1.0", "x", "ops", weeksLater.Add(2*time.Hour), "test"); err != nil {
				t.Fatal(err)
			}
		}},
		// The week sign-offs of the earlier promotion do not count for the new one.
		{name: "week2 of the new promotion needs a new week1", version: "v4.1.0", kind: SignOffWeek2, by: "x", at: weeksLater.AddDate(0, 0, 30), err: "no week-1 sign-off"},
		{name: "retrained: a new register voids the pre-deployment sign-offs", edit: func() {
			r.History = append(r.History, HistoryEntry{Time: at, Action: ActionRegister, Version: "lgb", Reason: "trained"})
			if err := r.SignOff("lgb", SignOffBusiness, "Biz", "", at); err != nil {
				t.Fatal(err)
			}
			r.History = append(r.History, HistoryEntry{Time: at, Action: ActionRegister, Version: "lgb", Reason: "retrained"})
			if _, ok := r.SignedOff("lgb", SignOffBusiness); ok {
				t.Error("a sign-off before the latest register still counts")
			}
		}},
	}
	for _, s := range steps {
		if s.edit != nil {
			s.edit()
			continue
		}
		n := len(r.History)
		when := s.at
		if when.IsZero() {
			when = at
		}
		err := r.SignOff(s.version, s.kind, s.by, "note", when)
		if s.err != "" {
			if err == nil || !strings.Contains(err.Error(), s.err) {
				t.Fatalf("%s: %v, want an error containing %q", s.name, err, s.err)
			}
			if len(r.History) != n {
				t.Fatalf("%s: a refused sign-off was recorded", s.name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		h := r.History[len(r.History)-1]
		if h.Action != ActionSignOff || h.SignOff != s.kind || h.By != s.by || h.Version != s.version || h.Reason != "note" {
			t.Fatalf("%s: recorded %+v", s.name, h)
		}
	}
}

// Sunset is refused while the version is production and while the
// production version lacks its week-2 sign-off; then it archives the
// version, which stops serving, and the written registry loads without
// reading its model file.
func TestSunset(t *testing.T) {
	r, path := fixtureRegistry(t)
	at := editTime
	if err := r.Sunset("v4.0.0", "ops", "", at); err == nil || !strings.Contains(err.Error(), "is production") {
		t.Fatalf("sunset of production: %v", err)
	}
	if err := r.PromoteChecked("v4.1.0", "x", "ops", at, "test"); err != nil {
		t.Fatal(err)
	}
	if err := r.Sunset("v4.0.0", "ops", "", at); err == nil || !strings.Contains(err.Error(), "v4.1.0") || !strings.Contains(err.Error(), "week-2") {
		t.Fatalf("sunset before week 2: %v, want a refusal naming v4.1.0's week-2 sign-off", err)
	}
	later := at.AddDate(0, 0, 30) // both weeks over
	if err := r.SignOff("v4.1.0", SignOffWeek1, "Eng", "", later); err != nil {
		t.Fatal(err)
	}
	if err := r.Sunset("v4.0.0", "ops", "", at); err == nil {
		t.Fatal("sunset with only the week-1 sign-off")
	}
	if err := r.SignOff("v4.1.0", SignOffWeek2, "Eng", "", later); err != nil {
		t.Fatal(err)
	}
	if err := r.Sunset("v4.0.0", "", "", at); err == nil || !strings.Contains(err.Error(), "who") {
		t.Fatalf("sunset without a name: %v", err)
	}
	if err := r.Sunset("v4.0.0", "ops", "", at); err != nil {
		t.Fatal(err)
	}
	v := mustVersion(t, r, "v4.0.0")
	if v.Role != RoleArchived || v.Model != nil {
		t.Fatalf("after sunset: role %s, model %v", v.Role, v.Model)
	}
	for _, s := range r.Serving() {
		if s.Name == "v4.0.0" {
			t.Fatal("a sunset version still serves")
		}
	}
	h := r.History[len(r.History)-1]
	if h.Action != ActionSunset || h.By != "ops" || !strings.Contains(h.Reason, "replaced by v4.1.0") {
		t.Fatalf("history %+v", h)
	}
	if err := r.Sunset("v4.0.0", "ops", "", at); err == nil || !strings.Contains(err.Error(), "already archived") {
		t.Fatalf("second sunset: %v", err)
	}
	// A rollback can no longer return to a sunset version.
	if _, _, err := r.Rollback("x", at); !errors.Is(err, ErrNoPreviousProduction) {
		t.Fatalf("rollback after the sunset: %v, want ErrNoPreviousProduction", err)
	}

	// The same through the file: the written registry loads.
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(filepath.Dir(path), "v4.0.0", "model.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRegistry(path); err != nil {
		t.Fatalf("registry with a sunset version whose file is gone: %v", err)
	}
}

func TestPendingFollowsTheChecklist(t *testing.T) {
	r, _ := fixtureRegistry(t)
	items := func() []string {
		var out []string
		for _, p := range r.Pending() {
			s := p.Action + " " + p.Version
			if p.SignOff != "" {
				s += " " + p.SignOff
			}
			out = append(out, s+" "+p.Status)
		}
		return out
	}
	want := []string{"check v4.1.0 pending", "signoff v4.1.0 data-science pending", "signoff v4.1.0 engineering pending",
		"signoff v4.1.0 business pending", "promote v4.1.0 pending"}
	// lgb is a candidate too in the fixture (a shadow never production).
	got := slices.DeleteFunc(items(), func(s string) bool { return strings.Contains(s, " lgb") })
	if !slices.Equal(got, want) {
		t.Fatalf("pending %q\nwant %q", got, want)
	}
	if err := r.RecordCheck("v4.1.0", checkResult(mustVersion(t, r, "v4.1.0"), "parity")); err != nil {
		t.Fatal(err)
	}
	signAll(t, r, SignOffBusiness)
	got = slices.DeleteFunc(items(), func(s string) bool { return strings.Contains(s, " lgb") })
	if want := []string{"check v4.1.0 failed", "signoff v4.1.0 business pending", "promote v4.1.0 pending"}; !slices.Equal(got, want) {
		t.Fatalf("pending %q\nwant %q", got, want)
	}
	if err := r.PromoteChecked("v4.1.0", "x", "ops", editTime, "test"); err != nil {
		t.Fatal(err)
	}
	if err := r.SignOff("v4.1.0", SignOffWeek1, "Eng", "", editTime.AddDate(0, 0, 14)); err != nil {
		t.Fatal(err)
	}
	got = slices.DeleteFunc(items(), func(s string) bool { return strings.Contains(s, " lgb") })
	if want := []string{"signoff v4.1.0 week2 pending", "sunset v4.0.0 pending"}; !slices.Equal(got, want) {
		t.Fatalf("pending %q\nwant %q", got, want)
	}
}

func TestRecordCheckRefusesResultsForAnotherModelFile(t *testing.T) {
	r, _ := fixtureRegistry(t)
	res := checkResult(mustVersion(t, r, "v4.1.0"))
	res.SHA256 = strings.Repeat("0", 64)
	if err := r.RecordCheck("v4.1.0", res); err == nil || !strings.Contains(err.Error(), "examined model file") {
		t.Fatalf("%v", err)
	}
	res = checkResult(mustVersion(t, r, "v4.1.0"), "features")
	if err := r.RecordCheck("v4.1.0", res); err != nil {
		t.Fatal(err)
	}
	v := mustVersion(t, r, "v4.1.0")
	h := r.History[len(r.History)-1]
	if v.Checks == nil || v.Checks.Passed || h.Action != ActionCheck || h.Status != StatusFailed || h.Reason != "1 of 4 gates failed: features" || h.By != "ci" {
		t.Fatalf("checks %+v, history %+v", v.Checks, h)
	}
}

// gate_thresholds and checks round-trip through the file; a field left out
// of gate_thresholds takes its default; malformed ones are refused naming
// the field.
func TestChecklistFieldsInTheFile(t *testing.T) {
	dir, doc := registryFixture(t)
	versionDoc(doc, 1)["gate_thresholds"] = map[string]any{"max_psi": 0.2, "min_top_decile_lift": 1.8}
	r, err := LoadRegistry(writeRegistry(t, dir, doc))
	if err != nil {
		t.Fatal(err)
	}
	v := mustVersion(t, r, "v4.1.0")
	want := DefaultGateLimits
	want.MaxPSI, want.MinTopDecileLift = 0.2, 1.8
	if got := v.GateLimits(); got != want {
		t.Fatalf("limits %+v, want %+v", got, want)
	}
	if got := mustVersion(t, r, "v4.0.0").GateLimits(); got != DefaultGateLimits {
		t.Fatalf("limits without gate_thresholds %+v, want the defaults", got)
	}
	if err := r.RecordCheck("v4.1.0", checkResult(v)); err != nil {
		t.Fatal(err)
	}
	if err := r.SignOff("v4.1.0", SignOffBusiness, "Biz", "ok", editTime); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(dir, "again.json")
	if err := os.WriteFile(again, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r2, err := LoadRegistry(again)
	if err != nil {
		t.Fatal(err)
	}
	v2 := mustVersion(t, r2, "v4.1.0")
	if v2.GateLimits() != want || v2.Checks == nil || !v2.Checks.Passed || len(v2.Checks.Gates) != 4 {
		t.Fatalf("after the round trip: limits %+v, checks %+v", v2.GateLimits(), v2.Checks)
	}
	if _, ok := r2.SignedOff("v4.1.0", SignOffBusiness); !ok {
		t.Fatal("the sign-off did not survive the round trip")
	}

	for _, tc := range []struct {
		name, wantErr string
		edit          func(d map[string]any)
	}{
		{"negative threshold", `registry: version "v4.1.0": gate_thresholds.max_psi: -0.1 is not a finite number >= 0`,
			func(d map[string]any) { versionDoc(d, 1)["gate_thresholds"] = map[string]any{"max_psi": -0.1} }},
		{"misspelt threshold", `unknown field "max_pis"`,
			func(d map[string]any) { versionDoc(d, 1)["gate_thresholds"] = map[string]any{"max_pis": 0.1} }},
		{"checks that say passed over a failed gate", `registry: version "v4.1.0": checks: passed: true, but the gates say 1 of 1 gates failed: parity`,
			func(d map[string]any) {
				versionDoc(d, 1)["checks"] = map[string]any{"time": "2026-01-01T00:00:00Z", "sha256": strings.Repeat("ab", 32), "holdout": "h",
					"holdout_sha256": "", "holdout_rows": 1, "holdout_conversions": 0, "passed": true,
					"gates": []any{map[string]any{"name": "parity", "item": "", "figure": "1", "threshold": "0", "pass": false}}}
			}},
		{"sign-off without a name", "registry: history[1]: by: a sign-off names who signed", func(d map[string]any) {
			d["history"] = append(d["history"].([]any), map[string]any{"time": "2026-01-01T00:00:00Z", "action": "signoff", "version": "v4.1.0", "reason": "", "signoff": "business"})
		}},
		{"sign-off of an unknown item", `registry: history[1]: signoff: "legal" is not one of`, func(d map[string]any) {
			d["history"] = append(d["history"].([]any), map[string]any{"time": "2026-01-01T00:00:00Z", "action": "signoff", "version": "v4.1.0", "reason": "", "signoff": "legal", "by": "x"})
		}},
		{"check entry without a status", `registry: history[1]: status: "" is not passed or failed`, func(d map[string]any) {
			d["history"] = append(d["history"].([]any), map[string]any{"time": "2026-01-01T00:00:00Z", "action": "check", "version": "v4.1.0", "reason": ""})
		}},
		{"override without a name", "registry: history[1]: by: override names who did it", func(d map[string]any) {
			d["history"] = append(d["history"].([]any), map[string]any{"time": "2026-01-01T00:00:00Z", "action": "override", "version": "v4.1.0", "reason": "x"})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, doc := registryFixture(t)
			tc.edit(doc)
			_, err := LoadRegistry(writeRegistry(t, dir, doc))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v\nwant one containing %q", err, tc.wantErr)
			}
		})
	}
}
