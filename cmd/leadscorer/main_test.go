package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/leadscorer/leadscorer/internal/testenv"
)

// TestMain fails the package's tests when a goroutine outlives them: the
// commands start servers, validators and Kafka clients.
func TestMain(m *testing.M) { testenv.Main(m) }

// The production binary holds the service and its operations, and none of
// the development commands (they link kfake, srfake and miniredis).
func TestProductionBinaryCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"help"}, nil, &out, &errb); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("help: %v", err)
	}
	for _, want := range []string{"run", "config", "score", "evaluate", "validate", "report", "registry", "features", "dlq", "rescore", "topics"} {
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

// Each subcommand's --help succeeds and lists the settings it uses and no
// other.
func TestSubcommandHelpListsOnlyItsSettings(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		has, lacks []string
	}{
		{[]string{"run"}, []string{"-brokers", "-redis-url", "-validate", "-batch-timeout", "-metrics-addr"}, nil},
		{[]string{"config"}, []string{"-brokers", "-redis-url"}, nil},
		{[]string{"run"}, []string{"-rollback-window-weeks", "-rollback-min-conversions", "-rollback-confidence", "-rollback-auc-confidence"}, nil},
		{[]string{"validate"}, []string{"-brokers", "-topic-shadow", "-auto-rollback", "-http-addr", "-rollback-window-weeks", "-rollback-min-conversions",
			"-rollback-confidence", "-rollback-auc-confidence"}, []string{"-redis-url", "-topic-in", "-batch-max-records", "-min-week-conversions"}},
		{[]string{"report"}, []string{"-brokers", "-topic-outcomes", "-html", "-rollback-window-weeks", "-rollback-min-conversions",
			"-rollback-confidence", "-rollback-auc-confidence"}, []string{"-redis-url", "-http-addr", "-auto-rollback", "-min-week-conversions"}},
		{[]string{"features", "load"}, []string{"-redis-url", "-redis-prefix", "-input"}, []string{"-brokers", "-topic-in"}},
		{[]string{"dlq", "replay"}, []string{"-brokers", "-topic-dlq", "-class"}, []string{"-redis-url", "-topic-sfdc", "-schema-registry"}},
		{[]string{"rescore"}, []string{"-brokers", "-schema-registry", "-topic-in"}, []string{"-redis-url", "-topic-dlq"}},
		{[]string{"topics", "apply"}, []string{"-brokers", "-kafka-sasl-mechanism", "-topic-in", "-topic-registry", "-dry-run", "-replication-factor"}, []string{"-redis-url", "-schema-registry", "-group"}},
		{[]string{"score"}, []string{"-model"}, []string{"-brokers"}},
		{[]string{"evaluate"}, []string{"-label"}, []string{"-brokers"}},
		{[]string{"registry"}, []string{"-registry"}, []string{"-brokers"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), append(tc.args, "--help"), nil, &out, &errb)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("--help: %v", err)
			}
			help := out.String() + errb.String()
			for _, h := range tc.has {
				if !strings.Contains(help, "  "+h+" ") && !strings.Contains(help, "  "+h+"\n") {
					t.Errorf("help lacks %s:\n%s", h, help)
				}
			}
			for _, l := range tc.lacks {
				if strings.Contains(help, "  "+l+" ") || strings.Contains(help, "  "+l+"\n") {
					t.Errorf("help lists %s, which the command does not use", l)
				}
			}
		})
	}
}
