package demo

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/internal/cdcsim"
	"github.com/leadscorer/leadscorer/internal/sandbox"
	"github.com/leadscorer/leadscorer/internal/synth"
	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// CDCSummary is what became of the Salesforce change events, counted from
// the output topics and, for what leaves no record (duplicates, echoes,
// deletes), from the scorer's own counters.
type CDCSummary struct {
	Sent *cdcsim.Sent
	// Applied counts Lead changes applied by change type; Scored the
	// shadow records, Sink the sink records, of changes of each type.
	Applied, Scored, Sink map[string]int
	// Refresh counts refresh requests by change type, RefreshReasons by
	// reason; Outcomes the outcomes derived, by kind.
	Refresh, RefreshReasons, Outcomes map[string]int
	Duplicates                        int
	Withheld                          map[string]int // sink records withheld, by reason
	SampleRefresh                     *schemas.LeadRefreshRequest
}

// cdcLeads is the population's Leads as the simulated org holds them.
func cdcLeads(pop *synth.Population) []cdcsim.Lead {
	out := make([]cdcsim.Lead, len(pop.Leads))
	for i := range pop.Leads {
		l := &pop.Leads[i]
		out[i] = cdcsim.Lead{ID: l.ID, CRD: l.CRD, HasEmail: l.HasEmail, HasLinkedIn: l.HasLinkedIn}
	}
	return out
}

// counters returns the values of a metric family by its one label's value
// ("" for an unlabelled metric).
func counters(reg *prometheus.Registry, name string) (map[string]int, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			label := ""
			if len(m.GetLabel()) > 0 {
				label = m.GetLabel()[0].GetValue()
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			out[label] += int(v)
		}
	}
	return out, nil
}

func summarizeCDC(ctx context.Context, brokers []string, cfg *config.Config, codec *schemas.Codec, reg *prometheus.Registry,
	in []*kgo.Record, sent *cdcsim.Sent, elapsed time.Duration) (*Summary, error) {
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	drain := map[string][]*kgo.Record{}
	for _, t := range []string{cfg.TopicSfdc, cfg.TopicShadow, cfg.TopicDLQ, cfg.TopicRefresh, cfg.TopicOutcomes} {
		recs, err := sandbox.DrainCommitted(dctx, brokers, t)
		if err != nil {
			return nil, err
		}
		drain[t] = recs
	}
	c := &CDCSummary{Sent: sent, Scored: map[string]int{}, Sink: map[string]int{}, Refresh: map[string]int{},
		RefreshReasons: map[string]int{}, Outcomes: map[string]int{}}
	sum := &Summary{Events: len(in), DLQ: map[string]int{}, Elapsed: elapsed, CDC: c,
		Sent: Sent{Echoes: sent.Echoes, Poison: sent.Poison}}
	for _, r := range drain[cfg.TopicDLQ] {
		sum.DLQ[producer.Header(r, producer.HeaderErrorClass)]++
	}
	changeOf := map[string]string{} // event id to change type
	for _, r := range drain[cfg.TopicShadow] {
		var s schemas.LeadScoreShadow
		if err := codec.DecodeShadow(ctx, r.Value, &s); err != nil {
			return nil, fmt.Errorf("demo: decode shadow record: %w", err)
		}
		c.Scored[s.ChangeType]++
		changeOf[s.EventID] = s.ChangeType
	}
	for i, r := range drain[cfg.TopicSfdc] {
		var s schemas.LeadScoreSfdc
		if err := codec.DecodeSfdc(ctx, r.Value, &s); err != nil {
			return nil, fmt.Errorf("demo: decode sink record: %w", err)
		}
		c.Sink[changeOf[s.TraceEventID]]++
		if i < 3 {
			sum.Samples = append(sum.Samples, s)
		}
	}
	for _, r := range drain[cfg.TopicRefresh] {
		var rr schemas.LeadRefreshRequest
		if err := codec.DecodeRefresh(ctx, r.Value, &rr); err != nil {
			return nil, fmt.Errorf("demo: decode refresh request: %w", err)
		}
		c.Refresh[rr.ChangeType]++
		c.RefreshReasons[rr.Reason]++
		if c.SampleRefresh == nil && rr.Reason == schemas.RefreshGap {
			c.SampleRefresh = &rr
		}
	}
	for _, r := range drain[cfg.TopicOutcomes] {
		var o schemas.LeadOutcome
		if err := codec.DecodeLeadOutcome(ctx, r.Value, &o); err != nil {
			return nil, fmt.Errorf("demo: decode outcome: %w", err)
		}
		c.Outcomes[o.Kind]++
	}
	var err error
	if c.Applied, err = counters(reg, "leadscorer_cdc_changes_total"); err != nil {
		return nil, err
	}
	if c.Withheld, err = counters(reg, "leadscorer_cdc_sink_withheld_total"); err != nil {
		return nil, err
	}
	dups, err := counters(reg, "leadscorer_cdc_duplicates_total")
	if err != nil {
		return nil, err
	}
	echoes, err := counters(reg, "leadscorer_events_skipped_echo_total")
	if err != nil {
		return nil, err
	}
	c.Duplicates, sum.Echoes = dups[""], echoes[""]
	sum.Scored, sum.SinkRecords = len(drain[cfg.TopicShadow]), len(drain[cfg.TopicSfdc])
	withheld := 0
	for _, n := range c.Withheld {
		withheld += n
	}
	sum.Suppressed = sum.Scored - sum.SinkRecords - withheld
	return sum, nil
}

