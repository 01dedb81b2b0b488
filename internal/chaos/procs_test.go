package chaos

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/internal/process"
)

// fakeScorerEnv makes the test binary play a scorer (see fakeScorer).
const fakeScorerEnv = "CHAOS_FAKE_SCORER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeScorerEnv); mode != "" {
		os.Exit(fakeScorer(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeScorer stands in for `leadscorer run` in the harness tests, serving
// /healthz on --http-addr:
//   - late-handler: like the real one, it does some start-up work (here
//     300 ms) before it handles SIGTERM and serves; then exits 0 on SIGTERM.
//   - never: never handles SIGTERM nor serves (stuck in its start-up).
//   - fails: handles SIGTERM and serves at once, and exits 3 on SIGTERM.
//   - exits: exits 1 at once, as a scorer that stops by itself does.
func fakeScorer(mode string, args []string) int {
	addr := ""
	for i, a := range args {
		if a == "--http-addr" && i+1 < len(args) {
			addr = args[i+1]
		}
	}
	switch mode {
	case "exits":
		return 1
	case "never":
		for {
			time.Sleep(time.Hour)
		}
	case "late-handler":
		time.Sleep(300 * time.Millisecond) // start-up: Redis, registry, Kafka
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return 2
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }),
		ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	<-ctx.Done()
	_ = srv.Close()
	if mode == "fails" {
		return 3
	}
	return 0
}

func startFake(t *testing.T, e *env, id int, mode string) {
	t.Helper()
	t.Setenv(fakeScorerEnv, mode)
	port, err := process.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := startProc("fake", filepath.Join(e.dir, "fake.log"), os.Args[0], "run", "--http-addr", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	e.scorers[id] = &scorer{id: id, p: p, http: addr}
}

// A scorer started a moment before the suite stops it must not be reported
// as dying of the SIGTERM it got before it could handle it.
func TestStopScorerRightAfterItsStart(t *testing.T) {
	tests := []struct {
		mode    string
		wantErr string // "" for none
		note    string // a note that must be there
	}{
		// The suite waits until it serves, so the SIGTERM is handled.
		{mode: "late-handler"},
		// Never serving: its death by SIGTERM is accepted, and said.
		{mode: "never", note: "scorer-1 was stopped before it was serving"},
		// A served scorer failing on SIGTERM is still a problem.
		{mode: "fails", wantErr: "scorer-1 exited with exit status 3"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			e := &env{s: &Suite{progress: io.Discard}, name: "t", dir: t.TempDir(), scorers: map[int]*scorer{}, readyWait: 2 * time.Second}
			startFake(t, e, 1, tc.mode)
			err := e.stopScorer(context.Background(), 1)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("stopScorer: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("stopScorer: %v, want an error with %q", err, tc.wantErr)
			}
			if tc.note != "" && !strings.Contains(strings.Join(e.notes, "\n"), tc.note) {
				t.Fatalf("notes %q, want one with %q", e.notes, tc.note)
			}
			if _, ok := e.scorers[1]; ok {
				t.Fatal("the stopped scorer is still listed")
			}
		})
	}
}

// When every scorer has exited by itself, nobody is left to commit: the
// suite says so at once instead of waiting out the scenario's timeout (a
// CI run waited four minutes for a scorer that had stopped on a broker's
// answer it took for a fence).
func TestScorersGoneOnlyWhenEveryScorerExitedByItself(t *testing.T) {
	e := &env{s: &Suite{progress: io.Discard}, name: "t", dir: t.TempDir(), scorers: map[int]*scorer{}}
	startFake(t, e, 1, "exits")
	<-e.scorers[1].p.Done()
	startFake(t, e, 2, "never")
	if got := e.scorersGone(); got != "" {
		t.Fatalf("scorer-2 runs, yet scorersGone says %q", got)
	}
	e.scorers[2].p.Kill()
	<-e.scorers[2].p.Done()
	e.scorers[2].stopping = true // as the plans mark a scorer they kill
	if got := e.scorersGone(); got != "" {
		t.Fatalf("scorer-2 is being stopped by the plan, yet scorersGone says %q", got)
	}
	e.scorers[2].stopping = false
	got := e.scorersGone()
	for _, want := range []string{"scorer-1: exit status 1", "scorer-2: "} {
		if !strings.Contains(got, want) {
			t.Errorf("scorersGone = %q, want it to contain %q", got, want)
		}
	}
}
