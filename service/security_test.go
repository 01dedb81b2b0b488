package service

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/internal/testenv"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/prometheus/common/expfmt"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// The scorer reaches a broker that requires TLS, a SASL login or both, and
// scores; a wrong password, a mechanism the listener does not accept, an
// untrusted broker certificate or a missing client certificate stops
// start-up at once with an error naming the setting, never quoting the
// password. In process, each case has a kfake broker of its own; under
// `make test-kafka`, the listener of its kind on every broker of the
// Apache Kafka stack (testenv.Secure).
func TestKafkaTLSAndSASL(t *testing.T) {
	other := testenv.NewPKI(t) // a CA the brokers' certificates do not come from
	const wrongPass = "wrong-password-9d1c"
	for _, tc := range []struct {
		name      string
		listener  testenv.Listener
		mechanism string // the scorer's kafka_sasl_mechanism; "" for no login
		configure func(cfg *config.Config)
		wantErr   string // empty: start-up succeeds and the event is scored; USER is the user name, quoted
		// onKafka is the error a real broker answers with, which the
		// refusal must wrap (kfake closes the connection instead).
		onKafka error
	}{
		{name: "TLS without a login scores", listener: testenv.SSL},
		{name: "SCRAM-SHA-256 over TLS with a client certificate scores", listener: testenv.MTLS, mechanism: "SCRAM-SHA-256"},
		{name: "SCRAM-SHA-512 over TLS scores", listener: testenv.SASLSSL, mechanism: "SCRAM-SHA-512"},
		{name: "PLAIN over TLS scores", listener: testenv.SASLSSL, mechanism: "PLAIN"},
		{name: "SCRAM-SHA-256 without TLS scores", listener: testenv.SASLPlaintext, mechanism: "SCRAM-SHA-256"},
		{name: "a wrong password is refused at start-up", listener: testenv.SASLSSL, mechanism: "SCRAM-SHA-256",
			configure: func(cfg *config.Config) { cfg.KafkaSASLPassword = wrongPass },
			wantErr:   `SASL SCRAM-SHA-256 authentication of user USER failed`, onKafka: kerr.SaslAuthenticationFailed},
		{name: "a wrong SCRAM-SHA-512 password without TLS is refused at start-up", listener: testenv.SASLPlaintext, mechanism: "SCRAM-SHA-512",
			configure: func(cfg *config.Config) { cfg.KafkaSASLPassword = wrongPass },
			wantErr:   `SASL SCRAM-SHA-512 authentication of user USER failed`, onKafka: kerr.SaslAuthenticationFailed},
		{name: "a wrong PLAIN password is refused at start-up", listener: testenv.SASLSSL, mechanism: "PLAIN",
			configure: func(cfg *config.Config) { cfg.KafkaSASLPassword = wrongPass },
			wantErr:   `SASL PLAIN authentication of user USER failed`, onKafka: kerr.SaslAuthenticationFailed},
		{name: "a mechanism the listener does not accept is refused", listener: testenv.SASLPlaintext, mechanism: "PLAIN",
			wantErr: "kafka_sasl_mechanism", onKafka: kerr.UnsupportedSaslMechanism},
		{name: "an untrusted broker certificate is refused", listener: testenv.SASLSSL, mechanism: "SCRAM-SHA-256",
			configure: func(cfg *config.Config) { cfg.KafkaCAFile = other.CAFile },
			wantErr:   "certificate is not trusted (kafka_ca_file)"},
		{name: "plain TCP to a TLS broker is refused", listener: testenv.SASLSSL, mechanism: "SCRAM-SHA-256",
			configure: func(cfg *config.Config) { cfg.KafkaTLS, cfg.KafkaCAFile = false, "" },
			wantErr:   "the brokers speak TLS and the client does not (kafka_tls)"},
		{name: "a missing client certificate is refused", listener: testenv.MTLS, mechanism: "SCRAM-SHA-256",
			configure: func(cfg *config.Config) { cfg.KafkaCertFile, cfg.KafkaKeyFile = "", "" },
			wantErr:   "the brokers require a client certificate (kafka_cert_file, kafka_key_file)"},
		{name: "a client certificate from another CA is refused", listener: testenv.MTLS, mechanism: "SCRAM-SHA-256",
			configure: func(cfg *config.Config) {
				cfg.KafkaCertFile, cfg.KafkaKeyFile = other.ClientCertFile, other.ClientKeyFile
			},
			wantErr: "the brokers refused the client certificate (kafka_cert_file, kafka_key_file)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarnessOn(t, testenv.NewKafka(t, testenv.Secure(tc.listener)))
			sec := h.k.Secured
			t.Logf("on %s", h.k.Describe())
			h.cfg.KafkaTLS = tc.listener.TLS()
			h.cfg.KafkaCAFile, h.cfg.KafkaCertFile, h.cfg.KafkaKeyFile = sec.CAFile, sec.CertFile, sec.KeyFile
			if tc.mechanism != "" {
				h.cfg.KafkaSASLMechanism, h.cfg.KafkaSASLUsername, h.cfg.KafkaSASLPassword = tc.mechanism, sec.User, sec.Password
			}
			if tc.configure != nil {
				tc.configure(h.cfg)
			}
			if tc.wantErr == "" {
				h.produce(h.event("k1", "00Q5e00000AbCdEAAA", 1001))
				svc := h.score()
				if n := len(h.drain(h.cfg.TopicShadow)); n != 1 {
					t.Fatalf("%d shadow records, want 1", n)
				}
				if m := metricsText(t, svc); sec.Password != "" && strings.Contains(m, sec.Password) {
					t.Fatalf("metrics show the Kafka password:\n%s", m)
				}
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*kafkaPingTimeout)
			defer cancel()
			start := time.Now()
			svc, err := New(ctx, h.cfg, nil)
			if err == nil {
				svc.Close()
				t.Fatal("start-up succeeded, want it refused")
			}
			if want := strings.ReplaceAll(tc.wantErr, "USER", strconv.Quote(sec.User)); !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q, want it to contain %q", err, want)
			}
			if h.k.Real && tc.onKafka != nil && !errors.Is(err, tc.onKafka) {
				t.Fatalf("error %q, want the broker's %v in it", err, tc.onKafka)
			}
			for _, secret := range []string{sec.Password, wrongPass} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Fatalf("error quotes a password: %v", err)
				}
			}
			if d := time.Since(start); d > kafkaPingTimeout {
				t.Fatalf("refusal took %s: a retry loop, not a clear refusal", d)
			}
			t.Logf("refused in %s: %v", time.Since(start).Round(time.Millisecond), err)
		})
	}
}

