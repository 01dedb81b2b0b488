// Package config declares every setting of `leadscorer run` once: its key,
// default, environment variable and meaning. Flags, environment variables,
// the YAML file, `leadscorer config` and the README's table all come from
// that one declaration.
//
// Precedence, highest first: command-line flag, LEADSCORER_* environment
// variable, YAML file (--config), default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the effective configuration of the streaming scorer.
type Config struct {
	Brokers          []string
	SchemaRegistry   string
	RedisURL         string
	RedisPrefix      string
	Group            string
	TransactionalID  string
	TopicIn          string
	TopicSfdc        string
	TopicShadow      string
	TopicDLQ         string
	Registry         string
	BatchMaxRecords  int
	MaxRecordBytes   int
	FeatureMaxAge    time.Duration
	UnknownAdvisor   string
	ScoreEpsilon     float64
	HTTPAddr         string
	LogLevel         string
	ShutdownTimeout  time.Duration
	TransactionLimit time.Duration
}

// Key declares one setting.
type Key struct {
	Name    string // YAML key and flag name (with - for _)
	Default string
	Doc     string
	Secret  bool // redacted by String and `leadscorer config`
	set     func(c *Config, v string) error
	get     func(c *Config) string
}

// Env is the environment variable that sets k.
func (k Key) Env() string {
	return "LEADSCORER_" + strings.ToUpper(k.Name)
}

// Flag is the command-line flag that sets k.
func (k Key) Flag() string {
	return strings.ReplaceAll(k.Name, "_", "-")
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "local"
	}
	return h
}

