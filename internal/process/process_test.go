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
)

func TestStartMeasureStop(t *testing.T) {
	// A child that says when its TERM handler is in place, then waits.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	p, err := Start("sh", "/bin/sh", []string{"-c", "trap 'exit 0' TERM; echo ready; while :; do sleep 0.1; done"}, nil, pw)
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
	if rss, err := p.PeakRSS(); err != nil || rss <= 0 {
		t.Fatalf("peak RSS %d, %v", rss, err)
	}
	if _, err := p.CPU(); err != nil {
		t.Fatal(err)
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
		fmt.Fprint(w, "# HELP x_total x\nx_total{class=\"a\"} 2\nx_total{class=\"b\"} 3.5\nx_total_other 100\ny 1\n")
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if v, err := Metric(context.Background(), addr, "x_total"); err != nil || v != 5.5 {
		t.Fatalf("x_total = %v, %v; want 5.5 (and not x_total_other)", v, err)
	}
	if _, err := Metric(context.Background(), addr, "z"); !errors.Is(err, ErrNotExported) {
		t.Fatalf("missing metric: %v, want ErrNotExported", err)
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
