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
	TopicOutcomes    string
	TopicRegistry    string
	MemoryLimitMB    int
	Validate         bool
	AutoRollback     bool
	Registry         string
	BatchMaxRecords  int
	BatchTopUpWait   time.Duration
	MaxRecordBytes   int
	FeatureMaxAge    time.Duration
	UnknownAdvisor   string
	ScoreEpsilon     float64
	ScoreMemo        bool
	HTTPAddr         string
	LogLevel         string
	BatchTimeout     time.Duration
	TransactionLimit time.Duration

	// Salesforce change events (docs/SALESFORCE.md).
	InputFormat           string // InputSalesforceCDC or InputLeadChanged
	TopicRefresh          string
	CRDField              string
	EmailField            string
	LinkedInField         string
	StatusField           string
	ContactedStatuses     []string
	CallScheduledStatuses []string
	CallScheduledField    string
	ConvertedOutcome      string // "none", "contacted" or "call_scheduled"
	DeriveOutcomes        bool
	SinkUserID            string

	// The rollback rule's parameters (validation.EvidenceRule).
	RollbackWindowWeeks    int
	RollbackMinConversions int
	RollbackConfidence     float64
	RollbackAUCConfidence  float64

	// Kafka transport security (docs/SECURITY.md).
	KafkaTLS           bool
	KafkaCAFile        string
	KafkaCertFile      string
	KafkaKeyFile       string
	KafkaSASLMechanism string // "", PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	KafkaSASLUsername  string
	KafkaSASLPassword  string

	// Redis credentials beside (and overriding) the URL's, and TLS trust.
	RedisUsername string
	RedisPassword string
	RedisCAFile   string

	// Schema Registry basic auth and TLS trust.
	SchemaRegistryUsername string
	SchemaRegistryPassword string
	SchemaRegistryCAFile   string

	// HTTP endpoint protection.
	MetricsAddr     string
	HTTPBearerToken string

	// Limits on pending work (bytes and records held in memory).
	FetchMaxBytes          int
	FetchMaxPartitionBytes int
	MaxConcurrentFetches   int
	MaxBufferedRecords     int
	MaxBufferedBytes       int

	// files holds the paths given by the *_file keys, by the key they fill.
	files map[string]string
}

// Group is a set of related settings. A subcommand binds as flags only the
// groups it uses, so its --help lists only those; the others keep their
// environment, file or default values.
type Group uint16

// The groups of settings.
const (
	Kafka          Group = 1 << iota // brokers and Kafka transport security
	SchemaRegistry                   // the Schema Registry and its credentials
	Redis                            // the feature store
	Topics                           // every topic the service reads or writes
	Models                           // the model registry file
	Scorer                           // the streaming scorer's own behaviour and limits
	Validator                        // the parallel validator's decisions
	HTTP                             // the HTTP endpoints
	Logging                          // the log level
	Salesforce                       // the input format and the Lead fields of change events

	// All is every group: run and config.
	All = Kafka | SchemaRegistry | Redis | Topics | Models | Scorer | Validator | HTTP | Logging | Salesforce
)

// Input formats of input_format.
const (
	// InputSalesforceCDC: the records Confluent's Salesforce CDC Source
	// connector writes for LeadChangeEvent, Avro or schemaless JSON.
	InputSalesforceCDC = "salesforce-cdc"
	// InputLeadChanged: this project's own LeadChanged records.
	InputLeadChanged = "leadchanged"
)

