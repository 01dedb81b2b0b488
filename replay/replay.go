// Package replay puts events back on the scorer's input topic: dead letters
// after the fix that makes them scorable (Replay), and a lead-change event
// for every lead of a population file, the on-demand rescore that replaces
// the monthly batch job (Rescore).
//
// Replay is idempotent. Each dead letter it re-produces is recorded in a
// ledger topic (compacted, keyed by the dead letter's DLQ topic, partition
// and offset) in the same Kafka transaction as the re-produced record, so
// either both are written or neither. A later replay reads the ledger first
// and skips what it names, whatever filter either run used; a fixed
// transactional id fences a concurrent replayer before the ledger is read.
package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscorer/leadscorer/producer"
	"github.com/leadscorer/leadscorer/topics"
)

// HeaderReplayedFrom is added to every re-produced record: the dead
// letter's "topic/partition/offset". A record that fails again carries it
// into its new dead letter, so a loop of failures can be traced.
const HeaderReplayedFrom = "dlq.replayed.from"

// Filter selects dead letters by their reason headers. The zero Filter
// selects everything; each set field narrows the selection.
type Filter struct {
	// Classes are dlq.error.class values (size, decode, schema, validation,
	// features); empty: every class.
	Classes []string
	// Partition is the source partition (dlq.source.partition); -1: any.
	Partition int32
	// FromOffset and ToOffset bound the source offset (dlq.source.offset),
	// both inclusive; -1: unbounded.
	FromOffset, ToOffset int64
	// Since and Until bound when the record was dead-lettered (dlq.time),
	// Since inclusive and Until exclusive; zero: unbounded.
	Since, Until time.Time
}

// AllRecords is the Filter that selects every dead letter.
func AllRecords() Filter { return Filter{Partition: -1, FromOffset: -1, ToOffset: -1} }

// Match reports whether the dead letter r is selected. A record whose
// headers lack or garble a field the filter tests is not selected.
func (f Filter) Match(r *kgo.Record) bool {
	if len(f.Classes) > 0 && !slices.Contains(f.Classes, producer.Header(r, producer.HeaderErrorClass)) {
		return false
	}
	if f.Partition >= 0 {
		p, err := strconv.ParseInt(producer.Header(r, producer.HeaderSourcePartition), 10, 32)
		if err != nil || int32(p) != f.Partition {
			return false
		}
	}
	if f.FromOffset >= 0 || f.ToOffset >= 0 {
		o, err := strconv.ParseInt(producer.Header(r, producer.HeaderSourceOffset), 10, 64)
		if err != nil || (f.FromOffset >= 0 && o < f.FromOffset) || (f.ToOffset >= 0 && o > f.ToOffset) {
			return false
		}
	}
	if !f.Since.IsZero() || !f.Until.IsZero() {
		t, err := time.Parse(time.RFC3339Nano, producer.Header(r, producer.HeaderTime))
		if err != nil || (!f.Since.IsZero() && t.Before(f.Since)) || (!f.Until.IsZero() && !t.Before(f.Until)) {
			return false
		}
	}
	return true
}

// Options configures Replay.
type Options struct {
	// Brokers and ClientOpts (TLS, SASL) reach the cluster.
	Brokers    []string
	ClientOpts []kgo.Opt
	// DLQTopic is the dead-letter topic to read.
	DLQTopic string
	// LedgerTopic records what was replayed; it must exist (`leadscorer
	// topics apply` creates it, compacted, one partition). Default
	// DLQTopic + ".replayed".
	LedgerTopic string
	// Topic, when set, receives the records instead of each dead letter's
	// dlq.source.topic.
	Topic string
	// TransactionalID of the replayer; fixed so that a second replayer
	// fences the first. Default "leadscorer-dlq-replay".
	TransactionalID string
	Filter          Filter
	// BatchSize is the most records per transaction; default 500.
	BatchSize int
	// DryRun counts what would be replayed and writes nothing.
	DryRun bool
	// Progress, when set, is called after each committed transaction with
	// the counts so far.
	Progress func(Summary)
	// Now stamps the ledger; time.Now when nil.
	Now func() time.Time
}

