package demo

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/leadscorer/leadscorer/internal/poison"
	"github.com/leadscorer/leadscorer/internal/synth"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EventMix says how many events of each kind to make.
type EventMix struct {
	Events int     // total records
	Echoes float64 // share of events that are the sink's own write echoed back
	Poison float64 // share of malformed records
	Seed   uint64
	// MaxRecordBytes is the scorer's limit; oversized poison exceeds it.
	MaxRecordBytes int
	// At is the event time of every event.
	At time.Time
}

// Sent counts what Events made besides ordinary changes.
type Sent struct {
	Echoes int
	Poison map[string]int // by the DLQ class each must get
}

// Events builds the demo's input records from the population's leads:
// ordinary changes (some leads changed several times, so the quota guard has
// something to suppress), echoes of the sink's own writes, and poison.
func Events(codec *schemas.Codec, topic string, pop *synth.Population, mix EventMix) ([]*kgo.Record, Sent, error) {
	rng := rand.New(rand.NewPCG(mix.Seed, 7))
	sent := Sent{Poison: map[string]int{}}
	recs := make([]*kgo.Record, 0, mix.Events)
	// A pool of leads a fifth the size of the stream: most leads change
	// more than once.
	pool := max(mix.Events/5, 1)
	for i := range mix.Events {
		l := &pop.Leads[rng.IntN(min(pool, len(pop.Leads)))]
		e := schemas.LeadChanged{
			EventID: fmt.Sprintf("demo-%d", i), LeadID: l.ID, CRD: l.CRD, HasCRD: true,
			HasEmail: l.HasEmail, HasLinkedIn: l.HasLinkedIn, Stage: "Contacting",
			ChangedFields: []string{"Status"}, EventTime: mix.At,
		}
		r := rng.Float64()
		switch {
		case r < mix.Poison:
			k := poison.Kinds[rng.IntN(len(poison.Kinds))]
			val, err := poison.Value(codec, &e, k, rng, mix.MaxRecordBytes+1)
			if err != nil {
				return nil, sent, err
			}
			sent.Poison[k.Class]++
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(l.ID), Value: val})
			continue
		case r < mix.Poison+mix.Echoes:
			e.ChangedFields = []string{"V4_Score__c", "V4_Score_Percentile__c", "V4_Scored_At__c"}
			sent.Echoes++
		}
		val, err := codec.AppendLeadChanged(nil, &e)
		if err != nil {
			return nil, sent, err
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(l.ID), Value: val})
	}
	return recs, sent, nil
}
