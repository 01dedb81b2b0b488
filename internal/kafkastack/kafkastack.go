// Package kafkastack drives the real Apache Kafka stack of scripts/stack.sh from
// the harnesses (the fault suite, the end-to-end benchmark): bring a one- or
// three-broker cluster and its Schema Registry up and down, find a broker's
// process, stop, kill or freeze it, start it again on its data, wait until
// every partition has its replicas back, and create topics.
//
// Every process it signals is a broker of the stack this package started
// (or one the caller pointed it at), found through stack.sh's own pid files.
package kafkastack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Options configure Up.
type Options struct {
	// Script is scripts/stack.sh.
	Script string
	// Dir is the stack's run folder (STACK_DIR): configs, data, logs.
	Dir string
	// Brokers is 1 or 3.
	Brokers int
	// NoRegistry starts Kafka alone.
	NoRegistry bool
	// RegistryPort is the Schema Registry's port; 0 takes the
	// environment's SCHEMA_REGISTRY_PORT, else a free one (its
	// management port, 1000 above, free too), so that a stack another
	// developer runs on the default 8081 is no obstacle.
	RegistryPort int
	// ExtraProps are broker settings added to every node (KAFKA_EXTRA_PROPS).
	ExtraProps string
	// Log receives stack.sh's progress; nil discards it.
	Log io.Writer
}

// Stack is a running cluster.
type Stack struct {
	opts Options
	// Brokers are the bootstrap addresses, node 1 first.
	Brokers []string
	// Registry is the Schema Registry's URL ("" without one).
	Registry string
	// reused: the stack was already running in Dir; Down leaves it up.
	reused bool
}

// Up starts the stack, or reuses the healthy one already running in
// opts.Dir (which Down then leaves running).
func Up(ctx context.Context, opts Options) (*Stack, error) {
	if opts.Script == "" || opts.Dir == "" {
		return nil, errors.New("stack: Script and Dir are required")
	}
	if opts.Brokers != 1 && opts.Brokers != 3 {
		return nil, fmt.Errorf("stack: %d brokers: 1 or 3", opts.Brokers)
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.RegistryPort == 0 && os.Getenv("SCHEMA_REGISTRY_PORT") == "" && !opts.NoRegistry {
		p, err := freePortPair(1000)
		if err != nil {
			return nil, err
		}
		opts.RegistryPort = p
	}
	s := &Stack{opts: opts}
	s.reused = s.run(ctx, io.Discard, "status") == nil
	args := []string{"up", "--brokers", strconv.Itoa(opts.Brokers)}
	if opts.NoRegistry {
		args = append(args, "--no-registry")
	}
	var out bytes.Buffer
	if err := s.run(ctx, &out, args...); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "KAFKA_BROKERS":
			s.Brokers = strings.Split(v, ",")
		case "SCHEMA_REGISTRY":
			s.Registry = v
		}
	}
	if len(s.Brokers) != opts.Brokers {
		return nil, fmt.Errorf("stack: %s up printed brokers %v, want %d", opts.Script, s.Brokers, opts.Brokers)
	}
	return s, nil
}

// Reused reports whether Up found the stack running already.
func (s *Stack) Reused() bool { return s.reused }

// Down stops the stack, unless Up found it running.
func (s *Stack) Down() error {
	if s.reused {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return s.run(ctx, io.Discard, "down")
}

func (s *Stack) run(ctx context.Context, stdout io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, s.opts.Script, args...)
	cmd.Env = append(os.Environ(), "STACK_DIR="+s.opts.Dir)
	if s.opts.RegistryPort != 0 {
		cmd.Env = append(cmd.Env, "SCHEMA_REGISTRY_PORT="+strconv.Itoa(s.opts.RegistryPort))
	}
	if s.opts.ExtraProps != "" {
		cmd.Env = append(cmd.Env, "KAFKA_EXTRA_PROPS="+s.opts.ExtraProps)
	}
	var stderr bytes.Buffer
	cmd.Stdout = stdout
	cmd.Stderr = io.MultiWriter(s.opts.Log, &stderr)
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndex(msg, "\n"); i >= 0 && len(msg) > 2000 {
			msg = msg[i+1:]
		}
		return fmt.Errorf("stack: %s %s: %w: %s", filepath.Base(s.opts.Script), strings.Join(args, " "), err, msg)
	}
	return nil
}

