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
	f := Bind(fs, All)
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
		{"confidence of 1", []string{"--rollback-confidence", "1"}, nil, "", "rollback_confidence (from flag --rollback-confidence): must be a number above 0.5 and below 1"},
		{"confidence of one half", nil, map[string]string{"LEADSCORER_ROLLBACK_AUC_CONFIDENCE": "0.5"}, "", "rollback_auc_confidence (from env"},
		{"no week pooled", nil, nil, "rollback_window_weeks: 0\n", "rollback_window_weeks (from file"},
		{"no conversion needed", []string{"--rollback-min-conversions", "0"}, nil, "", "rollback_min_conversions"},
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

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSecretFromFileOrEnv(t *testing.T) {
	const pw = "kafka-pw-from-file"
	file := writeFile(t, "pw", pw+"\n")
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		yaml string
		want string
	}{
		{"file named by a flag, trailing newline dropped", []string{"--kafka-sasl-password-file", file}, nil, "", pw},
		{"file named by the environment", nil, map[string]string{"LEADSCORER_KAFKA_SASL_PASSWORD_FILE": file}, "", pw},
		{"file named in YAML", nil, nil, "kafka_sasl_password_file: " + file + "\n", pw},
		{"value from the environment", nil, map[string]string{"LEADSCORER_KAFKA_SASL_PASSWORD": "env-pw"}, "", "env-pw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-sasl-username", "scorer"}, tc.args...)
			c, err := load(t, args, tc.env, tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			if c.KafkaSASLPassword != tc.want {
				t.Fatalf("password %q, want %q", c.KafkaSASLPassword, tc.want)
			}
		})
	}
}

func TestSecretRefusals(t *testing.T) {
	const pw = "never-show-this-secret-1"
	pwFile := writeFile(t, "pw", pw)
	big := writeFile(t, "big", strings.Repeat("x", maxSecretFile+1))
	empty := writeFile(t, "empty", "\n")
	sasl := []string{"--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u"}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"a secret flag is refused, pointing at env and file", []string{"--kafka-sasl-password", pw}, nil, "LEADSCORER_KAFKA_SASL_PASSWORD or kafka_sasl_password_file"},
		{"a bearer token flag is refused", []string{"--http-bearer-token", pw}, nil, "http_bearer_token: refused on the command line"},
		{"value and file together are ambiguous", append(sasl, "--kafka-sasl-password-file", pwFile), map[string]string{"LEADSCORER_KAFKA_SASL_PASSWORD": pw}, "exclude each other"},
		{"a missing file is named", append(sasl, "--kafka-sasl-password-file", "/nonexistent/pw"), nil, "kafka_sasl_password_file (from flag --kafka-sasl-password-file)"},
		{"a huge file is not read", append(sasl, "--kafka-sasl-password-file", big), nil, "not a secret file"},
		{"an empty file is refused", append(sasl, "--kafka-sasl-password-file", empty), nil, "is empty"},
		{"a short bearer token from a file is refused without quoting it", []string{"--http-bearer-token-file", writeFile(t, "tok", "short")}, nil, "at least 16 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.args, tc.env, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "short") && !strings.Contains(tc.want, "short") {
				t.Fatalf("error quotes the secret: %v", err)
			}
		})
	}
}

