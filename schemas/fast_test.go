package schemas

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

func randString(rng *rand.Rand) string {
	alphabet := []string{"a", "Z", "0", " ", "é", "€", "日", "|", "\x00", ";"}
	var b strings.Builder
	for range rng.IntN(30) {
		b.WriteString(alphabet[rng.IntN(len(alphabet))])
	}
	return b.String()
}

func randTime(rng *rand.Rand) time.Time {
	// Both sides of 1970, with sub-millisecond parts to cut.
	return time.Unix(rng.Int64N(4e9)-1e9, rng.Int64N(1e9)).UTC()
}

func randFloat(rng *rand.Rand) float64 {
	switch rng.IntN(6) {
	case 0:
		return 0
	case 1:
		return math.Copysign(0, -1)
	case 2:
		return math.NaN()
	}
	return rng.NormFloat64() * 10
}

func randLeadChanged(rng *rand.Rand) *LeadChanged {
	e := &LeadChanged{EventID: randString(rng), LeadID: randString(rng), HasCRD: rng.IntN(4) > 0,
		CRD: rng.Int64() - math.MaxInt64/2, HasEmail: rng.IntN(2) == 0, HasLinkedIn: rng.IntN(2) == 0,
		Stage: randString(rng), EventTime: randTime(rng)}
	for range rng.IntN(4) {
		e.ChangedFields = append(e.ChangedFields, randString(rng))
	}
	if !e.HasCRD {
		e.CRD = 0
	}
	return e
}

// The fast encoders must write exactly the bytes goavro writes, for any
// value the checks let through.
func TestFastEncodersWriteGoavrosBytes(t *testing.T) {
	c, _, _, _ := newCodec(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		e := randLeadChanged(rng)
		fast, err1 := c.AppendLeadChanged([]byte("x"), e)
		slow, err2 := c.genericAppendLeadChanged([]byte("x"), e)
		if err1 != nil || err2 != nil || !bytes.Equal(fast, slow) {
			t.Fatalf("LeadChanged %d %+v:\nfast %x (%v)\ngoavro %x (%v)", i, e, fast, err1, slow, err2)
		}

		s := validSfdc()
		s.Score, s.Percentile, s.Deprioritize = rng.Float64(), 1+rng.IntN(100), rng.IntN(2) == 0
		s.ScoredAt, s.Explanation, s.TraceEventID = randTime(rng), randString(rng), randString(rng)
		s.TraceSourcePartition, s.TraceSourceOffset = rng.Int32()-math.MaxInt32/2, rng.Int64()-math.MaxInt64/2
		if rng.IntN(2) == 0 {
			s.ObjectType, s.EventType = randString(rng), randString(rng)
		}
		fast, err1 = c.AppendSfdc(nil, s)
		slow, err2 = c.genericAppendSfdc(nil, s)
		if err1 != nil || err2 != nil || !bytes.Equal(fast, slow) {
			t.Fatalf("Sfdc %d %+v:\nfast %x (%v)\ngoavro %x (%v)", i, s, fast, err1, slow, err2)
		}

		sh := &LeadScoreShadow{EventID: randString(rng), LeadID: randString(rng), CRD: rng.Int64() - math.MaxInt64/2,
			EventTime: randTime(rng), ScoredAt: randTime(rng), ProcessingLatencyUS: rng.Int64N(1e9),
			ChangeType: randString(rng), PartialState: rng.IntN(2) == 0, Gap: rng.IntN(2) == 0,
			Freshness: Freshness{AdvisorFound: rng.IntN(2) == 0, FirmFound: rng.IntN(2) == 0, AdvisorStale: rng.IntN(2) == 0,
				FirmStale: rng.IntN(2) == 0, AdvisorAgeSeconds: rng.Int64N(1e9) - 1e8, FirmAgeSeconds: rng.Int64N(1e9)}}
		for range rng.IntN(3) {
			vs := VersionScore{Version: randString(rng), Role: randString(rng), Score: rng.NormFloat64(),
				Percentile: rng.IntN(300) - 100, Decile: rng.IntN(30) - 10, Deprioritize: rng.IntN(2) == 0, UpgradeCandidate: rng.IntN(2) == 0}
			for range rng.IntN(4) {
				contrib := randFloat(rng)
				if math.IsNaN(contrib) {
					contrib = 1
				}
				vs.Factors = append(vs.Factors, Factor{Feature: randString(rng), Value: randFloat(rng), Contribution: contrib, Phrase: randString(rng)})
			}
			sh.Scores = append(sh.Scores, vs)
		}
		fast, err1 = c.AppendShadow(nil, sh)
		slow, err2 = c.genericAppendShadow(nil, sh)
		if err1 != nil || err2 != nil || !bytes.Equal(fast, slow) {
			t.Fatalf("Shadow %d %+v:\nfast %x (%v)\ngoavro %x (%v)", i, sh, fast, err1, slow, err2)
		}

		o := &LeadOutcome{EventID: randString(rng), LeadID: randString(rng), Kind: OutcomeContacted, Time: randTime(rng)}
		if rng.IntN(2) == 0 {
			o.Kind = OutcomeCallScheduled
		}
		fast, err1 = c.AppendLeadOutcome(nil, o)
		slow, err2 = c.genericAppendLeadOutcome(nil, o)
		if err1 != nil || err2 != nil || !bytes.Equal(fast, slow) {
			t.Fatalf("LeadOutcome %d %+v:\nfast %x (%v)\ngoavro %x (%v)", i, o, fast, err1, slow, err2)
		}

		rr := &LeadRefreshRequest{RequestID: randString(rng), Entity: randString(rng), ChangeType: randString(rng),
			Reason: randString(rng), CommitTime: randTime(rng), RequestedAt: randTime(rng)}
		for range rng.IntN(4) {
			rr.LeadIDs = append(rr.LeadIDs, randString(rng))
		}
		fast, err1 = c.AppendRefresh(nil, rr)
		slow, err2 = c.genericAppendRefresh(nil, rr)
		if err1 != nil || err2 != nil || !bytes.Equal(fast, slow) {
			t.Fatalf("LeadRefreshRequest %d %+v:\nfast %x (%v)\ngoavro %x (%v)", i, rr, fast, err1, slow, err2)
		}
	}
}

