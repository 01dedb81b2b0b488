package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The production binary links none of the development harnesses: no
// in-process Kafka or Schema Registry, no embedded Redis, nothing under
// internal/ (the demo, the fault suite, the load generator, the synthetic
// population). They belong to leadscorer-dev; tests may still use them.
func TestProductionBinaryLinksNoHarness(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the binary's dependencies: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	forbidden := []string{
		"github.com/twmb/franz-go/pkg/kfake",
		"github.com/twmb/franz-go/pkg/sr/srfake",
		"github.com/alicebob/miniredis",
		"github.com/leadscorer/leadscorer/internal/",
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, strings.TrimSuffix(f, "/")+"/") {
				t.Errorf("cmd/leadscorer depends on %s", d)
			}
		}
	}
	// The list is the real one: it holds what the binary must link.
	for _, want := range []string{"github.com/leadscorer/leadscorer/service", "github.com/twmb/franz-go/pkg/kgo"} {
		if !strings.Contains("\n"+string(out), "\n"+want+"\n") {
			t.Errorf("go list -deps lacks %s: is it listing the right package?\n%s", want, out)
		}
	}
}
