package sandbox

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/leadscorer/leadscorer/topics"
)

// With a data directory, a restarted sandbox still has the records and the
// schemas their ids name.
func TestRestartKeepsRecordsAndSchemas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	const schema = `{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}`
	topic := topics.Topic{Name: "t", Partitions: 1, Configs: map[string]string{topics.CleanupPolicy: "delete"}}

	sb, err := Start(Options{DataDir: dir, Topics: []topics.Topic{topic}})
	if err != nil {
		t.Fatal(err)
	}
	srcl, err := sr.NewClient(sr.URLs(sb.RegistryURL()))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := srcl.CreateSchema(ctx, "t-value", sr.Schema{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(sb.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("kept")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if err := sb.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	sb, err = Start(Options{DataDir: dir, Topics: []topics.Topic{topic}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	recs, err := DrainCommitted(ctx, sb.Brokers(), "t")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || string(recs[0].Value) != "kept" {
		t.Fatalf("after the restart the topic holds %d records", len(recs))
	}
	srcl, err = sr.NewClient(sr.URLs(sb.RegistryURL()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := srcl.SchemaByID(ctx, ss.ID)
	if err != nil {
		t.Fatalf("schema id %d after the restart: %v", ss.ID, err)
	}
	if got.Schema != schema {
		t.Fatalf("schema id %d is %q after the restart", ss.ID, got.Schema)
	}
}