// Summary counts what a replay did with each dead letter it read.
type Summary struct {
	Read        int            // dead letters read, to the end of the DLQ when the replay started
	Replayed    int            // re-produced (or, in a dry run, would be)
	AlreadyDone int            // selected but named by the ledger: replayed before
	NotSelected int            // not selected by the filter
	Truncated   int            // selected but cut to fit the DLQ (dlq.value.size): not replayable as is
	ByClass     map[string]int // Replayed by dlq.error.class
}

func (s Summary) String() string {
	classes := make([]string, 0, len(s.ByClass))
	for c, n := range s.ByClass {
		classes = append(classes, fmt.Sprintf("%s=%d", c, n))
	}
	slices.Sort(classes)
	by := ""
	if len(classes) > 0 {
		by = " (" + strings.Join(classes, " ") + ")"
	}
	return fmt.Sprintf("read %d dead letters: replayed %d%s, already replayed %d, not selected %d, truncated %d",
		s.Read, s.Replayed, by, s.AlreadyDone, s.NotSelected, s.Truncated)
}

// ledgerEntry is the value of a ledger record.
type ledgerEntry struct {
	ReplayedAt      time.Time `json:"replayed_at"`
	To              string    `json:"to"`
	Class           string    `json:"class"`
	SourceTopic     string    `json:"source_topic"`
	SourcePartition string    `json:"source_partition"`
	SourceOffset    string    `json:"source_offset"`
}

func ledgerKey(r *kgo.Record) string {
	return r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10)
}