// A real broker refuses a login with an error code rather than closing the
// connection, and answers a plaintext client with a TLS alert: each says
// which settings to check.
func TestExplainKafkaErrNamesTheSetting(t *testing.T) {
	cfg := config.Default()
	cfg.KafkaSASLMechanism, cfg.KafkaSASLUsername = "SCRAM-SHA-512", "scorer"
	for _, tc := range []struct {
		name     string
		err      error
		timedOut bool
		want     string
	}{
		{"authentication failed code", fmt.Errorf("sasl: %w", kerr.SaslAuthenticationFailed), false, `SASL SCRAM-SHA-512 authentication of user "scorer" failed (check kafka_sasl_username and kafka_sasl_password)`},
		{"unsupported mechanism code", kerr.UnsupportedSaslMechanism, false, "do not accept SASL mechanism SCRAM-SHA-512 (kafka_sasl_mechanism)"},
		{"connection closed during login", io.EOF, false, "closed the connection during the login"},
		{"a TLS alert record read as a response size", errors.New("invalid large response size 352518912 > limit 104857600; the first three bytes received appear to be a tls alert record for TLS v1.2; is this a plaintext connection speaking to a tls endpoint?"),
			false, "the brokers speak TLS and the client does not (kafka_tls)"},
		{"a certificate alert", &net.OpError{Op: "remote error", Err: tls.AlertError(42)}, false, "the brokers require a client certificate (kafka_cert_file, kafka_key_file)"},
		{"nobody answers", context.DeadlineExceeded, true, "no broker answered within"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := explainKafkaErr(cfg, tc.err, tc.timedOut)
			if !strings.Contains(got.Error(), tc.want) || !errors.Is(got, tc.err) {
				t.Fatalf("got %v, want it to contain %q and wrap %v", got, tc.want, tc.err)
			}
		})
	}
}

