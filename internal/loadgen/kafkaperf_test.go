package loadgen

import (
	"testing"

	"github.com/leadscorer/leadscorer/internal/synth"
)

// Output of Kafka 4.4's perf tools, as they print it.
const producerPerfOut = `500000 records sent, 53890.924768 records/sec (15.42 MB/sec), 179.45 ms avg latency, 526.00 ms max latency, 163 ms 50th, 397 ms 95th, 436 ms 99th, 514 ms 99.9th.
400000 steady state records sent, 63948.840927 records/sec (18.30 MB/sec), 191.47 ms avg latency, 526.00 ms max latency, 177 ms 50th, 405 ms 95th, 442 ms 99th, 516 ms 99.9th.
`

const consumerPerfOut = `start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
2026-11-30 06:25:22:567, 2026-11-30 06:25:24:520, 143.0511, 73.2469, 500000, 256016.3850, 788, 1165, 122.7907, 429184.5494
`

func TestParseKafkaPerfOutputs(t *testing.T) {
	p, err := parseProducerPerf(producerPerfOut)
	if err != nil || p != 63948.840927 {
		t.Errorf("producer: %v, %v; want the steady state's 63948.840927", p, err)
	}
	// Without warm-up there is no steady state line: the summary counts.
	p, err = parseProducerPerf(producerPerfOut[:len(producerPerfOut)/2])
	if err != nil || p != 53890.924768 {
		t.Errorf("producer without steady state: %v, %v", p, err)
	}
	all, fetch, err := parseConsumerPerf(consumerPerfOut)
	if err != nil || all != 256016.3850 || fetch != 429184.5494 {
		t.Errorf("consumer: %v %v, %v", all, fetch, err)
	}
	for _, bad := range []string{"", "Exception in thread main", "start.time, end.time\n"} {
		if _, err := parseProducerPerf(bad); err == nil {
			t.Errorf("producer output %q: no error", bad)
		}
		if _, _, err := parseConsumerPerf(bad); err == nil {
			t.Errorf("consumer output %q: no error", bad)
		}
	}
}

func TestMeanInputBytesIsTheWireSizeOfTheEvents(t *testing.T) {
	pop, err := synth.Generate(synth.Options{Advisors: 2000})
	if err != nil {
		t.Fatal(err)
	}
	n, err := meanInputBytes(LeadsOf(pop), ShapeZipf)
	// Header 5, event id ~11, Lead Id 18, CRD, flags, stage, one changed
	// field and a timestamp: some tens of bytes, not hundreds.
	if err != nil || n < 40 || n > 120 {
		t.Fatalf("LeadChanged: mean input record %d bytes, %v", n, err)
	}
	// A change event carries the connector's header (transaction key,
	// commit user, changed fields) and, for a create, the Lead's fields:
	// a few hundred bytes.
	c, err := meanInputBytes(LeadsOf(pop), ShapeCDC)
	if err != nil || c < 2*n || c > 1000 {
		t.Fatalf("change events: mean input record %d bytes (LeadChanged %d), %v", c, n, err)
	}
	t.Logf("mean input record: %d bytes (LeadChanged), %d bytes (change events)", n, c)
}
