package producer

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/leadscorer/leadscorer/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestDeadLetterKeepsOriginalBytesAndSaysWhy(t *testing.T) {
	in := &kgo.Record{Topic: "leads.changed.v1", Partition: 4, Offset: 1234,
		Key: []byte("00Q000000000001AAA"), Value: []byte{0, 0, 0, 0, 9, 0xff},
		Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("abc")}}}
	now := time.Date(2025, 12, 30, 10, 0, 0, 0, time.UTC)
	r := DeadLetter("leads.dlq.v1", in, "decode", "bad varint", now, 1<<20)
	if r.Topic != "leads.dlq.v1" || string(r.Key) != string(in.Key) || string(r.Value) != string(in.Value) {
		t.Fatalf("record %+v does not carry the original key and value to the DLQ topic", r)
	}
	for key, want := range map[string]string{
		HeaderSourceTopic: "leads.changed.v1", HeaderSourcePartition: "4", HeaderSourceOffset: "1234",
		HeaderErrorClass: "decode", HeaderErrorMessage: "bad varint", HeaderTime: "2025-12-30T10:00:00Z",
		"trace": "abc",
	} {
		if got := Header(r, key); got != want {
			t.Errorf("header %s = %q, want %q", key, got, want)
		}
	}
}

func TestDeadLetterMessageIsBoundedAndValidUTF8(t *testing.T) {
	msg := strings.Repeat("é", 5000) // 2 bytes each: the cut lands mid-rune
	r := DeadLetter("dlq", &kgo.Record{}, "decode", msg, time.Unix(0, 0), 1<<20)
	got := Header(r, HeaderErrorMessage)
	if len(got) > maxMessage || !utf8.ValidString(got) {
		t.Fatalf("message of %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
	}
}

func TestOversizedValueIsCutToFitTheDLQ(t *testing.T) {
	in := &kgo.Record{Topic: "in", Value: make([]byte, 5000)}
	r := DeadLetter("dlq", in, ClassSize, "too big", time.Unix(0, 0), 1000)
	if len(r.Value) != 1000 || Header(r, HeaderValueSize) != "5000" {
		t.Fatalf("value of %d bytes, size header %q; want 1000 and 5000", len(r.Value), Header(r, HeaderValueSize))
	}
	small := DeadLetter("dlq", &kgo.Record{Value: []byte("abc")}, "decode", "x", time.Unix(0, 0), 1000)
	if Header(small, HeaderValueSize) != "" || string(small.Value) != "abc" {
		t.Fatal("a value within the limit was changed")
	}
}

func TestExplanationFitsTheField(t *testing.T) {
	for _, tc := range []struct {
		name    string
		factors []schemas.Factor
		max     int
		want    string
	}{
		{"signs and separators", []schemas.Factor{{Phrase: "moved firms 2 times in 3 years", Contribution: 0.2}, {Phrase: "14 years in the industry", Contribution: -0.1}}, 255,
			"+ moved firms 2 times in 3 years; - 14 years in the industry"},
		{"a factor that does not fit whole is left out", []schemas.Factor{{Phrase: "abc", Contribution: 1}, {Phrase: "defgh", Contribution: 1}}, 10, "+ abc"},
		{"no factors", nil, 255, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Explanation(tc.factors, tc.max)
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if n := utf8.RuneCountInString(got); n > tc.max {
				t.Fatalf("%d characters > %d", n, tc.max)
			}
		})
	}
}