// redisACLUser creates a Redis ACL user that may touch only the harness's
// keys, and removes it when the test ends.
func redisACLUser(t *testing.T, h *harness) (user, pass string) {
	t.Helper()
	ctx := context.Background()
	user, pass = fmt.Sprintf("leadscorer-test-%d", time.Now().UnixNano()), "redis-right-password-51c2"
	if err := h.rdb.Do(ctx, "ACL", "SETUSER", user, "reset", "on", ">"+pass, "~"+h.cfg.RedisPrefix+"*", "+@all", "-@dangerous").Err(); err != nil {
		t.Fatalf("ACL SETUSER on the test Redis: %v", err)
	}
	t.Cleanup(func() { h.rdb.Do(context.Background(), "ACL", "DELUSER", user) })
	return user, pass
}

// The scorer logs in to Redis as an ACL user limited to its own key prefix,
// with credentials from the settings or the URL; a wrong password stops
// start-up without quoting it.
func TestRedisACLUser(t *testing.T) {
	for _, tc := range []struct {
		name      string
		configure func(h *harness, user, pass string)
		wantErr   string
	}{
		{"user and password settings", func(h *harness, user, pass string) {
			h.cfg.RedisUsername, h.cfg.RedisPassword = user, pass
		}, ""},
		{"user and password in the URL", func(h *harness, user, pass string) {
			h.cfg.RedisURL = fmt.Sprintf("redis://%s:%s@%s/0", user, pass, redisHostPort(t))
		}, ""},
		{"a wrong password is refused at start-up", func(h *harness, user, _ string) {
			h.cfg.RedisUsername, h.cfg.RedisPassword = user, "wrong-password-0b7e"
		}, "WRONGPASS"},
		{"the password setting overrides the URL's", func(h *harness, user, pass string) {
			h.cfg.RedisURL = fmt.Sprintf("redis://%s:%s@%s/0", user, pass, redisHostPort(t))
			h.cfg.RedisPassword = "wrong-password-0b7e"
		}, "WRONGPASS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			user, pass := redisACLUser(t, h)
			tc.configure(h, user, pass)
			if tc.wantErr == "" {
				h.produce(h.event("r1", "00Q5e00000AbCdEAAA", 1001))
				h.score()
				shadow := h.drain(h.cfg.TopicShadow)
				if len(shadow) != 1 {
					t.Fatalf("%d shadow records, want 1", len(shadow))
				}
				var s schemas.LeadScoreShadow
				if err := h.codec.DecodeShadow(context.Background(), shadow[0].Value, &s); err != nil {
					t.Fatal(err)
				}
				if !s.Freshness.AdvisorFound {
					t.Fatal("the ACL user did not read the advisor's features")
				}
				return
			}
			_, err := New(context.Background(), h.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "redis at") {
				t.Fatalf("error %v, want it to name Redis and contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), pass) || strings.Contains(err.Error(), "wrong-password-0b7e") {
				t.Fatalf("error quotes a password: %v", err)
			}
		})
	}
}

