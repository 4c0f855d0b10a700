package cluster

import (
	"fmt"
	"time"

	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/linearizability"
)

// The transaction flow: a producer sends a half message, then either ends the transaction
// itself after a moment of "local work" (commit or rollback, waiting for the broker's answer or
// not), or leaves it unknown (saying so, or saying nothing) and lets the broker check back; any
// producer of the group answers the check with the transaction's decision, sometimes only at
// the second check. A transaction has one decision from the start, so what may reach the real
// topic is known: a rolled-back message never, a committed one once a commit may have landed,
// and surely once a commit was acknowledged.

// txEnd is one END_TRANSACTION the producers sent for a transaction (directly or answering a
// check).
type txEnd struct {
	state     client.TransactionState
	fromCheck bool
	call, ret time.Duration
	outcome   linearizability.Outcome
}

// txRecord is one transaction.
type txRecord struct {
	id       string
	producer int
	queue    linearizability.QueueKey
	call     time.Duration
	// half is the half message's send outcome; halfRet when it returned.
	half     linearizability.Outcome
	halfRet  time.Duration
	decision client.TransactionState
	// leaveToCheck: the producer does not end it; unknownFirst: the first check is answered
	// "unknown" too.
	leaveToCheck, unknownFirst bool
	checks                     int
	ends                       []txEnd
}

func (r *run) sendTransactional(cli *client.Client, i int, id string, done func()) {
	rng := r.w.Rand()
	tx := &txRecord{id: id, producer: i, call: r.w.Now(), decision: client.TxRollback}
	if rng.IntN(100) < 60 {
		tx.decision = client.TxCommit
	}
	tx.leaveToCheck = rng.IntN(100) < 35
	tx.unknownFirst = rng.IntN(100) < 30
	r.txs = append(r.txs, tx)
	r.txByID[id] = tx
	m := client.Message{Topic: r.cfg.Topic, Body: r.newBody(id), Properties: r.withSQLProps(id, map[string]string{codec.PropUniqKey: id})}
	cli.SendHalf(m, func(res client.SendResult, err error) {
		tx.half, tx.queue, tx.halfRet = outcomeOf(err), queueKey(res.Queue), r.w.Now()
		done()
		if err != nil {
			return // an unknown half, if stored, is resolved by the check-back
		}
		r.report.FlowCounts["tx-half"]++
		state := tx.decision
		if tx.leaveToCheck {
			if rng.IntN(2) == 0 {
				return // say nothing
			}
			state = client.TxUnknown
		}
		wait := rng.IntN(2) == 0 // the official client does not wait for the answer
		r.w.After(time.Duration(rng.IntN(300))*time.Millisecond, func() {
			end := txEnd{state: state, call: r.w.Now(), outcome: linearizability.Unknown}
			if !wait {
				cli.EndTransaction(res, id, state, nil)
				tx.ends = append(tx.ends, end)
				return
			}
			cli.EndTransaction(res, id, state, func(err error) {
				end.ret, end.outcome = r.w.Now(), outcomeOf(err)
				tx.ends = append(tx.ends, end)
				if err == nil && state == client.TxCommit {
					r.report.FlowCounts["tx-commit"]++
				}
			})
		})
	})
}

// checkTransaction answers a broker's check with the transaction's decision (the first check
// of some transactions gets "unknown").
func (r *run) checkTransaction(check client.TransactionCheck, reply func(client.TransactionState, func(error))) {
	tx := r.txByID[check.UniqKey]
	if tx == nil {
		r.violate("phantom transaction", "the broker checked back %s, which no producer sent as a half message", check.UniqKey)
		reply(client.TxUnknown, nil)
		return
	}
	tx.checks++
	r.report.FlowCounts["tx-checks"]++
	state := tx.decision
	if tx.unknownFirst && tx.checks == 1 {
		state = client.TxUnknown
	}
	end := txEnd{state: state, fromCheck: true, call: r.w.Now()}
	reply(state, func(err error) {
		end.ret, end.outcome = r.w.Now(), outcomeOf(err)
		tx.ends = append(tx.ends, end)
	})
}

// txSettleTime is when, after the workload, every transaction left to the check-back has had
// its checks: a half must age TxnTimeout, then a pass runs every TxnCheckInterval (two passes
// cover a first "unknown" answer).
func (r *run) txSettleTime() time.Duration {
	if len(r.txs) == 0 {
		return 0
	}
	return r.stopAt + r.flows.TxnTimeout + 3*r.flows.TxnCheckInterval
}

// txHistory declares what each transaction may or must put in its real topic.
func (r *run) txHistory() {
	for i, tx := range r.txs {
		var commits []txEnd
		for _, e := range tx.ends {
			if e.state == client.TxCommit && e.outcome != linearizability.Failed {
				commits = append(commits, e)
			}
		}
		cause := fmt.Sprintf("transaction #%d of producer %d", i, tx.producer)
		switch {
		case tx.half == linearizability.Failed:
			r.h.Withheld = append(r.h.Withheld, linearizability.Withheld{MsgID: tx.id, Why: cause + ": its half message failed"})
		case tx.decision == client.TxRollback:
			r.h.Withheld = append(r.h.Withheld, linearizability.Withheld{MsgID: tx.id, Why: cause + ": rolled back"})
		case len(commits) == 0:
			r.h.Withheld = append(r.h.Withheld, linearizability.Withheld{MsgID: tx.id, Why: cause + ": no commit was sent"})
		default:
			w := linearizability.BrokerWrite{Queue: tx.queue, MsgID: tx.id, Cause: cause + " (committed)", After: -1}
			for _, e := range commits {
				if w.After < 0 || int64(e.call) < w.After {
					w.After = int64(e.call)
				}
				// An acknowledged commit was stored before the answer left, unless a crash may
				// have lost it (async flush): the check-back then commits it again, later.
				if e.outcome == linearizability.OK {
					w.Owed = true
					if !r.mayLose(e.call, e.ret) && (w.Deadline == 0 || int64(e.ret) < w.Deadline) {
						w.Deadline = int64(e.ret)
					}
				}
			}
			if w.Owed {
				// The deadline is for its store timestamp, taken on the broker's clock.
				w.Deadline = r.storeDeadline(time.Duration(w.After), time.Duration(w.Deadline))
				// Owed while its half message survives (async flush: see asyncflush.go).
				w.Records = []linearizability.Window{{Call: int64(tx.call), Return: int64(tx.halfRet)}}
			}
			r.h.Writes = append(r.h.Writes, w)
		}
	}
}
