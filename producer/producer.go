// Package producer builds the service's output records: the dead-letter
// record that carries a bad input's original bytes and its reason, and the
// explanation text written to the Lead.
package producer

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// DLQ header keys. The value of a dead-letter record is the original bytes,
// untouched, and its key the original key; these headers say where it came
// from and why it is here. The original record's own headers follow them.
const (
	HeaderSourceTopic     = "dlq.source.topic"
	HeaderSourcePartition = "dlq.source.partition"
	HeaderSourceOffset    = "dlq.source.offset"
	HeaderErrorClass      = "dlq.error.class"
	HeaderErrorMessage    = "dlq.error.message"
	HeaderTime            = "dlq.time"
	// HeaderValueSize is set when the value was cut to fit the DLQ: the
	// original size in bytes. The whole record stays readable at its
	// source topic, partition and offset.
	HeaderValueSize = "dlq.value.size"
)

// Error classes of dead-letter records, besides the schemas package's
// decode, schema and validation.
const (
	ClassSize     = "size"     // the record is larger than max_record_bytes
	ClassFeatures = "features" // stored features are malformed, or the advisor is unknown and the policy says dlq
)

// maxMessage caps the error message header: an error that quotes hostile
// input must not grow the DLQ record without bound.
const maxMessage = 1024

// DeadLetter returns the DLQ record for in: same key and value, with the
// reason headers. now is the time the record was rejected. A value longer
// than maxValue (an oversized record) is cut to maxValue bytes and its
// original size given in HeaderValueSize, so the dead letter itself always
// fits the broker's limit and cannot block the partition.
func DeadLetter(topic string, in *kgo.Record, class, message string, now time.Time, maxValue int) *kgo.Record {
	if len(message) > maxMessage {
		message = truncateUTF8(message, maxMessage)
	}
	value := in.Value
	h := make([]kgo.RecordHeader, 0, 7+len(in.Headers))
	if len(value) > maxValue {
		h = append(h, kgo.RecordHeader{Key: HeaderValueSize, Value: strconv.AppendInt(nil, int64(len(value)), 10)})
		value = value[:maxValue]
	}
	h = append(h,
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(in.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(in.Partition), 10)},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, in.Offset, 10)},
		kgo.RecordHeader{Key: HeaderErrorClass, Value: []byte(class)},
		kgo.RecordHeader{Key: HeaderErrorMessage, Value: []byte(message)},
		kgo.RecordHeader{Key: HeaderTime, Value: now.UTC().AppendFormat(nil, time.RFC3339Nano)},
	)
	h = append(h, in.Headers...)
	return &kgo.Record{Topic: topic, Key: in.Key, Value: value, Headers: h}
}

// Header returns the value of the first header named key, or "".
func Header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Phrase is one factor of an explanation: a short human phrase and the
// direction it pushed the score.
type Phrase struct {
	Text     string
	Positive bool
}

// Explanation renders the top factors as the one line written to the
// Lead's V4_Score_Explanation__c, at most maxLen characters: "+" marks a
// factor that raised the score, "-" one that lowered it, e.g.
// "+ moved firms 2 times in 3 years; - 14 years in the industry". Factors
// that do not fit whole are left out.
func Explanation(factors []Phrase, maxLen int) string {
	var b strings.Builder
	n := 0
	for _, f := range factors {
		sign := "- "
		if f.Positive {
			sign = "+ "
		}
		sep := ""
		if n > 0 {
			sep = "; "
		}
		add := utf8.RuneCountInString(sep) + len(sign) + utf8.RuneCountInString(f.Text)
		if n+add > maxLen {
			break
		}
		b.WriteString(sep)
		b.WriteString(sign)
		b.WriteString(f.Text)
		n += add
	}
	return b.String()
}

func truncateUTF8(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
