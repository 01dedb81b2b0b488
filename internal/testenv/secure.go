package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The environment variables that name the real stack's secured listeners
// and what reaches them: `scripts/stack.sh up` prints them and
// scripts/test-kafka.sh exports them beside KAFKA_BROKERS.
const (
	EnvSSLBrokers           = "KAFKA_SSL_BROKERS"
	EnvSASLSSLBrokers       = "KAFKA_SASL_SSL_BROKERS"
	EnvSASLPlaintextBrokers = "KAFKA_SASL_PLAINTEXT_BROKERS"
	EnvMTLSBrokers          = "KAFKA_MTLS_BROKERS"
	EnvCAFile               = "KAFKA_CA_FILE"
	EnvClientCertFile       = "KAFKA_CLIENT_CERT_FILE"
	EnvClientKeyFile        = "KAFKA_CLIENT_KEY_FILE"
	EnvSASLUser             = "KAFKA_SASL_USER"
	EnvSASLPassword         = "KAFKA_SASL_PASSWORD"
)

// Listener is a kind of secured Kafka listener. Every broker of the real
// stack has one of each (scripts/stack.sh); in process, NewKafka starts a
// kfake broker that asks of its clients what the listener asks.
type Listener string

const (
	// SSL is TLS without a login.
	SSL Listener = "SSL"
	// SASLSSL is TLS and a login: SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN.
	SASLSSL Listener = "SASL_SSL"
	// SASLPlaintext is a login without TLS: SCRAM-SHA-256 or
	// SCRAM-SHA-512; not PLAIN, whose password would cross in clear.
	SASLPlaintext Listener = "SASL_PLAINTEXT"
	// MTLS is SASL_SSL that also requires a client certificate.
	MTLS Listener = "MTLS"
)

// TLS reports whether the listener speaks TLS.
func (l Listener) TLS() bool { return l != SASLPlaintext }

// ClientCert reports whether the listener requires a client certificate.
func (l Listener) ClientCert() bool { return l == MTLS }

// Mechanisms are the SASL mechanisms the listener accepts; none on SSL.
func (l Listener) Mechanisms() []string {
	switch l {
	case SSL:
		return nil
	case SASLPlaintext:
		return []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}
	}
	return []string{"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"}
}

// brokersEnv is the variable naming the listener on the real stack.
func (l Listener) brokersEnv() string {
	switch l {
	case SSL:
		return EnvSSLBrokers
	case SASLSSL:
		return EnvSASLSSLBrokers
	case SASLPlaintext:
		return EnvSASLPlaintextBrokers
	}
	return EnvMTLSBrokers
}

// Secured is what reaches the test's secured listener: the files and login
// the real stack's variables name, or those NewKafka made for its
// in-process broker. Fields a listener does not need are empty.
type Secured struct {
	Listener Listener
	// CAFile is the PEM certificate of the CA that signs the brokers'
	// certificates (TLS listeners).
	CAFile string
	// CertFile and KeyFile are a client certificate the brokers trust,
	// PEM (MTLS).
	CertFile, KeyFile string
	// User and Password log in with any of the listener's mechanisms.
	User, Password string
}

// Secure runs the test on a secured listener: on the real stack, the one
// its variables name (a variable missing fails the test, naming it); in
// process, a kfake broker with TLS from a throw-away CA and SASL users for
// the listener's mechanisms. The test's own clients (Admin, Client,
// Produce, Drain...) log in with SCRAM-SHA-256 where the listener asks for
// a login; Kafka.Secured says what the code under test needs.
func Secure(l Listener) Option {
	return func(o *kafkaOptions) { o.secure = l }
}

// realSecured reads the real stack's variables for listener l.
func realSecured(tb testing.TB, l Listener) (*Secured, []string) {
	tb.Helper()
	need := func(name string) string {
		tb.Helper()
		v := os.Getenv(name)
		if v == "" {
			tb.Fatalf("%s is set but %s is not: the test runs on the stack's %s listener, which needs it (`scripts/stack.sh up` prints it, scripts/test-kafka.sh exports it; docs/KAFKA.md)",
				EnvBrokers, name, l)
		}
		return v
	}
	s := &Secured{Listener: l}
	brokers := strings.Split(need(l.brokersEnv()), ",")
	if l.TLS() {
		s.CAFile = need(EnvCAFile)
	}
	if l.ClientCert() {
		s.CertFile, s.KeyFile = need(EnvClientCertFile), need(EnvClientKeyFile)
	}
	if len(l.Mechanisms()) > 0 {
		s.User, s.Password = need(EnvSASLUser), need(EnvSASLPassword)
	}
	return s, brokers
}

// fakeSecured makes the CA, certificates and login of an in-process
// listener l, and the kfake options that ask for them.
func fakeSecured(tb testing.TB, l Listener) (*Secured, []kfake.Opt) {
	tb.Helper()
	s := &Secured{Listener: l}
	var opts []kfake.Opt
	if l.TLS() {
		pki := NewPKI(tb)
		s.CAFile = pki.CAFile
		if l.ClientCert() {
			s.CertFile, s.KeyFile = pki.ClientCertFile, pki.ClientKeyFile
		}
		opts = append(opts, kfake.TLS(pki.ServerTLS(l.ClientCert())))
	}
	if ms := l.Mechanisms(); len(ms) > 0 {
		s.User, s.Password = "scorer", "kafka-"+uniq(tb)
		opts = append(opts, kfake.EnableSASL())
		for _, m := range ms {
			opts = append(opts, kfake.Superuser(m, s.User, s.Password))
		}
	}
	return s, opts
}

// clientOpts are the options of the test's own clients on the listener.
func (s *Secured) clientOpts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if s.Listener.TLS() {
		tc, err := s.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if slices.Contains(s.Listener.Mechanisms(), "SCRAM-SHA-256") {
		opts = append(opts, kgo.SASL(s.mechanism("SCRAM-SHA-256")))
	}
	return opts, nil
}

func (s *Secured) tlsConfig() (*tls.Config, error) {
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", s.CAFile)
	}
	c := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// mechanism is the login of s with SASL mechanism m (PLAIN, SCRAM-SHA-256
// or SCRAM-SHA-512).
func (s *Secured) mechanism(m string) sasl.Mechanism {
	switch m {
	case "PLAIN":
		return plain.Auth{User: s.User, Pass: s.Password}.AsMechanism()
	case "SCRAM-SHA-512":
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha512Mechanism()
	}
	return scram.Auth{User: s.User, Pass: s.Password}.AsSha256Mechanism()
}
