package cluster

// The SQL92 flow (single topology): producers put user properties on every message (a, a
// number 0 to 9, and color, red, green or blue; each sometimes absent), and a consumer group
// subscribed with a SQL92 selector drawn from the seed consumes the run's topic through the
// client core, carrying the selector in its pulls. The check: every message a filtered pull
// returned matches the selector, in queue-offset order within the range the broker scanned,
// and no message of that range that matches was left out (the final drain says what the range
// held). Whether a message matches is decided by the harness from the properties it set, with
// a Go predicate written next to each selector, not by the broker's parser.

import (
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/linearizability"
)

// Violation kinds of the SQL92 check.
const (
	KindFilterNonMatching = "filter delivered non-matching"
	KindFilterSkipped     = "filter skipped matching"
	KindFilterOrder       = "filter order"
	KindFilterRefused     = "filter refused"
)

// sqlProps are the user properties a message carries in the SQL92 flow; hasA and color ""
// say the property is absent.
type sqlProps struct {
	a     int
	hasA  bool
	color string
}

var sqlColors = []string{"red", "green", "blue", ""}

// sqlPropsOf derives a message's properties from its id, so the check knows them without
// trusting what the broker stored.
func sqlPropsOf(id string) sqlProps {
	h := fnv.New64a()
	h.Write([]byte(id))
	x := h.Sum64()
	a := int(x % 11) // 10: absent
	return sqlProps{a: a, hasA: a < 10, color: sqlColors[(x/11)%4]}
}

// sqlSelectors are the selectors the flow draws from, each with its meaning under SQL92's
// three-valued logic over the properties above (a comparison with an absent property is
// unknown, which matches nothing, and NOT unknown is unknown).
var sqlSelectors = []struct {
	expr  string
	match func(p sqlProps) bool
}{
	{"a > 5 AND color = 'red'", func(p sqlProps) bool { return p.hasA && p.a > 5 && p.color == "red" }},
	{"color IN ('red', 'blue') OR a IS NULL", func(p sqlProps) bool { return p.color == "red" || p.color == "blue" || !p.hasA }},
	{"a BETWEEN 2 AND 4 OR color IS NULL", func(p sqlProps) bool { return p.hasA && p.a >= 2 && p.a <= 4 || p.color == "" }},
	{"a <= 3 AND color <> 'green'", func(p sqlProps) bool { return p.hasA && p.a <= 3 && p.color != "" && p.color != "green" }},
	{"NOT (a < 5) AND color IS NOT NULL", func(p sqlProps) bool { return p.hasA && p.a >= 5 && p.color != "" }},
}

// drawSQL92 draws the SQL92 flow from its own PRNG, so that the other flows' draws, and so
// every run with the flow off, stay what they were.
func drawSQL92(f *Flows, rng *rand.Rand) {
	f.SQL92 = rng.IntN(2) == 0
	f.SQLSelector = rng.IntN(len(sqlSelectors))
	f.SQLViaHeartbeat = rng.IntN(2) == 0
}

// withSQLProps adds the SQL92 flow's properties of message id to props, when the flow is on.
func (r *run) withSQLProps(id string, props map[string]string) map[string]string {
	if !r.flows.SQL92 {
		return props
	}
	p := sqlPropsOf(id)
	if p.hasA {
		props["a"] = strconv.Itoa(p.a)
	}
	if p.color != "" {
		props["color"] = p.color
	}
	return props
}

// sqlGroup is the filtered consumer's group.
const sqlGroup = "SimSQL"

// sqlMsg is one message a filtered pull returned.
type sqlMsg struct {
	offset int64
	id     string
}

// sqlPull is one filtered pull that scanned [from, next) of its queue.
type sqlPull struct {
	queue     linearizability.QueueKey
	from      int64
	next      int64
	msgs      []sqlMsg
	call, ret time.Duration
}

// startSQLConsumer runs the filtered consumer: one client, every queue of the run's topic,
// from the group's committed offset; now and then it drops its position and resumes from
// the committed offset, as after a restart, which redelivers what it pulled since.
//
// With SQLViaHeartbeat the selector reaches the broker only in the group's heartbeats and the
// pulls carry none, as with Java's push consumer by default; otherwise every pull carries it.
func (r *run) startSQLConsumer() {
	cli := r.addClientWith("127.0.7.1:1", "sql-consumer", func(c *client.Config) {
		if r.flows.SQLViaHeartbeat {
			c.HeartbeatInterval = 2 * time.Second
		}
	})
	if r.flows.SQLViaHeartbeat {
		sel := sqlSelectors[r.flows.SQLSelector]
		cli.RegisterConsumer(client.ConsumerGroup{Name: sqlGroup, Subscriptions: map[string]string{r.cfg.Topic: sel.expr},
			ExpressionTypes: map[string]string{r.cfg.Topic: "SQL92"}})
	}
	r.discoverQueues(cli, r.cfg.Topic, 300*time.Millisecond, func(qs []client.MessageQueue) {
		for _, q := range qs {
			r.consumeSQL(cli, q)
		}
	})
}

