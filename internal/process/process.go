// Package process starts, signals and measures child processes for the
// harnesses that run leadscorer as real processes (the fault suite, the
// end-to-end benchmark, the backlog memory test): start with output to a
// writer, SIGTERM with a grace period, kill -9, CPU time and peak RSS from
// /proc (read with prometheus/procfs), a metric scraped from /metrics
// (parsed with prometheus/common/expfmt), and a TCP proxy that can be cut
// to take a server away.
package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/procfs"
)

// Process is a started child process. Only processes this package started
// are ever signalled, by their pid.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid once done is closed
}

// Start runs bin with args, its output to out (nil discards it) and env
// added to this process's environment. The child gets its own process group
// and, on Linux, is killed if this process dies, so no broker or scorer
// outlives a crashed harness.
func Start(name, bin string, args, env []string, out io.Writer) (*Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the process ended; nil while it runs or after a clean exit.
func (p *Process) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill kills the process at once (SIGKILL) and waits for it to be gone.
func (p *Process) Kill() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop asks the process to finish (SIGCONT, in case it is paused, then
// SIGTERM) and kills it after grace. It reports whether it stopped by
// itself.
func (p *Process) Stop(grace time.Duration) bool {
	if p.Exited() {
		return true
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(grace):
		p.Kill()
		return false
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error {
	if p.Exited() {
		return fmt.Errorf("%s has exited: %v", p.Name, p.err)
	}
	return p.cmd.Process.Signal(sig)
}

// CPU returns the user + system CPU time the process has used so far, from
// /proc/PID/stat.
func (p *Process) CPU() (time.Duration, error) {
	proc, err := procfs.NewProc(p.Pid())
	if err != nil {
		return 0, err
	}
	st, err := proc.Stat()
	if err != nil {
		return 0, err
	}
	return time.Duration(st.CPUTime() * float64(time.Second)), nil
}

// PeakRSS returns the process's peak resident set size (VmHWM of
// /proc/PID/status) in bytes.
func (p *Process) PeakRSS() (int64, error) {
	proc, err := procfs.NewProc(p.Pid())
	if err != nil {
		return 0, err
	}
	st, err := proc.NewStatus()
	if err != nil {
		return 0, err
	}
	if st.VmHWM == 0 {
		return 0, fmt.Errorf("/proc/%d/status: no VmHWM", p.Pid())
	}
	return int64(st.VmHWM), nil
}

// MachineCPU returns the CPU time every core of the machine has spent busy
// (user, nice, system, interrupts and steal) since boot, from /proc/stat.
func MachineCPU() (time.Duration, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, err
	}
	st, err := fs.Stat()
	if err != nil {
		return 0, err
	}
	t := st.CPUTotal
	busy := t.User + t.Nice + t.System + t.IRQ + t.SoftIRQ + t.Steal
	return time.Duration(busy * float64(time.Second)), nil
}

// ErrNotExported is returned by Metric for a metric with no sample, such as
// a counter vector no label value was used with yet.
var ErrNotExported = errors.New("metric not exported")

// Metric returns the sum of every sample of a Prometheus counter, gauge or
// untyped metric that the server at addr (host:port) exports on /metrics,
// in whichever exposition format the server answers with.
func Metric(ctx context.Context, addr, name string) (float64, error) {
	mf, err := family(ctx, addr, name)
	if err != nil {
		return 0, err
	}
	sum := 0.0
	for _, m := range mf.GetMetric() {
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			sum += m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			sum += m.GetGauge().GetValue()
		case dto.MetricType_UNTYPED:
			sum += m.GetUntyped().GetValue()
		default:
			return 0, fmt.Errorf("metric %s is a %s, not a counter or gauge", name, mf.GetType())
		}
	}
	return sum, nil
}

// HistogramSums returns the sum of the observations of the histogram name
// that the server at addr exports, by the value of its label label.
func HistogramSums(ctx context.Context, addr, name, label string) (map[string]float64, error) {
	mf, err := family(ctx, addr, name)
	if err != nil {
		return nil, err
	}
	if mf.GetType() != dto.MetricType_HISTOGRAM {
		return nil, fmt.Errorf("metric %s is a %s, not a histogram", name, mf.GetType())
	}
	sums := map[string]float64{}
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				sums[l.GetValue()] += m.GetHistogram().GetSampleSum()
			}
		}
	}
	return sums, nil
}

// HistogramCount returns how many observations the histogram name that the
// server at addr exports holds, over all its label values.
func HistogramCount(ctx context.Context, addr, name string) (uint64, error) {
	mf, err := family(ctx, addr, name)
	if err != nil {
		return 0, err
	}
	if mf.GetType() != dto.MetricType_HISTOGRAM {
		return 0, fmt.Errorf("metric %s is a %s, not a histogram", name, mf.GetType())
	}
	var n uint64
	for _, m := range mf.GetMetric() {
		n += m.GetHistogram().GetSampleCount()
	}
	return n, nil
}

// family reads the metric family name from the server at addr, in
// whichever exposition format the server answers with; ErrNotExported when
// it has no sample.
func family(ctx context.Context, addr, name string) (*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics from %s: %s", addr, resp.Status)
	}
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("metrics of %s: %w", addr, err)
		}
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return &mf, nil
		}
	}
	return nil, fmt.Errorf("%w: %s by %s", ErrNotExported, name, addr)
}

// WaitMetric polls a metric until ok accepts its value or ctx ends.
func WaitMetric(ctx context.Context, addr, name string, ok func(float64) bool) (float64, error) {
	for {
		v, err := Metric(ctx, addr, name)
		if err == nil && ok(v) {
			return v, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("value %v", v)
			}
			return v, fmt.Errorf("waiting for %s on %s: %w", name, addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// FreePort returns a loopback port nothing listens on right now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// WaitTCP waits until addr accepts connections or ctx ends.
func WaitTCP(ctx context.Context, addr string) error {
	for {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never accepted a connection: %w", addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
