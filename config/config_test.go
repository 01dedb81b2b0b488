package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the README table")

func load(t *testing.T, args []string, env map[string]string, yamlText string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	f := Bind(fs)
	if yamlText != "" {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, []byte(yamlText), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", p}, args...)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f.Load(func(k string) string { return env[k] })
}

func TestPrecedenceFlagOverEnvOverFileOverDefault(t *testing.T) {
	file := "group: from-file\ntopic_in: in-file\nbatch_max_records: 10\n"
	env := map[string]string{"LEADSCORER_GROUP": "from-env", "LEADSCORER_TOPIC_SFDC": "sfdc-env"}
	c, err := load(t, []string{"--group", "from-flag"}, env, file)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, got, want string }{
		{"flag beats env and file", c.Group, "from-flag"},
		{"file beats default", c.TopicIn, "in-file"},
		{"env beats default", c.TopicSfdc, "sfdc-env"},
		{"default when nothing sets it", c.TopicDLQ, "leads.dlq.v1"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if c.BatchMaxRecords != 10 {
		t.Errorf("YAML number: batch_max_records = %d", c.BatchMaxRecords)
	}
}

func TestInvalidValueNamesKeyAndSource(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		file string
		want string
	}{
		{"bad int flag", []string{"--batch-max-records", "0"}, nil, "", "batch_max_records (from flag --batch-max-records)"},
		{"bad duration env", nil, map[string]string{"LEADSCORER_FEATURE_MAX_AGE": "soon"}, "", "feature_max_age (from env LEADSCORER_FEATURE_MAX_AGE)"},
		{"bad policy file", nil, nil, "unknown_advisor: ignore\n", "unknown_advisor (from file"},
		{"unknown file key", nil, nil, "grup: x\n", "unknown keys grup"},
		{"bad url", []string{"--schema-registry", "localhost"}, nil, "", "schema_registry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.args, tc.env, tc.file)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	const pw = "s3cret-pa55"
	c, err := load(t, []string{"--redis-url", "redis://scorer:" + pw + "@127.0.0.1:6379/0"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := c.Write(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), pw) {
		t.Fatalf("config output shows the password:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "scorer:redacted@127.0.0.1:6379") {
		t.Fatalf("redacted URL missing:\n%s", b.String())
	}
	_, err = load(t, []string{"--redis-url", "http://u:" + pw + "@h"}, nil, "")
	if err == nil || strings.Contains(err.Error(), pw) {
		t.Fatalf("error %v must exist and hide the password", err)
	}
}

func TestDefaultsAreValid(t *testing.T) {
	c := Default()
	if c.TopicIn != "leads.changed.v1" || c.BatchMaxRecords != 2000 {
		t.Fatalf("defaults: %+v", c)
	}
}

// The README's table of settings is generated from Keys: this fails when a
// key is added, renamed or re-documented without updating the README
// (go test ./config -run README -update rewrites it).
func TestREADMEDocumentsEveryKey(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- config:begin -->\n", "<!-- config:end -->"
	s := string(readme)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q ... %q markers", begin, end)
	}
	if got := s[i+len(begin) : j]; got != b.String() {
		if *update {
			s = s[:i+len(begin)] + b.String() + s[j:]
			if err := os.WriteFile("../README.md", []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("README.md's settings table is out of date; run go test ./config -run README -update\nwant:\n%s", b.String())
	}
}
