// Package producer builds the service's output records: the sink record
// the Salesforce connector writes to the Lead (with its explanation text),
// the shadow record of every version's score, the dead-letter record that
// carries a bad input's original bytes and its reason, and the records of
// lead outcomes and refresh requests. Batch builds them in memory reused
// batch after batch.
package producer

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/leadscorer/leadscorer/schemas"
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

// Classes of dead-letter records: the value of HeaderErrorClass, the reason
// a record is in the DLQ. Every class is here; the ones the codec finds are
// named after its faults (schemas.Fault).
const (
	// ClassSize: the record is larger than max_record_bytes.
	ClassSize = "size"
	// ClassDecode: the bytes are not a well-formed record.
	ClassDecode = string(schemas.FaultDecode)
	// ClassSchema: the writer's schema is unknown or not the expected
	// record's.
	ClassSchema = string(schemas.FaultSchema)
	// ClassValidation: the record decoded but a value is unusable.
	ClassValidation = string(schemas.FaultValidation)
	// ClassFeatures: stored features are malformed, or the advisor is
	// unknown and the policy says dlq.
	ClassFeatures = "features"
)

// ClassOf returns the dead-letter class of a record the codec refused, and
// false when err is not about the record (the batch is retried instead).
func ClassOf(err error) (string, bool) {
	re, ok := schemas.IsRecordError(err)
	if !ok {
		return "", false
	}
	return string(re.Fault), true
}

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

// Explanation renders the top factors as the one line written to the
// Lead's V4_Score_Explanation__c, at most maxLen characters: "+" marks a
// factor that raised the score, "-" one that lowered it, e.g.
// "+ moved firms 2 times in 3 years; - 14 years in the industry". Factors
// that do not fit whole are left out.
func Explanation(factors []schemas.Factor, maxLen int) string {
	return string(AppendExplanation(nil, factors, maxLen))
}

// AppendExplanation appends Explanation(factors, maxLen) to dst.
func AppendExplanation(dst []byte, factors []schemas.Factor, maxLen int) []byte {
	n := 0
	for _, f := range factors {
		sign := "- "
		if f.Contribution > 0 {
			sign = "+ "
		}
		sep := ""
		if n > 0 {
			sep = "; "
		}
		add := utf8.RuneCountInString(sep) + len(sign) + utf8.RuneCountInString(f.Phrase)
		if n+add > maxLen {
			break
		}
		dst = append(dst, sep...)
		dst = append(dst, sign...)
		dst = append(dst, f.Phrase...)
		n += add
	}
	return dst
}

func truncateUTF8(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
