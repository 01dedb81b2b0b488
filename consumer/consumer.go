// Package consumer runs the exactly-once consume-transform-produce loop:
// a franz-go consumer group inside a transactional session, reading
// read_committed, where the output records of a batch and the batch's input
// offsets commit in one Kafka transaction.
//
// The contract with the Transformer: a failure that belongs to one record
// (bad bytes, invalid values) is the Transformer's to turn into a DLQ
// record; a failure that belongs to the batch (Redis or the Schema Registry
// unreachable) is returned as an error, the transaction is aborted, nothing
// of the batch is committed, and the batch is consumed again after a
// backoff. A rebalance during a batch aborts it too; the new owner of a
// partition starts from its last committed offset.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Transformer turns one batch of input records into output records.
type Transformer interface {
	// Transform appends the output records for in to out and returns it.
	// Records of one input partition are given in offset order, and the
	// outputs are produced in the order returned. An error fails the whole
	// batch (see the package doc). Transform must not keep in or out.
	Transform(ctx context.Context, in []*kgo.Record, out []*kgo.Record) ([]*kgo.Record, error)
	// Committed is called once the batch's transaction has committed, with
	// the outputs of that batch; the place for side effects that must
	// follow a commit (the quota guard's state). An error is logged, not
	// retried: the effects must be safe to lose.
	Committed(ctx context.Context, out []*kgo.Record) error
}

// Preparer is a Transformer whose batches have effects to write before
// their commit, which may be written while the outputs are produced. The
// consumer then calls Prepare instead of Transform, produces the outputs,
// and runs BeforeCommit while they are in flight, so the two waits overlap;
// Transform must be Prepare followed by BeforeCommit. An error of either
// fails the batch.
type Preparer interface {
	Transformer
	Prepare(ctx context.Context, in []*kgo.Record, out []*kgo.Record) ([]*kgo.Record, error)
	BeforeCommit(ctx context.Context) error
}

// Options configures a Consumer. Brokers, Group, Topic and TransactionalID
// are required; the rest have defaults.
type Options struct {
	Brokers         []string
	Group           string
	Topic           string
	TransactionalID string
	// BatchMaxRecords caps the records of one transaction (default 2000).
	BatchMaxRecords int
	// TopUpWait is how long a batch that found records already fetched,
	// but fewer than BatchMaxRecords, waits for one more fetch (0: none;
	// see poll).
	TopUpWait time.Duration
	// TransactionTimeout is the broker-side limit of an open transaction
	// (default 1m): the broker aborts a crashed scorer's after it.
	TransactionTimeout time.Duration
	// BatchTimeout bounds one batch from its transform to its commit,
	// including the batch in hand when the run is asked to stop (default
	// 30s). It must be below TransactionTimeout, so the scorer gives a
	// batch up before the broker does.
	BatchTimeout time.Duration
	// Backoff after a failed batch, doubling up to MaxBackoff (defaults
	// 100ms and 10s).
	Backoff, MaxBackoff time.Duration
	// Extra client options (TLS, SASL, hooks).
	ClientOpts []kgo.Opt
	Logger     *slog.Logger
	Metrics    *Metrics

	// sessionOpts, set by tests, are options of the group session only
	// (assignment callbacks, another balancer).
	sessionOpts []kgo.Opt
}

// metadataMinAge is the least time between two metadata refreshes of the
// session's client (see New).
const metadataMinAge = 100 * time.Millisecond

// Consumer owns one transactional session at a time.
type Consumer struct {
	opts  Options
	kopts []kgo.Opt
	sess  *kgo.GroupTransactSession
	t     Transformer
	in    []*kgo.Record // a batch's records, markers left out
	log   *slog.Logger

	readyMu sync.Mutex
	ready   bool

	// done is set by Run or Close, whichever comes first: the session is
	// then theirs to close.
	done atomic.Bool

	// beforeEnd, set by tests, runs between the flush of a batch's outputs
	// and the end of its transaction; an error aborts the batch.
	beforeEnd func() error
}

