package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/internal/testenv"
)

func TestRescoreCommandProducesEveryLeadOfTheFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k := testenv.NewKafka(t)
	cfg := config.Default()
	k.Configure(cfg)
	file := filepath.Join(t.TempDir(), "leads.csv")
	csv := "lead_id,crd,contact_at,has_email,has_linkedin\n" +
		"00Q5e00000000GgEAI,1313128,2024-02-01T13:15:52Z,1,1\n" +
		"00Q5e00000000GhEAI,1313129,2024-02-01T13:15:52Z,0,1\n" +
		"00Q5e00000000GiEAI,1313130,2024-02-01T13:15:52Z,1,0\n"
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"rescore", "--input", file, "--brokers", strings.Join(k.Brokers, ","), "--schema-registry", k.RegistryURL, "--topic-in", cfg.TopicIn}
	var out, errb strings.Builder
	if err := run(ctx, args, nil, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "3 of 3 leads produced to "+cfg.TopicIn) {
		t.Errorf("summary %q", out.String())
	}
	noBar(t, errb.String())

	// On a terminal, a bar that ends full.
	var tty testenv.Terminal
	out.Reset()
	if err := run(ctx, args, nil, &out, &tty); err != nil {
		t.Fatalf("%v\n%s", err, tty.String())
	}
	if bar := tty.String(); !strings.HasPrefix(bar, "\rrescore [") || !strings.HasSuffix(bar, "] 100%  3/3 leads\n") {
		t.Errorf("no finished progress bar on the terminal: %q", bar)
	}
	rs := k.Drain(cfg.TopicIn)
	if len(rs) != 6 {
		t.Errorf("input topic holds %d events after two runs, want 6", len(rs))
	}
}

func TestRescoreCommandRefusesAFileWithoutTheEventFields(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ids.csv")
	if err := os.WriteFile(file, []byte("lead_id,crd\n00Q5e00000000GgEAI,1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	err := run(context.Background(), []string{"rescore", "--input", file, "--brokers", "127.0.0.1:1"}, nil, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "has_email") {
		t.Errorf("err = %v, want the missing has_email column named", err)
	}
}
