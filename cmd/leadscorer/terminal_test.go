package main

import (
	"strings"
	"testing"
)

// noBar fails the test when stderr, which is not a terminal, got a progress
// bar: carriage returns in a log.
func noBar(t *testing.T, stderr string) {
	t.Helper()
	if strings.Contains(stderr, "\r") {
		t.Errorf("a progress bar was drawn on a stderr that is not a terminal: %q", stderr)
	}
}
