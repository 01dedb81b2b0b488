//go:build rss

package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/featurestore"
	"github.com/leadscorer/leadscorer/internal/demo"
	"github.com/leadscorer/leadscorer/internal/process"
	"github.com/leadscorer/leadscorer/internal/sandbox"
	"github.com/leadscorer/leadscorer/internal/synth"
	"github.com/leadscorer/leadscorer/internal/testenv"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/leadscorer/leadscorer/topics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// rssEvents is the backlog queued before the scorer starts.
const rssEvents = 1_000_000

// TestBacklogRSS queues a million lead changes in an in-process sandbox,
// then runs `leadscorer run` as a separate process with the default limits
// and samples its peak resident set (VmHWM) until it has committed every
// event. The peak must stay under RSS_LIMIT_MB (default 200): the fetch and
// producer limits, not the backlog, decide how much the scorer holds.
// `make rss` runs it.
func TestBacklogRSS(t *testing.T) {
	limitMB := 200
	if v := os.Getenv("RSS_LIMIT_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("RSS_LIMIT_MB: %v", err)
		}
		limitMB = n
	}
	ctx := context.Background()
	cfg := config.Default()
	// The service's topics, six partitions each as when the bound was set.
	declared := topics.Declared(cfg, 1)
	for i := range declared {
		declared[i].Partitions = 6
	}
	sb, err := sandbox.Start(sandbox.Options{Topics: declared})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()

	// The scorer binary, built from this tree.
	bin := filepath.Join(t.TempDir(), "leadscorer")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/leadscorer").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// The population's features in Redis, under a prefix of this run.
	pop, err := synth.Generate(synth.Options{Seed: 8})
	if err != nil {
		t.Fatal(err)
	}
	r := testenv.NewRedis(t)
	prefix := r.Prefix
	store := featurestore.New(r.Client, prefix, nil)
	if err := store.PutFirms(ctx, pop.Firms); err != nil {
		t.Fatal(err)
	}
	if err := store.PutAdvisors(ctx, pop.Advisors); err != nil {
		t.Fatal(err)
	}

	// The backlog: demo events (a few echoes and 0.1% poison, oversized
	// records among them), produced in chunks so this process stays small.
	srcl, err := sr.NewClient(sr.URLs(sb.RegistryURL()))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := schemas.Register(ctx, srcl, schemas.DefaultTopics())
	if err != nil {
		t.Fatal(err)
	}
	codec := schemas.NewCodec(srcl, ids)
	prod, err := kgo.NewClient(kgo.SeedBrokers(sb.Brokers()...), kgo.ProducerBatchMaxBytes(4<<20), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const chunk = 100_000
	var inBytes int64
	for i := 0; i < rssEvents; i += chunk {
		recs, _, err := demo.Events(codec, cfg.TopicIn, pop, demo.EventMix{Events: chunk, Echoes: 0.02, Poison: 0.001,
			Seed: uint64(i), MaxRecordBytes: cfg.MaxRecordBytes, At: time.Date(2025, 11, 3, 12, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			inBytes += int64(len(r.Value))
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	prod.Close()
	t.Logf("backlog: %d events, %d MB of values, produced in %s", rssEvents, inBytes>>20, time.Since(start).Round(time.Second))

	// The scorer, with every limit at its default.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	args := []string{"run", "--brokers", sb.Brokers()[0], "--schema-registry", sb.RegistryURL(),
		"--redis-url", r.URL, "--redis-prefix", prefix, "--registry", "../models/registry.json", "--http-addr", httpAddr,
		"--transactional-id", "rss-test", "--group", "rss-test", "--input-format", "leadchanged"}
	// RSS_ARGS overrides limits to compare, e.g. "--max-concurrent-fetches 64".
	args = append(args, strings.Fields(os.Getenv("RSS_ARGS"))...)
	start = time.Now()
	scorer, err := process.Start("scorer", bin, args, nil, &logs)
	if err != nil {
		t.Fatal(err)
	}
	defer scorer.Kill()

	cl, err := kgo.NewClient(kgo.SeedBrokers(sb.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	end, err := adm.ListEndOffsets(ctx, cfg.TopicIn)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	end.Each(func(o kadm.ListedOffset) { total += o.Offset })

	deadline := time.After(20 * time.Minute)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var peak int64
	lastReport := time.Now()
	for {
		select {
		case <-deadline:
			t.Fatalf("the scorer did not commit the backlog in 20 minutes; peak RSS %d MB\n%s", peak>>20, tail(logs.String()))
		case <-tick.C:
		}
		if scorer.Exited() {
			t.Fatalf("the scorer exited: %v\n%s", scorer.Err(), tail(logs.String()))
		}
		if hwm, err := scorer.PeakRSS(); err == nil {
			peak = max(peak, hwm)
		}
		committed, err := adm.FetchOffsets(ctx, "rss-test")
		if err != nil {
			continue
		}
		var done int64
		committed.Each(func(o kadm.OffsetResponse) {
			if o.Topic == cfg.TopicIn {
				done += o.At
			}
		})
		if time.Since(lastReport) > 10*time.Second {
			t.Logf("%s: %d/%d committed, peak RSS %d MB", time.Since(start).Round(time.Second), done, total, peak>>20)
			lastReport = time.Now()
		}
		if done >= total {
			break
		}
	}
	elapsed := time.Since(start)
	scored := scrape(t, httpAddr, "leadscorer_events_scored_total")
	dlq := scrape(t, httpAddr, "leadscorer_dlq_records_total")
	echoes := scrape(t, httpAddr, "leadscorer_events_skipped_echo_total")
	if int64(scored+dlq+echoes) != total {
		t.Errorf("scored %v + dead letters %v + echoes %v != %d events", scored, dlq, echoes, total)
	}
	scorer.Stop(30 * time.Second)
	fmt.Printf("rss: events=%d scored=%.0f dlq=%.0f echoes=%.0f backlog_mb=%d peak_rss_mb=%d limit_mb=%d elapsed=%s events_per_s=%.0f args=%q\n",
		total, scored, dlq, echoes, inBytes>>20, peak>>20, limitMB, elapsed.Round(time.Second), float64(total)/elapsed.Seconds(), os.Getenv("RSS_ARGS"))
	if peak>>20 > int64(limitMB) {
		t.Fatalf("peak RSS %d MB exceeds %d MB", peak>>20, limitMB)
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}

// scrape sums the samples of metric in the Prometheus text at url.
func scrape(t *testing.T, addr, metric string) float64 {
	t.Helper()
	v, err := process.Metric(context.Background(), addr, metric)
	if err != nil && !errors.Is(err, process.ErrNotExported) {
		t.Fatal(err)
	}
	return v
}
