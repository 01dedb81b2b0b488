// Package topics declares every Kafka topic leadscorer reads or writes, once:
// its name (from the configuration's topic keys), partitions, replication
// factor and the settings that matter to the service. `leadscorer topics
// apply` creates and aligns them on a cluster, the Kubernetes KafkaTopic
// manifests (deploy/k8s/topics) are checked against the same declaration,
// and the sandbox and the tests create theirs from it. Nothing relies on a
// broker creating a topic on first use: a component that needs a topic
// checks that it exists (Require) and stops, naming it, when it does not.
package topics

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The topic settings the declaration fixes. Every declared topic sets each
// of them; others are left to the cluster.
const (
	MinInSyncReplicas = "min.insync.replicas"
	CleanupPolicy     = "cleanup.policy"
	RetentionMs       = "retention.ms"
	MaxMessageBytes   = "max.message.bytes"
)

// Settings lists the settings every declared topic fixes, in order.
var Settings = []string{MinInSyncReplicas, CleanupPolicy, RetentionMs, MaxMessageBytes}

// DefaultReplicationFactor is the replication factor of production topics:
// with min.insync.replicas 2, a transaction commits with one broker down.
const DefaultReplicationFactor = 3

// LedgerSuffix makes the name of the DLQ replay ledger from the DLQ's.
const LedgerSuffix = ".replayed"

// Retentions and limits of the declaration.
const (
	week    = "604800000"
	month   = "2592000000"
	forever = "-1"
	// maxMessageBytes is Kafka's default (message.max.bytes). The scorer's
	// producer batches up to 1,000,012 bytes per partition (franz-go's
	// default), so no topic it writes may take less, the DLQ included: a
	// smaller limit rejects a batch of several dead letters cut to
	// max_record_bytes, and the transaction can never commit.
	maxMessageBytes = "1048588"
)

// ProducerBatchMaxBytes is the largest record batch the service's producers
// send (franz-go's default): every topic it writes must accept it.
const ProducerBatchMaxBytes = 1_000_012

// Topic is one declared topic.
type Topic struct {
	// Key is the configuration key naming the topic (topic_in, ...); the
	// DLQ replay ledger, named after topic_dlq, has LedgerKey.
	Key               string
	Name              string
	Partitions        int32
	ReplicationFactor int16
	// Configs holds a value for each of Settings.
	Configs map[string]string
	// Why says in a line what the topic is for and why it is so.
	Why string
}

// LedgerKey is the Key of the DLQ replay ledger, which no setting names.
const LedgerKey = "topic_dlq" + LedgerSuffix

// Declared returns every topic of the service, named as cfg names them, with
// replication factor rf (0: DefaultReplicationFactor) and a
// min.insync.replicas that lets a transaction commit with one replica down
// (2 from three replicas up, else 1).
func Declared(cfg *config.Config, rf int16) []Topic {
	if rf <= 0 {
		rf = DefaultReplicationFactor
	}
	minISR := "1"
	if rf >= 3 {
		minISR = "2"
	}
	t := func(key, name string, partitions int32, cleanup, retention, why string) Topic {
		return Topic{Key: key, Name: name, Partitions: partitions, ReplicationFactor: rf, Why: why,
			Configs: map[string]string{MinInSyncReplicas: minISR, CleanupPolicy: cleanup, RetentionMs: retention, MaxMessageBytes: maxMessageBytes}}
	}
	return []Topic{
		t("topic_in", cfg.TopicIn, 1, "delete", week,
			"lead changes in; one partition: the CDC connector runs one task, and each Lead's changes must stay in the order Salesforce committed them"),
		t("topic_sfdc", cfg.TopicSfdc, 12, "delete", week,
			"production scores for the Salesforce SObject sink connector (read_committed); up to 12 connector tasks"),
		t("topic_shadow", cfg.TopicShadow, 12, "delete", month,
			"every serving version's score, for the parallel validation week and its review"),
		t("topic_dlq", cfg.TopicDLQ, 3, "delete", month,
			"dead letters: they wait for a fix and `leadscorer dlq replay`"),
		t("topic_outcomes", cfg.TopicOutcomes, 3, "delete", forever,
			"lead outcomes, derived by the scorer or written by other systems; the validator rebuilds its state from them"),
		t("topic_refresh", cfg.TopicRefresh, 1, "delete", week,
			"Leads to re-read from Salesforce; the job that reads them may be down for a while"),
		t("topic_registry", cfg.TopicRegistry, 1, "delete", forever,
			"registry events of automatic rollbacks: the audit trail"),
		t(LedgerKey, Ledger(cfg.TopicDLQ), 1, "compact", forever,
			"the dead letters `dlq replay` re-produced, keyed by their DLQ position, written in the same transaction"),
	}
}

