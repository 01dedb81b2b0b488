package schemas

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
	"time"
)

// FuzzDecodeLeadChanged feeds arbitrary bytes to the event decoder. Every
// input must give either an event or a *RecordError (a bad record, for the
// DLQ): never a panic, never an error that would make the consumer retry
// the batch forever, and never an allocation out of proportion to the
// input (the count of an Avro array is checked against the bytes left).
func FuzzDecodeLeadChanged(f *testing.F) {
	codec, ids, _, _ := newCodec(f)
	good, err := codec.AppendLeadChanged(nil, &LeadChanged{EventID: "e1", LeadID: "00Q5e00000AbCdEAAA", CRD: 1001, HasCRD: true,
		HasEmail: true, Stage: "Contacting", ChangedFields: []string{"Status", "Email"}, EventTime: time.Unix(1_700_000_000, 0)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-3]) // truncated body
	wrongID := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(wrongID[1:5], uint32(ids.Sfdc)) // another record type's schema
	f.Add(wrongID)
	f.Add([]byte{0, 0, 0, 0, byte(ids.LeadChanged)}) // header only
	f.Fuzz(func(t *testing.T, b []byte) {
		var e LeadChanged
		var err error
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err = codec.DecodeLeadChanged(context.Background(), b, &e)
		runtime.ReadMemStats(&after)
		if a := after.TotalAlloc - before.TotalAlloc; a > 1<<20+64*uint64(len(b)) {
			t.Fatalf("%d input bytes allocated %d bytes", len(b), a)
		}
		if err != nil {
			var re *RecordError
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T) is not a *RecordError: the batch would be retried forever", err, err)
			}
			return
		}
		_ = e.Validate()
	})
}