// Keys lists every setting in the order the README documents them.
var Keys = []Key{
	{Name: "brokers", Default: "127.0.0.1:9092", Doc: "Kafka bootstrap brokers, comma separated.",
		set: func(c *Config, v string) error {
			c.Brokers = nil
			for _, b := range strings.Split(v, ",") {
				if b = strings.TrimSpace(b); b != "" {
					c.Brokers = append(c.Brokers, b)
				}
			}
			if len(c.Brokers) == 0 {
				return errors.New("at least one broker is required")
			}
			return nil
		},
		get: func(c *Config) string { return strings.Join(c.Brokers, ",") }},
	{Name: "schema_registry", Default: "http://127.0.0.1:8081", Doc: "Schema Registry URL.",
		set: func(c *Config, v string) error { c.SchemaRegistry = v; return checkURL(v, "http", "https") },
		get: func(c *Config) string { return c.SchemaRegistry }},
	{Name: "redis_url", Default: "redis://127.0.0.1:6379/0", Secret: true,
		Doc: "Redis URL (redis:// or rediss://, user and password in the URL). Redacted in output.",
		set: func(c *Config, v string) error { c.RedisURL = v; return checkURL(v, "redis", "rediss") },
		get: func(c *Config) string { return c.RedisURL }},
	{Name: "redis_prefix", Default: "leadscorer:", Doc: "Prefix of every Redis key the service reads or writes.",
		set: func(c *Config, v string) error { c.RedisPrefix = v; return nil },
		get: func(c *Config) string { return c.RedisPrefix }},
	{Name: "group", Default: "leadscorer", Doc: "Kafka consumer group of the scorers.",
		set: func(c *Config, v string) error { c.Group = v; return nonEmpty(v) },
		get: func(c *Config) string { return c.Group }},
	{Name: "transactional_id", Default: "leadscorer-" + hostname(),
		Doc: "Kafka transactional id: unique per running scorer and stable across its restarts, so a restart fences the previous incarnation at once. Default leadscorer-<hostname>.",
		set: func(c *Config, v string) error { c.TransactionalID = v; return nonEmpty(v) },
		get: func(c *Config) string { return c.TransactionalID }},
	{Name: "topic_in", Default: "leads.changed.v1", Doc: "Input topic of LeadChanged events.",
		set: func(c *Config, v string) error { c.TopicIn = v; return nonEmpty(v) },
		get: func(c *Config) string { return c.TopicIn }},
	{Name: "topic_sfdc", Default: "leads.scored.sfdc.v1", Doc: "Output topic read by the Salesforce SObject sink connector.",
		set: func(c *Config, v string) error { c.TopicSfdc = v; return nonEmpty(v) },
		get: func(c *Config) string { return c.TopicSfdc }},
	{Name: "topic_shadow", Default: "leads.scored.shadow.v1", Doc: "Output topic of shadow comparison records (every serving version).",
		set: func(c *Config, v string) error { c.TopicShadow = v; return nonEmpty(v) },
		get: func(c *Config) string { return c.TopicShadow }},
	{Name: "topic_dlq", Default: "leads.dlq.v1", Doc: "Dead-letter topic: original bytes plus reason headers.",
		set: func(c *Config, v string) error { c.TopicDLQ = v; return nonEmpty(v) },
		get: func(c *Config) string { return c.TopicDLQ }},
	{Name: "registry", Default: "models/registry.json", Doc: "Model registry file (docs/REGISTRY.md).",
		set: func(c *Config, v string) error { c.Registry = v; return nonEmpty(v) },
		get: func(c *Config) string { return c.Registry }},
	{Name: "batch_max_records", Default: "2000", Doc: "Most input records scored in one transaction (1..100000).",
		set: func(c *Config, v string) (err error) {
			c.BatchMaxRecords, err = intIn(v, 1, 100000)
			return err
		},
		get: func(c *Config) string { return strconv.Itoa(c.BatchMaxRecords) }},
	{Name: "max_record_bytes", Default: "262144", Doc: "Input records larger than this go to the DLQ (class size) undecoded, cut to this size (1 KiB..16 MiB; keep it below the DLQ topic's max.message.bytes).",
		set: func(c *Config, v string) (err error) {
			c.MaxRecordBytes, err = intIn(v, 1024, 16<<20)
			return err
		},
		get: func(c *Config) string { return strconv.Itoa(c.MaxRecordBytes) }},
	{Name: "feature_max_age", Default: "720h", Doc: "Advisor or firm data older than this is flagged stale in the shadow record (still scored).",
		set: func(c *Config, v string) (err error) {
			c.FeatureMaxAge, err = positiveDuration(v)
			return err
		},
		get: func(c *Config) string { return c.FeatureMaxAge.String() }},
	{Name: "unknown_advisor", Default: "score", Doc: "What to do with an event whose CRD is not in Redis: score (missing values, flagged) or dlq (class features).",
		set: func(c *Config, v string) error {
			c.UnknownAdvisor = v
			if v != "score" && v != "dlq" {
				return fmt.Errorf("must be score or dlq, not %q", v)
			}
			return nil
		},
		get: func(c *Config) string { return c.UnknownAdvisor }},
	{Name: "score_epsilon", Default: "0.001", Doc: "Salesforce quota guard: no sink record when percentile, deprioritize, version and explanation are unchanged and the score moved less than this.",
		set: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				return fmt.Errorf("must be a number in [0, 1], not %q", v)
			}
			c.ScoreEpsilon = f
			return nil
		},
		get: func(c *Config) string { return strconv.FormatFloat(c.ScoreEpsilon, 'g', -1, 64) }},
	{Name: "http_addr", Default: "127.0.0.1:9464", Doc: "Address of /metrics, /healthz and /readyz; empty disables the server.",
		set: func(c *Config, v string) error { c.HTTPAddr = v; return nil },
		get: func(c *Config) string { return c.HTTPAddr }},
	{Name: "log_level", Default: "info", Doc: "Log level: debug, info, warn or error.",
		set: func(c *Config, v string) error {
			c.LogLevel = v
			switch v {
			case "debug", "info", "warn", "error":
				return nil
			}
			return fmt.Errorf("must be debug, info, warn or error, not %q", v)
		},
		get: func(c *Config) string { return c.LogLevel }},
	{Name: "shutdown_timeout", Default: "30s", Doc: "On SIGTERM, how long the current batch may take to finish and commit.",
		set: func(c *Config, v string) (err error) {
			c.ShutdownTimeout, err = positiveDuration(v)
			return err
		},
		get: func(c *Config) string { return c.ShutdownTimeout.String() }},
	{Name: "transaction_timeout", Default: "60s", Doc: "Kafka transaction timeout; the broker aborts a transaction left open longer (a crashed scorer's).",
		set: func(c *Config, v string) (err error) {
			c.TransactionLimit, err = positiveDuration(v)
			return err
		},
		get: func(c *Config) string { return c.TransactionLimit.String() }},
}

func nonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func checkURL(v string, schemes ...string) error {
	u, err := url.Parse(v)
	if err != nil {
		return fmt.Errorf("not a URL: %w", redactErr(err, v))
	}
	for _, s := range schemes {
		if u.Scheme == s && u.Host != "" {
			return nil
		}
	}
	return fmt.Errorf("must be a %s URL with a host", strings.Join(schemes, " or "))
}

// redactErr keeps a value that may hold a password out of an error message.
func redactErr(err error, v string) error {
	if v == "" {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), v, "[redacted]"))
}

func intIn(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("must be an integer in %d..%d, not %q", lo, hi, v)
	}
	return n, nil
}

func positiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("must be a positive duration like 30s, not %q", v)
	}
	return d, nil
}

// Flags binds a flag for every key, plus --config, to fs. Call Load after
// fs.Parse.
type Flags struct {
	fs     *flag.FlagSet
	file   *string
	values map[string]*string
}

// Bind declares the flags on fs.
func Bind(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs, values: map[string]*string{}}
	f.file = fs.String("config", "", "YAML file of settings (keys as in the README); flags and LEADSCORER_* variables override it")
	for _, k := range Keys {
		f.values[k.Name] = fs.String(k.Flag(), "", fmt.Sprintf("%s (default %q, env %s)", k.Doc, k.Default, k.Env()))
	}
	return f
}

// Load resolves every key: flag > env > file > default. getenv is
// os.Getenv in production. An invalid value fails naming the key and where
// it came from.
func (f *Flags) Load(getenv func(string) string) (*Config, error) {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	var file map[string]any
	if *f.file != "" {
		b, err := os.ReadFile(*f.file)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			return nil, fmt.Errorf("config: %s: %w", *f.file, err)
		}
		known := map[string]bool{}
		for _, k := range Keys {
			known[k.Name] = true
		}
		var unknown []string
		for name := range file {
			if !known[name] {
				unknown = append(unknown, name)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return nil, fmt.Errorf("config: %s: unknown keys %s", *f.file, strings.Join(unknown, ", "))
		}
	}

	c := &Config{}
	for _, k := range Keys {
		v, from := k.Default, "default"
		if fv, ok := file[k.Name]; ok {
			v, from = fmt.Sprint(fv), "file "+*f.file
		}
		if ev := getenv(k.Env()); ev != "" {
			v, from = ev, "env "+k.Env()
		}
		if set[k.Flag()] {
			v, from = *f.values[k.Name], "flag --"+k.Flag()
		}
		if err := k.set(c, v); err != nil {
			if k.Secret {
				err = redactErr(err, v)
			}
			return nil, fmt.Errorf("config: %s (from %s): %w", k.Name, from, err)
		}
	}
	return c, nil
}

// Default returns the configuration with every key at its default.
func Default() *Config {
	c := &Config{}
	for _, k := range Keys {
		if err := k.set(c, k.Default); err != nil {
			panic("config: default of " + k.Name + ": " + err.Error())
		}
	}
	return c
}

// Write prints the effective configuration as YAML, secrets redacted.
func (c *Config) Write(w io.Writer) error {
	for _, k := range Keys {
		v := k.get(c)
		if k.Secret {
			v = Redact(v)
		}
		if _, err := fmt.Fprintf(w, "%s: %q\n", k.Name, v); err != nil {
			return err
		}
	}
	return nil
}

// Redact hides the password of a URL, or the whole value when it is not a
// URL with user information.
func Redact(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return "[redacted]"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "redacted")
		}
	}
	return u.String()
}

// WriteMarkdown writes the table of settings the README shows.
func WriteMarkdown(w io.Writer) error {
	if _, err := fmt.Fprintln(w, "| key (YAML) | flag | environment | default | meaning |\n|---|---|---|---|---|"); err != nil {
		return err
	}
	for _, k := range Keys {
		def := k.Default
		if k.Name == "transactional_id" {
			def = "leadscorer-<hostname>"
		}
		if _, err := fmt.Fprintf(w, "| `%s` | `--%s` | `%s` | `%s` | %s |\n", k.Name, k.Flag(), k.Env(), def, k.Doc); err != nil {
			return err
		}
	}
	return nil
}
