package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/leadscorer/leadscorer/internal/kafkastack"
	"github.com/leadscorer/leadscorer/internal/process"
	"github.com/twmb/franz-go/pkg/kadm"
)

// The faults only a real cluster has.

// BrokerDown is how long broker-kill keeps the killed broker down.
const BrokerDown = 10 * time.Second

// BrokerStall is how long broker-stall keeps a broker frozen.
const BrokerStall = 20 * time.Second

// planRollingRestart restarts every broker of the cluster in turn, as a
// rolling upgrade does: SIGTERM (a controlled shutdown, which moves its
// leaderships away first), start it again on its data, and wait until every
// replica of every partition is back in sync before the next one. The
// suite's producer and the scorer ride through all of it.
func planRollingRestart(ctx context.Context, e *env) error {
	if err := e.await(ctx, 0.4); err != nil {
		return err
	}
	st := e.s.stack
	produced, start := e.produced.Load(), time.Now()
	var steps []string
	for node := int32(1); node <= int32(len(st.Brokers)); node++ {
		t0 := time.Now()
		pid, err := st.Signal(ctx, node, syscall.SIGTERM)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err = kafkastack.WaitGone(wctx, pid)
		cancel()
		if err != nil {
			return fmt.Errorf("broker %d did not stop after SIGTERM: %w", node, err)
		}
		stopped := time.Since(t0)
		if err := st.StartNode(ctx, node); err != nil {
			return err
		}
		wctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
		err = kafkastack.WaitInSync(wctx, e.adm, len(st.Brokers))
		cancel()
		if err != nil {
			return fmt.Errorf("after restarting broker %d: %w", node, err)
		}
		steps = append(steps, fmt.Sprintf("node %d stopped in %.1fs, back in sync %.1fs later", node, stopped.Seconds(), (time.Since(t0)-stopped).Seconds()))
	}
	e.note("rolling restart of the %d brokers (SIGTERM, start again, wait for every replica in sync) from %d events produced, %.1fs in all: %s",
		len(st.Brokers), produced, time.Since(start).Seconds(), strings.Join(steps, "; "))
	return nil
}

// victim is the broker a cluster fault hits: the coordinator of scorer-1's
// transactions, which also leads some of the input partitions.
type victim struct {
	node       int32
	inputLeads []int32 // input partitions it leads
	group      int32   // the group's coordinator, for the note
}

func (e *env) victim(ctx context.Context) (victim, error) {
	var v victim
	txn := e.adm.FindTxnCoordinators(ctx, e.txnID(1))
	if err := txn.Error(); err != nil {
		return v, fmt.Errorf("transaction coordinator of %s: %w", e.txnID(1), err)
	}
	v.node = txn[e.txnID(1)].NodeID
	if g := e.adm.FindGroupCoordinators(ctx, e.group); g.Error() == nil {
		v.group = g[e.group].NodeID
	}
	md, err := e.adm.Metadata(ctx, e.topics.In)
	if err != nil {
		return v, err
	}
	for _, p := range md.Topics[e.topics.In].Partitions.Sorted() {
		if p.Leader == v.node {
			v.inputLeads = append(v.inputLeads, p.Partition)
		}
	}
	if len(v.inputLeads) == 0 {
		return v, fmt.Errorf("the transaction coordinator, broker %d, leads no partition of %s", v.node, e.topics.In)
	}
	return v, nil
}

// openTxn waits until scorer id's transaction is open with records in it,
// and returns with the scorer frozen (SIGSTOP) inside it, its coordinator
// having confirmed the transaction still open after the freeze. The caller
// must thaw the scorer (SIGCONT).
//
// "In it" is the coordinator's word: DescribeTransactions reports the
// transaction Ongoing with partitions added (under transaction version 2 a
// partition is added by the transaction's first produce to it). The scorer
// is frozen at that moment; a second answer at least freezeSettle later
// must show the same transaction (producer epoch, start time) still
// Ongoing, by when anything the scorer sent before it froze (its EndTxn,
// say) has been handled. If not, the scorer is thawed and the wait starts
// again.
func (e *env) openTxn(ctx context.Context, id int) (kadm.DescribedTransaction, error) {
	const freezeSettle = 200 * time.Millisecond
	sc := e.scorer(id)
	txid := e.txnID(id)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	describe := func() (kadm.DescribedTransaction, bool) {
		ds, err := e.adm.DescribeTransactions(ctx, txid)
		if err != nil {
			return kadm.DescribedTransaction{}, false
		}
		d, ok := ds[txid]
		return d, ok && d.Err == nil && d.State == "Ongoing" && len(d.Topics.Sorted()) > 0
	}
	tries := 0
	for {
		if d, ok := describe(); ok {
			tries++
			if err := sc.p.Signal(syscall.SIGSTOP); err != nil {
				return d, err
			}
			if err := sleep(ctx, freezeSettle); err != nil {
				_ = sc.p.Signal(syscall.SIGCONT)
				return d, err
			}
			if d2, ok := describe(); ok && d2.ProducerID == d.ProducerID && d2.ProducerEpoch == d.ProducerEpoch && d2.StartTimestamp == d.StartTimestamp {
				return d2, nil
			}
			_ = sc.p.Signal(syscall.SIGCONT)
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return kadm.DescribedTransaction{}, fmt.Errorf("no transaction of %s caught open (%d tries): %w", txid, tries, err)
		}
	}
}

