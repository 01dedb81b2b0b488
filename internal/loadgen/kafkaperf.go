package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/leadscorer/leadscorer/internal/cdcsim"
	"github.com/leadscorer/leadscorer/internal/kafkastack"
	"github.com/leadscorer/leadscorer/schemas"
)

// createTopics creates a run's topics on the real cluster as the project
// declares them.
func (b *bench) createTopics(ctx context.Context, s *stack) error {
	return kafkastack.CreateScorerTopics(ctx, s.adm, b.opts.Brokers, int32(b.opts.Partitions), 0,
		kafkastack.ScorerTopics{In: s.topics.In, Sfdc: s.topics.Sfdc, Shadow: s.topics.Shadow, DLQ: s.topics.DLQ})
}

type perfResult struct {
	recordBytes                       int
	producer, consumer, consumerFetch float64
}

// kafkaPerf measures the cluster's own ceiling with Kafka's tools, on a
// fresh topic declared like the input (same partitions, replication and
// min.insync.replicas): ProducerPerformance, transactional (a transaction
// every 100 ms, acks=all), SaturationEvents records the size of the
// benchmark's own input records, the first fifth not counted (JIT
// warm-up); then ConsumerPerformance, read_committed, over all of them.
// Both run on the same machine as the brokers, as the scorer does.
func (b *bench) kafkaPerf(ctx context.Context) (perfResult, error) {
	var r perfResult
	size, err := meanInputBytes(b.leads, b.opts.Shape)
	if err != nil {
		return r, err
	}
	r.recordBytes = size
	b.runs++
	topic := fmt.Sprintf("bench-%s-%d.perf", b.runID, b.runs)
	adm, closeAdm, err := kafkastack.NewAdmin(b.cluster.Brokers)
	if err != nil {
		return r, err
	}
	defer closeAdm()
	if err := kafkastack.CreateTopics(ctx, adm, int16(min(b.opts.Brokers, 3)),
		kafkastack.Topic{Name: topic, Partitions: int32(b.opts.Partitions)}); err != nil {
		return r, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = kafkastack.DeleteTopics(dctx, adm, topic)
	}()
	log4j, err := os.CreateTemp("", "leadscorer-perf-*.properties") // log4j2 picks its parser by the extension
	if err != nil {
		return r, err
	}
	defer os.Remove(log4j.Name())
	_, _ = log4j.WriteString(strings.Join([]string{"appender.e.type=Console", "appender.e.name=E", "appender.e.target=SYSTEM_ERR",
		"appender.e.layout.type=PatternLayout", "appender.e.layout.pattern=[%d] %p %m (%c)%n",
		"rootLogger.level=WARN", "rootLogger.appenderRef.e.ref=E", ""}, "\n"))
	log4j.Close()
	bootstrap := strings.Join(b.cluster.Brokers, ",")
	n := b.opts.SaturationEvents
	tool := func(class string, args ...string) (string, error) {
		// The JVM flags kafka-run-class.sh gives the perf tools.
		full := append([]string{"-Xms512m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
			"-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent", "-XX:MaxInlineLevel=15",
			"-Djava.awt.headless=true", "-Dlog4j2.configurationFile=" + log4j.Name(),
			"-cp", filepath.Join(b.opts.KafkaLibs, "*"), class}, args...)
		cmd := exec.CommandContext(ctx, kafkastack.Java(), full...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, b.opts.Log
		if err := cmd.Run(); err != nil {
			return out.String(), fmt.Errorf("%s: %w", class, err)
		}
		return out.String(), nil
	}
	fmt.Fprintf(b.opts.Log, "kafka perf: ProducerPerformance, %d transactional records of %d bytes\n", n, size)
	out, err := tool("org.apache.kafka.tools.ProducerPerformance", "--bootstrap-server", bootstrap, "--topic", topic,
		"--num-records", strconv.Itoa(n), "--record-size", strconv.Itoa(size), "--throughput", "-1",
		"--warmup-records", strconv.Itoa(n/5), "--transactional-id", topic, "--transaction-duration-ms", "100",
		"--command-property", "acks=all")
	if err != nil {
		return r, err
	}
	if r.producer, err = parseProducerPerf(out); err != nil {
		return r, err
	}
	fmt.Fprintf(b.opts.Log, "kafka perf: ConsumerPerformance, read_committed\n")
	out, err = tool("org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", bootstrap, "--topic", topic,
		"--num-records", strconv.Itoa(n), "--group", topic, "--timeout", "60000",
		"--command-property", "isolation.level=read_committed")
	if err != nil {
		return r, err
	}
	if r.consumer, r.consumerFetch, err = parseConsumerPerf(out); err != nil {
		return r, err
	}
	fmt.Fprintf(b.opts.Log, "kafka perf: producer %.0f records/s, consumer %.0f records/s (%.0f fetching)\n", r.producer, r.consumer, r.consumerFetch)
	return r, nil
}

// meanInputBytes is the mean size of the benchmark's input records, in the
// wire format (5-byte header and Avro).
func meanInputBytes(leads []Lead, shape string) (int, error) {
	const n = 1000
	if shape == ShapeCDC {
		// Change events of the CDC shape, as the bench produces them.
		codec := schemas.NewCodec(nil, schemas.IDs{ChangeEvents: 1})
		gen := cdcsim.New(cdcsim.Options{Codec: codec, Topic: "in", Seed: 1, Start: time.Now()})
		m := cdcsim.NewMixer(gen, cdcLeads(leads), CDCMix(n))
		total, recs := 0, 0
		for range n {
			if err := m.Next(); err != nil {
				return 0, err
			}
			for _, r := range m.Take() {
				total += len(r.Value)
				recs++
			}
		}
		return (total + recs/2) / recs, nil
	}
	codec := schemas.NewCodec(nil, schemas.IDs{LeadChanged: 1})
	p := newPicker(leads, DefaultZipfS, 1)
	ev := schemas.LeadChanged{HasCRD: true, Stage: "Contacting", ChangedFields: []string{"Status"}, EventTime: time.Now()}
	total := 0
	for i := range n {
		l := p.next()
		ev.EventID, ev.LeadID, ev.CRD, ev.HasEmail, ev.HasLinkedIn = "lg-1-"+strconv.Itoa(100000+i), l.ID, l.CRD, l.HasEmail, l.HasLinkedIn
		b, err := codec.AppendLeadChanged(nil, &ev)
		if err != nil {
			return 0, err
		}
		total += len(b)
	}
	return (total + n/2) / n, nil
}

// parseProducerPerf reads ProducerPerformance's records/sec: its steady
// state line when it has one (after --warmup-records), else its summary.
func parseProducerPerf(out string) (float64, error) {
	var summary, steady string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		switch l := sc.Text(); {
		case strings.Contains(l, "steady state records sent"):
			steady = l
		case strings.Contains(l, "records sent,"):
			summary = l
		}
	}
	line := steady
	if line == "" {
		line = summary
	}
	// "400000 steady state records sent, 63948.840927 records/sec (18.30 MB/sec), ..."
	_, rest, ok := strings.Cut(line, "sent, ")
	if !ok {
		return 0, fmt.Errorf("no records/sec in ProducerPerformance's output: %q", out)
	}
	f, _, _ := strings.Cut(rest, " ")
	return strconv.ParseFloat(f, 64)
}

// parseConsumerPerf reads ConsumerPerformance's nMsg.sec (the whole run,
// joining the group included) and fetch.nMsg.sec (fetching only).
func parseConsumerPerf(out string) (all, fetch float64, err error) {
	var header, last []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		fs := strings.Split(sc.Text(), ",")
		for i := range fs {
			fs[i] = strings.TrimSpace(fs[i])
		}
		if len(fs) > 0 && fs[0] == "start.time" {
			header = fs
		} else if header != nil && len(fs) == len(header) {
			last = fs
		}
	}
	col := func(name string) (float64, error) {
		for i, h := range header {
			if h == name && last != nil {
				return strconv.ParseFloat(last[i], 64)
			}
		}
		return 0, fmt.Errorf("no %s in ConsumerPerformance's output: %q", name, out)
	}
	if all, err = col("nMsg.sec"); err != nil {
		return 0, 0, err
	}
	fetch, err = col("fetch.nMsg.sec")
	return all, fetch, err
}
