// Package progress draws a one-line progress bar on a terminal, for the
// commands that take a while: features load, rescore and dlq replay in
// leadscorer, the demo in leadscorer-dev.
//
// A bar is drawn only when its writer is a terminal. Redirected to a file,
// a pipe or a log collector it draws nothing: its carriage returns would
// only clutter the log, and the commands print a summary line when done.
// The packages doing the work report their progress to a callback and never
// draw; the command that owns the terminal turns the callback into a Bar.
package progress

import (
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// Width is the bar's length in characters, between its brackets.
const Width = 30

// Bar redraws one line with a carriage return:
//
//	label [==============>               ]  48%  note
//
// or, when the total is unknown, "label  note". A nil *Bar draws nothing.
// A Bar is not safe for concurrent use.
type Bar struct {
	w     io.Writer // nil: draws nothing
	label string
	total int64
	done  int64
	note  string
	last  string // the line on screen
	drawn bool
	ended bool
}

// New returns a bar for a job of total steps (0 or less: unknown), drawn
// on w when w is a terminal and nowhere otherwise (nil included).
func New(w io.Writer, label string, total int64) *Bar {
	if !IsTerminal(w) {
		w = nil
	}
	return newBar(w, label, total)
}

func newBar(w io.Writer, label string, total int64) *Bar {
	return &Bar{w: w, label: label, total: total}
}

// IsTerminal reports whether w is a terminal: a file, such as os.Stderr,
// that is a character device. (The null device is one too, which costs
// nothing: what is drawn there goes nowhere.)
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Stat() (fs.FileInfo, error) })
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&fs.ModeCharDevice != 0
}

// Set records that done steps are complete, with a note shown after the
// bar (counts, a rate), and redraws the line when what it shows changed.
// A known total's bar moves in whole percents.
func (b *Bar) Set(done int64, note string) {
	if b == nil {
		return
	}
	b.done, b.note = done, note
	if b.w == nil || b.ended {
		return
	}
	line := b.line()
	if line == b.last {
		return
	}
	pad := ""
	if n := len(b.last) - len(line); n > 0 {
		pad = strings.Repeat(" ", n) // wipe the tail of a longer line
	}
	fmt.Fprintf(b.w, "\r%s%s", line, pad)
	b.last, b.drawn = line, true
}

// Finish draws the last state, if it was never drawn, and ends the line.
// The bar draws nothing after it.
func (b *Bar) Finish() {
	if b == nil || b.w == nil || b.ended {
		return
	}
	if !b.drawn {
		b.Set(b.done, b.note)
	}
	b.ended = true
	fmt.Fprintln(b.w)
}

func (b *Bar) line() string {
	if b.total <= 0 {
		return strings.TrimSpace(b.label + "  " + b.note)
	}
	pct := int(min(max(b.done, 0), b.total) * 100 / b.total)
	n := pct * Width / 100 // from the percent, so the line changes only with it
	head := ""
	if n < Width {
		head = ">"
	}
	bar := strings.Repeat("=", n) + head + strings.Repeat(" ", max(Width-n-1, 0))
	return strings.TrimSpace(fmt.Sprintf("%s [%s] %3d%%  %s", b.label, bar, pct, b.note))
}