// planBrokerKill kills (SIGKILL) the broker that coordinates scorer-1's
// transactions and leads input partitions, while a transaction of scorer-1
// is open (see openTxn), and starts it again BrokerDown later.
func planBrokerKill(ctx context.Context, e *env) error {
	if err := e.await(ctx, 0.4); err != nil {
		return err
	}
	v, err := e.victim(ctx)
	if err != nil {
		return err
	}
	sc := e.scorer(1)
	before, _ := process.Metric(ctx, sc.http, "leadscorer_kafka_transactions_committed_total")
	d, err := e.openTxn(ctx, 1)
	if err != nil {
		return err
	}
	pid, err := e.s.stack.Signal(ctx, v.node, syscall.SIGKILL)
	killed := time.Now()
	restarted := false
	defer func() {
		if !restarted { // the plan failed half way: bring the broker back for the next scenario
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			_ = e.s.stack.StartNode(sctx, v.node)
		}
	}()
	if cerr := sc.p.Signal(syscall.SIGCONT); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	produced := e.produced.Load()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = kafkastack.WaitGone(wctx, pid)
	cancel()
	if err != nil {
		return err
	}
	var parts []string
	for _, t := range d.Topics.Sorted() {
		for _, p := range t.Partitions {
			parts = append(parts, fmt.Sprintf("%s/%d", strings.TrimPrefix(t.Topic, e.group+"."), p))
		}
	}
	e.note("killed broker %d (SIGKILL) with %d events produced: coordinator of %s's transactions (the group's: broker %d), leader of input partitions %v; %s's transaction %d/%d was open for %dms with %s, scorer-1 frozen in it (after %v committed)",
		v.node, produced, e.txnID(1), v.group, v.inputLeads, e.txnID(1), d.ProducerID, d.ProducerEpoch,
		killed.UnixMilli()-d.StartTimestamp, strings.Join(parts, ","), before)
	if err := sleep(ctx, BrokerDown-time.Since(killed)); err != nil {
		return err
	}
	t0 := time.Now()
	restarted = true
	if err := e.s.stack.StartNode(ctx, v.node); err != nil {
		return err
	}
	e.note("broker %d started again %.1fs after the kill, back in the metadata %.1fs later", v.node, t0.Sub(killed).Seconds(), time.Since(t0).Seconds())
	return nil
}

// planBrokerStall freezes (SIGSTOP) the broker that coordinates scorer-1's
// transactions and leads input partitions for BrokerStall, then thaws it
// (SIGCONT) and waits until every replica is in sync again.
func planBrokerStall(ctx context.Context, e *env) error {
	if err := e.await(ctx, 0.3); err != nil {
		return err
	}
	v, err := e.victim(ctx)
	if err != nil {
		return err
	}
	pid, err := e.s.stack.Signal(ctx, v.node, syscall.SIGSTOP)
	if err != nil {
		return err
	}
	stopped, produced := time.Now(), e.produced.Load()
	serr := sleep(ctx, BrokerStall)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		return fmt.Errorf("SIGCONT to broker %d (pid %d): %w", v.node, pid, err)
	}
	thawed := time.Now()
	if serr != nil {
		return serr
	}
	e.note("froze broker %d (SIGSTOP) for %.1fs from %d events produced: coordinator of %s's transactions (the group's: broker %d), leader of input partitions %v",
		v.node, thawed.Sub(stopped).Seconds(), produced, e.txnID(1), v.group, v.inputLeads)
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := kafkastack.WaitInSync(wctx, e.adm, len(e.s.stack.Brokers)); err != nil {
		return fmt.Errorf("after thawing broker %d: %w", v.node, err)
	}
	e.note("every replica in sync again %.1fs after the thaw", time.Since(thawed).Seconds())
	return nil
}

// scorerKafkaNotes reads the Kafka metrics of every running scorer into the
// notes: what the cluster faults cost the scorer.
func (e *env) scorerKafkaNotes(ctx context.Context) {
	e.mu.Lock()
	ids := make([]int, 0, len(e.scorers))
	for id := range e.scorers {
		ids = append(ids, id)
	}
	e.mu.Unlock()
	slices.Sort(ids)
	for _, id := range ids {
		sc := e.scorer(id)
		var parts []string
		for _, m := range []string{"leadscorer_kafka_transactions_committed_total", "leadscorer_kafka_transactions_aborted_total",
			"leadscorer_kafka_session_restarts_total", "leadscorer_kafka_fetch_errors_total"} {
			v, err := process.Metric(ctx, sc.http, m)
			if errors.Is(err, process.ErrNotExported) {
				v, err = 0, nil
			}
			if err != nil {
				parts = append(parts, fmt.Sprintf("%s ?", strings.TrimPrefix(m, "leadscorer_kafka_")))
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %v", strings.TrimPrefix(m, "leadscorer_kafka_"), v))
		}
		e.note("scorer-%d %s", id, strings.Join(parts, ", "))
	}
}
