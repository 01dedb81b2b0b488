package topics_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/internal/testenv"
	"github.com/leadscorer/leadscorer/topics"
)

// Every topic the service reads or writes is declared once, named by its
// setting, with every setting the declaration fixes; the DLQ replay ledger
// follows the DLQ's name.
func TestDeclarationCoversEveryTopicOfTheService(t *testing.T) {
	cfg := config.Default()
	cfg.TopicDLQ = "x.dlq"
	declared := topics.Declared(cfg, 0)
	byKey := map[string]topics.Topic{}
	for _, d := range declared {
		if _, dup := byKey[d.Key]; dup {
			t.Errorf("%s declared twice", d.Key)
		}
		byKey[d.Key] = d
		if d.ReplicationFactor != topics.DefaultReplicationFactor || d.Configs[topics.MinInSyncReplicas] != "2" {
			t.Errorf("%s: replication factor %d, min.insync.replicas %s; want 3 and 2", d.Name, d.ReplicationFactor, d.Configs[topics.MinInSyncReplicas])
		}
		for _, k := range topics.Settings {
			if d.Configs[k] == "" {
				t.Errorf("%s: %s not declared", d.Name, k)
			}
		}
		if n, _ := strconv.Atoi(d.Configs[topics.MaxMessageBytes]); n < topics.ProducerBatchMaxBytes {
			t.Errorf("%s: max.message.bytes %d is below the producer's batch, %d", d.Name, n, topics.ProducerBatchMaxBytes)
		}
		if d.Why == "" || d.Partitions < 1 {
			t.Errorf("%s: partitions %d, why %q", d.Name, d.Partitions, d.Why)
		}
	}
	for _, k := range config.Keys {
		if k.Group == config.Topics {
			if _, ok := byKey[k.Name]; !ok {
				t.Errorf("setting %s names a topic that is not declared", k.Name)
			}
		}
	}
	if l := byKey[topics.LedgerKey]; l.Name != "x.dlq.replayed" || l.Configs[topics.CleanupPolicy] != "compact" {
		t.Errorf("ledger %+v, want x.dlq.replayed, compacted", l)
	}
	if in := byKey["topic_in"]; in.Partitions != 1 {
		t.Errorf("input topic: %d partitions; the CDC connector's one task writes one", in.Partitions)
	}
	for rf, minISR := range map[int16]string{1: "1", 2: "1", 3: "2", 5: "2"} {
		if got := topics.Declared(cfg, rf)[0].Configs[topics.MinInSyncReplicas]; got != minISR {
			t.Errorf("replication factor %d: min.insync.replicas %s, want %s", rf, got, minISR)
		}
	}
}

// Each role needs exactly the topics it reads or writes.
func TestTopicsOfEachRole(t *testing.T) {
	cfg := config.Default()
	if got, want := strings.Join(topics.ForRun(cfg), " "), "leads.changed.v1 leads.scored.sfdc.v1 leads.scored.shadow.v1 leads.dlq.v1 leads.refresh.v1 leads.outcomes.v1"; got != want {
		t.Errorf("run, salesforce-cdc: %s, want %s", got, want)
	}
	cfg.InputFormat = config.InputLeadChanged
	cfg.Validate, cfg.AutoRollback = true, true
	if got, want := strings.Join(topics.ForRun(cfg), " "), "leads.changed.v1 leads.scored.sfdc.v1 leads.scored.shadow.v1 leads.dlq.v1 leads.outcomes.v1 leads.registry.v1"; got != want {
		t.Errorf("run, leadchanged, validate with auto-rollback: %s, want %s", got, want)
	}
}

// Require names every missing topic, on the in-process broker or the real
// one.
func TestRequireNamesEveryMissingTopic(t *testing.T) {
	k := testenv.NewKafka(t)
	have := k.Topic("present", 1)
	a, b := k.Name("absent.a"), k.Name("absent.b")
	ctx := context.Background()
	if err := topics.Require(ctx, k.Admin(), have); err != nil {
		t.Fatalf("an existing topic: %v", err)
	}
	err := topics.Require(ctx, k.Admin(), have, a, b)
	var me *topics.MissingError
	if !errors.As(err, &me) || strings.Join(me.Topics, ",") != a+","+b {
		t.Fatalf("Require: %v, want %s and %s missing", err, a, b)
	}
	if !strings.Contains(err.Error(), "topics "+a+", "+b+" do not exist") || !strings.Contains(err.Error(), "leadscorer topics apply") {
		t.Errorf("message %q", err)
	}
}

// The README's Topics table is the topics' documentation: one row per
// declared topic with its setting, partitions and how long it is kept,
// and no other; the replication settings it states for all are the
// declaration's.
func TestREADMETopicsTableIsTheDeclaration(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Topics\n")
	if !ok {
		t.Fatal("README.md has no ## Topics section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	rows := map[string][]string{}
	for _, line := range strings.Split(sec, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, " | ")
		name := strings.Trim(strings.Fields(strings.TrimPrefix(cells[0], "| "))[0], "`")
		rows[name] = cells
	}
	kept := func(d topics.Topic) string {
		switch {
		case d.Configs[topics.CleanupPolicy] == "compact":
			return "compacted"
		case d.Configs[topics.RetentionMs] == "-1":
			return "forever"
		}
		ms, _ := strconv.ParseInt(d.Configs[topics.RetentionMs], 10, 64)
		return strconv.FormatInt(ms/86_400_000, 10) + " days"
	}
	for _, d := range topics.Declared(config.Default(), 0) {
		cells, ok := rows[d.Name]
		if !ok {
			t.Errorf("README's Topics table has no row for %s", d.Name)
			continue
		}
		delete(rows, d.Name)
		key := "`" + d.Key + "`"
		if d.Key == topics.LedgerKey {
			key = "`topic_dlq` + `" + topics.LedgerSuffix + "`"
		}
		if !strings.Contains(cells[0], "("+key+";") {
			t.Errorf("%s: row %q does not name its setting %s", d.Name, cells[0], key)
		}
		if cells[1] != strconv.Itoa(int(d.Partitions)) || cells[2] != kept(d) {
			t.Errorf("%s: README says %s partitions, kept %s; the declaration %d, %s", d.Name, cells[1], cells[2], d.Partitions, kept(d))
		}
		if d.Configs[topics.MinInSyncReplicas] != "2" || d.Configs[topics.MaxMessageBytes] != "1048588" {
			t.Errorf("%s: the README states min.insync.replicas=2 and max.message.bytes 1048588 for every topic", d.Name)
		}
	}
	for name := range rows {
		t.Errorf("README's Topics table has %s, which is not declared", name)
	}
	for _, want := range []string{"replication factor 3", "`min.insync.replicas=2`", "1048588"} {
		if !strings.Contains(sec, want) {
			t.Errorf("README's Topics section does not say %q", want)
		}
	}
}
