package main

import (
	"io/fs"
	"strings"
	"testing"
	"time"
)

// terminal is a stderr that says it is a character device, as a terminal
// does, so the commands draw their progress bars on it.
type terminal struct{ strings.Builder }

func (*terminal) Stat() (fs.FileInfo, error) { return charDevice{}, nil }

type charDevice struct{}

func (charDevice) Name() string       { return "tty" }
func (charDevice) Size() int64        { return 0 }
func (charDevice) Mode() fs.FileMode  { return fs.ModeDevice | fs.ModeCharDevice | 0o620 }
func (charDevice) ModTime() time.Time { return time.Time{} }
func (charDevice) IsDir() bool        { return false }
func (charDevice) Sys() any           { return nil }

// noBar fails the test when stderr, which is not a terminal, got a progress
// bar: carriage returns in a log.
func noBar(t *testing.T, stderr string) {
	t.Helper()
	if strings.Contains(stderr, "\r") {
		t.Errorf("a progress bar was drawn on a stderr that is not a terminal: %q", stderr)
	}
}
