package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/leadscorer/leadscorer/internal/process"
)

// child is a process the harness started and measures: its metrics and
// pprof addresses ("" when none) and the first 64 KiB of its output.
type child struct {
	*process.Process
	http  string
	pprof string
	log   *bytes.Buffer
}

func startProcess(name, bin string, args []string, env []string, httpAddr string) (*child, error) {
	var log bytes.Buffer
	p, err := process.Start(name, bin, args, env, &limitedWriter{w: &log, n: 64 << 10})
	if err != nil {
		return nil, err
	}
	return &child{Process: p, http: httpAddr, log: &log}, nil
}

// metric returns the sum of every sample of a metric the child exports.
func (p *child) metric(ctx context.Context, name string) (float64, error) {
	if p.http == "" {
		return 0, fmt.Errorf("%s has no metrics endpoint", p.Name)
	}
	v, err := process.Metric(ctx, p.http, name)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.Name, err)
	}
	return v, nil
}

// fetch GETs path from the process's HTTP server into w.
func (p *child) fetch(ctx context.Context, path string, w io.Writer) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.http+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	q := p
	if len(q) > l.n {
		q = q[:l.n]
	}
	l.n -= len(q)
	_, _ = l.w.Write(q)
	return len(p), nil
}
