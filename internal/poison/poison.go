// Package poison makes malformed lead-change records of every kind the
// scorer's decoder can meet, each with the dead-letter class it must get
// (docs/ARCHITECTURE.md, failure contract). The demo mixes them into its
// stream; the fault suite checks every one lands in the DLQ, once.
package poison

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/schemas"
)

// Kind is one way a record can be malformed.
type Kind struct {
	Name  string
	Class string // the DLQ class the scorer must give it
}

// Oversized is the kind whose value exceeds the scorer's max_record_bytes.
var Oversized = Kind{"oversized value", producer.ClassSize}

// Kinds lists every malformed input the decoder can meet.
var Kinds = []Kind{
	{"random bytes", producer.ClassDecode},
	{"wrong magic byte", producer.ClassDecode},
	{"unknown schema id", producer.ClassSchema},
	{"truncated avro", producer.ClassDecode},
	{"missing lead id", producer.ClassValidation},
	{"malformed lead id", producer.ClassValidation},
	{"missing crd", producer.ClassValidation},
	{"malformed crd", producer.ClassValidation},
	Oversized,
}

// Value returns a record of kind k made from the valid event e, which it may
// change. An oversized value holds oversize bytes of stage text.
func Value(codec *schemas.Codec, e *schemas.LeadChanged, k Kind, rng *rand.Rand, oversize int) ([]byte, error) {
	good, err := codec.AppendLeadChanged(nil, e)
	if err != nil {
		return nil, err
	}
	switch k.Name {
	case "random bytes":
		b := make([]byte, 1+rng.IntN(64))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		b[0] |= 0x80 // never the magic byte 0
		return b, nil
	case "wrong magic byte":
		good[0] = byte(1 + rng.IntN(255))
		return good, nil
	case "unknown schema id":
		binary.BigEndian.PutUint32(good[1:5], 900000+rng.Uint32N(99999))
		return good, nil
	case "truncated avro":
		// Cut inside the event id string, so the body cannot be read.
		return good[:5+1+rng.IntN(max(len(e.EventID)/2, 1))], nil
	case "missing lead id":
		e.LeadID = ""
	case "malformed lead id":
		e.LeadID = e.LeadID[:10] + "-" + e.LeadID[11:]
	case "missing crd":
		e.HasCRD = false
	case "malformed crd":
		e.CRD = -e.CRD
	case Oversized.Name:
		e.Stage = strings.Repeat("x", oversize)
	default:
		return nil, fmt.Errorf("poison: unknown kind %q", k.Name)
	}
	return codec.AppendLeadChanged(nil, e)
}
