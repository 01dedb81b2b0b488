// Package sandbox runs a whole Kafka + Schema Registry stack in process:
// franz-go's kfake (a Kafka wire-protocol broker) and srfake (a Schema
// Registry), on loopback TCP ports. The demo, `leadscorer-dev sandbox` and the
// integration tests use it; every client talks to it over real TCP with the
// real franz-go client. Like the project's Kafka clusters, the broker creates
// no topic on first use: the sandbox creates the topics it is given, from the
// topics declaration (package topics), as `leadscorer topics apply` does.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/leadscorer/leadscorer/topics"
)

// Options configures a Sandbox.
type Options struct {
	// KafkaPort is the broker's loopback port; 0 picks a free one.
	KafkaPort int
	// RegistryAddr is the Schema Registry's listen address; "" picks a
	// free loopback port.
	RegistryAddr string
	// DataDir, when set, persists the broker's data so it survives a
	// restart.
	DataDir string
	// Topics are created (or aligned, after a restart) as declared, with
	// replication factor 1: there is one broker. topics.Declared gives the
	// service's.
	Topics []topics.Topic
	// KafkaOpts are extra kfake options (TLS, SASL users, ...).
	KafkaOpts []kfake.Opt
}

// Sandbox is a running broker and registry.
type Sandbox struct {
	Cluster  *kfake.Cluster
	Registry *srfake.Registry
	srv      *http.Server
	srURL    string
	dataDir  string
}

// schemasFile keeps the Schema Registry's schemas in the data directory, so
// that the ids in the records the broker keeps still resolve after a
// restart.
const schemasFile = "schema-registry.json"

// Start starts the broker and the registry.
func Start(opts Options) (*Sandbox, error) {
	// The broker takes no connection before its topics exist: a client
	// that connects as soon as the port opens (the fault suite) must find
	// them, as on a cluster where they were created beforehand.
	gate := make(chan struct{})
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(opts.KafkaPort),
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err != nil {
				return nil, err
			}
			return &gatedListener{Listener: ln, open: gate}, nil
		}),
	}
	if opts.DataDir != "" {
		kopts = append(kopts, kfake.DataDir(opts.DataDir))
	}
	kopts = append(kopts, opts.KafkaOpts...)
	cluster, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("sandbox: kafka: %w", err)
	}
	addr := opts.RegistryAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		cluster.Close()
		return nil, fmt.Errorf("sandbox: schema registry: %w", err)
	}
	reg := srfake.NewRegistry()
	if opts.DataDir != "" {
		if err := loadSchemas(reg, filepath.Join(opts.DataDir, schemasFile)); err != nil {
			ln.Close()
			cluster.Close()
			return nil, err
		}
	}
	srv := &http.Server{Handler: reg.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	sb := &Sandbox{Cluster: cluster, Registry: reg, srv: srv, srURL: "http://" + ln.Addr().String(), dataDir: opts.DataDir}
	if err := sb.createTopics(opts.Topics); err != nil {
		close(gate)
		sb.Close()
		return nil, err
	}
	close(gate)
	return sb, nil
}

// createTopics creates ts on the broker as declared (one broker: the
// replication factor is 1), before any client can connect. A topic that
// exists (a data directory's, after a restart) is kept as it is.
func (s *Sandbox) createTopics(ts []topics.Topic) error {
	for _, t := range ts {
		cfgs := maps.Clone(t.Configs)
		cfgs[topics.MinInSyncReplicas] = "1"
		if err := s.Cluster.CreateTopic(t.Name, t.Partitions, cfgs); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("sandbox: create topic %s: %w", t.Name, err)
		}
	}
	return nil
}

// gatedListener accepts connections once open is closed.
type gatedListener struct {
	net.Listener
	open <-chan struct{}
}

func (l *gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	<-l.open
	return c, nil
}

// loadSchemas seeds reg with the schemas saveSchemas wrote, if any.
func loadSchemas(reg *srfake.Registry, path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sandbox: schema registry: %w", err)
	}
	var all []sr.SubjectSchema
	if err := json.Unmarshal(b, &all); err != nil {
		return fmt.Errorf("sandbox: schema registry: %s: %w", path, err)
	}
	seeded := map[int]bool{}
	for _, s := range all {
		if seeded[s.ID] { // one schema under several subjects: seeded once
			continue
		}
		seeded[s.ID] = true
		reg.SeedSchema(s.Subject, s.Version, s.ID, s.Schema)
	}
	return nil
}

// saveSchemas writes every registered schema to the data directory.
func (s *Sandbox) saveSchemas(ctx context.Context) error {
	cl, err := sr.NewClient(sr.URLs(s.srURL))
	if err != nil {
		return err
	}
	all, err := cl.AllSchemas(ctx)
	if err != nil {
		return err
	}
	b, err := json.Marshal(all)
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dataDir, schemasFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.dataDir, schemasFile))
}

// Brokers returns the broker's address.
func (s *Sandbox) Brokers() []string { return s.Cluster.ListenAddrs() }

// RegistryURL returns the Schema Registry's base URL.
func (s *Sandbox) RegistryURL() string { return s.srURL }

// Close stops both, as Shutdown does, dropping its error.
func (s *Sandbox) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.Shutdown(ctx)
}

// Shutdown stops both; with a data directory, the broker persists its data
// and the registry its schemas there first. The error says what could not
// be saved.
func (s *Sandbox) Shutdown(ctx context.Context) error {
	var err error
	if s.dataDir != "" {
		if err = s.saveSchemas(ctx); err != nil {
			err = fmt.Errorf("sandbox: save schemas: %w", err)
		}
	}
	_ = s.srv.Shutdown(ctx)
	s.Cluster.Close()
	return err
}

// DrainCommitted returns every committed record of topic, in partition and
// offset order, as a read_committed consumer sees it. Every transaction
// writing to the topic must have ended (the scorer stopped): it reads each
// partition up to its high watermark, keeping the transaction markers only
// to know where the end is. It writes nothing.
func DrainCommitted(ctx context.Context, brokers []string, topic string, opts ...kgo.Opt) ([]*kgo.Record, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("sandbox: end offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	var out []*kgo.Record
	if len(want) == 0 {
		return out, nil
	}
	rd, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.KeepControlRecords(),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	for len(want) > 0 {
		f := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("sandbox: draining %s: %d partitions not read to their end: %w", topic, len(want), err)
		}
		var ferr error
		f.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return out, ferr
		}
		f.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out, nil
}