// Replay re-produces the selected dead letters of opts.DLQTopic, as they
// were when the replay started, to their source topic: same key, same
// value bytes, the original headers and HeaderReplayedFrom. Dead letters
// named by the ledger are skipped. It returns what it did; on error, the
// transactions committed before it stand and a new replay resumes.
func Replay(ctx context.Context, opts Options) (Summary, error) {
	sum := Summary{ByClass: map[string]int{}}
	if len(opts.Brokers) == 0 || opts.DLQTopic == "" {
		return sum, errors.New("replay: brokers and the DLQ topic are required")
	}
	if opts.LedgerTopic == "" {
		opts.LedgerTopic = topics.Ledger(opts.DLQTopic)
	}
	if opts.TransactionalID == "" {
		opts.TransactionalID = "leadscorer-dlq-replay"
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	base := append([]kgo.Opt{kgo.SeedBrokers(opts.Brokers...)}, opts.ClientOpts...)

	var cl *kgo.Client
	if !opts.DryRun {
		var err error
		cl, err = kgo.NewClient(append(slices.Clone(base), kgo.TransactionalID(opts.TransactionalID))...)
		if err != nil {
			return sum, fmt.Errorf("replay: %w", err)
		}
		defer cl.Close()
		// Fence any other replayer before reading the ledger: its open
		// transaction is aborted, its committed ones are in the ledger.
		if _, _, err := cl.ProducerID(ctx); err != nil {
			return sum, fmt.Errorf("replay: transactional id %s: %w", opts.TransactionalID, err)
		}
		if err := topics.Require(ctx, kadm.NewClient(cl), opts.LedgerTopic); err != nil {
			return sum, fmt.Errorf("replay: the ledger: %w", err)
		}
	}
	done := map[string]bool{}
	if err := readTopic(ctx, base, opts.LedgerTopic, func(r *kgo.Record) error {
		done[string(r.Key)] = r.Value != nil
		return nil
	}); err != nil {
		return sum, fmt.Errorf("replay: reading the ledger %s: %w", opts.LedgerTopic, err)
	}

	// A destination topic is checked once, before the first record to it:
	// with no topic to take it, the produce would wait out its timeout.
	exists := map[string]bool{}
	var batch []*kgo.Record
	flush := func() error {
		if len(batch) == 0 || opts.DryRun {
			batch = batch[:0]
			return nil
		}
		if err := produceTxn(ctx, cl, batch); err != nil {
			return err
		}
		batch = batch[:0]
		if opts.Progress != nil {
			opts.Progress(sum)
		}
		return nil
	}
	err := readTopic(ctx, base, opts.DLQTopic, func(r *kgo.Record) error {
		sum.Read++
		key := ledgerKey(r)
		switch {
		case !opts.Filter.Match(r):
			sum.NotSelected++
			return nil
		case done[key]:
			sum.AlreadyDone++
			return nil
		case producer.Header(r, producer.HeaderValueSize) != "":
			sum.Truncated++
			return nil
		}
		to := opts.Topic
		if to == "" {
			to = producer.Header(r, producer.HeaderSourceTopic)
		}
		if to == "" {
			return fmt.Errorf("replay: dead letter %s has no %s header and no --topic was given", key, producer.HeaderSourceTopic)
		}
		if !exists[to] && !opts.DryRun {
			if err := topics.Require(ctx, kadm.NewClient(cl), to); err != nil {
				return fmt.Errorf("replay: dead letter %s goes to %s: %w", key, to, err)
			}
			exists[to] = true
		}
		class := producer.Header(r, producer.HeaderErrorClass)
		entry, _ := json.Marshal(ledgerEntry{
			ReplayedAt: opts.Now().UTC(), To: to, Class: class,
			SourceTopic:     producer.Header(r, producer.HeaderSourceTopic),
			SourcePartition: producer.Header(r, producer.HeaderSourcePartition),
			SourceOffset:    producer.Header(r, producer.HeaderSourceOffset),
		})
		batch = append(batch,
			&kgo.Record{Topic: to, Key: r.Key, Value: r.Value, Headers: originalHeaders(r, key)},
			&kgo.Record{Topic: opts.LedgerTopic, Key: []byte(key), Value: entry},
		)
		done[key] = true // a DLQ read twice (never, but cheap) is replayed once
		sum.Replayed++
		sum.ByClass[class]++
		if len(batch) >= 2*opts.BatchSize {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		// The batch in flight was aborted: it is not replayed.
		sum.Replayed -= len(batch) / 2
	}
	return sum, err
}

// originalHeaders returns the headers the record had before it was
// dead-lettered, plus HeaderReplayedFrom.
func originalHeaders(r *kgo.Record, from string) []kgo.RecordHeader {
	var h []kgo.RecordHeader
	for _, x := range r.Headers {
		if !strings.HasPrefix(x.Key, "dlq.") {
			h = append(h, x)
		}
	}
	return append(h, kgo.RecordHeader{Key: HeaderReplayedFrom, Value: []byte(from)})
}

// produceTxn writes rs in one transaction.
func produceTxn(ctx context.Context, cl *kgo.Client, rs []*kgo.Record) error {
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("replay: begin transaction: %w", err)
	}
	res := cl.ProduceSync(ctx, rs...)
	commit := kgo.TransactionEndTry(res.FirstErr() == nil)
	if err := cl.EndTransaction(ctx, commit); err != nil {
		return fmt.Errorf("replay: end transaction: %w", err)
	}
	if err := res.FirstErr(); err != nil {
		return fmt.Errorf("replay: produce (transaction aborted): %w", err)
	}
	return nil
}

// readTopic calls fn for every committed record of topic up to the end
// offsets it has when called, in partition and offset order per
// partition. A topic that does not exist has no records.
func readTopic(ctx context.Context, base []kgo.Opt, topic string, fn func(*kgo.Record) error) error {
	cl, err := kgo.NewClient(base...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// Read committed: the end to read to is the last stable offset.
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return err
	}
	want := map[int32]int64{}
	var endErr error
	ends.Each(func(o kadm.ListedOffset) {
		switch {
		case o.Err != nil:
			endErr = errors.Join(endErr, fmt.Errorf("end offset of %s/%d: %w", topic, o.Partition, o.Err))
		case o.Offset > 0:
			want[o.Partition] = o.Offset
		}
	})
	if errors.Is(endErr, kerr.UnknownTopicOrPartition) {
		return nil
	}
	if endErr != nil {
		return endErr
	}
	if len(want) == 0 {
		return nil
	}
	parts := map[int32]kgo.Offset{}
	for p := range want {
		parts[p] = kgo.NewOffset().AtStart()
	}
	rd, err := kgo.NewClient(append(slices.Clone(base),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return err
	}
	defer rd.Close()
	for len(want) > 0 {
		f := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		f.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return ferr
		}
		var cbErr error
		f.EachRecord(func(r *kgo.Record) {
			end, open := want[r.Partition]
			if !open || cbErr != nil {
				return
			}
			if r.Offset < end && !r.Attrs.IsControl() {
				cbErr = fn(r)
			}
			if r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
		if cbErr != nil {
			return cbErr
		}
	}
	return nil
}