// Ledger is the name of the replay ledger of the DLQ topic dlq.
func Ledger(dlq string) string { return dlq + LedgerSuffix }

// Names returns the names of ts.
func Names(ts []Topic) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

// ForRun lists the topics `leadscorer run` reads or writes with cfg.
func ForRun(cfg *config.Config) []string {
	out := []string{cfg.TopicIn, cfg.TopicSfdc, cfg.TopicShadow, cfg.TopicDLQ}
	if cfg.InputFormat == config.InputSalesforceCDC {
		out = append(out, cfg.TopicRefresh)
		if cfg.DeriveOutcomes {
			out = append(out, cfg.TopicOutcomes)
		}
	}
	if cfg.Validate {
		out = append(out, ForValidator(cfg)...)
	}
	return dedup(out)
}

// ForValidator lists the topics the validator reads or writes with cfg.
func ForValidator(cfg *config.Config) []string {
	out := []string{cfg.TopicShadow, cfg.TopicOutcomes}
	if cfg.AutoRollback {
		out = append(out, cfg.TopicRegistry)
	}
	return out
}

func dedup(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// MissingError names topics that do not exist.
type MissingError struct{ Topics []string }

func (e *MissingError) Error() string {
	noun := "topic " + e.Topics[0] + " does"
	if len(e.Topics) > 1 {
		noun = "topics " + strings.Join(e.Topics, ", ") + " do"
	}
	return fmt.Sprintf("kafka: %s not exist; create the service's topics with `leadscorer topics apply` (docs/OPERATIONS.md): the brokers must not create them on first use, with their defaults", noun)
}

// Require checks that every topic of names exists and returns a
// *MissingError naming those that do not.
func Require(ctx context.Context, adm *kadm.Client, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	details, err := adm.ListTopics(fresh(ctx), names...)
	if err != nil {
		return fmt.Errorf("kafka: listing topics: %w", err)
	}
	var missing []string
	var errs []error
	for _, n := range names {
		d, ok := details[n]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			missing = append(missing, n)
		case d.Err != nil:
			errs = append(errs, fmt.Errorf("kafka: topic %s: %w", n, d.Err))
		}
	}
	if len(missing) > 0 {
		return &MissingError{Topics: missing}
	}
	return errors.Join(errs...)
}

// fresh makes kadm ask the brokers for metadata rather than answer from the
// client's cache (kept up to MetadataMinAge), which may predate a topic
// created or deleted a moment ago.
func fresh(ctx context.Context) context.Context { return kadm.WithAuthorizedOps(ctx) }

// Result is what Apply did, or would do, to one topic.
type Result struct {
	Topic   string
	Created bool
	// Changes are "key old -> new" lines: settings altered and partitions
	// added.
	Changes []string
	// Refused says why the topic cannot be brought to the declaration
	// (fewer partitions, another replication factor); Err is a failure of
	// the cluster to do what was asked.
	Refused string
	Err     error
	DryRun  bool
	// Declared is the declaration applied.
	Declared Topic
}

// String is the result's one-line report.
func (r Result) String() string {
	would := ""
	if r.DryRun {
		would = "would be "
	}
	var b strings.Builder
	b.WriteString(r.Topic)
	b.WriteString(": ")
	switch {
	case r.Err != nil:
		fmt.Fprintf(&b, "FAILED: %v", r.Err)
	case r.Created:
		fmt.Fprintf(&b, "%screated: %s", would, describe(r.Declared))
	case len(r.Changes) > 0:
		fmt.Fprintf(&b, "%schanged: %s", would, strings.Join(r.Changes, ", "))
	case r.Refused == "":
		b.WriteString("up to date")
	}
	if r.Refused != "" {
		if r.Err != nil || r.Created || len(r.Changes) > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "REFUSED: %s", r.Refused)
	}
	return b.String()
}

// OK reports whether the topic now matches its declaration (or would, in a
// dry run).
func (r Result) OK() bool { return r.Err == nil && r.Refused == "" }

func describe(t Topic) string {
	noun := "partitions"
	if t.Partitions == 1 {
		noun = "partition"
	}
	parts := []string{fmt.Sprintf("%d %s", t.Partitions, noun), fmt.Sprintf("replication factor %d", t.ReplicationFactor)}
	for _, k := range Settings {
		parts = append(parts, k+"="+t.Configs[k])
	}
	return strings.Join(parts, ", ")
}

