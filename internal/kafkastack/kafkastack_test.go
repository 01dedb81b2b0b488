package kafkastack

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestVersionFromTheBrokerJar(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"kafka-clients-4.4.0.jar", "kafka_2.13-4.4.0.jar", "kafka-tools-4.4.0.jar", "log4j-core-2.25.5.jar"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := Version(dir); err != nil || v != "4.4.0" {
		t.Fatalf("Version = %q, %v; want 4.4.0", v, err)
	}
	if err := os.Remove(filepath.Join(dir, "kafka_2.13-4.4.0.jar")); err != nil {
		t.Fatal(err)
	}
	if v, err := Version(dir); err == nil {
		t.Fatalf("without the broker jar: %q, no error", v)
	}
}

func TestWaitGone(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := WaitGone(ctx, cmd.Process.Pid); err == nil {
		t.Fatal("a running process is gone")
	}
	_ = cmd.Process.Kill()
	// Not reaped yet: a zombie, which counts as gone.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WaitGone(ctx, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

// brokers are the brokers of KAFKA_BROKERS, or an in-process kfake.
func brokers(t *testing.T) ([]string, int) {
	t.Helper()
	if bs := os.Getenv("KAFKA_BROKERS"); bs != "" {
		list := strings.Split(bs, ",")
		return list, len(list)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs(), 1
}

// On a real broker a new partition's leader is named in the metadata a
// moment before it serves, and a produce in that moment waits for the
// client's next metadata refresh (5 s by default). CreateTopics returns
// only once every partition is served: the first produce right after it,
// from a client with the default metadata settings, is not held back.
func TestFirstProduceAfterCreateTopicsIsNotHeldBack(t *testing.T) {
	bs, n := brokers(t)
	adm, closeAdm, err := NewAdmin(bs)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAdm()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prefix := "kafkastack-test-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "."
	// The producer's own first steps (connections, its producer id, slow
	// on a fresh cluster) are taken on a topic of their own, untimed.
	cl, err := kgo.NewClient(kgo.SeedBrokers(bs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := CreateTopics(ctx, adm, int16(min(n, 3)), Topic{Name: prefix + "warm", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = DeleteTopics(context.Background(), adm, prefix+"warm") }()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: prefix + "warm", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	names := ScorerTopics{In: prefix + "in", Sfdc: prefix + "sfdc", Shadow: prefix + "shadow", DLQ: prefix + "dlq"}
	if err := CreateScorerTopics(ctx, adm, n, 6, 8<<20, names); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = DeleteTopics(context.Background(), adm, names.All()...) }()
	cfgs, err := adm.DescribeTopicConfigs(ctx, names.In, names.DLQ)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		names.In:  {"min.insync.replicas": strconv.Itoa(max(min(n, 3)-1, 1)), "max.message.bytes": "8388608"},
		names.DLQ: {"min.insync.replicas": strconv.Itoa(max(min(n, 3)-1, 1))},
	}
	for _, rc := range cfgs {
		for k, v := range want[rc.Name] {
			got := ""
			for _, c := range rc.Configs {
				if c.Key == k && c.Value != nil {
					got = *c.Value
				}
			}
			if got != v {
				t.Errorf("%s %s = %q, want %q", rc.Name, k, got, v)
			}
		}
	}
	for _, topic := range names.All() {
		for p := range int32(6) {
			start := time.Now()
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatalf("%s/%d: %v", topic, p, err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("the first produce to %s/%d took %v: held back by a leader not yet serving", topic, p, d)
			}
		}
	}
}