// validate fills the defaults of unset options and rejects missing or
// conflicting ones, naming them.
func (o *Options) validate() error {
	var errs []error
	if len(o.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	for _, f := range []struct{ name, v string }{{"Group", o.Group}, {"Topic", o.Topic}, {"TransactionalID", o.TransactionalID}} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("%s is required", f.name))
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.BatchMaxRecords <= 0 {
		o.BatchMaxRecords = 2000
	}
	def(&o.TransactionTimeout, time.Minute)
	def(&o.BatchTimeout, 30*time.Second)
	def(&o.Backoff, 100*time.Millisecond)
	def(&o.MaxBackoff, 10*time.Second)
	if o.BatchTimeout >= o.TransactionTimeout {
		errs = append(errs, fmt.Errorf("BatchTimeout %v must be below TransactionTimeout %v: the broker would abort a batch the scorer still works on", o.BatchTimeout, o.TransactionTimeout))
	}
	if o.TopUpWait < 0 || o.TopUpWait >= o.BatchTimeout {
		errs = append(errs, fmt.Errorf("TopUpWait %v must be in [0, BatchTimeout %v)", o.TopUpWait, o.BatchTimeout))
	}
	if o.MaxBackoff < o.Backoff {
		errs = append(errs, fmt.Errorf("MaxBackoff %v is below Backoff %v", o.MaxBackoff, o.Backoff))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	return nil
}

// New connects a transactional group session. It does not block on the
// brokers: the first poll does. The session starts joining the group at
// once, so a Consumer that will not run must be closed.
func New(opts Options, t Transformer) (*Consumer, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	kopts := []kgo.Opt{
		kgo.SeedBrokers(opts.Brokers...),
		kgo.ConsumerGroup(opts.Group),
		kgo.ConsumeTopics(opts.Topic),
		kgo.TransactionalID(opts.TransactionalID),
		// Static membership under the same stable id: a scorer restarted
		// after a crash takes its partitions straight back instead of
		// waiting for its old member's session to time out.
		kgo.InstanceID(opts.TransactionalID),
		kgo.TransactionTimeout(opts.TransactionTimeout),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// The markers of the input's transactions (a producer with
		// exactly-once delivery, dlq replay) are returned with the
		// records, so that the offset committed after a batch is past
		// them: a consumer commits the offset after the last record it
		// was given, and one not given the markers would stay a record
		// behind the end after each transaction, for ever, to everything
		// that watches the group's lag.
		kgo.KeepControlRecords(),
		kgo.RequireStableFetchOffsets(),
		kgo.DisableAutoCommit(),
		kgo.ProducerLinger(0),
		// On Apache Kafka 4.x (transactions v2, KIP-890) a broker answers
		// CONCURRENT_TRANSACTIONS to a transaction's first produce to a
		// partition while the previous transaction's markers are still
		// being written (after retrying for up to 100 ms itself). franz-go
		// then holds the partition's records until its next metadata
		// refresh, and refreshes are at most one per MetadataMinAge, 5 s
		// by default: a transaction stalled for up to 5 s whenever the
		// markers lagged (docs/RELIABILITY.md, "On Apache Kafka"). 100 ms,
		// the Java client's default retry.backoff.ms, bounds the stall.
		kgo.MetadataMinAge(metadataMinAge),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.WithHooks(opts.Metrics.hooks()),
	}
	kopts = append(kopts, opts.ClientOpts...)
	kopts = append(kopts, opts.sessionOpts...)
	// Validate the options now, so a bad setting stops start-up.
	sess, err := kgo.NewGroupTransactSession(kopts...)
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	return &Consumer{opts: opts, kopts: kopts, sess: sess, t: t, log: opts.Logger}, nil
}

// Close closes the session of a Consumer that has not run, leaving the
// group. Run closes its own sessions: Close once Run has started does
// nothing.
func (c *Consumer) Close() {
	if !c.done.Swap(true) {
		c.sess.Close() // a static member does not leave the group by closing
		c.leaveGroup()
	}
}

// Ready reports whether the consumer has completed a poll since it started.
func (c *Consumer) Ready() bool {
	c.readyMu.Lock()
	defer c.readyMu.Unlock()
	return c.ready
}

// FencedError is Run's error when another process runs with this scorer's
// transactional id, which is also its static member id, and has taken
// over: the transaction coordinator fenced this one's producer
// (PRODUCER_FENCED) or the group coordinator its member
// (FENCED_INSTANCE_ID). A scorer frozen for a while (a long GC pause, a
// stopped VM) and replaced by a restart under the same id sees it when it
// wakes up.
type FencedError struct {
	TransactionalID string
	Err             error
}

func (e *FencedError) Error() string {
	return fmt.Sprintf("consumer: fenced: another scorer runs with transactional id %s and has taken over; this one stops (a new session under the same id would fence it in turn): %v",
		e.TransactionalID, e.Err)
}

func (e *FencedError) Unwrap() error { return e.Err }

// fenced reports whether err says another incarnation holds our ids.
//
// INVALID_PRODUCER_EPOCH is not such an answer: a partition leader gives it
// to a produce whose epoch it does not expect, which a zombie's stale epoch
// earns, and so does a broker that was frozen and answers with the
// coordinator state it held before (seen on a three-broker cluster after a
// SIGSTOP, to a new session's first produce). KIP-588 makes it abortable:
// the abort goes to the transaction coordinator, which answers a zombie
// PRODUCER_FENCED and lets a current producer abort and go on.
func fenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.FencedInstanceID)
}