// Apply brings the cluster's topics to the declaration, idempotently:
// creates what is missing, alters the declared settings that differ, adds
// partitions where the declaration has more. It never deletes a topic or a
// partition, nor moves replicas: a topic with more partitions or another
// replication factor than declared is reported as refused. With dryRun it
// only reports. The error is one of listing the topics; what happened to
// each topic is in its Result.
func Apply(ctx context.Context, cl *kgo.Client, want []Topic, dryRun bool) ([]Result, error) {
	return apply(ctx, cl, want, dryRun, true)
}

func apply(ctx context.Context, cl *kgo.Client, want []Topic, dryRun, retry bool) ([]Result, error) {
	adm := kadm.NewClient(cl)
	names := Names(want)
	details, err := adm.ListTopics(fresh(ctx), names...)
	if err != nil {
		return nil, fmt.Errorf("kafka: listing topics: %w", err)
	}
	var existing []string
	for _, n := range names {
		if d, ok := details[n]; ok && d.Err == nil {
			existing = append(existing, n)
		}
	}
	current := map[string]map[string]string{}
	if len(existing) > 0 {
		rcs, err := adm.DescribeTopicConfigs(ctx, existing...)
		if err != nil {
			return nil, fmt.Errorf("kafka: describing topic configs: %w", err)
		}
		for _, rc := range rcs {
			if rc.Err != nil {
				return nil, fmt.Errorf("kafka: configs of %s: %w", rc.Name, rc.Err)
			}
			m := map[string]string{}
			for _, c := range rc.Configs {
				m[c.Key] = c.MaybeValue()
			}
			current[rc.Name] = m
		}
	}

	results := make([]Result, 0, len(want))
	var created, raced []Topic
	for _, t := range want {
		r := Result{Topic: t.Name, DryRun: dryRun, Declared: t}
		d, ok := details[t.Name]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			r.Created = true
			if !dryRun {
				r.Err = create(ctx, adm, t)
				if errors.Is(r.Err, kerr.TopicAlreadyExists) && retry {
					// Created meanwhile, or a moment ago and not yet in
					// this broker's metadata: aligned below.
					raced = append(raced, t)
					continue
				}
				if r.Err == nil {
					created = append(created, t)
				}
			}
		case d.Err != nil:
			r.Err = d.Err
		default:
			r.Changes, r.Refused, r.Err = align(ctx, cl, t, d, current[t.Name], dryRun)
		}
		results = append(results, r)
	}
	// A broker answers CreateTopics before every broker's metadata has the
	// topic: wait until it is listed with its partitions and leaders, so
	// that what runs next (the scorer's check, a second apply) finds it.
	if err := visible(ctx, cl, append(created, raced...)); err != nil {
		for i := range results {
			if results[i].Created && results[i].Err == nil && slices.ContainsFunc(created, func(t Topic) bool { return t.Name == results[i].Topic }) {
				results[i].Err = err
			}
		}
	}
	if len(raced) > 0 {
		again, err := apply(ctx, cl, raced, dryRun, false)
		if err != nil {
			return nil, err
		}
		results = append(results, again...)
		order := map[string]int{}
		for i, t := range want {
			order[t.Name] = i
		}
		slices.SortStableFunc(results, func(a, b Result) int { return order[a.Topic] - order[b.Topic] })
	}
	return results, nil
}

