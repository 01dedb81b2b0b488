package producer

import (
	"bytes"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FuzzDeadLetter: whatever the bad record and its error message hold, the
// dead letter keeps the key and original headers, carries at most maxValue
// bytes of the value (a prefix of it, the original size in a header when
// cut) and a message of at most 1 KiB, valid UTF-8 when the message was;
// so the dead letter always fits the broker's limit and cannot itself
// block the partition.
func FuzzDeadLetter(f *testing.F) {
	f.Add([]byte("00Q5e00000AbCdEAAA"), []byte("definitely not avro"), "decode", "wire header: magic byte 7", 262144, []byte("trace"))
	f.Add([]byte(nil), make([]byte, 4096), "size", "record of 4096 bytes exceeds 1024", 1024, []byte(nil))
	f.Add([]byte("k"), []byte("v"), "validation", string(bytes.Repeat([]byte("é"), 2000)), 1, []byte("h"))
	f.Fuzz(func(t *testing.T, key, value []byte, class, message string, maxValue int, header []byte) {
		if maxValue < 1 || maxValue > 16<<20 {
			maxValue = 1 + (maxValue&0x7fffffff)%(16<<20)
		}
		in := &kgo.Record{Topic: "leads.changed.v1", Partition: 3, Offset: 42, Key: key, Value: value,
			Headers: []kgo.RecordHeader{{Key: "origin", Value: header}}}
		out := DeadLetter("leads.dlq.v1", in, class, message, time.Unix(0, 0), maxValue)
		if out.Topic != "leads.dlq.v1" || !bytes.Equal(out.Key, key) {
			t.Fatalf("topic %q key %q", out.Topic, out.Key)
		}
		if len(out.Value) > maxValue || !bytes.HasPrefix(value, out.Value) {
			t.Fatalf("value of %d bytes (max %d) is not a prefix of the original", len(out.Value), maxValue)
		}
		cut := len(value) > maxValue
		if got := Header(out, HeaderValueSize); cut != (got != "") || cut && got != strconv.Itoa(len(value)) {
			t.Fatalf("%s = %q for a value of %d bytes cut at %d", HeaderValueSize, got, len(value), maxValue)
		}
		if !cut && !bytes.Equal(out.Value, value) {
			t.Fatal("a value within the limit was changed")
		}
		msg := Header(out, HeaderErrorMessage)
		if len(msg) > maxMessage || utf8.ValidString(message) && !utf8.ValidString(msg) {
			t.Fatalf("message of %d bytes, valid UTF-8 %v", len(msg), utf8.ValidString(msg))
		}
		if Header(out, HeaderErrorClass) != class || Header(out, HeaderSourceOffset) != "42" || Header(out, HeaderSourcePartition) != "3" {
			t.Fatalf("reason headers: %v", out.Headers)
		}
		if h := out.Headers[len(out.Headers)-1]; h.Key != "origin" || !bytes.Equal(h.Value, header) {
			t.Fatalf("original header not kept last: %v", out.Headers)
		}
	})
}