// Key declares one setting.
type Key struct {
	Name    string // YAML key and flag name (with - for _)
	Group   Group
	Default string
	Doc     string
	// Bool keys are flags without a value (--validate), or --validate=false.
	Bool   bool
	Secret bool // redacted by String and `leadscorer config`
	// NoFlag keys cannot be given on the command line: a secret there is
	// visible to every user of the machine (ps, /proc/PID/cmdline).
	NoFlag bool
	// FileOf names the secret key whose value this key's file holds
	// (kafka_sasl_password_file fills kafka_sasl_password).
	FileOf string
	set    func(c *Config, v string) error
	get    func(c *Config) string
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
	{Name: "brokers", Group: Kafka, Default: "127.0.0.1:9092", Doc: "Kafka bootstrap brokers, comma separated.",
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
	{Name: "schema_registry", Group: SchemaRegistry, Default: "http://127.0.0.1:8081", Doc: "Schema Registry URL.",
		set: func(c *Config, v string) error { c.SchemaRegistry = v; return checkURL(v, "http", "https") },
		get: func(c *Config) string { return c.SchemaRegistry }},
	{Name: "redis_url", Group: Redis, Default: "redis://127.0.0.1:6379/0", Secret: true,
		Doc: "Redis URL (redis:// or rediss://, user and password in the URL). Redacted in output.",
		set: func(c *Config, v string) error { c.RedisURL = v; return checkURL(v, "redis", "rediss") },
		get: func(c *Config) string { return c.RedisURL }},
	{Name: "redis_prefix", Group: Redis, Default: "leadscorer:", Doc: "Prefix of every Redis key the service reads or writes.",
		set: func(c *Config, v string) error { c.RedisPrefix = v; return nil },
		get: func(c *Config) string { return c.RedisPrefix }},
	{Name: "group", Group: Scorer, Default: "leadscorer", Doc: "Kafka consumer group of the scorers.",
		set: func(c *Config, v string) error { c.Group = v; return nonEmpty(v) },
		get: func(c *Config) string { return c.Group }},
	{Name: "transactional_id", Group: Scorer, Default: "leadscorer-" + hostname(),
		Doc: "Kafka transactional id: unique per running scorer and stable across its restarts, so a restart fences the previous incarnation at once. Default leadscorer-<hostname>.",
		set: func(c *Config, v string) error { c.TransactionalID = v; return nonEmpty(v) },
		get: func(c *Config) string { return c.TransactionalID }},
	{Name: "topic_in", Group: Topics, Default: "leads.changed.v1", Doc: "Input topic of lead changes: Salesforce change events (input_format salesforce-cdc) or LeadChanged records.",
		set: func(c *Config, v string) error { c.TopicIn = v; return nonEmpty(v) },
		get: func(c *Config) string { return c.TopicIn }},
	{Name: "topic_sfdc", Group: Topics, Default: "leads.scored.sfdc.v1", Doc: "Output topic read by the Salesforce SObject sink connector.",
		set: func(c *Config, v string) error { c.TopicSfdc = v; return nonEmpty(v) },
		get: func(c *Config) string { return c.TopicSfdc }},
	{Name: "topic_shadow", Group: Topics, Default: "leads.scored.shadow.v1", Doc: "Output topic of shadow comparison records (every serving version).",
		set: func(c *Config, v string) error { c.TopicShadow = v; return nonEmpty(v) },
		get: func(c *Config) string { return c.TopicShadow }},
	{Name: "topic_dlq", Group: Topics, Default: "leads.dlq.v1", Doc: "Dead-letter topic: original bytes plus reason headers.",
		set: func(c *Config, v string) error { c.TopicDLQ = v; return nonEmpty(v) },
		get: func(c *Config) string { return c.TopicDLQ }},
	{Name: "topic_outcomes", Group: Topics, Default: "leads.outcomes.v1", Doc: "Input topic of lead outcomes (contacted, call scheduled), read by the validator.",
		set: func(c *Config, v string) error { c.TopicOutcomes = v; return nonEmpty(v) },
		get: func(c *Config) string { return c.TopicOutcomes }},
	{Name: "topic_refresh", Group: Topics, Default: "leads.refresh.v1", Doc: "Output topic of refresh requests (LeadRefreshRequest): Leads to re-read from Salesforce after a gap event, an overflow or a partial first update (salesforce-cdc).",
		set: func(c *Config, v string) error { c.TopicRefresh = v; return nonEmpty(v) },
		get: func(c *Config) string { return c.TopicRefresh }},
	{Name: "topic_registry", Group: Topics, Default: "leads.registry.v1", Doc: "Output topic of registry change events written by an automatic rollback.",
		set: func(c *Config, v string) error { c.TopicRegistry = v; return nonEmpty(v) },
		get: func(c *Config) string { return c.TopicRegistry }},
	{Name: "validate", Group: Scorer, Bool: true, Default: "false", Doc: "Run the parallel validator inside run: lift, AUC and rollback criteria per version from the shadow and outcome topics, served at /dashboard and /dashboard.json (docs/VALIDATION.md).",
		set: func(c *Config, v string) (err error) { c.Validate, err = parseBool(v); return err },
		get: func(c *Config) string { return strconv.FormatBool(c.Validate) }},
	{Name: "auto_rollback", Group: Validator, Bool: true, Default: "false", Doc: "With validate: roll the registry back when a rollback criterion fires for the production version, and say so on topic_registry.",
		set: func(c *Config, v string) (err error) { c.AutoRollback, err = parseBool(v); return err },
		get: func(c *Config) string { return strconv.FormatBool(c.AutoRollback) }},
	{Name: "rollback_window_weeks", Group: Validator, Default: "8", Doc: "The rollback rule pools the production version's latest this many complete ISO weeks since its promotion and judges the criteria on the pool (1..52; docs/VALIDATION.md).",
		set: func(c *Config, v string) (err error) {
			c.RollbackWindowWeeks, err = intIn(v, 1, 52)
			return err
		},
		get: func(c *Config) string { return strconv.Itoa(c.RollbackWindowWeeks) }},
	{Name: "rollback_min_conversions", Group: Validator, Default: "25", Doc: "Fewest conversions the pooled weeks need before a rollback criterion is judged; with fewer it says too little data to judge (1..100000; docs/VALIDATION.md).",
		set: func(c *Config, v string) (err error) {
			c.RollbackMinConversions, err = intIn(v, 1, 100000)
			return err
		},
		get: func(c *Config) string { return strconv.Itoa(c.RollbackMinConversions) }},
	{Name: "rollback_confidence", Group: Validator, Default: "0.95", Doc: "One-sided confidence of the top-decile bounds and of the paired AUC comparison with the baseline: a criterion fires when its upper bound is below the checklist's threshold (above 0.5, below 1; docs/VALIDATION.md).",
		set: func(c *Config, v string) (err error) {
			c.RollbackConfidence, err = confidence(v)
			return err
		},
		get: func(c *Config) string { return strconv.FormatFloat(c.RollbackConfidence, 'g', -1, 64) }},
	{Name: "rollback_auc_confidence", Group: Validator, Default: "0.85", Doc: "One-sided confidence of the absolute AUC bound (above 0.5, below 1); by default below rollback_confidence, as the AUC carries most of the detection; leadscorer validate simulate shows how often a setting rolls back (docs/VALIDATION.md).",
		set: func(c *Config, v string) (err error) {
			c.RollbackAUCConfidence, err = confidence(v)
			return err
		},
		get: func(c *Config) string { return strconv.FormatFloat(c.RollbackAUCConfidence, 'g', -1, 64) }},
	{Name: "registry", Group: Models, Default: "models/registry.json", Doc: "Model registry file (docs/REGISTRY.md).",
		set: func(c *Config, v string) error { c.Registry = v; return nonEmpty(v) },
		get: func(c *Config) string { return c.Registry }},
	{Name: "batch_max_records", Group: Scorer, Default: "2000", Doc: "Most input records scored in one transaction (1..100000).",
		set: func(c *Config, v string) (err error) {
			c.BatchMaxRecords, err = intIn(v, 1, 100000)
			return err
		},
		get: func(c *Config) string { return strconv.Itoa(c.BatchMaxRecords) }},
	{Name: "batch_top_up_wait", Group: Scorer, Default: "2ms", Doc: "How long a batch that found records already fetched, but fewer than batch_max_records, waits for one more fetch (0 to 100ms; 0: none). The Kafka client keeps one fetch buffered, answered as soon as the previous batch took its records, so what arrived while that batch ran is still on the broker: the fetch the client sends when the buffered one is taken brings it, a round trip later.",
		set: func(c *Config, v string) (err error) {
			c.BatchTopUpWait, err = durationIn(v, 0, 100*time.Millisecond)
			return err
		},
		get: func(c *Config) string { return c.BatchTopUpWait.String() }},
	{Name: "max_record_bytes", Group: Scorer, Default: "262144", Doc: "Input records larger than this go to the DLQ (class size) undecoded, cut to this size (1 KiB..16 MiB; keep it below the DLQ topic's max.message.bytes).",
		set: func(c *Config, v string) (err error) {
			c.MaxRecordBytes, err = intIn(v, 1024, 16<<20)
			return err
		},
		get: func(c *Config) string { return strconv.Itoa(c.MaxRecordBytes) }},
	{Name: "feature_max_age", Group: Scorer, Default: "720h", Doc: "Advisor or firm data older than this is flagged stale in the shadow record (still scored).",
		set: func(c *Config, v string) (err error) {
			c.FeatureMaxAge, err = positiveDuration(v)
			return err
		},
		get: func(c *Config) string { return c.FeatureMaxAge.String() }},
	{Name: "unknown_advisor", Group: Scorer, Default: "score", Doc: "What to do with an event whose CRD is not in Redis: score (missing values, flagged) or dlq (class features).",
		set: func(c *Config, v string) error {
			c.UnknownAdvisor = v
			if v != "score" && v != "dlq" {
				return fmt.Errorf("must be score or dlq, not %q", v)
			}
			return nil
		},
		get: func(c *Config) string { return c.UnknownAdvisor }},
	{Name: "score_epsilon", Group: Scorer, Default: "0.001", Doc: "Salesforce quota guard: no sink record when percentile, deprioritize, version and explanation are unchanged and the score moved less than this.",
		set: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				return fmt.Errorf("must be a number in [0, 1], not %q", v)
			}
			c.ScoreEpsilon = f
			return nil
		},
		get: func(c *Config) string { return strconv.FormatFloat(c.ScoreEpsilon, 'g', -1, 64) }},
	{Name: "score_memo", Group: Scorer, Bool: true, Default: "false", Doc: "Keep each model version's score, factors and explanation by feature vector (16,384 vectors per version, a few MB) and answer a vector seen before without scoring it; leadscorer_score_memo_hits_total and _lookups_total give its hit rate. Exact either way; off, every event is scored and explained (docs/BENCHMARKS.md).",
		set: func(c *Config, v string) (err error) { c.ScoreMemo, err = parseBool(v); return err },
		get: func(c *Config) string { return strconv.FormatBool(c.ScoreMemo) }},
	{Name: "http_addr", Group: HTTP, Default: "127.0.0.1:9464", Doc: "Address of /metrics, /healthz and /readyz; empty disables the server.",
		set: func(c *Config, v string) error { c.HTTPAddr = v; return nil },
		get: func(c *Config) string { return c.HTTPAddr }},
	{Name: "log_level", Group: Logging, Default: "info", Doc: "Log level: debug, info, warn or error.",
		set: func(c *Config, v string) error {
			c.LogLevel = v
			switch v {
			case "debug", "info", "warn", "error":
				return nil
			}
			return fmt.Errorf("must be debug, info, warn or error, not %q", v)
		},
		get: func(c *Config) string { return c.LogLevel }},
	{Name: "batch_timeout", Group: Scorer, Default: "30s", Doc: "Longest one batch may take from its transform to its commit, also the batch in hand at SIGTERM; past it the batch is aborted and consumed again. Must be below transaction_timeout.",
		set: func(c *Config, v string) (err error) {
			c.BatchTimeout, err = positiveDuration(v)
			return err
		},
		get: func(c *Config) string { return c.BatchTimeout.String() }},
	{Name: "transaction_timeout", Group: Scorer, Default: "60s", Doc: "Kafka transaction timeout; the broker aborts a transaction left open longer (a crashed scorer's).",
		set: func(c *Config, v string) (err error) {
			c.TransactionLimit, err = positiveDuration(v)
			return err
		},
		get: func(c *Config) string { return c.TransactionLimit.String() }},

	{Name: "input_format", Group: Salesforce, Default: InputSalesforceCDC, Doc: "What topic_in holds: salesforce-cdc (the Salesforce CDC Source connector's LeadChangeEvent records, Avro with any writer schema or schemaless JSON) or leadchanged (LeadChanged records, for producers that are not Salesforce).",
		set: func(c *Config, v string) error {
			c.InputFormat = v
			if v != InputSalesforceCDC && v != InputLeadChanged {
				return fmt.Errorf("must be %s or %s, not %q", InputSalesforceCDC, InputLeadChanged, v)
			}
			return nil
		},
		get: func(c *Config) string { return c.InputFormat }},
	fieldKey("crd_field", "FA_CRD__c", "Lead field holding the advisor's CRD number, a string of digits; a value that is not one sends the change to the DLQ (class validation).", func(c *Config) *string { return &c.CRDField }),
	fieldKey("email_field", "Email", "Lead field whose being set means the Lead has an email (feature has_email).", func(c *Config) *string { return &c.EmailField }),
	fieldKey("linkedin_field", "LinkedIn_Profile__c", "Lead field whose being set means the Lead has a LinkedIn profile (feature has_linkedin).", func(c *Config) *string { return &c.LinkedInField }),
	fieldKey("status_field", "Status", "Lead field holding the Lead's status, which contacted_statuses and call_scheduled_statuses are values of.", func(c *Config) *string { return &c.StatusField }),
	{Name: "contacted_statuses", Group: Salesforce, Default: "Contacted,Call Scheduled,Qualified", Doc: "Status values, comma separated, that mean the Lead was contacted: the first change to one derives a contacted outcome.",
		set: func(c *Config, v string) error { c.ContactedStatuses = splitList(v); return nil },
		get: func(c *Config) string { return strings.Join(c.ContactedStatuses, ",") }},
	{Name: "call_scheduled_statuses", Group: Salesforce, Default: "Call Scheduled", Doc: "Status values, comma separated, that mean a call was scheduled: the first change to one derives a call_scheduled outcome (and contacted, if not yet).",
		set: func(c *Config, v string) error { c.CallScheduledStatuses = splitList(v); return nil },
		get: func(c *Config) string { return strings.Join(c.CallScheduledStatuses, ",") }},
	{Name: "call_scheduled_field", Group: Salesforce, Default: "Initial_Call_Scheduled_Date__c", Doc: "Lead field (a date) whose becoming set means a call was scheduled, like a call_scheduled_statuses value; empty for none.",
		set: func(c *Config, v string) error { c.CallScheduledField = v; return checkFieldName(v, true) },
		get: func(c *Config) string { return c.CallScheduledField }},
	{Name: "converted_outcome", Group: Salesforce, Default: "call_scheduled", Doc: "Outcome a Lead conversion (IsConverted becoming true) records: call_scheduled, contacted or none.",
		set: func(c *Config, v string) error {
			c.ConvertedOutcome = v
			switch v {
			case "none", "contacted", "call_scheduled":
				return nil
			}
			return fmt.Errorf("must be call_scheduled, contacted or none, not %q", v)
		},
		get: func(c *Config) string { return c.ConvertedOutcome }},
	{Name: "derive_outcomes", Group: Salesforce, Bool: true, Default: "true", Doc: "With salesforce-cdc: derive LeadOutcome records from the change events and write them to topic_outcomes, so no second feed is needed.",
		set: func(c *Config, v string) (err error) { c.DeriveOutcomes, err = parseBool(v); return err },
		get: func(c *Config) string { return strconv.FormatBool(c.DeriveOutcomes) }},
	{Name: "sink_user_id", Group: Salesforce, Doc: "Salesforce user Id the SObject sink connector writes as; when set, only this user's changes of score and system fields are skipped as echoes (docs/SALESFORCE.md).",
		set: func(c *Config, v string) error { c.SinkUserID = strings.TrimSpace(v); return nil },
		get: func(c *Config) string { return c.SinkUserID }},

	{Name: "kafka_tls", Group: Kafka, Bool: true, Default: "false", Doc: "Connect to Kafka over TLS (implied by kafka_ca_file or kafka_cert_file).",
		set: func(c *Config, v string) (err error) {
			c.KafkaTLS, err = strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("must be true or false, not %q", v)
			}
			return nil
		},
		get: func(c *Config) string { return strconv.FormatBool(c.KafkaTLS) }},
	{Name: "kafka_ca_file", Group: Kafka, Doc: "PEM file of the CA certificates that sign the brokers' certificates; empty trusts the system pool.",
		set: func(c *Config, v string) error { c.KafkaCAFile = v; return nil },
		get: func(c *Config) string { return c.KafkaCAFile }},
	{Name: "kafka_cert_file", Group: Kafka, Doc: "PEM client certificate for Kafka mutual TLS (with kafka_key_file).",
		set: func(c *Config, v string) error { c.KafkaCertFile = v; return nil },
		get: func(c *Config) string { return c.KafkaCertFile }},
	{Name: "kafka_key_file", Group: Kafka, Doc: "PEM private key of kafka_cert_file.",
		set: func(c *Config, v string) error { c.KafkaKeyFile = v; return nil },
		get: func(c *Config) string { return c.KafkaKeyFile }},
	{Name: "kafka_sasl_mechanism", Group: Kafka, Doc: "Kafka SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty disables SASL. PLAIN sends the password as is: use it with TLS only.",
		set: func(c *Config, v string) error {
			c.KafkaSASLMechanism = strings.ToUpper(v)
			switch c.KafkaSASLMechanism {
			case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
				return nil
			}
			return fmt.Errorf("must be PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or empty, not %q", v)
		},
		get: func(c *Config) string { return c.KafkaSASLMechanism }},
	{Name: "kafka_sasl_username", Group: Kafka, Doc: "Kafka SASL user name.",
		set: func(c *Config, v string) error { c.KafkaSASLUsername = v; return nil },
		get: func(c *Config) string { return c.KafkaSASLUsername }},
	{Name: "kafka_sasl_password", Group: Kafka, Secret: true, NoFlag: true, Doc: "Kafka SASL password (environment, YAML or kafka_sasl_password_file; never a flag). Redacted in output.",
		set: func(c *Config, v string) error { c.KafkaSASLPassword = v; return nil },
		get: func(c *Config) string { return c.KafkaSASLPassword }},
	fileKey("kafka_sasl_password", Kafka),
	{Name: "redis_username", Group: Redis, Doc: "Redis ACL user name; overrides the user in redis_url.",
		set: func(c *Config, v string) error { c.RedisUsername = v; return nil },
		get: func(c *Config) string { return c.RedisUsername }},
	{Name: "redis_password", Group: Redis, Secret: true, NoFlag: true, Doc: "Redis password; overrides the one in redis_url (environment, YAML or redis_password_file; never a flag). Redacted in output.",
		set: func(c *Config, v string) error { c.RedisPassword = v; return nil },
		get: func(c *Config) string { return c.RedisPassword }},
	fileKey("redis_password", Redis),
	{Name: "redis_ca_file", Group: Redis, Doc: "PEM file of the CA certificates that sign Redis's certificate (needs a rediss:// redis_url); empty trusts the system pool.",
		set: func(c *Config, v string) error { c.RedisCAFile = v; return nil },
		get: func(c *Config) string { return c.RedisCAFile }},
	{Name: "schema_registry_username", Group: SchemaRegistry, Doc: "Schema Registry basic-auth user name.",
		set: func(c *Config, v string) error { c.SchemaRegistryUsername = v; return nil },
		get: func(c *Config) string { return c.SchemaRegistryUsername }},
	{Name: "schema_registry_password", Group: SchemaRegistry, Secret: true, NoFlag: true, Doc: "Schema Registry basic-auth password (environment, YAML or schema_registry_password_file; never a flag). Redacted in output.",
		set: func(c *Config, v string) error { c.SchemaRegistryPassword = v; return nil },
		get: func(c *Config) string { return c.SchemaRegistryPassword }},
	fileKey("schema_registry_password", SchemaRegistry),
	{Name: "schema_registry_ca_file", Group: SchemaRegistry, Doc: "PEM file of the CA certificates that sign the Schema Registry's certificate (needs an https:// schema_registry); empty trusts the system pool.",
		set: func(c *Config, v string) error { c.SchemaRegistryCAFile = v; return nil },
		get: func(c *Config) string { return c.SchemaRegistryCAFile }},
	{Name: "metrics_addr", Group: HTTP, Doc: "When set, /metrics and every other endpoint except /healthz and /readyz are served on this address instead of http_addr.",
		set: func(c *Config, v string) error { c.MetricsAddr = v; return nil },
		get: func(c *Config) string { return c.MetricsAddr }},
	{Name: "http_bearer_token", Group: HTTP, Secret: true, NoFlag: true, Doc: "When set (16 bytes or more), every endpoint except /healthz and /readyz requires the header Authorization: Bearer <token> (environment, YAML or http_bearer_token_file; never a flag). Redacted in output.",
		set: func(c *Config, v string) error {
			c.HTTPBearerToken = v
			if v != "" && len(v) < 16 {
				return errors.New("must be at least 16 bytes long")
			}
			return nil
		},
		get: func(c *Config) string { return c.HTTPBearerToken }},
	fileKey("http_bearer_token", HTTP),
	{Name: "memory_limit_mb", Group: Scorer, Default: "128", Doc: "Soft memory limit of the Go runtime in MiB (as GOMEMLIMIT, which wins when set): the garbage collector works harder as the heap nears it, so a burst of backlog stays within it; 0 for none.",
		set: func(c *Config, v string) (err error) {
			c.MemoryLimitMB, err = intIn(v, 0, 1<<20)
			return err
		},
		get: func(c *Config) string { return strconv.Itoa(c.MemoryLimitMB) }},
	{Name: "fetch_max_bytes", Group: Scorer, Default: "4194304", Doc: "Most bytes one Kafka fetch response may hold (64 KiB..64 MiB, below the client's 100 MiB response cap); with max_concurrent_fetches it bounds the fetched input held in memory, whatever the backlog.",
		set: func(c *Config, v string) (err error) {
			c.FetchMaxBytes, err = intIn(v, 64<<10, 64<<20)
			return err
		},
		get: func(c *Config) string { return strconv.Itoa(c.FetchMaxBytes) }},
	{Name: "fetch_max_partition_bytes", Group: Scorer, Default: "1048576", Doc: "Most bytes one partition contributes to a fetch (64 KiB..fetch_max_bytes); a single larger record batch is still returned whole.",
		set: func(c *Config, v string) (err error) {
			c.FetchMaxPartitionBytes, err = intIn(v, 64<<10, 64<<20)
			return err
		},
		get: func(c *Config) string { return strconv.Itoa(c.FetchMaxPartitionBytes) }},
	{Name: "max_concurrent_fetches", Group: Scorer, Default: "1", Doc: "Most Kafka fetches in flight or buffered unpolled at once (1..64).",
		set: func(c *Config, v string) (err error) {
			c.MaxConcurrentFetches, err = intIn(v, 1, 64)
			return err
		},
		get: func(c *Config) string { return strconv.Itoa(c.MaxConcurrentFetches) }},
	{Name: "max_buffered_records", Group: Scorer, Default: "20000", Doc: "Most output records buffered unacknowledged by the producer (1000..1000000); producing waits beyond it.",
		set: func(c *Config, v string) (err error) {
			c.MaxBufferedRecords, err = intIn(v, 1000, 1000000)
			return err
		},
		get: func(c *Config) string { return strconv.Itoa(c.MaxBufferedRecords) }},
	{Name: "max_buffered_bytes", Group: Scorer, Default: "67108864", Doc: "Most bytes of output records buffered unacknowledged by the producer (1 MiB..1 GiB); producing waits beyond it.",
		set: func(c *Config, v string) (err error) {
			c.MaxBufferedBytes, err = intIn(v, 1<<20, 1<<30)
			return err
		},
		get: func(c *Config) string { return strconv.Itoa(c.MaxBufferedBytes) }},
}