func TestConflictingSettings(t *testing.T) {
	cert := writeFile(t, "c.pem", "x")
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"client cert without key", []string{"--kafka-cert-file", cert}, nil, "kafka_cert_file and kafka_key_file go together"},
		{"SASL mechanism without credentials", []string{"--kafka-sasl-mechanism", "SCRAM-SHA-512"}, nil, "needs kafka_sasl_username and kafka_sasl_password"},
		{"SASL credentials without mechanism", []string{"--kafka-sasl-username", "u"}, nil, "kafka_sasl_mechanism is empty"},
		{"unknown SASL mechanism", []string{"--kafka-sasl-mechanism", "GSSAPI"}, nil, "must be PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"},
		{"registry user without password", []string{"--schema-registry-username", "u"}, nil, "schema_registry_username and schema_registry_password go together"},
		{"registry CA over plain http", []string{"--schema-registry-ca-file", cert}, nil, "needs an https:// schema_registry"},
		{"redis CA over plain redis", []string{"--redis-ca-file", cert}, nil, "needs a rediss:// redis_url"},
		{"metrics on the health address", []string{"--metrics-addr", "127.0.0.1:9464"}, nil, "metrics_addr must differ from http_addr"},
		{"partition fetch above the fetch", []string{"--fetch-max-bytes", "1048576", "--fetch-max-partition-bytes", "2097152"}, nil, "must not exceed fetch_max_bytes"},
		{"fetch limit below its floor", []string{"--fetch-max-bytes", "1000"}, nil, "fetch_max_bytes (from flag --fetch-max-bytes): must be an integer in 65536..67108864"},
		{"top-up wait above its cap", []string{"--batch-top-up-wait", "1s"}, nil, `batch_top_up_wait (from flag --batch-top-up-wait): must be a duration from 0s to 100ms, not "1s"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.args, tc.env, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestCAFileImpliesKafkaTLS(t *testing.T) {
	c, err := load(t, []string{"--kafka-ca-file", writeFile(t, "ca.pem", "x")}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if !c.KafkaTLS {
		t.Fatal("kafka_ca_file set but kafka_tls false")
	}
	if d := Default(); d.KafkaTLS || d.FetchMaxBytes != 4<<20 || d.MaxConcurrentFetches != 1 {
		t.Fatalf("defaults: tls %v fetch %d concurrent %d", d.KafkaTLS, d.FetchMaxBytes, d.MaxConcurrentFetches)
	}
}

// Every secret the service takes is redacted by Write, whether it came from
// the environment or a file, and an unset secret prints empty (not as
// "[redacted]", which would claim one is set).
func TestWriteRedactsEverySecret(t *testing.T) {
	secrets := map[string]string{
		"LEADSCORER_KAFKA_SASL_PASSWORD":      "kafka-secret-value-1",
		"LEADSCORER_REDIS_PASSWORD":           "redis-secret-value-2",
		"LEADSCORER_SCHEMA_REGISTRY_PASSWORD": "sr-secret-value-3",
	}
	tokFile := writeFile(t, "tok", "bearer-secret-value-4\n")
	c, err := load(t, []string{"--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u",
		"--schema-registry-username", "u", "--http-bearer-token-file", tokFile}, secrets, "")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := c.Write(&b); err != nil {
		t.Fatal(err)
	}
	for _, v := range append(mapValues(secrets), "bearer-secret-value-4") {
		if strings.Contains(b.String(), v) {
			t.Errorf("config output shows %q:\n%s", v, b.String())
		}
	}
	for _, want := range []string{`kafka_sasl_password: "[redacted]"`, `http_bearer_token_file: "` + tokFile + `"`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %s:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := Default().Write(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "kafka_sasl_password: \"\"\n") {
		t.Errorf("an unset secret must print empty:\n%s", b.String())
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// A boolean setting is a flag without a value; a value after it is an
// argument the command refuses rather than silently ignores.
func TestBooleanFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    bool
		wantErr string
	}{
		{args: nil, want: false},
		{args: []string{"--validate"}, want: true},
		{args: []string{"--validate=true"}, want: true},
		{args: []string{"--validate=false"}, want: false},
		{args: []string{"--validate", "false"}, wantErr: "unexpected arguments"},
		{args: []string{"--validate=maybe"}, wantErr: "validate (from flag --validate)"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			c, err := load(t, tc.args, nil, "")
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case c.Validate != tc.want:
				t.Errorf("validate = %v, want %v", c.Validate, tc.want)
			}
		})
	}
}

// A command binds only the groups it uses; the other keys keep their
// environment, file or default values and are not flags.
func TestBindOnlyTheGroupsAndKeysGiven(t *testing.T) {
	fs := flag.NewFlagSet("features load", flag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	f := Bind(fs, Redis, "log_level")
	for _, want := range []string{"config", "redis-url", "redis-prefix", "redis-password-file", "log-level"} {
		if fs.Lookup(want) == nil {
			t.Errorf("--%s not bound", want)
		}
	}
	for _, not := range []string{"brokers", "topic-in", "validate", "http-addr"} {
		if fs.Lookup(not) != nil {
			t.Errorf("--%s bound, but it is not a Redis setting", not)
		}
	}
	if err := fs.Parse([]string{"--brokers", "x:1"}); err == nil {
		t.Error("--brokers accepted by a command that does not use it")
	}
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	c, err := f.Load(func(k string) string { return map[string]string{"LEADSCORER_BROKERS": "env:9"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Brokers) != 1 || c.Brokers[0] != "env:9" {
		t.Errorf("brokers %v, want the environment's", c.Brokers)
	}
	defer func() {
		if recover() == nil {
			t.Error("Bind of an unknown key did not panic")
		}
	}()
	Bind(flag.NewFlagSet("x", flag.ContinueOnError), Redis, "no_such_key")
}

// Every key belongs to a group, or no command could bind it.
func TestEveryKeyHasAGroup(t *testing.T) {
	for _, k := range Keys {
		if k.Group == 0 || k.Group&All != k.Group {
			t.Errorf("%s: group %b", k.Name, k.Group)
		}
	}
}

// The scorer gives a batch up before the broker aborts its transaction.
func TestBatchTimeoutBelowTransactionTimeout(t *testing.T) {
	if _, err := load(t, []string{"--batch-timeout", "60s", "--transaction-timeout", "60s"}, nil, ""); err == nil ||
		!strings.Contains(err.Error(), "batch_timeout (1m0s) must be below transaction_timeout (1m0s)") {
		t.Errorf("error %v", err)
	}
	if _, err := load(t, []string{"--batch-timeout", "59s", "--transaction-timeout", "60s"}, nil, ""); err != nil {
		t.Error(err)
	}
}