// sessionError classifies an error that ends the session: a fence, or a
// failure a new session may recover from.
func (c *Consumer) sessionError(err error) error {
	if fenced(err) {
		return &FencedError{TransactionalID: c.opts.TransactionalID, Err: err}
	}
	return &fatalError{err}
}

// Run consumes until ctx is cancelled, then finishes the batch in hand,
// commits it and leaves the group. When the session fails in a way it cannot
// recover from (a transaction that can neither commit nor abort, say while
// the brokers are down), Run closes it, waits and starts a new session,
// which resumes from the committed offsets: nothing is lost or repeated.
// When the scorer has been fenced by another with its transactional id, Run
// returns a *FencedError at once, without leaving the group (the static
// member is the other's now) and without a new session.
func (c *Consumer) Run(ctx context.Context) error {
	if c.done.Swap(true) {
		return errors.New("consumer: Run after Close or a previous Run")
	}
	backoff := c.opts.Backoff
	for {
		err := c.runSession(ctx)
		c.sess.Close() // a static member does not leave the group by closing
		var fe *FencedError
		if errors.As(err, &fe) {
			c.log.Error("fenced by another scorer with the same transactional id; stopping", "transactional_id", c.opts.TransactionalID, "err", fe.Err)
			return err
		}
		if ctx.Err() != nil {
			c.leaveGroup()
			return nil
		}
		c.opts.Metrics.sessionRestarts.Inc()
		c.log.Error("transactional session failed; starting a new one", "backoff", backoff, "err", err)
		select {
		case <-ctx.Done():
			c.leaveGroup()
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, c.opts.MaxBackoff)
		sess, err := kgo.NewGroupTransactSession(c.kopts...)
		if err != nil {
			return fmt.Errorf("consumer: %w", err)
		}
		c.sess = sess
	}
}

// leaveGroup takes this scorer's static member out of the group, so that
// on a clean shutdown its partitions move to the other scorers at once.
func (c *Consumer) leaveGroup() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.opts.Brokers...)}, c.opts.ClientOpts...)...)
	if err != nil {
		c.log.Warn("leave group", "err", err)
		return
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).LeaveGroup(ctx, kadm.LeaveGroup(c.opts.Group).InstanceIDs(c.opts.TransactionalID).Reason("shutdown"))
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		c.log.Warn("leave group: the group rebalances when the session times out instead", "err", err)
	}
}

