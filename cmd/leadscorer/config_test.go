package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/internal/testenv"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// Known secrets, each distinct so a leak says which one leaked.
const (
	kafkaSecret = "kafka-secret-3f9a7c11"
	redisSecret = "redis-secret-8e2b4d55"
	srSecret    = "registry-secret-c07d9e31"
	tokenSecret = "bearer-secret-61aa0f4b2d"
	urlSecret   = "url-secret-5d3e1b77"
)

var allSecrets = []string{kafkaSecret, redisSecret, srSecret, tokenSecret, urlSecret,
	base64.StdEncoding.EncodeToString([]byte("scorer:" + srSecret))}

func secretFile(t *testing.T, name, v string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Secrets given by environment or file never show in `leadscorer config`,
// in the error of a start-up that fails because of them, or in what run
// writes to stderr meanwhile.
func TestSecretsNeverInOutputOrErrors(t *testing.T) {
	// A broker that requires SCRAM, and a registry that requires basic
	// auth with credentials other than the ones the scorer is given.
	sasl := testenv.NewKafka(t, testenv.Secure(testenv.SASLPlaintext))
	authSR := &http.Server{Handler: srfake.NewRegistry(srfake.WithAuth("Basic other")).Handler(), ReadHeaderTimeout: time.Second}
	srURL := startHTTP(t, authSR)
	plain := testenv.NewKafka(t)

	common := []string{"--registry", "../../models/registry.json", "--http-addr", "", "--transactional-id", "secrets-test"}
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string // empty: the command succeeds
	}{
		{"config prints every secret redacted", []string{"config",
			"--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "scorer",
			"--schema-registry-username", "scorer", "--http-bearer-token-file", secretFile(t, "tok", tokenSecret),
			"--redis-url", "redis://scorer:" + urlSecret + "@127.0.0.1:6379/0"},
			map[string]string{"LEADSCORER_KAFKA_SASL_PASSWORD": kafkaSecret, "LEADSCORER_REDIS_PASSWORD": redisSecret,
				"LEADSCORER_SCHEMA_REGISTRY_PASSWORD": srSecret}, ""},
		{"a secret as a flag is refused without echoing it", []string{"run", "--kafka-sasl-password", kafkaSecret},
			nil, "refused on the command line"},
		{"a wrong Kafka password stops run", append([]string{"run", "--brokers", sasl.Brokers[0], "--schema-registry", plain.RegistryURL,
			"--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-sasl-username", sasl.Secured.User,
			"--kafka-sasl-password-file", secretFile(t, "kpw", kafkaSecret)}, common...), nil, "authentication of user"},
		{"a wrong Redis password stops run", append([]string{"run", "--brokers", plain.Brokers[0], "--schema-registry", plain.RegistryURL,
			"--redis-username", "no-such-user"}, common...), map[string]string{"LEADSCORER_REDIS_PASSWORD": redisSecret}, "redis at"},
		{"a wrong password in redis_url stops run", append([]string{"run", "--brokers", plain.Brokers[0], "--schema-registry", plain.RegistryURL,
			"--redis-url", "redis://nobody:" + urlSecret + "@127.0.0.1:6379/0"}, common...), nil, "redis at redis://nobody:redacted@"},
		{"a malformed redis_url with a password stops run", append([]string{"run", "--redis-url", "redis://u:" + urlSecret + "@127.0.0.1:notaport/0"}, common...),
			nil, "redis_url"},
		{"a wrong registry password stops run", append([]string{"run", "--brokers", plain.Brokers[0], "--schema-registry", srURL,
			"--schema-registry-username", "scorer"}, common...), map[string]string{"LEADSCORER_SCHEMA_REGISTRY_PASSWORD": srSecret}, "credentials refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			err := run(ctx, tc.args, strings.NewReader(""), &stdout, &stderr)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("failed: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
			}
			all := stdout.String() + stderr.String()
			if err != nil {
				all += err.Error()
			}
			for _, s := range allSecrets {
				if strings.Contains(all, s) {
					t.Fatalf("output shows secret %q:\n%s", s, all)
				}
			}
			if tc.wantErr == "" && !strings.Contains(stdout.String(), `kafka_sasl_password: "[redacted]"`) {
				t.Fatalf("config output lacks the redacted secret:\n%s", stdout.String())
			}
		})
	}
}

func startHTTP(t *testing.T, srv *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}