// fieldKey declares a setting naming a Lead field (an API name).
func fieldKey(name, def, doc string, field func(*Config) *string) Key {
	return Key{Name: name, Group: Salesforce, Default: def, Doc: doc,
		set: func(c *Config, v string) error { *field(c) = v; return checkFieldName(v, false) },
		get: func(c *Config) string { return *field(c) }}
}

// checkFieldName accepts a Salesforce field API name: letters, digits and
// underscores, starting with a letter.
func checkFieldName(v string, emptyOK bool) error {
	if v == "" {
		if emptyOK {
			return nil
		}
		return errors.New("must name a Lead field")
	}
	for i, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && (r >= '0' && r <= '9' || r == '_')) {
			return fmt.Errorf("%q is not a Salesforce field API name", v)
		}
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// maxSecretFile caps what a *_file key reads: a secret is short, and a
// path pointing at a large file by mistake must not fill memory.
const maxSecretFile = 64 << 10

// fileKey declares the <secret>_file companion of a secret key: a file
// whose contents (a trailing newline removed) are the secret.
func fileKey(secret string, g Group) Key {
	return Key{Name: secret + "_file", FileOf: secret, Group: g,
		Doc: "File holding " + secret + " (a trailing newline is ignored); excludes setting " + secret + " itself.",
		set: func(c *Config, v string) error {
			if c.files == nil {
				c.files = map[string]string{}
			}
			c.files[secret] = v
			return nil
		},
		get: func(c *Config) string { return c.files[secret] }}
}

