package controller

import (
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// The member's election timer. Raft (go.etcd.io/raft/v3) campaigns by itself once a follower
// or candidate has counted a randomized election timeout of ticks without hearing from a
// leader, and draws that timeout from crypto/rand.Reader: a process global, which node code
// must not depend on (the simulator runs many seeded worlds, possibly at once, and each must
// replay from its seed). So raft is ticked only while it leads (its heartbeats and its
// check-quorum count ElectionTicks, with no randomness), and a follower or candidate is never
// ticked: this timer campaigns instead, after the same randomized timeout raft would draw
// (ElectionTicks plus a random part below ElectionTicks, from Env.Rand), restarted on what
// restarts raft's (a change of state, term or leader, a message from the leader, a vote
// granted). Raft's own timeout is still drawn, but never reached.
//
// One difference remains: raft's lease (with CheckQuorum, a follower that heard from a leader
// within ElectionTicks ignores votes) counts ticks too, and an unticked follower stays in its
// lease until it campaigns itself (which forgets the leader). So after a leader fails, the
// surviving members elect one once each of them has timed out, rather than once the first has.

// electionTimer is a member's own election timeout.
type electionTimer struct {
	// since is when it last restarted (on the tick count: Controller.ticked); after is its
	// timeout, drawn at the restart.
	since, after time.Duration
	// seen is what raft's state was when last looked at.
	seen raftView
}

// raftView is what restarts the timer when it changes.
type raftView struct {
	state      raft.StateType
	term, lead uint64
}

// restartElectionTimer restarts the timer with a new randomized timeout, as raft's reset does.
func (c *Controller) restartElectionTimer() {
	n := c.cfg.ElectionTicks
	c.election.since = c.ticked
	c.election.after = time.Duration(n+c.env.Rand().IntN(n)) * c.cfg.TickInterval
}

// raftView is raft's state, term and leader now.
func (c *Controller) raftView() raftView {
	st := c.rn.BasicStatus()
	return raftView{state: st.RaftState, term: st.GetTerm(), lead: st.Lead}
}

// noteRaftState restarts the timer if raft's state, term or leader changed.
func (c *Controller) noteRaftState() {
	if v := c.raftView(); v != c.election.seen {
		c.election.seen = v
		c.restartElectionTimer()
	}
}

// noteHeard restarts the timer on a message from the leader, as a follower's raft does.
func (c *Controller) noteHeard(m *pb.Message) {
	c.noteRaftState()
	if t := m.GetType(); (t == pb.MsgApp || t == pb.MsgHeartbeat) && m.GetFrom() == c.election.seen.lead {
		c.restartElectionTimer()
	}
}

// noteSent restarts the timer when the member grants a vote, as raft does.
func (c *Controller) noteSent(m *pb.Message) {
	if m.GetType() == pb.MsgVoteResp && !m.GetReject() {
		c.restartElectionTimer()
	}
}

// tick advances one tick: raft's while it leads, the election timer otherwise.
func (c *Controller) tick() {
	c.noteRaftState()
	if c.election.seen.state == raft.StateLeader {
		c.rn.Tick()
		c.noteRaftState()
		return
	}
	if c.ticked-c.election.since < c.election.after {
		return
	}
	if err := c.rn.Campaign(); err != nil {
		c.log.Warn("campaign", "err", err)
	}
	c.election.seen = c.raftView()
	c.restartElectionTimer()
}
