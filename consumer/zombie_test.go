package consumer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
)

// zombieEnv holds, for the child process, "brokers|group|input|output|
// transactional id|where it pauses".
const zombieEnv = "LEADSCORER_TEST_ZOMBIE"

// Where the zombie pauses in its first transaction.
const (
	pauseBeforeEnd     = "before-end"     // its outputs produced and flushed
	pauseBeforeProduce = "before-produce" // its outputs built, none produced
)

// zombieMain is the child: a consumer that, in its first transaction,
// says PAUSED at the point the environment names and waits for a line on
// stdin; the parent freezes it meanwhile. It says how Run returned and
// exits 3 on an error.
func zombieMain() int {
	p := strings.Split(os.Getenv(zombieEnv), "|")
	pause := sync.OnceFunc(func() {
		fmt.Println("PAUSED")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	})
	var tr Transformer = &upper{out: p[3]}
	if p[5] == pauseBeforeProduce {
		tr = &pausing{Transformer: tr, pause: pause}
	}
	c, err := New(Options{Brokers: strings.Split(p[0], ","), Group: p[1], Topic: p[2], TransactionalID: p[4],
		BatchMaxRecords: 100, Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}, tr)
	if err != nil {
		fmt.Println("NEW", err)
		return 2
	}
	if p[5] == pauseBeforeEnd {
		c.beforeEnd = func() error { pause(); return nil }
	}
	err = c.Run(context.Background())
	fmt.Printf("RUN RETURNED %v\n", err)
	if err != nil {
		return 3
	}
	return 0
}

// pausing calls pause after its Transformer has built a batch's outputs.
type pausing struct {
	Transformer
	pause func()
}

func (p *pausing) Transform(ctx context.Context, in, out []*kgo.Record) ([]*kgo.Record, error) {
	out, err := p.Transformer.Transform(ctx, in, out)
	p.pause()
	return out, err
}

// lineWriter sends each line written to it on lines.
type lineWriter struct {
	lines chan<- string
	buf   []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.lines <- string(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

func produceRange(t *testing.T, e *env, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: e.in, Key: []byte("lead-" + strconv.Itoa(i%50)), Value: []byte(strconv.Itoa(i))})
	}
	e.k.Produce(recs...)
}

// A scorer frozen in the middle of a transaction (a GC pause, a stopped
// VM: SIGSTOP here) is replaced by a new incarnation with the same
// transactional id, which fences it, aborts its transaction and takes its
// partitions. When the zombie wakes up, its stale epoch is refused: by the
// transaction coordinator when it ends its transaction (PRODUCER_FENCED),
// or first by the partition leaders when it produces (INVALID_PRODUCER_EPOCH,
// then PRODUCER_FENCED on the abort). It must stop, not start a new session
// under the same id: that session would fence its successor in turn, and
// the two would take the partitions from each other for ever. Exactly once
// holds throughout, and the successor never has to restart its session.
func TestZombieScorerStopsAndLeavesItsSuccessorAlone(t *testing.T) {
	for _, at := range []string{pauseBeforeEnd, pauseBeforeProduce} {
		t.Run(at, func(t *testing.T) { testZombie(t, at) })
	}
}

func testZombie(t *testing.T, at string) {
	e := startEnv(t)
	const n = 300
	produceRange(t, e, 0, n)
	txn := e.k.Name("txn-zombie")

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), zombieEnv+"="+strings.Join([]string{strings.Join(e.k.Brokers, ","), e.group, e.in, e.out, txn, at}, "|"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &lineWriter{lines: lines}, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		<-exited
	})
	expect := func(prefix string, within time.Duration) string {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case l := <-lines:
				if strings.HasPrefix(l, prefix) {
					return l
				}
			case <-exited:
				t.Fatalf("the zombie exited (%v) before saying %q; stderr:\n%s", exitErr, prefix, stderr.String())
			case <-deadline:
				t.Fatalf("the zombie did not say %q within %s", prefix, within)
			}
		}
	}
	expect("PAUSED", time.Minute)
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}

	// Its successor: same transactional id, so also the same static
	// member of the group.
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	tr := &upper{out: e.out}
	b, err := New(Options{Brokers: e.k.Brokers, Group: e.group, Topic: e.in, TransactionalID: txn,
		BatchMaxRecords: 100, Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, Metrics: m}, tr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()
	committed := func(want int) {
		t.Helper()
		deadline := time.After(2 * time.Minute)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			tr.committedMu.Lock()
			got := tr.committed
			tr.committedMu.Unlock()
			if got >= want {
				return
			}
			select {
			case err := <-errc:
				t.Fatalf("the successor stopped with %d of %d committed: %v", got, want, err)
			case <-deadline:
				t.Fatalf("the successor committed %d of %d", got, want)
			case <-tick.C:
			}
		}
	}
	committed(n) // the zombie's open batch included: it was aborted

	// The zombie wakes up and ends its transaction.
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	ret := expect("RUN RETURNED", time.Minute)
	t.Logf("zombie: %s", ret)
	if !strings.Contains(ret, "fenced") || !strings.Contains(ret, txn) {
		t.Errorf("the zombie stopped with %q; want it to say it was fenced by another scorer with its transactional id", ret)
	}
	var ee *exec.ExitError
	select {
	case <-exited:
		if !errors.As(exitErr, &ee) || ee.ExitCode() != 3 {
			t.Errorf("zombie exit: %v, want status 3 (Run returned an error)", exitErr)
		}
	case <-time.After(time.Minute):
		t.Fatal("the zombie did not exit")
	}

	// The successor goes on as if nothing happened.
	produceRange(t, e, n, n+100)
	committed(n + 100)
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if r := testutil.ToFloat64(m.sessionRestarts); r != 0 {
		t.Errorf("the successor restarted its session %v times: the zombie fenced it back", r)
	}
	checkExactlyOnce(t, e, n+100)
}
