package demo

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// The demo runs with nothing installed: no Redis answers at the URL it is
// given, so it starts an embedded one, and its summary, counted from the
// output topics, accounts for every event it produced.
func TestDemoWithoutRedisAccountsForEveryEvent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "redis://" + ln.Addr().String() + "/0"
	ln.Close()

	var out strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sum, err := Run(ctx, Options{
		RedisURL: closed, Registry: "../../models/registry.json",
		Events: 3000, Advisors: 2000, Seed: 1, Timeout: time.Minute,
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "\r") {
		t.Errorf("the demo's output holds a progress bar's carriage returns:\n%q", out.String())
	}
	if !strings.Contains(out.String(), "embedded Redis") {
		t.Errorf("the demo did not say it fell back to an embedded Redis:\n%s", out.String())
	}
	dlq := 0
	for class, n := range sum.DLQ {
		dlq += n
		if sum.Sent.Poison[class] != n {
			t.Errorf("DLQ class %s holds %d records, the demo sent %d", class, n, sum.Sent.Poison[class])
		}
	}
	// Echoes are what is left of the events once scored records and dead
	// letters are counted from the topics: a lost or duplicated record
	// shows as a difference from the echoes sent.
	if sum.Events != 3000 || sum.Echoes != sum.Sent.Echoes {
		t.Errorf("%d events: %d scored, %d dead letters, %d left as echoes; %d echoes were sent", sum.Events, sum.Scored, dlq, sum.Echoes, sum.Sent.Echoes)
	}
	if len(sum.DLQ) != len(sum.Sent.Poison) {
		t.Errorf("DLQ classes %v, sent %v", sum.DLQ, sum.Sent.Poison)
	}
	if sum.Echoes == 0 || sum.SinkRecords == 0 || sum.Suppressed == 0 || len(sum.Samples) == 0 {
		t.Errorf("summary %+v: want echoes, sink records, suppressed ones and decoded samples", sum)
	}
}