// Pid is the process id of broker node (1..3).
func (s *Stack) Pid(ctx context.Context, node int32) (int, error) {
	var out bytes.Buffer
	if err := s.run(ctx, &out, "pid", strconv.Itoa(int(node))); err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out.String()))
}

// Signal sends sig to broker node and returns its pid.
func (s *Stack) Signal(ctx context.Context, node int32, sig syscall.Signal) (int, error) {
	pid, err := s.Pid(ctx, node)
	if err != nil {
		return 0, err
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return pid, fmt.Errorf("stack: signal %v to node %d (pid %d): %w", sig, node, pid, err)
	}
	return pid, nil
}

// WaitGone waits until process pid has ended (a zombie waiting to be
// reaped counts as ended).
func WaitGone(ctx context.Context, pid int) error {
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return nil
		}
		// The state follows the command name in parentheses.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X') {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stack: pid %d still running: %w", pid, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// StartNode starts a stopped or killed broker again on its data and
// returns once it answers metadata listing every broker.
func (s *Stack) StartNode(ctx context.Context, node int32) error {
	return s.run(ctx, io.Discard, "start-node", strconv.Itoa(int(node)))
}

// WaitInSync waits until every broker is in the metadata and every
// partition of every topic (internal ones included) has its full replica
// set in sync: the state a rolling restart waits for before the next node.
func WaitInSync(ctx context.Context, adm *kadm.Client, brokers int) error {
	var last string
	for {
		md, err := adm.Metadata(ctx)
		if err == nil {
			last = ""
			if len(md.Brokers) != brokers {
				last = fmt.Sprintf("%d of %d brokers in the metadata", len(md.Brokers), brokers)
			}
			for _, t := range md.Topics.Sorted() {
				for _, p := range t.Partitions.Sorted() {
					if last == "" && (p.Err != nil || len(p.ISR) < len(p.Replicas) || p.Leader < 0) {
						last = fmt.Sprintf("%s/%d: leader %d, in sync %v of %v (%v)", t.Topic, p.Partition, p.Leader, p.ISR, p.Replicas, p.Err)
					}
				}
			}
			if last == "" {
				return nil
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stack: replicas not in sync: %s: %w", last, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Topic is one topic to create.
type Topic struct {
	Name       string
	Partitions int32
	Configs    map[string]string
}

// CreateTopics creates topics with replication factor rf (the cluster's
// broker count, at most 3) and min.insync.replicas rf-1 (at least 1), the
// way a production cluster declares them, then waits until every partition
// answers on its leader (see WaitLeaders).
func CreateTopics(ctx context.Context, adm *kadm.Client, rf int16, topics ...Topic) error {
	minISR := strconv.Itoa(int(max(rf-1, 1)))
	for _, t := range topics {
		cfg := map[string]*string{"min.insync.replicas": &minISR}
		for k, v := range t.Configs {
			cfg[k] = &v
		}
		resp, err := adm.CreateTopic(ctx, t.Partitions, rf, cfg, t.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("stack: create topic %s: %w", t.Name, err)
		}
	}
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	return WaitLeaders(ctx, adm, names...)
}

// WaitLeaders waits until every partition of topics answers ListOffsets on
// its leader. A real broker names itself leader of a new partition in its
// metadata a moment before it serves it: a produce in that moment gets
// NOT_LEADER_OR_FOLLOWER, and the client waits for its next metadata
// refresh (up to 5 s by default) before retrying. ListOffsets is served by
// the leader only, so once it answers everywhere the first produce goes
// through.
func WaitLeaders(ctx context.Context, adm *kadm.Client, topics ...string) error {
	var last error
	for {
		ends, err := adm.ListEndOffsets(ctx, topics...)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			n := 0
			ends.Each(func(kadm.ListedOffset) { n++ })
			if n > 0 {
				return nil
			}
			err = errors.New("no partitions listed")
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("stack: partitions of %v not served by their leaders: %v: %w", topics, last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// DeleteTopics deletes topics, ignoring those that do not exist.
func DeleteTopics(ctx context.Context, adm *kadm.Client, topics ...string) error {
	resp, err := adm.DeleteTopics(ctx, topics...)
	if err != nil {
		return err
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("stack: delete topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// NewAdmin is a kadm client on brokers whose metadata is refreshed at most
// every 250 ms, so that it follows leader moves quickly.
func NewAdmin(brokers []string) (*kadm.Client, func(), error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// CacheDir is stack.sh's jar cache: libs/ holds Kafka's jars.
func CacheDir() string {
	if d := os.Getenv("LEADSCORER_KAFKA_CACHE"); d != "" {
		return d
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "leadscorer", "kafka-"+DefaultVersion)
}

// DefaultVersion is the Kafka release stack.sh runs.
const DefaultVersion = "4.4.0"

var kafkaJar = regexp.MustCompile(`^kafka_2\.1[0-9]-([0-9][0-9A-Za-z.\-]*)\.jar$`)

// Version is the Kafka release whose jars are in libs (from the broker
// jar's name, kafka_2.13-<version>.jar).
func Version(libs string) (string, error) {
	ents, err := os.ReadDir(libs)
	if err != nil {
		return "", fmt.Errorf("stack: %w", err)
	}
	for _, e := range ents {
		if m := kafkaJar.FindStringSubmatch(e.Name()); m != nil {
			return m[1], nil
		}
	}
	return "", fmt.Errorf("stack: no kafka_2.13-<version>.jar in %s", libs)
}

// Java is the java binary for Kafka's tools: KAFKA_JAVA, else
// $JAVA_HOME/bin/java, else java on PATH, as stack.sh chooses it.
func Java() string {
	if j := os.Getenv("KAFKA_JAVA"); j != "" {
		return j
	}
	if h := os.Getenv("JAVA_HOME"); h != "" {
		return filepath.Join(h, "bin", "java")
	}
	return "java"
}

// freePortPair returns a free loopback port p with p+off free too.
func freePortPair(off int) (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+off))
		ln.Close()
		if err == nil {
			ln2.Close()
			return p, nil
		}
	}
	return 0, errors.New("stack: no free pair of ports for the schema registry")
}

// ScorerTopics names the topics a scorer of LeadChanged records reads and
// writes.
type ScorerTopics struct{ In, Sfdc, Shadow, DLQ string }

// All lists them.
func (t ScorerTopics) All() []string { return []string{t.In, t.Sfdc, t.Shadow, t.DLQ} }

// CreateScorerTopics creates a scorer's topics on a cluster of brokers as
// the project declares them for production: replication factor 3 (the
// broker count when smaller), min.insync.replicas one less (at least 1),
// partitions each; inMaxBytes, when set, is the input's max.message.bytes.
// The harnesses create their topics here, and only here.
func CreateScorerTopics(ctx context.Context, adm *kadm.Client, brokers int, partitions int32, inMaxBytes int, t ScorerTopics) error {
	rf := int16(min(brokers, 3))
	var topics []Topic
	for _, name := range t.All() {
		tp := Topic{Name: name, Partitions: partitions}
		if name == t.In && inMaxBytes > 0 {
			tp.Configs = map[string]string{"max.message.bytes": strconv.Itoa(inMaxBytes)}
		}
		topics = append(topics, tp)
	}
	return CreateTopics(ctx, adm, rf, topics...)
}

// WarmCoordinators waits until the cluster can coordinate a consumer group
// and a transaction. A fresh cluster creates __consumer_offsets and
// __transaction_state on the first FindCoordinator of each kind and answers
// COORDINATOR_NOT_AVAILABLE until their partitions have leaders: a
// measurement that starts first would count that as its own time.
func WarmCoordinators(ctx context.Context, adm *kadm.Client) error {
	for {
		g := adm.FindGroupCoordinators(ctx, "leadscorer-warm-up").Error()
		x := adm.FindTxnCoordinators(ctx, "leadscorer-warm-up").Error()
		if g == nil && x == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stack: no group or transaction coordinator: %w", errors.Join(g, x, ctx.Err()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