// startTLSRedis runs a second redis-server that speaks only TLS, with a
// certificate of pki, and stops it when the test ends.
func startTLSRedis(t *testing.T, pki *testenv.PKI) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is needed for the Redis TLS test (make test installs it): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(path, "--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--tls-cert-file", pki.ServerCertFile, "--tls-key-file", pki.ServerKeyFile, "--tls-ca-cert-file", pki.CAFile,
		"--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	rdb := redis.NewClient(&redis.Options{Addr: addr, TLSConfig: &tls.Config{RootCAs: pki.Pool}, MaxRetries: -1})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for rdb.Ping(ctx).Err() != nil {
		select {
		case <-ctx.Done():
			t.Fatalf("TLS redis-server did not answer on %s:\n%s", addr, out.String())
		case <-tick.C:
		}
	}
	return addr
}

// Redis over TLS (rediss://) with the CA in redis_ca_file; a certificate
// from another CA is refused.
func TestRedisTLS(t *testing.T) {
	pki, other := testenv.NewPKI(t), testenv.NewPKI(t)
	addr := startTLSRedis(t, pki)
	h := newHarness(t)
	h.cfg.RedisURL = "rediss://" + addr + "/0"
	for _, tc := range []struct {
		name, ca, wantErr string
	}{
		{"trusted by redis_ca_file", pki.CAFile, ""},
		{"a certificate from another CA is refused", other.CAFile, "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := *h.cfg
			cfg.RedisCAFile = tc.ca
			svc, err := New(context.Background(), &cfg, nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer svc.Close()
				if err := svc.rdb.Set(context.Background(), cfg.RedisPrefix+"tls-probe", "1", time.Minute).Err(); err != nil {
					t.Fatalf("write over TLS: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "redis at rediss://") {
				t.Fatalf("error %v, want it to name Redis and contain %q", err, tc.wantErr)
			}
		})
	}
}

// The Schema Registry behind basic auth and TLS: the right credentials and
// CA register the schemas; a wrong password or an untrusted certificate
// stops start-up, never quoting the password.
func TestSchemaRegistryAuthAndTLS(t *testing.T) {
	pki, other := testenv.NewPKI(t), testenv.NewPKI(t)
	const user, pass = "scorer", "sr-right-password-a41d"
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	srv := httptest.NewUnstartedServer(srfake.NewRegistry(srfake.WithAuth(auth)).Handler())
	srv.TLS = pki.ServerTLS(false)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	h := newHarness(t)
	for _, tc := range []struct {
		name, user, pass, ca, wantErr string
	}{
		{"basic auth over TLS registers the schemas", user, pass, pki.CAFile, ""},
		{"a wrong password is refused", user, "wrong-password-3e9f", pki.CAFile, "credentials refused (check schema_registry_username and schema_registry_password)"},
		{"no credentials are refused", "", "", pki.CAFile, "HTTP 401"},
		{"a certificate from another CA is refused", user, pass, other.CAFile, "certificate is not trusted (schema_registry_ca_file)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := *h.cfg
			cfg.SchemaRegistry, cfg.SchemaRegistryCAFile = srv.URL, tc.ca
			cfg.SchemaRegistryUsername, cfg.SchemaRegistryPassword = tc.user, tc.pass
			svc, err := New(context.Background(), &cfg, nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				svc.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "schema registry at "+srv.URL) {
				t.Fatalf("error %v, want it to name the registry and contain %q", err, tc.wantErr)
			}
			for _, secret := range []string{pass, "wrong-password-3e9f", base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error quotes a credential: %v", err)
				}
			}
		})
	}
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// With a bearer token, /metrics and every endpoint added with Handle need
// it; /healthz and /readyz never do. With metrics_addr they move to their
// own listener and the health listener serves nothing else.
func TestEndpointsNeedTheBearerTokenExceptHealth(t *testing.T) {
	const token = "bearer-token-5b0f77e2c1"
	for _, separate := range []bool{false, true} {
		t.Run(fmt.Sprintf("metrics_addr set %v", separate), func(t *testing.T) {
			h := newHarness(t)
			h.cfg.HTTPBearerToken = token
			healthLn, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			opts := []Option{WithListener(healthLn)}
			health := "http://" + healthLn.Addr().String()
			protected := health
			if separate {
				mln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				opts = append(opts, WithMetricsListener(mln))
				protected = "http://" + mln.Addr().String()
			}
			ctx, cancel := context.WithCancel(context.Background())
			svc, err := New(ctx, h.cfg, nil, opts...)
			if err != nil {
				t.Fatal(err)
			}
			svc.Handle("GET /api/summary", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"ok":true}`)) }))
			errc := make(chan error, 1)
			go func() { errc <- svc.Run(ctx) }()
			defer func() { cancel(); <-errc }()

			if code, _ := get(t, health+"/healthz", ""); code != http.StatusOK {
				t.Errorf("/healthz without a token: %d, want 200", code)
			}
			for _, path := range []string{"/metrics", "/api/summary", "/dashboard"} {
				for _, tc := range []struct {
					name, token string
				}{{"no token", ""}, {"wrong token", "bearer-token-00000000000"}, {"token prefix", token[:10]}} {
					if code, body := get(t, protected+path, tc.token); code != http.StatusUnauthorized || strings.Contains(body, "leadscorer_") {
						t.Errorf("%s with %s: %d, want 401 and no content", path, tc.name, code)
					}
				}
			}
			if code, body := get(t, protected+"/metrics", token); code != http.StatusOK || !strings.Contains(body, "leadscorer_build_info") {
				t.Errorf("/metrics with the token: %d", code)
			}
			if code, body := get(t, protected+"/api/summary", token); code != http.StatusOK || body != `{"ok":true}` {
				t.Errorf("/api/summary with the token: %d %q", code, body)
			}
			if separate {
				if code, _ := get(t, health+"/metrics", token); code != http.StatusNotFound {
					t.Errorf("/metrics on the health address: %d, want 404", code)
				}
			}
		})
	}
}

// No Lead Id, CRD, email or name reaches the info-level log or a metric
// label, for good events, poison and unknown advisors alike.
func TestNoLeadIdentifiersInLogsOrMetrics(t *testing.T) {
	h := newHarness(t)
	var logs bytes.Buffer
	h.log = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	leads := []string{"00Q5e00000PrIvAAA1", "00Q5e00000PrIvBAA2", "00Q5e00000PrIvCAA3"}
	const unknownCRD = 7349821
	bad := h.event("p3", "00Q5e00000PrIvDAA4", 0) // no CRD: validation error
	h.produce(
		h.event("p1", leads[0], 1001),
		h.event("p2", leads[1], unknownCRD),
		h.event("p4", leads[2], 1002, "V4_Score__c"),
		bad,
		h.event("p5", "short-lead-id-xyz", 1003), // invalid Lead Id
	)
	svc := h.score()
	if !strings.Contains(logs.String(), `"msg":"scoring"`) {
		t.Fatalf("the info log is empty, so the test proves nothing:\n%s", logs.String())
	}
	mfs, err := svc.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var labels strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				fmt.Fprintf(&labels, "%s=%s\n", l.GetName(), l.GetValue())
			}
		}
	}
	crd := regexp.MustCompile(`(^|[^0-9.])(1001|1002|1003|7349821)([^0-9]|$)`)
	for where, text := range map[string]string{"log": logs.String(), "metric labels": labels.String()} {
		for _, id := range append(leads, "00Q5e00000PrIvDAA4", "short-lead-id-xyz") {
			if strings.Contains(text, id) {
				t.Errorf("%s holds Lead Id %s:\n%s", where, id, text)
			}
		}
		if m := crd.FindString(text); m != "" {
			t.Errorf("%s holds a CRD (%q):\n%s", where, m, text)
		}
	}
}

// metricsText is what /metrics would serve.
func metricsText(t *testing.T, svc *Service) string {
	t.Helper()
	mfs, err := svc.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}
