package cluster

// The controllers' record of who was master when, kept by the simulator from the elections
// the controller members apply, and the checks that judge the brokers against it. A broker's
// own view of its mastership (its role, its lease) is what is under test; this record is not
// taken from it.
//
// What a correct group promises, and why the checks below are sound: a master at epoch E
// writes, acknowledges and answers pulls only while its lease holds, and the lease ends
// MasterLease (2 s) after the sending of the last heartbeat the controller confirmed it with,
// while the controller leader elects another master only MasterTimeout (3 s) after it last
// heard from the master (or NewLeaderGrace, 6 s, after it took over, whichever is later),
// counted on its own ticks, which a pause only slows. So the lease has ended before any member
// applies the election of epoch E+1: from then on, the master of E writes, acknowledges and
// answers pulls no more. The window in which the master of E does not yet know it was
// replaced (its lease still running, the controllers deciding) is the lease's job, and it
// lies before the election, not after. Hence, for every write or acknowledgement observed at
// time t by replica R at epoch E, and every pull R answered as the master of E (it held that
// role when the pull was called and when its answer came) to a call made at time t:
//
//   - the controllers named R the master of epoch E (a replica that writes, acknowledges or
//     answers as the master of an epoch the controllers gave another, or no one, is a
//     second master);
//   - no member had applied an election of a later epoch at t (the master was deposed: its
//     lease must have lapsed, and it must refuse).
//
// A pull is judged by its call time: the master may have processed it as late as its answer,
// but never before the call, so an answer to a pull called after the election came from a
// deposed master. Writes and acknowledgements are judged as of the arrival of the event that
// caused them (see checkMasterWrite).

import (
	"fmt"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/controller"
	"github.com/sluicemq/sluice/linearizability"
)

// masterTerm is one master epoch of a group as the controllers decided it.
type masterTerm struct {
	epoch  int64
	master int64         // replica id; 0: the group was masterless at this epoch
	from   time.Duration // when the first member applied the election
	until  time.Duration // when the first member applied the next one (-1: still current)
}

// mastership is, per group name, the terms in epoch order.
type mastership map[string][]masterTerm

// record notes an election applied at time now; a member replaying its log after a restart
// applies old elections again, which are already known. An election of another master at an
// epoch already known is not recorded: record returns the master named first, and ok false.
func (m mastership) record(group string, master, epoch int64, now time.Duration) (first int64, ok bool) {
	terms := m[group]
	if n := len(terms); n > 0 {
		last := &terms[n-1]
		if epoch <= last.epoch {
			if t, known := m.term(group, epoch); known && t.master != master {
				return t.master, false
			}
			return master, true
		}
		last.until = now
	}
	m[group] = append(terms, masterTerm{epoch: epoch, master: master, from: now, until: -1})
	return master, true
}

// term finds group's term at epoch.
func (m mastership) term(group string, epoch int64) (masterTerm, bool) {
	for _, t := range m[group] {
		if t.epoch == epoch {
			return t, true
		}
	}
	return masterTerm{}, false
}

// onElection is every controller member's OnElection.
func (r *run) onElection(k controller.GroupKey, masterID, epoch int64) {
	if first, ok := r.gr.terms.record(k.Group, masterID, epoch, r.w.Now()); !ok {
		r.violate("two masters in one epoch", "group %s: the controllers named master %d of epoch %d, then master %d at %v",
			k.Group, first, epoch, masterID, r.w.Now())
	}
	r.noteElection(k.Group, masterID, epoch)
}

// judgeMaster checks that replica id of group g acting as the master of epoch at time at
// (what: "wrote", "acknowledged", "answered a pull") was the controllers' master then. It
// reports one violation per group, epoch and kind of act; detail, which describes the act, is
// only called for a violation (the check runs on every write, acknowledgement and pull).
func (r *run) judgeMaster(g *groupState, id int, epoch int64, at time.Duration, what string, detail func() string) {
	t, ok := r.gr.terms.term(g.name, epoch)
	var kind, why string
	switch {
	case !ok || t.master != int64(id):
		kind = "master the controllers did not name"
		why = fmt.Sprintf("the controllers named no master of epoch %d", epoch)
		if ok {
			why = fmt.Sprintf("the controllers named master %d of epoch %d", t.master, epoch)
		}
	case t.until >= 0 && at >= t.until:
		kind = "deposed master"
		why = fmt.Sprintf("the controllers had elected epoch %d at %v (%s)", epoch+1, t.until, r.nextTerm(g.name, epoch))
	default:
		return
	}
	key := fmt.Sprintf("%s/%s/%d/%s", kind, g.name, epoch, what)
	if g.judged == nil {
		g.judged = map[string]bool{}
	}
	if g.judged[key] {
		return
	}
	g.judged[key] = true
	r.violate(kind, "group %s: replica %d %s as the master of epoch %d at %v (%s), but %s",
		g.name, id, what, epoch, at, detail(), why)
}

// nextTerm describes the term after epoch.
func (r *run) nextTerm(group string, epoch int64) string {
	if t, ok := r.gr.terms.term(group, epoch+1); ok {
		if t.master == 0 {
			return "masterless"
		}
		return fmt.Sprintf("master %d", t.master)
	}
	return "?"
}

// checkMasterWrite judges a write or an acknowledgement of replica id of g at epoch, at the
// time the event that caused it reached the replica: a paused replica works through what
// reached it meanwhile with its lease timers held back behind it, in arrival order, and its
// clock may have stepped, so it can only judge its lease as of each event's arrival (in
// production Env.Now is monotonic and it would judge it later, more strictly).
func (r *run) checkMasterWrite(g *groupState, id int, epoch int64, index uint64, what string) {
	at, now := g.nodes[id-1].EventTime(), r.w.Now()
	r.judgeMaster(g, id, epoch, at, what, func() string {
		detail := fmt.Sprintf("commit-log index %d", index)
		if now != at {
			detail += fmt.Sprintf(", on an event that reached it at %v, held back by a pause", at)
		}
		return detail
	})
}

// checkMasterPull judges the answer of the replica at addr to a pull of q called at call
// (atCall: masterEpochs then), if it answered as a master (see servedByMaster); code and msgs
// are the answer's status and message count.
func (r *run) checkMasterPull(addr string, atCall map[string]int64, call time.Duration, q linearizability.QueueKey, offset int64, code int16, msgs int) {
	epoch, ok := r.masterAnswer(addr, atCall)
	if !ok {
		return
	}
	for _, g := range r.gr.groups {
		for id, n := range g.nodes {
			if n.Addr == addr {
				now := r.w.Now()
				r.judgeMaster(g, id+1, epoch, call, "answered a pull", func() string {
					return fmt.Sprintf("pull of %s at offset %d called then, answered %s at %v", q, offset, pullStatus(code, msgs), now)
				})
				return
			}
		}
	}
}

// pullStatus names a pull answer's status for a violation.
func pullStatus(code int16, msgs int) string {
	switch code {
	case codec.Success:
		return fmt.Sprintf("%d messages", msgs)
	case codec.PullNotFound:
		return "nothing there"
	case codec.PullRetryImmediately:
		return "retry immediately"
	case codec.PullOffsetMoved:
		return "offset moved"
	}
	return fmt.Sprintf("code %d", code)
}
