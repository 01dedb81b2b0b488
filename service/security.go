package service

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/topics"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/pkg/sr"
)

// kafkaPingTimeout bounds the start-up check of the brokers: long enough
// for a TLS handshake and SASL exchange across a slow link, short enough
// that a wrong address or password stops start-up instead of hanging.
const kafkaPingTimeout = 15 * time.Second

// tlsConfig builds a client TLS configuration: the CA file's certificates
// as the only roots when caFile is set (else the system pool), and a client
// certificate when certFile and keyFile are set. Errors name the key of the
// file that is wrong.
func tlsConfig(prefix, caFile, certFile, keyFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("config: %s_ca_file: %w", prefix, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("config: %s_ca_file: %s holds no PEM certificate", prefix, caFile)
		}
		c.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("config: %s_cert_file / %s_key_file: %w", prefix, prefix, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// kafkaOpts turns the Kafka security and limit settings into client
// options: TLS, SASL, and the bounds on fetched and buffered data that keep
// memory flat however large the backlog.
func kafkaOpts(cfg *config.Config) ([]kgo.Opt, error) {
	sec, err := KafkaClientOpts(cfg)
	if err != nil {
		return nil, err
	}
	return append(sec,
		kgo.FetchMaxBytes(int32(cfg.FetchMaxBytes)),
		kgo.FetchMaxPartitionBytes(int32(cfg.FetchMaxPartitionBytes)),
		kgo.MaxConcurrentFetches(cfg.MaxConcurrentFetches),
		kgo.MaxBufferedRecords(cfg.MaxBufferedRecords),
		kgo.MaxBufferedBytes(cfg.MaxBufferedBytes),
	), nil
}

// KafkaClientOpts returns the client options every Kafka client of the
// service's configuration needs to reach the brokers (TLS, SASL), without
// the consumer's limits: for tools and tests that talk to the same cluster.
func KafkaClientOpts(cfg *config.Config) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if kafkaTLS(cfg) {
		tc, err := tlsConfig("kafka", cfg.KafkaCAFile, cfg.KafkaCertFile, cfg.KafkaKeyFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := saslMechanism(cfg); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

func saslMechanism(cfg *config.Config) sasl.Mechanism {
	user, pass := cfg.KafkaSASLUsername, cfg.KafkaSASLPassword
	switch cfg.KafkaSASLMechanism {
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	}
	return nil
}

// pingKafka checks once, with a timeout, that a broker answers with these
// options and that the scorer's topics exist, so a wrong address,
// certificate or password, or a topic not created, stops start-up with an
// error naming it instead of a consumer retrying forever.
func pingKafka(ctx context.Context, cfg *config.Config, opts []kgo.Opt) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, opts...)...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, kafkaPingTimeout)
	defer cancel()
	if err = cl.Ping(pctx); err != nil {
		return explainKafkaErr(cfg, err, pctx.Err() != nil && ctx.Err() == nil)
	}
	// Every topic the scorer reads or writes must exist: consuming a
	// missing one waits silently, producing to one waits out the record
	// timeout, and a broker that creates it on first use gives it its
	// defaults (one partition, its retention).
	if err := topics.Require(pctx, kadm.NewClient(cl), topics.ForRun(cfg)...); err != nil {
		return explainKafkaErr(cfg, err, pctx.Err() != nil && ctx.Err() == nil)
	}
	return nil
}

// explainKafkaErr names the setting behind a failed broker check. A real
// broker answers a refused login with SASL_AUTHENTICATION_FAILED and a
// mechanism it does not accept with UNSUPPORTED_SASL_MECHANISM; some
// (kfake among them) close the connection instead, which the client sees
// as EOF or a reset.
func explainKafkaErr(cfg *config.Config, err error, timedOut bool) error {
	brokers := strings.Join(cfg.Brokers, ",")
	var tlsErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("kafka at %s: SASL %s authentication of user %q failed (check kafka_sasl_username and kafka_sasl_password): %w",
			brokers, cfg.KafkaSASLMechanism, cfg.KafkaSASLUsername, err)
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return fmt.Errorf("kafka at %s: the brokers do not accept SASL mechanism %s (kafka_sasl_mechanism): %w", brokers, cfg.KafkaSASLMechanism, err)
	case errors.As(err, &tlsErr):
		return fmt.Errorf("kafka at %s: the brokers' certificate is not trusted (kafka_ca_file): %w", brokers, err)
	case errors.As(err, &recErr):
		return fmt.Errorf("kafka at %s: TLS handshake failed, the brokers may not speak TLS (kafka_tls): %w", brokers, err)
	case !kafkaTLS(cfg) && plaintextToTLS(err):
		return fmt.Errorf("kafka at %s: the brokers speak TLS and the client does not (kafka_tls): %w", brokers, err)
	case certificateAlert(err) && cfg.KafkaCertFile == "":
		return fmt.Errorf("kafka at %s: the brokers require a client certificate (kafka_cert_file, kafka_key_file): %w", brokers, err)
	case certificateAlert(err):
		return fmt.Errorf("kafka at %s: the brokers refused the client certificate (kafka_cert_file, kafka_key_file): %w", brokers, err)
	case cfg.KafkaSASLMechanism != "" && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		return fmt.Errorf("kafka at %s: SASL %s authentication of user %q failed: the broker closed the connection during the login (check kafka_sasl_mechanism, kafka_sasl_username and kafka_sasl_password): %w",
			brokers, cfg.KafkaSASLMechanism, cfg.KafkaSASLUsername, err)
	case errors.As(err, new(*topics.MissingError)):
		return err
	case timedOut:
		return fmt.Errorf("kafka at %s: no broker answered within %s (brokers, kafka_tls, kafka_sasl_*): %w", brokers, kafkaPingTimeout, err)
	}
	return fmt.Errorf("kafka at %s: %w", brokers, err)
}

