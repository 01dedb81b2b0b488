package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

// The production binary holds the service and its operations, and none of
// the development commands (they link kfake, srfake and miniredis).
func TestProductionBinaryCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"help"}, nil, &out, &errb); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("help: %v", err)
	}
	for _, want := range []string{"run", "config", "score", "evaluate", "validate", "report", "registry", "features", "dlq", "rescore"} {
		if !strings.Contains(out.String(), "\n  "+want+" ") {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
	for _, dev := range []string{"demo", "sandbox", "chaos", "loadgen", "population"} {
		if strings.Contains(out.String(), "\n  "+dev+" ") {
			t.Errorf("the production binary has the development command %q", dev)
		}
	}
}
