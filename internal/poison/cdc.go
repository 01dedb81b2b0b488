package poison

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/schemas"
)

// CDCKinds lists every malformed Salesforce change event record the
// scorer's reader meets, with its DLQ class. Kinds marked AvroOnly need the
// wire format.
var CDCKinds = []CDCKind{
	{Kind{"random bytes", producer.ClassDecode}, false},
	{Kind{"cut short", producer.ClassDecode}, false},
	{Kind{"unknown schema id", producer.ClassSchema}, true},
	{Kind{"no ChangeEventHeader", producer.ClassSchema}, false},
	{Kind{"unknown changeType", producer.ClassValidation}, false},
	{Kind{"not a Lead Id", producer.ClassValidation}, false},
	{Kind{"malformed CRD", producer.ClassValidation}, false},
	{Kind{Oversized.Name, producer.ClassSize}, false},
}

// CDCKind is one way a change event record can be malformed.
type CDCKind struct {
	Kind
	AvroOnly bool
}

// CDCValue returns a record of kind k made from the valid event e (which
// it may change), in JSON or in Avro with codec. An oversized value holds
// oversize bytes of text in a Lead field.
func CDCValue(codec *schemas.Codec, e *schemas.ChangeEvent, json bool, k CDCKind, rng *rand.Rand, oversize int) ([]byte, error) {
	encode := func() ([]byte, error) {
		if json {
			return schemas.ChangeEventJSON(e)
		}
		return codec.AppendChangeEvent(nil, e)
	}
	switch k.Name {
	case "random bytes":
		b := make([]byte, 1+rng.IntN(64))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		b[0] |= 0x80 // neither the magic byte nor '{'
		return b, nil
	case "cut short":
		good, err := encode()
		if err != nil {
			return nil, err
		}
		return good[:len(good)/2], nil
	case "unknown schema id":
		good, err := codec.AppendChangeEvent(nil, e)
		if err != nil {
			return nil, err
		}
		binary.BigEndian.PutUint32(good[1:5], 900000+rng.Uint32N(99999))
		return good, nil
	case "no ChangeEventHeader":
		if json {
			return []byte(fmt.Sprintf(`{"Id":%q,"LastName":"Doe","_ObjectType":"LeadChangeEvent"}`, e.ID)), nil
		}
		// Another record of the registry (a LeadOutcome): Avro, but not the
		// connector's shape.
		return codec.AppendLeadOutcome(nil, &schemas.LeadOutcome{EventID: "x", LeadID: e.ID, Kind: schemas.OutcomeContacted,
			Time: e.Header.CommitTime()})
	case "unknown changeType":
		e.Header.ChangeType = "MERGE"
	case "not a Lead Id":
		e.Header.RecordIDs = []string{"001" + e.ID[3:]} // an Account's key prefix
		e.ID = e.Header.RecordIDs[0]
	case "malformed CRD":
		e.Fields["FA_CRD__c"] = "CRD-" + fmt.Sprint(rng.IntN(1e6))
	case Oversized.Name:
		e.Fields["Description"] = strings.Repeat("x", oversize)
	default:
		return nil, fmt.Errorf("poison: unknown kind %q", k.Name)
	}
	return encode()
}