// The fast decoder must agree with goavro and the bounds check on every
// input: the same value, or an error of the same class.
func TestFastDecoderAgreesWithGoavro(t *testing.T) {
	c, ids, _, _ := newCodec(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	mutations := []struct {
		name string
		f    func(b []byte) []byte
	}{
		{"unchanged", func(b []byte) []byte { return b }},
		{"one byte changed", func(b []byte) []byte {
			if len(b) > 5 {
				b[5+rng.IntN(len(b)-5)] = byte(rng.UintN(256))
			}
			return b
		}},
		{"truncated", func(b []byte) []byte { return b[:5+rng.IntN(len(b)-4)] }},
		{"bytes appended", func(b []byte) []byte { return append(b, byte(rng.UintN(256))) }},
		{"random body", func(b []byte) []byte {
			b = b[:5]
			for range rng.IntN(60) {
				b = append(b, byte(rng.UintN(256)))
			}
			return b
		}},
		{"byte inserted", func(b []byte) []byte {
			i := 5 + rng.IntN(len(b)-4)
			return append(b[:i], append([]byte{byte(rng.UintN(256))}, b[i:]...)...)
		}},
	}
	agreedErrors := 0
	for i := range 20000 {
		m := mutations[i%len(mutations)]
		good, err := c.AppendLeadChanged(nil, randLeadChanged(rng))
		if err != nil {
			t.Fatal(err)
		}
		in := m.f(good)
		var fast, slow LeadChanged
		errFast := c.DecodeLeadChanged(ctx, in, &fast)
		errSlow := c.decodeLeadChangedGeneric(ctx, in, &slow)
		if (errFast == nil) != (errSlow == nil) {
			t.Fatalf("%s %d: %x: fast err %v, goavro err %v", m.name, i, in, errFast, errSlow)
		}
		if errFast != nil {
			rf, ok1 := IsRecordError(errFast)
			rs, ok2 := IsRecordError(errSlow)
			if !ok1 || !ok2 || rf.Fault != rs.Fault {
				t.Fatalf("%s %d: %x: fast err %v, goavro err %v", m.name, i, in, errFast, errSlow)
			}
			agreedErrors++
			continue
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s %d: %x:\nfast   %+v\ngoavro %+v", m.name, i, in, fast, slow)
		}
	}
	if agreedErrors == 0 {
		t.Fatal("no mutation made a bad record: the test exercises nothing")
	}
	_ = ids
}