func (c *Consumer) runSession(ctx context.Context) error {
	var (
		out     []*kgo.Record
		backoff = c.opts.Backoff
	)
	for {
		if ctx.Err() != nil {
			return nil
		}
		fetches := c.poll(ctx)
		if fetches.IsClientClosed() {
			return nil
		}
		var fence error
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			if fenced(err) { // FENCED_INSTANCE_ID from the group
				fence = err
			}
			c.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
			c.opts.Metrics.fetchErrors.Inc()
		})
		if fence != nil {
			return &FencedError{TransactionalID: c.opts.TransactionalID, Err: fence}
		}
		c.readyMu.Lock()
		c.ready = true
		c.readyMu.Unlock()
		all := fetches.Records()
		if len(all) == 0 {
			continue
		}
		c.opts.Metrics.observeLag(fetches)
		// The transformer gets the records; the transaction markers, kept
		// (see New), only move the position committed.
		in := c.in[:0]
		for _, r := range all {
			if !r.Attrs.IsControl() {
				in = append(in, r)
			}
		}
		c.in = in

		// The batch runs to its end even when ctx is cancelled meanwhile:
		// SIGTERM finishes the batch and commits it, within BatchTimeout.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.BatchTimeout)
		var (
			committed bool
			err       error
		)
		out, committed, err = c.batch(bctx, ctx, in, out[:0])
		clear(c.in) // drop references to the batch's records
		if err == nil && committed && len(in) > 0 {
			if err := c.t.Committed(bctx, out); err != nil {
				c.log.Warn("after-commit effects failed", "err", err)
			}
		}
		cancel()
		if err != nil {
			var fe *fatalError
			if errors.As(err, &fe) {
				return fe.err
			}
			var fenced *FencedError
			if errors.As(err, &fenced) {
				return err
			}
			c.opts.Metrics.txnAborts.Inc()
			c.log.Warn("batch failed, retrying after backoff", "records", len(in), "backoff", backoff, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, c.opts.MaxBackoff)
			continue
		}
		backoff = c.opts.Backoff
		if !committed {
			c.opts.Metrics.txnAborts.Inc()
			// A rebalance, or an offset commit the group refused
			// (REBALANCE_IN_PROGRESS, CONCURRENT_TRANSACTIONS on Kafka).
			c.log.Info("transaction aborted: the group moved or refused the offset commit; the batch will be consumed again", "records", len(in))
			continue
		}
		c.opts.Metrics.txnCommits.Inc()
		if len(in) > 0 {
			c.opts.Metrics.batchSize.Observe(float64(len(in)))
		}
		clear(out) // drop references to the batch's records
	}
}

// poll returns the next batch's records. The client keeps one fetch
// buffered, answered as soon as the previous batch took its records: what
// arrived while that batch ran is still on the broker. So a batch that
// finds records buffered, but fewer than it may take, waits up to
// TopUpWait for the fetch the client sends once they are taken, which
// brings them. A batch that finds nothing buffered waits for a fetch,
// whose records are as fresh as they come.
func (c *Consumer) poll(ctx context.Context) kgo.Fetches {
	// A nil context is franz-go's documented way to take only what is
	// buffered, without waiting.
	fetches := c.sess.PollRecords(nil, c.opts.BatchMaxRecords)
	n := fetches.NumRecords()
	switch {
	case n == 0 && len(fetches.Errors()) == 0:
		return c.sess.PollRecords(ctx, c.opts.BatchMaxRecords)
	case n == 0, c.opts.TopUpWait <= 0, n >= c.opts.BatchMaxRecords:
		return fetches // errors only (a closed client, a fence) go out at once
	}
	tctx, cancel := context.WithTimeout(ctx, c.opts.TopUpWait)
	more := c.sess.PollRecords(tctx, c.opts.BatchMaxRecords-n)
	cancel()
	for _, f := range more {
		// The fetch franz-go injects when the poll's context ends or
		// the client closes: no topic, partition -1. The next poll
		// reports a closed client.
		if len(f.Topics) == 1 && f.Topics[0].Topic == "" {
			continue
		}
		fetches = append(fetches, f)
	}
	c.opts.Metrics.topUpRecords.Add(float64(fetches.NumRecords() - n))
	return fetches
}