// readSecretFile reads a secret from path. Its errors name the path, never
// the contents.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s is larger than %d bytes: not a secret file", path, maxSecretFile)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// check rejects settings that contradict each other, naming both.
func (c *Config) check() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("config: "+format, a...)) }
	if (c.KafkaCertFile == "") != (c.KafkaKeyFile == "") {
		bad("kafka_cert_file and kafka_key_file go together: set both or neither")
	}
	if c.KafkaCAFile != "" || c.KafkaCertFile != "" {
		c.KafkaTLS = true
	}
	if c.KafkaSASLMechanism != "" && (c.KafkaSASLUsername == "" || c.KafkaSASLPassword == "") {
		bad("kafka_sasl_mechanism %s needs kafka_sasl_username and kafka_sasl_password", c.KafkaSASLMechanism)
	}
	if c.KafkaSASLMechanism == "" && (c.KafkaSASLUsername != "" || c.KafkaSASLPassword != "") {
		bad("kafka_sasl_username or kafka_sasl_password is set but kafka_sasl_mechanism is empty")
	}
	if (c.SchemaRegistryUsername == "") != (c.SchemaRegistryPassword == "") {
		bad("schema_registry_username and schema_registry_password go together: set both or neither")
	}
	if c.SchemaRegistryCAFile != "" && !strings.HasPrefix(c.SchemaRegistry, "https://") {
		bad("schema_registry_ca_file needs an https:// schema_registry")
	}
	if c.RedisCAFile != "" && !strings.HasPrefix(c.RedisURL, "rediss://") {
		bad("redis_ca_file needs a rediss:// redis_url")
	}
	if c.MetricsAddr != "" && c.MetricsAddr == c.HTTPAddr {
		bad("metrics_addr must differ from http_addr (leave it empty to serve everything on http_addr)")
	}
	if c.BatchTimeout >= c.TransactionLimit {
		bad("batch_timeout (%v) must be below transaction_timeout (%v): the broker would abort a batch the scorer still works on", c.BatchTimeout, c.TransactionLimit)
	}
	if c.FetchMaxPartitionBytes > c.FetchMaxBytes {
		bad("fetch_max_partition_bytes (%d) must not exceed fetch_max_bytes (%d)", c.FetchMaxPartitionBytes, c.FetchMaxBytes)
	}
	return errors.Join(errs...)
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("must be true or false, not %q", v)
	}
	return b, nil
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

