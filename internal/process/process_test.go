package process

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestStartMeasureStop(t *testing.T) {
	// A child that burns some CPU, says when its TERM handler is in place,
	// then waits.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	p, err := Start("sh", "/bin/sh", []string{"-c", "trap 'exit 0' TERM; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo ready; while :; do sleep 0.1; done"}, nil, pw)
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if line, err := bufio.NewReader(pr).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	if p.Exited() {
		t.Fatal("exited at once")
	}
	// A shell's peak resident set is some hundreds of KiB to a few MiB;
	// kB read as bytes, or pages, would fall outside.
	if rss, err := p.PeakRSS(); err != nil || rss < 256<<10 || rss > 256<<20 {
		t.Fatalf("peak RSS %d bytes, %v", rss, err)
	}
	// 200,000 shell loop iterations take tens of milliseconds of CPU or
	// more: several clock ticks, never zero, never minutes.
	if cpu, err := p.CPU(); err != nil || cpu <= 0 || cpu > time.Minute {
		t.Fatalf("CPU time %v, %v", cpu, err)
	}
	if !p.Stop(10 * time.Second) {
		t.Fatal("SIGTERM did not stop the child; it was killed")
	}
	if !p.Exited() || p.Err() != nil {
		t.Fatalf("after Stop: exited %v, err %v", p.Exited(), p.Err())
	}
	if err := p.Signal(syscall.SIGTERM); err == nil {
		t.Fatal("signalling an exited child succeeded")
	}
}

func TestKill(t *testing.T) {
	p, err := Start("sh", "/bin/sh", []string{"-c", "trap '' TERM; while :; do sleep 0.1; done"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Kill()
	if !p.Exited() || p.Err() == nil {
		t.Fatalf("after Kill: exited %v, err %v", p.Exited(), p.Err())
	}
}

func TestMetricSumsEverySample(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `# HELP x_total x
# TYPE x_total counter
x_total{class="a"} 2
x_total{class="b"} 3.5
# TYPE x_total_other counter
x_total_other 100
# TYPE g gauge
g{partition="0"} -1
g{partition="1"} 4
y 1
# TYPE d_seconds histogram
d_seconds_bucket{le="1"} 1
d_seconds_bucket{le="+Inf"} 2
d_seconds_sum 3
d_seconds_count 2
`)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		name string
		want float64
	}{
		{"x_total", 5.5}, // and not x_total_other
		{"g", 3},
		{"y", 1}, // untyped
	} {
		if v, err := Metric(context.Background(), addr, tc.name); err != nil || v != tc.want {
			t.Errorf("%s = %v, %v; want %v", tc.name, v, err, tc.want)
		}
	}
	if _, err := Metric(context.Background(), addr, "z"); !errors.Is(err, ErrNotExported) {
		t.Errorf("missing metric: %v, want ErrNotExported", err)
	}
	if _, err := Metric(context.Background(), addr, "d_seconds"); err == nil || !strings.Contains(err.Error(), "HISTOGRAM") {
		t.Errorf("a histogram: %v, want an error saying it is not a counter or gauge", err)
	}
}

func TestHistogramSumsByLabel(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "stage_seconds", Help: "h"}, []string{"stage"})
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "c_total", Help: "h"})
	reg.MustRegister(h, c)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	h.WithLabelValues("decode").Observe(0.25)
	h.WithLabelValues("decode").Observe(0.5)
	h.WithLabelValues("score").Observe(2)
	sums, err := HistogramSums(context.Background(), addr, "stage_seconds", "stage")
	if err != nil || len(sums) != 2 || sums["decode"] != 0.75 || sums["score"] != 2 {
		t.Errorf("sums %v, %v; want decode 0.75 and score 2", sums, err)
	}
	if _, err := HistogramSums(context.Background(), addr, "c_total", "stage"); err == nil || !strings.Contains(err.Error(), "not a histogram") {
		t.Errorf("a counter: %v, want an error saying it is not a histogram", err)
	}
	if _, err := HistogramSums(context.Background(), addr, "missing_seconds", "stage"); !errors.Is(err, ErrNotExported) {
		t.Errorf("missing: %v, want ErrNotExported", err)
	}
	if n, err := HistogramCount(context.Background(), addr, "stage_seconds"); err != nil || n != 3 {
		t.Errorf("count %d, %v; want 3 over both labels", n, err)
	}
	if _, err := HistogramCount(context.Background(), addr, "c_total"); err == nil || !strings.Contains(err.Error(), "not a histogram") {
		t.Errorf("count of a counter: %v, want an error saying it is not a histogram", err)
	}
}

// The scorer's own registry, served by promhttp, is read in whatever
// format promhttp picks.
func TestMetricReadsPromhttp(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leadscorer_dlq_records_total", Help: "h"}, []string{"class"})
	reg.MustRegister(c)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if _, err := Metric(context.Background(), addr, "leadscorer_dlq_records_total"); !errors.Is(err, ErrNotExported) {
		t.Errorf("a vector with no sample: %v, want ErrNotExported", err)
	}
	c.WithLabelValues("decode").Add(3)
	c.WithLabelValues("size").Add(2)
	if v, err := Metric(context.Background(), addr, "leadscorer_dlq_records_total"); err != nil || v != 5 {
		t.Errorf("leadscorer_dlq_records_total = %v, %v; want 5", v, err)
	}
}

func TestProxyCutAndRestore(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintln(c, "echo "+sc.Text())
				}
			}()
		}
	}()
	px, err := NewProxy(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer px.Cut()
	echo := func() error {
		c, err := net.DialTimeout("tcp", px.Addr(), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintln(c, "hi")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if line != "echo hi\n" {
			return fmt.Errorf("got %q", line)
		}
		return nil
	}
	if err := echo(); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	px.Cut()
	if err := echo(); err == nil {
		t.Fatal("the cut proxy still forwards")
	}
	if err := px.Restore(); err != nil {
		t.Fatal(err)
	}
	if err := echo(); err != nil {
		t.Fatalf("after restore: %v", err)
	}
}

func TestMachineCPUGrowsWithWork(t *testing.T) {
	before, err := MachineCPU()
	if err != nil || before <= 0 {
		t.Fatalf("MachineCPU = %v, %v", before, err)
	}
	x := 0
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
		x++ // busy: the machine's counters must count it
	}
	after, err := MachineCPU()
	if err != nil || after-before < 10*time.Millisecond {
		t.Fatalf("MachineCPU grew by %v over 50 ms of work (%d loops), %v", after-before, x, err)
	}
}