type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }

// batch runs one transaction. runCtx is the run's own context: a transform
// waiting on Redis gives up when the run is asked to stop. Every error of
// ending the transaction, commit or abort, ends the session: the client
// is then in a state no further transaction can start from (franz-go: "no
// returned error is retryable").
func (c *Consumer) batch(ctx, runCtx context.Context, in, out []*kgo.Record) ([]*kgo.Record, bool, error) {
	if err := c.sess.Begin(); err != nil {
		return out, false, c.sessionError(fmt.Errorf("consumer: begin transaction: %w", err))
	}
	tctx, stop := context.WithCancel(ctx)
	defer stop()
	defer context.AfterFunc(runCtx, stop)()
	// A batch of transaction markers only commits the position past them.
	pr, _ := c.t.(Preparer)
	if len(in) > 0 {
		var err error
		if pr != nil {
			out, err = pr.Prepare(tctx, in, out)
		} else {
			out, err = c.t.Transform(tctx, in, out)
		}
		if err != nil {
			return out, false, c.abort(ctx, err)
		}
	}
	// The first failed record aborts what is still buffered: the batch is
	// lost anyway, and the abort below need not wait for the rest.
	produced := kgo.AbortingFirstErrPromise(c.sess.Client())
	start := time.Now()
	for _, r := range out {
		c.sess.Produce(ctx, r, produced.Promise())
	}
	if pr != nil && len(in) > 0 {
		// The produce stage counts the wait for Kafka beyond the
		// writes, which have a stage of their own.
		issued := time.Now()
		if err := pr.BeforeCommit(tctx); err != nil {
			return out, false, c.abort(ctx, err)
		}
		start = start.Add(time.Since(issued))
	}
	err := produced.Err()
	c.opts.Metrics.txnStage.WithLabelValues("produce").Observe(time.Since(start).Seconds())
	if err != nil {
		err = fmt.Errorf("consumer: produce: %w", err)
		if fenced(err) {
			_ = c.abort(ctx, err)
			return out, false, c.sessionError(err)
		}
		return out, false, c.abort(ctx, err)
	}
	if c.beforeEnd != nil {
		if err := c.beforeEnd(); err != nil {
			return out, false, c.abort(ctx, err)
		}
	}
	start = time.Now()
	committed, err := c.sess.End(ctx, kgo.TryCommit)
	c.opts.Metrics.txnStage.WithLabelValues("commit").Observe(time.Since(start).Seconds())
	if err != nil {
		return out, false, c.sessionError(fmt.Errorf("consumer: end transaction: %w", err))
	}
	return out, committed, nil
}

// abort ends the batch's transaction with an abort and returns the batch's
// error, cause. The abort gets a BatchTimeout of its own: the batch's may
// be what ran out (a broker that stopped answering), and an abort on an
// expired context fails at once, leaving the transaction open. When the
// abort fails all the same, the session cannot begin another transaction:
// the error then ends the session (a fence ends the scorer's Run).
func (c *Consumer) abort(ctx context.Context, cause error) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.BatchTimeout)
	defer cancel()
	if _, err := c.sess.End(actx, kgo.TryAbort); err != nil {
		c.log.Error("abort transaction", "err", err)
		return c.sessionError(fmt.Errorf("consumer: abort transaction: %w (after: %w)", err, cause))
	}
	return cause
}
