package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/internal/testenv"
	"github.com/leadscorer/leadscorer/producer"
)

func TestDLQReplayCommandReplaysTheSelectedClassOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k := testenv.NewKafka(t)
	cfg := config.Default()
	k.Configure(cfg)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	in := func(offset int64, v string) *kgo.Record {
		return &kgo.Record{Topic: cfg.TopicIn, Offset: offset, Key: []byte("00Q5e00000000GgEAI"), Value: []byte(v)}
	}
	k.Produce(
		producer.DeadLetter(cfg.TopicDLQ, in(1, "unknown advisor"), producer.ClassFeatures, "crd not in redis", now, 1<<20),
		producer.DeadLetter(cfg.TopicDLQ, in(2, "garbage"), "decode", "bad magic byte", now, 1<<20),
	)
	args := []string{"dlq", "replay", "--brokers", strings.Join(k.Brokers, ","), "--topic-dlq", cfg.TopicDLQ, "--class", "features"}

	var out, errb strings.Builder
	if err := run(ctx, args, nil, &out, &errb); err != nil {
		t.Fatalf("run 1: %v\n%s", err, errb.String())
	}
	if want := "replayed 1 (features=1), already replayed 0, not selected 1"; !strings.Contains(out.String(), want) {
		t.Errorf("run 1 printed %q, want %q", out.String(), want)
	}
	noBar(t, errb.String())
	// Again, on a terminal: nothing left to replay, so no transaction, and
	// the line shows the final counts.
	var tty testenv.Terminal
	out.Reset()
	if err := run(ctx, args, nil, &out, &tty); err != nil {
		t.Fatalf("run 2: %v\n%s", err, tty.String())
	}
	if want := "replayed 0, already replayed 1, not selected 1"; !strings.Contains(out.String(), want) {
		t.Errorf("run 2 printed %q, want %q", out.String(), want)
	}
	if tty.String() != "\rdlq replay  2 dead letters read, 0 replayed\n" {
		t.Errorf("run 2 drew %q on the terminal", tty.String())
	}
	rs := k.Drain(cfg.TopicIn)
	if len(rs) != 1 || string(rs[0].Value) != "unknown advisor" {
		t.Errorf("input topic holds %d records, want the one features dead letter once", len(rs))
	}
}

func TestDLQReplayCommandRefusesBadFilters(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"a time that is not RFC 3339 names its flag", []string{"--since", "yesterday"}, "--since"},
		{"an inverted offset range is refused", []string{"--from-offset", "10", "--to-offset", "5"}, "--from-offset 10 is after --to-offset 5"},
		{"stray arguments are refused", []string{"leads.dlq.v1"}, "unexpected arguments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb strings.Builder
			err := run(context.Background(), append([]string{"dlq", "replay", "--brokers", "127.0.0.1:1"}, tc.args...), nil, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
