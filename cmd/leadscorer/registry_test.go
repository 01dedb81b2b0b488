package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leadscorer/leadscorer/scoring"
)

func runRegistryCapture(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	err := runRegistry(context.Background(), args, nil, &stdout, &stderr)
	return stdout.String() + stderr.String(), err
}

func TestRegistryCommand(t *testing.T) {
	path := copyModels(t)
	steps := []struct {
		name    string
		args    []string
		err     string
		roles   map[string]string
		history string // the reason of the last history entry
	}{
		{name: "a change without a reason is refused", args: []string{"promote", "v4.1.0"}, err: "--reason is required",
			roles: map[string]string{"v4.0.0": "production", "v4.1.0": "shadow"}},
		{name: "an unknown action is refused", args: []string{"--reason", "x", "retire", "v4.1.0"}, err: `unknown action "retire"`},
		{name: "promote takes one version", args: []string{"--reason", "x", "promote"}, err: "takes 1 version"},
		{name: "promote after the parallel week", args: []string{"promote", "v4.1.0", "--reason", "parallel week passed"},
			roles: map[string]string{"v4.0.0": "shadow", "v4.1.0": "production"}, history: "replaced as production by v4.1.0"},
		{name: "rollback to the previous production, failed one deprecated", args: []string{"--reason", "lift below 1.5x", "rollback"},
			roles: map[string]string{"v4.0.0": "production", "v4.1.0": "deprecated"}, history: "rolled back to v4.0.0: lift below 1.5x"},
		{name: "archive the deprecated version", args: []string{"--reason", "sunset", "archive", "v4.1.0"},
			roles: map[string]string{"v4.0.0": "production", "v4.1.0": "archived"}, history: "sunset"},
	}
	for _, s := range steps {
		out, err := runRegistryCapture(append([]string{"--registry", path}, s.args...)...)
		if s.err != "" {
			if err == nil || !strings.Contains(err.Error(), s.err) {
				t.Fatalf("%s: err %v, want %q", s.name, err, s.err)
			}
		} else if err != nil {
			t.Fatalf("%s: %v\n%s", s.name, err, out)
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
	out, err := runRegistryCapture("--registry", path, "status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"v4.0.0   production", "v4.1.0   archived", "promote", "rollback", "sunset"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
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
