package demo

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/leadscorer/leadscorer/population"
	"github.com/leadscorer/leadscorer/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Kinds of malformed input the demo mixes into the stream, each with the
// DLQ class it must end up under.
var poisonKinds = []struct {
	name, class string
}{
	{"random bytes", schemas.ClassDecode},
	{"wrong magic byte", schemas.ClassDecode},
	{"unknown schema id", schemas.ClassSchema},
	{"truncated avro", schemas.ClassDecode},
	{"malformed lead id", schemas.ClassValidation},
	{"missing crd", schemas.ClassValidation},
	{"oversized record", "size"},
}

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

// Events builds the demo's input records from the population's leads:
// ordinary changes (some leads changed several times, so the quota guard has
// something to suppress), echoes of the sink's own writes, and poison.
func Events(codec *schemas.Codec, topic string, pop *population.Population, mix EventMix) ([]*kgo.Record, map[string]int, error) {
	rng := rand.New(rand.NewPCG(mix.Seed, 7))
	poison := map[string]int{}
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
			k := poisonKinds[rng.IntN(len(poisonKinds))]
			val, err := poisonValue(codec, &e, k.name, rng, mix.MaxRecordBytes)
			if err != nil {
				return nil, nil, err
			}
			poison[k.class]++
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(l.ID), Value: val})
			continue
		case r < mix.Poison+mix.Echoes:
			e.ChangedFields = []string{"V4_Score__c", "V4_Score_Percentile__c", "V4_Scored_At__c"}
		}
		val, err := codec.AppendLeadChanged(nil, &e)
		if err != nil {
			return nil, nil, err
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(l.ID), Value: val})
	}
	return recs, poison, nil
}

func poisonValue(codec *schemas.Codec, e *schemas.LeadChanged, kind string, rng *rand.Rand, maxBytes int) ([]byte, error) {
	good, err := codec.AppendLeadChanged(nil, e)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "random bytes":
		b := make([]byte, 1+rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		b[0] = 0xde // never the magic byte
		return b, nil
	case "wrong magic byte":
		good[0] = 1
		return good, nil
	case "unknown schema id":
		binary.BigEndian.PutUint32(good[1:5], 999999)
		return good, nil
	case "truncated avro":
		return good[:5+(len(good)-5)/3], nil
	case "malformed lead id":
		e.LeadID = "not-a-lead-id"
	case "missing crd":
		e.HasCRD = false
	case "oversized record":
		e.Stage = strings.Repeat("x", maxBytes)
	}
	return codec.AppendLeadChanged(nil, e)
}