// visible waits until the metadata of every broker lists every topic of ts
// with all its partitions led. Each broker learns of a new topic on its
// own, a moment after the controller answered CreateTopics: a client asking
// another broker meanwhile is told the topic does not exist.
func visible(ctx context.Context, cl *kgo.Client, ts []Topic) error {
	if len(ts) == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range ts {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t.Name)
		req.Topics = append(req.Topics, rt)
	}
	for {
		err := func() error {
			brokers, err := kadm.NewClient(cl).ListBrokers(wctx)
			if err != nil {
				return err
			}
			for _, b := range brokers {
				resp, err := req.RequestWith(wctx, cl.Broker(int(b.NodeID)))
				if err != nil {
					return err
				}
				listed := map[string]kmsg.MetadataResponseTopic{}
				for _, rt := range resp.Topics {
					if rt.Topic != nil {
						listed[*rt.Topic] = rt
					}
				}
				for _, t := range ts {
					rt, ok := listed[t.Name]
					if !ok || rt.ErrorCode != 0 || int32(len(rt.Partitions)) < t.Partitions {
						return fmt.Errorf("broker %d does not list topic %s yet", b.NodeID, t.Name)
					}
					for _, p := range rt.Partitions {
						if p.Leader < 0 || p.ErrorCode != 0 {
							return fmt.Errorf("broker %d: topic %s partition %d has no leader yet", b.NodeID, t.Name, p.Partition)
						}
					}
				}
			}
			return nil
		}()
		if err == nil {
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("created, but not listed by every broker after 30s: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func create(ctx context.Context, adm *kadm.Client, t Topic) error {
	configs := map[string]*string{}
	for k, v := range t.Configs {
		configs[k] = kadm.StringPtr(v)
	}
	resp, err := adm.CreateTopic(ctx, t.Partitions, t.ReplicationFactor, configs, t.Name)
	if errors.Is(err, kerr.InvalidReplicationFactor) {
		return fmt.Errorf("replication factor %d is more than the cluster's brokers (--replication-factor): %w", t.ReplicationFactor, err)
	}
	if err != nil && resp.ErrMessage != "" {
		return fmt.Errorf("%w: %s", err, resp.ErrMessage)
	}
	return err
}

// align compares an existing topic with its declaration and, unless
// dryRun, makes the changes it can.
func align(ctx context.Context, cl *kgo.Client, t Topic, d kadm.TopicDetail, cur map[string]string, dryRun bool) ([]string, string, error) {
	adm := kadm.NewClient(cl)
	var changes []string
	var refused []string
	have := int32(len(d.Partitions))
	switch {
	case have > t.Partitions:
		refused = append(refused, fmt.Sprintf("it has %d partitions, the declaration %d: Kafka cannot remove partitions (recreate the topic, or declare %d)", have, t.Partitions, have))
	case have < t.Partitions:
		changes = append(changes, fmt.Sprintf("partitions %d -> %d", have, t.Partitions))
	}
	if rf := replicationFactor(d); rf != int(t.ReplicationFactor) {
		refused = append(refused, fmt.Sprintf("replication factor %d, declared %d: changing it is a partition reassignment, which this command does not do", rf, t.ReplicationFactor))
	}
	var alter []kadm.AlterConfig
	for _, k := range slices.Sorted(maps.Keys(t.Configs)) {
		if v, ok := cur[k]; !ok || v != t.Configs[k] {
			old := cur[k]
			if !ok {
				old = "(unset)"
			}
			changes = append(changes, fmt.Sprintf("%s %s -> %s", k, old, t.Configs[k]))
			alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(t.Configs[k])})
		}
	}
	if dryRun {
		return changes, strings.Join(refused, "; "), nil
	}
	var errs []error
	if len(alter) > 0 {
		resp, err := adm.AlterTopicConfigs(ctx, alter, t.Name)
		if err == nil {
			for _, r := range resp {
				if r.Err != nil {
					err = errors.Join(err, fmt.Errorf("%w %s", r.Err, r.ErrMessage))
				}
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("altering settings: %w", err))
		}
	}
	if have < t.Partitions {
		resp, err := adm.UpdatePartitions(ctx, int(t.Partitions), t.Name)
		if err == nil {
			for _, r := range resp {
				err = errors.Join(err, r.Err)
			}
		}
		if err == nil { // as for a new topic: every broker lists them
			err = visible(ctx, cl, []Topic{t})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("adding partitions: %w", err))
		}
	}
	return changes, strings.Join(refused, "; "), errors.Join(errs...)
}

// replicationFactor is the replica count of the topic's partitions (the
// largest, should they differ).
func replicationFactor(d kadm.TopicDetail) int {
	rf := 0
	for _, p := range d.Partitions {
		rf = max(rf, len(p.Replicas))
	}
	return rf
}

// ClusterReplicationFactor is the replication factor to use on a cluster
// of brokers brokers: DefaultReplicationFactor, or fewer on a smaller
// cluster (development and test clusters).
func ClusterReplicationFactor(brokers int) int16 {
	return int16(max(1, min(brokers, DefaultReplicationFactor)))
}

// Lookup returns the declared topic with the given key.
func Lookup(ts []Topic, key string) (Topic, bool) {
	for _, t := range ts {
		if t.Key == key {
			return t, true
		}
	}
	return Topic{}, false
}

// Ready waits until every partition of the named topics answers a
// ListOffsets request from its leader. A real broker lists itself leader of
// a new partition in its metadata a moment before it serves it: a produce in
// that moment gets NOT_LEADER_OR_FOLLOWER, and the producer then waits for
// its next metadata refresh (up to 5 s, franz-go's MetadataMinAge).
func Ready(ctx context.Context, adm *kadm.Client, names ...string) error {
	for {
		ends, err := adm.ListEndOffsets(ctx, names...)
		if err == nil {
			err = ends.Error()
			if err == nil {
				seen := map[string]bool{}
				ends.Each(func(o kadm.ListedOffset) { seen[o.Topic] = true })
				for _, n := range names {
					if !seen[n] {
						err = fmt.Errorf("topic %s has no partition yet", n)
					}
				}
			}
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka: topics %s not ready: %w (last: %v)", strings.Join(names, ", "), ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