// confidence parses a one-sided confidence level: above 0.5 (a bound on
// the wrong side of the estimate) and below 1 (an infinite bound).
func confidence(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0.5 && f < 1) {
		return 0, fmt.Errorf("must be a number above 0.5 and below 1, not %q", v)
	}
	return f, nil
}

func durationIn(v string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		return 0, fmt.Errorf("must be a duration from %v to %v, not %q", lo, hi, v)
	}
	return d, nil
}

func positiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("must be a positive duration like 30s, not %q", v)
	}
	return d, nil
}

// Flags binds a flag for every key of some groups, plus --config, to a
// flag set. Call Load after the flag set is parsed.
type Flags struct {
	fs     *flag.FlagSet
	file   *string
	values map[string]*flagValue
}

// flagValue is one key's flag: it only records what was given, which Load
// checks with the key's own parser, naming the key.
type flagValue struct {
	v      string
	isBool bool
}

func (f *flagValue) String() string     { return f.v }
func (f *flagValue) Set(v string) error { f.v = v; return nil }
func (f *flagValue) IsBoolFlag() bool   { return f.isBool }

// Bind declares on fs the flags of the keys in groups and of the keys
// named, and --config. A name that is not a key panics: it is a
// programming error.
func Bind(fs *flag.FlagSet, groups Group, keys ...string) *Flags {
	f := &Flags{fs: fs, values: map[string]*flagValue{}}
	f.file = fs.String("config", "", "YAML file of settings (keys as in the README); flags and LEADSCORER_* variables override it")
	named := map[string]bool{}
	for _, n := range keys {
		named[n] = true
	}
	for _, k := range Keys {
		if k.Group&groups == 0 && !named[k.Name] {
			continue
		}
		delete(named, k.Name)
		v := &flagValue{isBool: k.Bool}
		f.values[k.Name] = v
		if k.NoFlag {
			fs.Var(v, k.Flag(), fmt.Sprintf("refused: a secret on the command line is visible in ps; set env %s or %s_file", k.Env(), k.Name))
			continue
		}
		def := fmt.Sprintf(" (default %q, env %s)", k.Default, k.Env())
		if k.Bool {
			def = fmt.Sprintf(" (default %s, env %s)", k.Default, k.Env())
		}
		fs.Var(v, k.Flag(), k.Doc+def)
	}
	for n := range named {
		panic("config: Bind: no key " + n)
	}
	return f
}

