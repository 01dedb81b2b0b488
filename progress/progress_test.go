package progress

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leadscorer/leadscorer/internal/testenv"
)

func TestIsTerminal(t *testing.T) {
	file, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for _, tc := range []struct {
		name string
		w    any
		want bool
	}{
		{"a regular file (a redirected log)", file, false},
		{"a pipe (a log collector)", pw, false},
		{"a writer that is no file", &strings.Builder{}, false},
		{"nil", nil, false},
		{"a character device", null, true},
		{"a writer that says it is a character device", &testenv.Terminal{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := tc.w.(interface{ Write([]byte) (int, error) })
			if got := IsTerminal(w); got != tc.want {
				t.Errorf("IsTerminal = %v, want %v", got, tc.want)
			}
		})
	}
}

// Anything but a terminal gets nothing: no carriage returns in a log.
func TestNewDrawsNothingButOnATerminal(t *testing.T) {
	var log strings.Builder
	b := New(&log, "rescore", 10)
	for i := range int64(11) {
		b.Set(i, "leads")
	}
	b.Finish()
	if log.Len() != 0 {
		t.Errorf("drew %q on a writer that is not a terminal", log.String())
	}
	New(nil, "x", 1).Finish() // no writer at all: no panic
	var none *Bar
	none.Set(1, "x")
	none.Finish()

	var tty testenv.Terminal
	b = New(&tty, "rescore", 10)
	b.Set(10, "10/10 leads")
	b.Finish()
	if want := "\rrescore [" + strings.Repeat("=", Width) + "] 100%  10/10 leads\n"; tty.String() != want {
		t.Errorf("on a terminal:\n%q\nwant\n%q", tty.String(), want)
	}
}

func TestBarRedrawsOnlyWhatChanged(t *testing.T) {
	var w strings.Builder
	b := newBar(&w, "load", 1000)
	for i := int64(0); i <= 1000; i++ {
		b.Set(i, "")
	}
	b.Finish()
	out := w.String()
	// Whole percents: 0% to 100%, each drawn once.
	if n := strings.Count(out, "\r"); n != 101 {
		t.Errorf("drawn %d times for 1001 updates, want 101 (once per percent)", n)
	}
	if want := "\rload [" + strings.Repeat("=", 15) + ">" + strings.Repeat(" ", 14) + "]  50%\r"; !strings.Contains(out, want) {
		t.Errorf("no half-way bar %q in %q", want, out)
	}
	if !strings.HasSuffix(out, "] 100%\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("the bar does not end at 100%% with one newline: %q", out[max(len(out)-60, 0):])
	}
	b.Set(1000, "after") // finished: nothing more
	if w.String() != out {
		t.Errorf("drew after Finish: %q", strings.TrimPrefix(w.String(), out))
	}
}

func TestBarWithUnknownTotalShowsTheNote(t *testing.T) {
	var w strings.Builder
	b := newBar(&w, "dlq replay", 0)
	b.Set(500, "500 read  200 replayed")
	b.Set(900, "900 read  200 replayed")
	b.Set(900, "900 read  200 replayed") // unchanged: not redrawn
	b.Set(999, "9 read")                 // shorter: the old tail is wiped
	b.Finish()
	want := "\rdlq replay  500 read  200 replayed" +
		"\rdlq replay  900 read  200 replayed" +
		"\rdlq replay  9 read" + strings.Repeat(" ", len("900 read  200 replayed")-len("9 read")) + "\n"
	if w.String() != want {
		t.Errorf("drew\n%q\nwant\n%q", w.String(), want)
	}
}

// A job that ends before its first update still shows where it ended.
func TestFinishDrawsANeverDrawnBar(t *testing.T) {
	var w strings.Builder
	b := newBar(&w, "rescore", 4)
	b.Finish()
	if want := "\rrescore [>" + strings.Repeat(" ", Width-1) + "]   0%\n"; w.String() != want {
		t.Errorf("drew %q, want %q", w.String(), want)
	}
	var none strings.Builder
	b = newBar(&none, "rescore", 4)
	b.Finish()
	b.Finish()
	if strings.Count(none.String(), "\n") != 1 {
		t.Errorf("Finish twice ended %d lines", strings.Count(none.String(), "\n"))
	}
}
