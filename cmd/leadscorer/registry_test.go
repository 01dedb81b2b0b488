package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/scoring"
)

func runRegistryCapture(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	err := runRegistry(context.Background(), args, nil, &stdout, &stderr)
	return stdout.String() + stderr.String(), err
}

var committedHoldout = []string{"--holdout", filepath.Join("..", "..", "testdata", "holdout", "test.csv"),
	"--parity", filepath.Join("..", "..", "testdata", "parity")}

type registryStep struct {
	name    string
	advance time.Duration // the registry clock moves on this much before the step
	args    []string
	err     string   // the error must contain it; "" for success
	out     []string // the output must contain each
	roles   map[string]string
	history string // the reason of the last history entry
}

// squash collapses runs of spaces: tables are compared cell by cell, not
// by column width.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

func runSteps(t *testing.T, path string, steps []registryStep) {
	t.Helper()
	current := time.Date(2026, 1, 7, 10, 0, 0, 0, time.UTC) // a Wednesday
	registryClock = func() time.Time { return current }
	defer func() { registryClock = time.Now }()
	for _, s := range steps {
		current = current.Add(s.advance)
		out, err := runRegistryCapture(append([]string{"--registry", path}, s.args...)...)
		if s.err != "" {
			if err == nil || !strings.Contains(err.Error(), s.err) {
				t.Fatalf("%s: err %v, want %q\n%s", s.name, err, s.err, out)
			}
		} else if err != nil {
			t.Fatalf("%s: %v\n%s", s.name, err, out)
		}
		for _, want := range s.out {
			if !strings.Contains(squash(out), squash(want)) {
				t.Errorf("%s: output lacks %q:\n%s", s.name, want, out)
			}
		}
		r, err := scoring.LoadRegistry(path)
		if err != nil {
			t.Fatalf("%s: registry no longer loads: %v", s.name, err)
		}
		for v, role := range s.roles {
			if got, _ := r.Version(v); got.Role != role {
				t.Errorf("%s: %s is %s, want %s", s.name, v, got.Role, role)
			}
		}
		if s.history != "" {
			if got := r.History[len(r.History)-1].Reason; got != s.history {
				t.Errorf("%s: last history reason %q, want %q", s.name, got, s.history)
			}
		}
	}
}

