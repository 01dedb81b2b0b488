package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/internal/testenv"
	"github.com/leadscorer/leadscorer/topics"
	"github.com/twmb/franz-go/pkg/kadm"
)

// topicsApply runs `leadscorer topics apply` with the topic names of cfg
// and extra flags, and returns its output lines and error.
func topicsApply(t *testing.T, k *testenv.Kafka, cfg *config.Config, extra ...string) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"topics", "apply", "--brokers", strings.Join(k.Brokers, ","),
		"--topic-in", cfg.TopicIn, "--topic-sfdc", cfg.TopicSfdc, "--topic-shadow", cfg.TopicShadow, "--topic-dlq", cfg.TopicDLQ,
		"--topic-outcomes", cfg.TopicOutcomes, "--topic-refresh", cfg.TopicRefresh, "--topic-registry", cfg.TopicRegistry,
		"--replication-factor", strconv.Itoa(int(k.ReplicationFactor))}
	var out, errb strings.Builder
	err := run(ctx, append(args, extra...), nil, &out, &errb)
	t.Logf("leadscorer %s\n%s%s", strings.Join(append(args[:2], extra...), " "), out.String(), errb.String())
	return strings.Split(strings.TrimSpace(out.String()), "\n"), err
}

// testTopicNames gives cfg topic names of the test's own.
func testTopicNames(k *testenv.Kafka, cfg *config.Config) {
	for _, p := range []*string{&cfg.TopicIn, &cfg.TopicSfdc, &cfg.TopicShadow, &cfg.TopicDLQ, &cfg.TopicOutcomes, &cfg.TopicRefresh, &cfg.TopicRegistry} {
		*p = k.Name(*p)
	}
	k.DeleteAtEnd(topics.Names(topics.Declared(cfg, 1))...)
}

// `topics apply` creates the declared topics, then finds nothing to do;
// it puts back a setting someone changed, adds partitions the declaration
// has more of, and refuses to remove partitions, naming the topic. A dry
// run says what it would do and does nothing.
func TestTopicsApplyIsIdempotentAndNeverShrinks(t *testing.T) {
	k := testenv.NewKafka(t)
	cfg := config.Default()
	testTopicNames(k, cfg)
	declared := topics.Declared(cfg, k.ReplicationFactor)
	ctx := context.Background()
	adm := k.Admin()

	lines, err := topicsApply(t, k, cfg, "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != len(declared) {
		t.Fatalf("%d lines for %d topics", len(lines), len(declared))
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, declared[i].Name+": would be created: ") {
			t.Errorf("dry run line %q", l)
		}
	}
	if d, err := adm.ListTopics(ctx, topics.Names(declared)...); err != nil || len(d.TopicsSet().Sorted()) != 0 {
		t.Fatalf("a dry run created topics: %v %v", d.TopicsSet(), err)
	}

	lines, err = topicsApply(t, k, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range lines {
		noun := " partitions"
		if declared[i].Partitions == 1 {
			noun = " partition"
		}
		want := declared[i].Name + ": created: " + strconv.Itoa(int(declared[i].Partitions)) + noun + ", replication factor " + strconv.Itoa(int(k.ReplicationFactor))
		if !strings.HasPrefix(l, want) {
			t.Errorf("line %q, want it to start %q", l, want)
		}
	}
	checkAsDeclared(t, adm, declared)

	lines, err = topicsApply(t, k, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range lines {
		if l != declared[i].Name+": up to date" {
			t.Errorf("second apply: %q, want nothing to do", l)
		}
	}

	// Drift: a retention changed by hand, the input grown to 2 partitions,
	// the DLQ recreated with 1.
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: topics.RetentionMs, Value: kadm.StringPtr("3600000")}}, cfg.TopicShadow); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.UpdatePartitions(ctx, 2, cfg.TopicIn); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.DeleteTopics(ctx, cfg.TopicDLQ); err != nil {
		t.Fatal(err)
	}
	recreate(t, adm, cfg.TopicDLQ, k.ReplicationFactor)

	lines, err = topicsApply(t, k, cfg)
	if err == nil || !strings.Contains(err.Error(), "1 of 8 topics do not match the declaration") {
		t.Fatalf("apply over a topic with more partitions than declared: %v, want it to fail", err)
	}
	want := map[string]string{
		cfg.TopicIn:     cfg.TopicIn + ": REFUSED: it has 2 partitions, the declaration 1: Kafka cannot remove partitions",
		cfg.TopicShadow: cfg.TopicShadow + ": changed: retention.ms 3600000 -> 2592000000",
		cfg.TopicDLQ:    cfg.TopicDLQ + ": changed: partitions 1 -> 3, retention.ms 604800000 -> 2592000000",
	}
	for _, l := range lines {
		name, _, _ := strings.Cut(l, ":")
		w, ok := want[name]
		if !ok {
			w = name + ": up to date"
		}
		if !strings.HasPrefix(l, w) {
			t.Errorf("line %q, want %q", l, w)
		}
	}
	in := declared[0]
	in.Partitions = 2 // what the cluster has, and keeps
	checkAsDeclared(t, adm, append([]topics.Topic{in}, declared[1:]...))
}

// recreate makes topic anew with one partition and no settings.
func recreate(t *testing.T, adm *kadm.Client, topic string, rf int16) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		_, err := adm.CreateTopic(ctx, 1, rf, nil, topic)
		if err == nil {
			return
		}
		select { // the deletion may still be in progress
		case <-ctx.Done():
			t.Fatalf("recreating %s: %v", topic, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkAsDeclared reads the topics back from the cluster.
func checkAsDeclared(t *testing.T, adm *kadm.Client, want []topics.Topic) {
	t.Helper()
	ctx := kadm.WithAuthorizedOps(context.Background()) // fresh metadata, not the client's cache
	details, err := adm.ListTopics(ctx, topics.Names(want)...)
	if err != nil {
		t.Fatal(err)
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, topics.Names(want)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		d := details[w.Name]
		if d.Err != nil || int32(len(d.Partitions)) != w.Partitions {
			t.Errorf("%s: %d partitions (%v), declared %d", w.Name, len(d.Partitions), d.Err, w.Partitions)
			continue
		}
		if rf := len(d.Partitions[0].Replicas); rf != int(w.ReplicationFactor) {
			t.Errorf("%s: replication factor %d, declared %d", w.Name, rf, w.ReplicationFactor)
		}
		rc, err := cfgs.On(w.Name, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, c := range rc.Configs {
			got[c.Key] = c.MaybeValue()
		}
		for _, k := range topics.Settings {
			if got[k] != w.Configs[k] {
				t.Errorf("%s: %s=%q, declared %q", w.Name, k, got[k], w.Configs[k])
			}
		}
	}
}