// print writes what became of each change type, the outcomes derived and
// what the sink's writes cost in Salesforce API calls.
func (c *CDCSummary) print(w io.Writer, s *Summary) {
	fmt.Fprintf(w, "\nchange events by type: events (Leads named) -> what became of them\n")
	for _, ct := range schemas.ChangeTypes {
		ev := c.Sent.Events[ct]
		if ev == 0 {
			continue
		}
		fmt.Fprintf(w, "  %-13s %6d (%6d Leads) -> ", ct, ev, c.Sent.LeadChanges[ct])
		switch ct {
		case schemas.ChangeDelete:
			fmt.Fprintf(w, "%d Lead states forgotten, no record written\n", c.Applied[ct])
		case schemas.ChangeGapOverflow:
			fmt.Fprintf(w, "%d refresh requests for every Lead on %s\n", c.Refresh[ct], "leads.refresh.v1")
		case schemas.ChangeGapCreate, schemas.ChangeGapUpdate, schemas.ChangeGapDelete, schemas.ChangeGapUndelete:
			fmt.Fprintf(w, "%d rescored from the stored state, %d sink records, %d refresh requests\n", c.Scored[ct], c.Sink[ct], c.Refresh[ct])
		default:
			fmt.Fprintf(w, "%d scored, %d sink records", c.Scored[ct], c.Sink[ct])
			if n := c.Refresh[ct]; n > 0 {
				fmt.Fprintf(w, ", %d partial first updates asked to be re-read", n)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "  %-13s %6d          -> skipped (the sink's own writes, by its integration user)\n", "echoes", c.Sent.Echoes)
	fmt.Fprintf(w, "  %-13s %6d          -> %d Lead changes already applied, nothing written (a restarted connector)\n",
		"duplicates", c.Sent.Duplicates, c.Duplicates)
	malformed := 0
	for _, n := range c.Sent.Poison {
		malformed += n
	}
	fmt.Fprintf(w, "  %-13s %6d          -> dead letters\n", "malformed", malformed)
	fmt.Fprintf(w, "outcomes derived     contacted=%d call_scheduled=%d (on %s)\n",
		c.Outcomes[schemas.OutcomeContacted], c.Outcomes[schemas.OutcomeCallScheduled], "leads.outcomes.v1")
	fmt.Fprintf(w, "sink withheld        converted=%d partial_state=%d gap_delete=%d\n",
		c.Withheld["converted"], c.Withheld["partial_state"], c.Withheld["gap_delete"])
	if s.Scored > 0 {
		rate := float64(s.SinkRecords) / float64(s.Scored)
		perDay := 100000 * rate
		fmt.Fprintf(w, "salesforce API       %d sink records for %d scored Lead changes (%.0f%% held back by the quota guard):\n",
			s.SinkRecords, s.Scored, 100*float64(s.Suppressed)/float64(s.Scored))
		fmt.Fprintf(w, "                     100,000 Lead changes a day cost ~%.0f API calls (one per record), ~%.0f in batches of 200\n",
			perDay, perDay/200)
	}
	if r := c.SampleRefresh; r != nil {
		fmt.Fprintf(w, "sample refresh       %s %s Leads=%v reason=%s\n", r.RequestID, r.ChangeType, r.LeadIDs, r.Reason)
	}
}