func TestRegistryCommand(t *testing.T) {
	path := copyModels(t)
	runSteps(t, path, []registryStep{
		{name: "a change without a reason is refused", args: []string{"promote", "v4.1.0"}, err: "--reason is required",
			roles: map[string]string{"v4.0.0": "production", "v4.1.0": "shadow"}},
		{name: "an unknown action is refused", args: []string{"--reason", "x", "retire", "v4.1.0"}, err: `unknown action "retire"`},
		{name: "promote takes one version", args: []string{"--reason", "x", "promote"}, err: "takes 1 version"},
		{name: "a flag of another action is refused", args: []string{"check", "v4.1.0", "--reason", "x"}, err: "check does not take --reason"},
		{name: "promote without gates or sign-offs is refused, naming each", args: []string{"promote", "v4.1.0", "--reason", "parallel week passed"},
			err:   "pre-deployment gates not run (leadscorer registry check v4.1.0); sign-off data-science missing; sign-off engineering missing; sign-off business missing",
			roles: map[string]string{"v4.0.0": "production", "v4.1.0": "shadow"}},
		{name: "an override needs a name", args: []string{"promote", "v4.1.0", "--override", "--reason", "incident"}, err: "--by"},
		{name: "an override promotes and is recorded", args: []string{"promote", "v4.1.0", "--override", "--reason", "incident 42", "--by", "Dana"},
			out: []string{"override recorded"}, roles: map[string]string{"v4.0.0": "shadow", "v4.1.0": "production"}, history: "replaced as production by v4.1.0"},
		{name: "rollback to the previous production, failed one deprecated", args: []string{"--reason", "lift below 1.5x", "rollback"},
			roles: map[string]string{"v4.0.0": "production", "v4.1.0": "deprecated"}, history: "rolled back to v4.0.0: lift below 1.5x"},
		{name: "archive the deprecated version", args: []string{"--reason", "sunset", "archive", "v4.1.0"},
			roles: map[string]string{"v4.0.0": "production", "v4.1.0": "archived"}, history: "sunset"},
	})
	r, err := scoring.LoadRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	var override *scoring.HistoryEntry
	for i, h := range r.History {
		if h.Action == scoring.ActionOverride {
			override = &r.History[i]
		}
	}
	if override == nil || override.By != "Dana" || !strings.Contains(override.Reason, "incident 42") || !strings.Contains(override.Reason, "sign-off business missing") {
		t.Fatalf("override entry %+v", override)
	}
	out, err := runRegistryCapture("--registry", path, "status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"v4.0.0   production", "v4.1.0   archived", "promote", "rollback", "sunset", "override v4.1.0 Dana"} {
		if !strings.Contains(squash(out), squash(want)) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
}

// The checklist through the command: gates, the three sign-offs (promote
// refused while any is missing), promotion, the week sign-offs, the sunset
// of v4.0.0, and the history.
func TestRegistryChecklistCommands(t *testing.T) {
	path := copyModels(t)
	check := append([]string{"check", "v4.1.0", "--by", "ci"}, committedHoldout...)
	runSteps(t, path, []registryStep{
		{name: "check passes and prints every gate", args: check, out: []string{
			"v4.1.0: pre-deployment gates on", "(3437 rows, 152 converted), baseline v4.0.0",
			"model_file ", "model_sha256 ", "model_loads ", "features ", "auc_vs_baseline ", "top_decile_lift ",
			"overfitting ", "explanations ", "parity ", "score_distribution ", "10 of 10 gates passed", "stored with v4.1.0"},
			history: "10 of 10 gates passed"},
		{name: "signoff needs a role or a stage", args: []string{"signoff", "v4.1.0", "--by", "Ana"}, err: "--role or --stage is required"},
		{name: "a stage is not a role", args: []string{"signoff", "v4.1.0", "--role", "week1", "--by", "Ana"}, err: `--role "week1" is not one of`},
		{name: "signoff needs a name", args: []string{"signoff", "v4.1.0", "--role", "data-science"}, err: "--by is required"},
		{name: "week 1 before the promotion is refused", args: []string{"signoff", "v4.1.0", "--stage", "week1", "--by", "Eng"}, err: "post-deployment sign-offs are for the production version"},
		{name: "data science signs", args: []string{"signoff", "v4.1.0", "--role", "data-science", "--by", "Ana DS", "--note", "AUC and lift reviewed"},
			out:     []string{"v4.1.0 signed off by Ana DS: model validated and ready", "sign-off engineering missing; sign-off business missing"},
			history: "AUC and lift reviewed"},
		{name: "promote refused: engineering and business missing", args: []string{"promote", "v4.1.0", "--reason", "x"},
			err: "refused: sign-off engineering missing; sign-off business missing", roles: map[string]string{"v4.1.0": "shadow"}},
		{name: "engineering signs", args: []string{"signoff", "v4.1.0", "--role", "engineering", "--by", "Eli Eng"}},
		{name: "promote refused: business missing", args: []string{"promote", "v4.1.0", "--reason", "x"},
			err: "refused: sign-off business missing (", roles: map[string]string{"v4.1.0": "shadow"}},
		{name: "business signs", args: []string{"signoff", "v4.1.0", "--role", "business", "--by", "Bea Biz"},
			out: []string{"it can be promoted"}},
		{name: "promote", args: []string{"promote", "v4.1.0", "--reason", "parallel week passed", "--by", "Ops"},
			out: []string{"promoted v4.1.0 to production"}, roles: map[string]string{"v4.1.0": "production", "v4.0.0": "shadow"}},
		{name: "sunset refused before week 2", args: []string{"sunset", "v4.0.0", "--by", "Ops"}, err: "has no week-2 sign-off", roles: map[string]string{"v4.0.0": "shadow"}},
		{name: "week 1 refused while it runs", args: []string{"signoff", "v4.1.0", "--stage", "week1", "--by", "Eng"}, advance: 6 * 24 * time.Hour,
			err: "v4.1.0's week1 ends on 2026-01-19 (its verdict needs that week's outcomes): too early to sign"},
		{name: "week 2 before week 1 refused", args: []string{"signoff", "v4.1.0", "--stage", "week2", "--by", "Eng"}, advance: 14 * 24 * time.Hour, err: "no week-1 sign-off"},
		{name: "week 1", args: []string{"signoff", "v4.1.0", "--stage", "week1", "--by", "Eli Eng"}, out: []string{"performance metrics validated"}},
		{name: "week 2", args: []string{"signoff", "v4.1.0", "--stage", "week2", "--by", "Eli Eng"}, out: []string{"no regressions detected"}},
		{name: "sunset needs a name", args: []string{"sunset", "v4.0.0"}, err: "who sunsets is required"},
		{name: "sunset", args: []string{"sunset", "v4.0.0", "--by", "Ops"}, out: []string{"v4.0.0 sunset"},
			roles: map[string]string{"v4.0.0": "archived", "v4.1.0": "production"}},
	})
	r, err := scoring.LoadRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Serving()) != 1 || r.Serving()[0].Name != "v4.1.0" {
		t.Fatalf("serving %d versions after the sunset, want v4.1.0 only", len(r.Serving()))
	}
	out, err := runRegistryCapture("--registry", path, "history")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"DATE              ACTION               VERSION  WHO      STATUS    NOTE",
		"2025-12-31 00:00  register             v4.1.0   -        complete  trained",
		"2026-01-07 10:00  check                v4.1.0   ci       passed    10 of 10 gates passed",
		"2026-01-27 10:00  signoff week1        v4.1.0   Eli Eng  complete",
		"check                v4.1.0   ci       passed    10 of 10 gates passed",
		"signoff data-science  v4.1.0   Ana DS   complete  AUC and lift reviewed",
		"promote              v4.1.0   Ops      complete  parallel week passed",
		"signoff week2        v4.1.0   Eli Eng  complete",
		"sunset               v4.0.0   Ops      complete  replaced by v4.1.0; its week 2 signed off by Eli Eng",
	} {
		if !strings.Contains(squash(out), squash(want)) {
			t.Errorf("history lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "TBD") {
		t.Errorf("history lists pending items after the whole checklist:\n%s", out)
	}
	out, err = runRegistryCapture("--registry", path, "history", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		History []scoring.HistoryEntry `json:"history"`
		Pending []scoring.HistoryEntry `json:"pending"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("history --json: %v\n%s", err, out)
	}
	if len(doc.History) != len(r.History) || doc.Pending == nil || len(doc.Pending) != 0 {
		t.Fatalf("history --json: %d entries (registry %d), pending %v", len(doc.History), len(r.History), doc.Pending)
	}
}

// A failing gate: the check exits non-zero, the result is stored, and
// promote is refused naming the gate even with every sign-off.
func TestRegistryPromoteRefusedOnAFailingGate(t *testing.T) {
	path := copyModels(t)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The business asks for a lift of 2.5x from this version.
	raw = bytes.Replace(raw, []byte(`"min_top_decile_lift": 1.5`), []byte(`"min_top_decile_lift": 2.5`), 2)
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	steps := []registryStep{
		{name: "check fails on the lift and says so", args: append([]string{"check", "v4.1.0", "--json"}, committedHoldout...),
			err: "1 of 10 gates failed: top_decile_lift", out: []string{`"stored": true`, `"threshold": "\u003e 2.50x"`}},
		{name: "promote refused on the failing gate (and the sign-offs)", args: []string{"promote", "v4.1.0", "--reason", "x"},
			err: "refused: gates failed: top_decile_lift; sign-off data-science missing", roles: map[string]string{"v4.1.0": "shadow"}},
	}
	for _, role := range scoring.PreDeploymentSignOffs {
		steps = append(steps, registryStep{name: "sign " + role, args: []string{"signoff", "v4.1.0", "--role", role, "--by", "someone"}})
	}
	steps = append(steps,
		registryStep{name: "still refused with every sign-off", args: []string{"promote", "v4.1.0", "--reason", "x"},
			err: "refused: gates failed: top_decile_lift (", roles: map[string]string{"v4.1.0": "shadow"}},
		registryStep{name: "history shows the failed check and the pending promotion", args: []string{"history"},
			out: []string{"failed    1 of 10 gates failed: top_decile_lift", "TBD               check                v4.1.0   -        failed", "TBD               promote              v4.1.0   -        pending"}},
	)
	runSteps(t, path, steps)
	r, err := scoring.LoadRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := r.Version("v4.1.0")
	if v.Checks == nil || v.Checks.Passed || v.Checks.Failed()[0] != "top_decile_lift" {
		t.Fatalf("stored checks %+v", v.Checks)
	}
}

// Another operator's edit lands while check computes the gates: the store
// of the result is refused as stale, check reads the registry again and
// computes again, and both edits are in the file.
func TestRegistryCheckRetriesWhenTheRegistryChangedMeanwhile(t *testing.T) {
	path := copyModels(t)
	calls := 0
	afterGates = func() {
		calls++
		if calls == 1 {
			if out, err := runRegistryCapture("--registry", path, "signoff", "v4.1.0", "--role", "business", "--by", "Bea"); err != nil {
				t.Errorf("the other operator's sign-off: %v\n%s", err, out)
			}
		}
	}
	defer func() { afterGates = nil }()
	out, err := runRegistryCapture(append([]string{"--registry", path, "check", "v4.1.0"}, committedHoldout...)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if calls != 2 {
		t.Fatalf("gates computed %d times, want 2 (once more after the stale store)", calls)
	}
	r, err := scoring.LoadRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := r.Version("v4.1.0")
	if _, ok := r.SignedOff("v4.1.0", scoring.SignOffBusiness); !ok || v.Checks == nil || !v.Checks.Passed {
		t.Fatalf("sign-off kept %v, checks %+v: an edit was lost", ok, v.Checks)
	}
	var checks int
	for _, h := range r.History {
		if h.Action == scoring.ActionCheck {
			checks++
		}
	}
	if checks != 1 {
		t.Fatalf("%d check entries, want 1", checks)
	}
}

// copyModels copies the committed registry and models to a temporary
// folder: the tests never edit the committed registry.
func copyModels(t *testing.T) string {
	t.Helper()
	path, err := scoring.CopyRegistry(filepath.Join("..", "..", "models", "registry.json"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return path
}