func (r *run) consumeSQL(cli *client.Client, q client.MessageQueue) {
	sel := sqlSelectors[r.flows.SQLSelector]
	k := groupQueue{sqlGroup, queueKey(q)}
	var offset int64
	var lastCommit time.Duration
	var pull, begin func()
	backoff := func(f func()) { r.w.After(time.Duration(100+r.w.Rand().IntN(900))*time.Millisecond, f) }
	begin = func() {
		if r.stopped {
			return
		}
		cli.QueryOffset(sqlGroup, q, func(off int64, found bool, err error) {
			if err != nil {
				backoff(begin)
				return
			}
			r.offsetReads[k] = append(r.offsetReads[k], offsetRead{at: r.w.Now(), offset: off, found: found})
			offset = 0
			if found {
				offset = off
			}
			pull()
		})
	}
	pull = func() {
		if r.stopped {
			return
		}
		if r.w.Rand().IntN(200) == 0 {
			backoff(begin) // a restart: what was pulled since the last commit comes again
			return
		}
		req := client.PullRequest{Queue: q, Group: sqlGroup, Offset: offset, MaxMsgs: 16, SuspendMillis: 1000,
			Subscription: sel.expr, ExpressionType: "SQL92", GroupSubscription: r.flows.SQLViaHeartbeat}
		call := r.w.Now()
		cli.Pull(req, func(res client.PullResult, err error) {
			var be *client.BrokerError
			if errors.As(err, &be) && be.Code == codec.SubscriptionParseFailed {
				r.violate(KindFilterRefused, "the broker refused selector %q: %v", sel.expr, err)
				return
			}
			if err != nil {
				backoff(begin)
				return
			}
			if res.Status == codec.Success || res.Status == codec.PullRetryImmediately {
				p := sqlPull{queue: k.queue, from: offset, next: res.NextBeginOffset, call: call, ret: r.w.Now()}
				for _, m := range res.Msgs {
					if id, ok := r.verify(m); ok {
						p.msgs = append(p.msgs, sqlMsg{m.QueueOffset, id})
					}
				}
				r.sqlPulls = append(r.sqlPulls, p)
				r.report.FlowCounts["sql"] += len(p.msgs)
			}
			offset = res.NextBeginOffset
			r.commitNowAndThen(cli, sqlGroup, q, offset, &lastCommit)
			r.w.After(0, pull)
		})
	}
	begin()
}

// checkSQL checks the filtered pulls against the selector and the final drain: each
// returned message matches, the messages come in increasing queue offsets within the range
// the pull scanned, and every matching message the drain found in that range was returned.
// A destroyed message (bit flips) is not in the drain; in async-flush mode a crash may lose
// an unsynced tail whose offsets later messages take, so a pull that may have scanned such a
// tail (mayLose) is not held to the drain. Call it after crashHistory.
func (r *run) checkSQL(drain map[linearizability.QueueKey][]linearizability.PulledMsg) (bad []linearizability.QueueKey) {
	if !r.flows.SQL92 {
		return nil
	}
	sel := sqlSelectors[r.flows.SQLSelector]
	logs := map[linearizability.QueueKey]map[int64]string{}
	for q, msgs := range drain {
		m := map[int64]string{}
		for _, x := range msgs {
			m[x.Offset] = x.MsgID
		}
		logs[q] = m
	}
	reported := map[string]bool{}
	report := func(q linearizability.QueueKey, kind, format string, args ...any) {
		key := kind + "/" + q.String()
		if reported[key] {
			return // one of each kind per queue is enough
		}
		reported[key] = true
		r.violate(kind, format, args...)
		bad = append(bad, q)
	}
	for _, p := range r.sqlPulls {
		got := map[int64]bool{}
		prev := p.from - 1
		for _, m := range p.msgs {
			if m.offset <= prev || m.offset >= p.next {
				report(p.queue, KindFilterOrder, "queue %s: a filtered pull from offset %d (next %d, at %v) returned offset %d after %d",
					p.queue, p.from, p.next, p.call, m.offset, prev)
			}
			prev = max(prev, m.offset)
			got[m.offset] = true
			if !sel.match(sqlPropsOf(m.id)) {
				report(p.queue, KindFilterNonMatching, "queue %s: a pull with selector %q (at %v) returned message %s at offset %d, whose properties %+v do not match",
					p.queue, sel.expr, p.call, m.id, m.offset, sqlPropsOf(m.id))
			}
		}
		if r.mayLose(p.call, p.ret) {
			continue // what it scanned may have been an unsynced tail a crash lost (async flush)
		}
		log := logs[p.queue]
		for o := p.from; o < p.next; o++ {
			id, ok := log[o]
			if !ok || got[o] || r.h.Unreadable[p.queue][o] || !sel.match(sqlPropsOf(id)) {
				continue
			}
			report(p.queue, KindFilterSkipped, "queue %s: a pull with selector %q from offset %d (at %v) moved on to %d without message %s at offset %d, whose properties %+v match",
				p.queue, sel.expr, p.from, p.call, p.next, id, o, sqlPropsOf(id))
		}
	}
	return bad
}
