package controller

import (
	"errors"

	"github.com/sluicemq/sluice/broker/metrics"
)

var errNoLeader = errors.New("no raft leader known")

// The controller's metrics (docs/metrics.md).
var (
	mElections    = metrics.New("sluice_controller_elections_total", "Elections this member applied from the raft log (replays after a restart included), by cluster, group and outcome: elected (a master named) or masterless.", metrics.KindCounter, "cluster", "group", "outcome")
	mLeader       = metrics.New("sluice_controller_leader", "1 if this member is the raft leader, else 0.", metrics.KindGauge)
	mLeaderID     = metrics.New("sluice_controller_leader_id", "The raft leader's member id as this member knows it (0: none known).", metrics.KindGauge)
	mTerm         = metrics.New("sluice_controller_raft_term", "This member's raft term.", metrics.KindGauge)
	mApplied      = metrics.New("sluice_controller_raft_applied_index", "The last raft log index this member applied.", metrics.KindGauge)
	mGroupEpoch   = metrics.New("sluice_controller_group_epoch", "A broker group's master epoch (it counts elections).", metrics.KindGauge, "cluster", "group")
	mGroupMaster  = metrics.New("sluice_controller_group_master_id", "A broker group's master replica id (0: masterless).", metrics.KindGauge, "cluster", "group")
	mGroupInSync  = metrics.New("sluice_controller_group_insync_replicas", "Size of a broker group's in-sync set, the master counted.", metrics.KindGauge, "cluster", "group")
	mGroupMembers = metrics.New("sluice_controller_group_replicas", "Replicas registered in a broker group.", metrics.KindGauge, "cluster", "group")
)

// countElection counts an election applied for group k.
func (c *Controller) countElection(k GroupKey, masterID int64) {
	outcome := "elected"
	if masterID == 0 {
		outcome = "masterless"
	}
	c.rec.Counter(mElections, k.Cluster, k.Group, outcome).Add(1)
}

// ReportMetrics implements metrics.Reporter. Read-only.
func (c *Controller) ReportMetrics(r metrics.Recorder) {
	st := c.rn.BasicStatus()
	r.Gauge(mLeader).Set(metrics.Bool(c.isLeader))
	r.Gauge(mLeaderID).Set(float64(st.Lead))
	r.Gauge(mTerm).Set(float64(st.GetTerm()))
	r.Gauge(mApplied).Set(float64(c.appliedIndex))
	for _, d := range []*metrics.Desc{mGroupEpoch, mGroupMaster, mGroupInSync, mGroupMembers} {
		r.Reset(d)
	}
	for _, k := range c.state.Keys() {
		g := c.state.Group(k)
		r.Gauge(mGroupEpoch, k.Cluster, k.Group).Set(float64(g.MasterEpoch))
		r.Gauge(mGroupMaster, k.Cluster, k.Group).Set(float64(g.MasterID))
		r.Gauge(mGroupInSync, k.Cluster, k.Group).Set(float64(len(g.InSync)))
		r.Gauge(mGroupMembers, k.Cluster, k.Group).Set(float64(len(g.Replicas)))
	}
}

// Health reports why this member is not ready (nil when it is): it failed, or knows no raft
// leader. Read-only.
func (c *Controller) Health() error {
	if c.failed != nil {
		return c.failed
	}
	if c.rn.BasicStatus().Lead == 0 {
		return errNoLeader
	}
	return nil
}
