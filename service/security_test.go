package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

const (
	kafkaUser = "scorer"
	kafkaPass = "kafka-right-password-7f3a"
)

// adminSASL is how the test's own clients authenticate to a secured
// sandbox.
func adminSASL(mechanism string) kgo.Opt {
	switch mechanism {
	case "PLAIN":
		return kgo.SASL(plain.Auth{User: kafkaUser, Pass: kafkaPass}.AsMechanism())
	case "SCRAM-SHA-512":
		return kgo.SASL(scram.Auth{User: kafkaUser, Pass: kafkaPass}.AsSha512Mechanism())
	}
	return kgo.SASL(scram.Auth{User: kafkaUser, Pass: kafkaPass}.AsSha256Mechanism())
}

// The scorer reaches a broker that requires TLS and SASL, and scores; a
// wrong password, an untrusted broker certificate or a missing client
// certificate stops start-up at once with an error naming the setting,
// never quoting the password.
func TestKafkaTLSAndSASL(t *testing.T) {
	pki := newPKI(t)
	other := newPKI(t) // a CA the broker's certificate does not come from
	for _, tc := range []struct {
		name       string
		mechanism  string
		serverTLS  bool
		clientCert bool // the broker requires a client certificate
		configure  func(h *harness)
		wantErr    string // empty: start-up succeeds and the event is scored
	}{
		{name: "SCRAM-SHA-256 over TLS with a client certificate scores", mechanism: "SCRAM-SHA-256", serverTLS: true, clientCert: true,
			configure: func(h *harness) {
				h.cfg.KafkaCAFile, h.cfg.KafkaCertFile, h.cfg.KafkaKeyFile = pki.caFile, pki.clientCertFile, pki.clientKeyFile
			}},
		{name: "SCRAM-SHA-512 over TLS scores", mechanism: "SCRAM-SHA-512", serverTLS: true,
			configure: func(h *harness) { h.cfg.KafkaCAFile = pki.caFile }},
		{name: "PLAIN over TLS scores", mechanism: "PLAIN", serverTLS: true,
			configure: func(h *harness) { h.cfg.KafkaCAFile = pki.caFile }},
		{name: "SCRAM-SHA-256 without TLS scores", mechanism: "SCRAM-SHA-256"},
		{name: "a wrong password is refused at start-up", mechanism: "SCRAM-SHA-256", serverTLS: true,
			configure: func(h *harness) { h.cfg.KafkaCAFile, h.cfg.KafkaSASLPassword = pki.caFile, "wrong-password-9d1c" },
			wantErr:   `SASL SCRAM-SHA-256 authentication of user "scorer" failed`},
		{name: "a wrong PLAIN password is refused at start-up", mechanism: "PLAIN", serverTLS: true,
			configure: func(h *harness) { h.cfg.KafkaCAFile, h.cfg.KafkaSASLPassword = pki.caFile, "wrong-password-9d1c" },
			wantErr:   `SASL PLAIN authentication of user "scorer" failed`},
		{name: "a mechanism the broker does not accept is refused", mechanism: "SCRAM-SHA-256", serverTLS: true,
			configure: func(h *harness) { h.cfg.KafkaCAFile, h.cfg.KafkaSASLMechanism = pki.caFile, "SCRAM-SHA-512" },
			wantErr:   "authentication of user"},
		{name: "an untrusted broker certificate is refused", mechanism: "SCRAM-SHA-256", serverTLS: true,
			configure: func(h *harness) { h.cfg.KafkaCAFile = other.caFile },
			wantErr:   "certificate is not trusted (kafka_ca_file)"},
		{name: "plain TCP to a TLS broker is refused", mechanism: "SCRAM-SHA-256", serverTLS: true,
			configure: func(h *harness) { h.cfg.KafkaTLS = false },
			wantErr:   "kafka at"},
		{name: "a missing client certificate is refused", mechanism: "SCRAM-SHA-256", serverTLS: true, clientCert: true,
			configure: func(h *harness) { h.cfg.KafkaCAFile = pki.caFile },
			wantErr:   "kafka at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kopts := []kfake.Opt{kfake.EnableSASL(), kfake.Superuser(tc.mechanism, kafkaUser, kafkaPass)}
			copts := []kgo.Opt{adminSASL(tc.mechanism)}
			if tc.serverTLS {
				kopts = append(kopts, kfake.TLS(pki.serverTLS(tc.clientCert)))
				copts = append(copts, kgo.DialTLSConfig(pki.clientTLS()))
			}
			h := newSecureHarness(t, kopts, copts)
			h.cfg.KafkaTLS = tc.serverTLS
			h.cfg.KafkaSASLMechanism, h.cfg.KafkaSASLUsername, h.cfg.KafkaSASLPassword = tc.mechanism, kafkaUser, kafkaPass
			if tc.configure != nil {
				tc.configure(h)
			}
			if tc.wantErr == "" {
				h.produce(h.event("k1", "00Q5e00000AbCdEAAA", 1001))
				h.score()
				if n := len(h.drain(h.cfg.TopicShadow)); n != 1 {
					t.Fatalf("%d shadow records, want 1", n)
				}
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*kafkaPingTimeout)
			defer cancel()
			start := time.Now()
			svc, err := New(ctx, h.cfg, nil)
			if err == nil {
				svc.rdb.Close()
				t.Fatal("start-up succeeded, want it refused")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q, want it to contain %q", err, tc.wantErr)
			}
			for _, secret := range []string{kafkaPass, "wrong-password-9d1c"} {
				if strings.Contains(err.Error(), secret) {
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
// connection: both say which settings to check.
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