// Load resolves every key: flag > env > file > default. getenv is
// os.Getenv in production. An invalid value fails naming the key and where
// it came from.
func (f *Flags) Load(getenv func(string) string) (*Config, error) {
	if f.fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q (a boolean setting takes no value: --validate, or --validate=false)", f.fs.Args())
	}
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
	sources := map[string]string{}
	for _, k := range Keys {
		v, from := k.Default, "default"
		if fv, ok := file[k.Name]; ok {
			v, from = fmt.Sprint(fv), "file "+*f.file
		}
		if ev := getenv(k.Env()); ev != "" {
			v, from = ev, "env "+k.Env()
		}
		if set[k.Flag()] {
			if k.NoFlag {
				return nil, fmt.Errorf("config: %s: refused on the command line, where every user of the machine can read it; set %s or %s_file", k.Name, k.Env(), k.Name)
			}
			v, from = f.values[k.Name].v, "flag --"+k.Flag()
		}
		if err := k.set(c, v); err != nil {
			if k.Secret {
				err = redactErr(err, v)
			}
			return nil, fmt.Errorf("config: %s (from %s): %w", k.Name, from, err)
		}
		sources[k.Name] = from
	}
	if err := c.readSecretFiles(sources); err != nil {
		return nil, err
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// readSecretFiles fills each secret whose *_file key is set from that file.
func (c *Config) readSecretFiles(sources map[string]string) error {
	for _, k := range Keys {
		if k.FileOf == "" || c.files[k.FileOf] == "" {
			continue
		}
		if from := sources[k.FileOf]; from != "default" {
			return fmt.Errorf("config: %s (from %s) and %s (from %s) exclude each other: set one", k.FileOf, from, k.Name, sources[k.Name])
		}
		v, err := readSecretFile(c.files[k.FileOf])
		if err != nil {
			return fmt.Errorf("config: %s (from %s): %w", k.Name, sources[k.Name], err)
		}
		for _, s := range Keys {
			if s.Name == k.FileOf {
				if err := s.set(c, v); err != nil {
					return fmt.Errorf("config: %s (from file %s): %w", s.Name, c.files[k.FileOf], redactErr(err, v))
				}
			}
		}
	}
	return nil
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
		if k.Secret && v != "" {
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
		def = "`" + def + "`"
		if k.Default == "" {
			def = "empty"
		}
		fl := "`--" + k.Flag() + "`"
		if k.NoFlag {
			fl = "none"
		}
		if _, err := fmt.Fprintf(w, "| `%s` | %s | `%s` | %s | %s |\n", k.Name, fl, k.Env(), def, k.Doc); err != nil {
			return err
		}
	}
	return nil
}