// kafkaTLS reports whether the Kafka clients of cfg speak TLS.
func kafkaTLS(cfg *config.Config) bool {
	return cfg.KafkaTLS || cfg.KafkaCAFile != "" || cfg.KafkaCertFile != ""
}

// plaintextToTLS reports whether err is franz-go's guess that a plaintext
// connection reached a TLS listener: Apache Kafka answers the first
// request with a TLS alert record, which the client reads as an absurd
// response size; a broker that closes the connection instead (kfake) gives
// an EOF during the ApiVersions exchange.
func plaintextToTLS(err error) bool {
	if strings.Contains(err.Error(), "plaintext connection speaking to a tls endpoint") {
		return true
	}
	var eof *kgo.ErrFirstReadEOF
	return errors.As(err, &eof) && strings.Contains(eof.Error(), "requires TLS but the client is using plaintext")
}

// certificateAlert reports whether the brokers ended the TLS handshake
// with an alert about a certificate: the server's own is the client's to
// check (kafka_ca_file), so it is about the client's (Apache Kafka says
// "bad certificate" for a missing or unknown one; Go's TLS, "certificate
// required" or "unknown certificate authority").
func certificateAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error" && op.Err != nil && strings.Contains(op.Err.Error(), "certificate")
}

// explainRegistryErr names the settings behind a refused Schema Registry
// request.
func explainRegistryErr(cfg *config.Config, err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) && (re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("schema registry at %s: HTTP %d, credentials refused (check schema_registry_username and schema_registry_password): %w",
			cfg.SchemaRegistry, re.StatusCode, err)
	}
	var tlsErr *tls.CertificateVerificationError
	if errors.As(err, &tlsErr) {
		return fmt.Errorf("schema registry at %s: its certificate is not trusted (schema_registry_ca_file): %w", cfg.SchemaRegistry, err)
	}
	return fmt.Errorf("schema registry at %s: %w", cfg.SchemaRegistry, err)
}

// redisOptions parses redis_url and applies the separate user name,
// password and CA file settings over it.
// RedisOptions are the Redis client options for cfg: URL, ACL user and
// password, TLS trust. Errors never quote the URL (it may hold a password).
func RedisOptions(cfg *config.Config) (*redis.Options, error) {
	ropts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		// go-redis quotes the URL, which may hold a password.
		return nil, errors.New("config: redis_url: not a valid Redis URL")
	}
	if cfg.RedisUsername != "" {
		ropts.Username = cfg.RedisUsername
	}
	if cfg.RedisPassword != "" {
		ropts.Password = cfg.RedisPassword
	}
	if ropts.TLSConfig != nil {
		tc, err := tlsConfig("redis", cfg.RedisCAFile, "", "")
		if err != nil {
			return nil, err
		}
		tc.ServerName = ropts.TLSConfig.ServerName
		ropts.TLSConfig = tc
	}
	return ropts, nil
}

// schemaRegistryOpts gives the Schema Registry client its URL, basic auth
// and TLS trust.
// SchemaRegistryClient reaches the Schema Registry as the scorer does: the
// schema_registry URL, basic auth and CA settings of cfg. The commands that
// register or read schemas (rescore) use it.
func SchemaRegistryClient(cfg *config.Config) (*sr.Client, error) {
	opts, err := schemaRegistryOpts(cfg)
	if err != nil {
		return nil, err
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("config: schema_registry: %w", err)
	}
	return cl, nil
}

func schemaRegistryOpts(cfg *config.Config) ([]sr.ClientOpt, error) {
	opts := []sr.ClientOpt{sr.URLs(cfg.SchemaRegistry)}
	if cfg.SchemaRegistryUsername != "" {
		opts = append(opts, sr.BasicAuth(cfg.SchemaRegistryUsername, cfg.SchemaRegistryPassword))
	}
	if strings.HasPrefix(cfg.SchemaRegistry, "https://") {
		tc, err := tlsConfig("schema_registry", cfg.SchemaRegistryCAFile, "", "")
		if err != nil {
			return nil, err
		}
		opts = append(opts, sr.DialTLSConfig(tc))
	}
	return opts, nil
}

// RequireBearer lets a request through only with the header
// Authorization: Bearer <token>, compared in constant time. An empty token
// turns the check off.
func RequireBearer(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="leadscorer"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// listen opens addr for the setting named key.
func listen(key, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", key, err)
	}
	return ln, nil
}
