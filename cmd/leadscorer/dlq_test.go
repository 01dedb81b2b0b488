package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscorer/leadscorer/internal/sandbox"
	"github.com/leadscorer/leadscorer/producer"
)

func TestDLQReplayCommandReplaysTheSelectedClassOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sb, err := sandbox.Start(sandbox.Options{Topics: []string{"leads.changed.v1", "leads.dlq.v1"}, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	in := func(offset int64, v string) *kgo.Record {
		return &kgo.Record{Topic: "leads.changed.v1", Offset: offset, Key: []byte("00Q5e00000000GgEAI"), Value: []byte(v)}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(sb.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx,
		producer.DeadLetter("leads.dlq.v1", in(1, "unknown advisor"), producer.ClassFeatures, "crd not in redis", now, 1<<20),
		producer.DeadLetter("leads.dlq.v1", in(2, "garbage"), "decode", "bad magic byte", now, 1<<20),
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	args := []string{"dlq", "replay", "--brokers", strings.Join(sb.Brokers(), ","), "--class", "features"}

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
	var tty terminal
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
	rs, err := sandbox.DrainCommitted(ctx, sb.Brokers(), "leads.changed.v1")
	if err != nil {
		t.Fatal(err)
	}
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
