package demo

import (
	"context"
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/schemas"
)

// closedRedis is a Redis URL nothing answers at.
func closedRedis(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "redis://" + ln.Addr().String() + "/0"
	ln.Close()
	return url
}

func runDemo(t *testing.T, opts Options) (*Summary, string) {
	t.Helper()
	var out strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts.Registry, opts.Advisors, opts.Seed, opts.Timeout = "../../models/registry.json", 2000, 1, time.Minute
	sum, err := Run(ctx, opts, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "\r") {
		t.Errorf("the demo's output holds a progress bar's carriage returns:\n%q", out.String())
	}
	return sum, out.String()
}

// The demo runs with nothing installed: no Redis answers at the URL it is
// given, so it starts an embedded one. Its summary, counted from the output
// topics and the scorer's counters, accounts for every change event the
// simulated connector wrote, in either encoding: every malformed record a
// dead letter of its class, every echo skipped, every Lead change applied
// once (the duplicates of a restarted connector skipped), every refresh
// request the gap events, the overflow and the partial first updates ask
// for.
func TestDemoAccountsForEveryChangeEvent(t *testing.T) {
	for _, enc := range []string{"avro", "json"} {
		t.Run(enc, func(t *testing.T) {
			sum, out := runDemo(t, Options{RedisURL: closedRedis(t), Events: 3000, JSON: enc == "json"})
			if !strings.Contains(out, "embedded Redis") {
				t.Errorf("the demo did not say it fell back to an embedded Redis:\n%s", out)
			}
			c := sum.CDC
			if c == nil {
				t.Fatal("no change event summary")
			}
			if !maps.Equal(sum.DLQ, c.Sent.Poison) {
				t.Errorf("dead letters by class %v, sent %v", sum.DLQ, c.Sent.Poison)
			}
			if sum.Echoes != c.Sent.Echoes || sum.Echoes == 0 {
				t.Errorf("%d echoes skipped, %d sent", sum.Echoes, c.Sent.Echoes)
			}
			if !maps.Equal(c.Applied, c.Sent.LeadChanges) {
				t.Errorf("Lead changes applied %v, sent %v", c.Applied, c.Sent.LeadChanges)
			}
			if c.Duplicates != c.Sent.DuplicateChanges || c.Sent.Duplicates == 0 {
				t.Errorf("%d duplicate Lead changes skipped, %d sent again", c.Duplicates, c.Sent.DuplicateChanges)
			}
			if !maps.Equal(c.RefreshReasons, c.Sent.Refreshes) {
				t.Errorf("refresh requests %v, want %v", c.RefreshReasons, c.Sent.Refreshes)
			}
			for _, ct := range []string{schemas.ChangeCreate, schemas.ChangeUpdate, schemas.ChangeDelete, schemas.ChangeGapOverflow} {
				if c.Sent.Events[ct] == 0 {
					t.Errorf("the stream has no %s event", ct)
				}
			}
			if c.Outcomes[schemas.OutcomeContacted] == 0 || c.Outcomes[schemas.OutcomeCallScheduled] == 0 || c.Withheld["converted"] == 0 {
				t.Errorf("outcomes %v, withheld %v: want both kinds and converted Leads", c.Outcomes, c.Withheld)
			}
			if sum.SinkRecords == 0 || sum.Suppressed == 0 || len(sum.Samples) == 0 {
				t.Errorf("summary %+v: want sink records, suppressed ones and decoded samples", sum)
			}
			for _, line := range []string{"CREATE", "UPDATE", "DELETE", "GAP_OVERFLOW", "duplicates", "echoes", "outcomes derived", "salesforce API"} {
				if !strings.Contains(out, line) {
					t.Errorf("the summary has no %q line:\n%s", line, out)
				}
			}
		})
	}
}

// The LeadChanged format still works end to end: scored records and dead
// letters account for every event but the echoes.
func TestDemoOfLeadChangedRecords(t *testing.T) {
	sum, _ := runDemo(t, Options{RedisURL: closedRedis(t), Events: 3000, Format: config.InputLeadChanged})
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
