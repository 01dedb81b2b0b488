package topics_test

import (
	"context"
	"errors"
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
