package controller

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/sluicemq/sluice/broker/codec"
)

// Bounds on what outside requests can make the state machine hold.
const (
	// MaxReplicasPerGroup bounds the replicas one broker group may register.
	MaxReplicasPerGroup = 32
	// MaxGroups bounds the broker groups the controller tracks.
	MaxGroups = 4096
)

// GroupKey names one broker group.
type GroupKey struct {
	Cluster string
	Group   string
}

func (k GroupKey) String() string { return k.Cluster + "/" + k.Group }

func (k GroupKey) less(o GroupKey) bool {
	if k.Cluster != o.Cluster {
		return k.Cluster < o.Cluster
	}
	return k.Group < o.Group
}

// Group is the replicated record of one broker group. Broker ids are at least 1; 0 means none.
type Group struct {
	Key GroupKey
	// Replicas maps every registered broker id to its address.
	Replicas map[int64]string
	// MasterID is the current master, 0 while the group is masterless.
	MasterID int64
	// MasterEpoch counts elections: every election (including one that leaves the group
	// masterless) bumps it, so a master is known by its epoch.
	MasterEpoch int64
	// InSync is the in-sync replica set, sorted: the replicas that hold every entry the
	// master acknowledged. It contains the master whenever there is one.
	InSync []int64
	// InSyncEpoch counts changes of InSync.
	InSyncEpoch int64
}

func (g *Group) inSync(id int64) bool { return slices.Contains(g.InSync, id) }

// Op names a command of the replicated state machine.
type Op string

// The commands. Each is proposed by the raft leader, committed through raft and applied by
// every member in log order.
const (
	// OpRegister adds a replica to its group (creating the group) or updates its address.
	OpRegister Op = "register"
	// OpAlterInSync replaces the in-sync set; the current master asks for it, and it is
	// accepted only with the current master epoch and in-sync epoch.
	OpAlterInSync Op = "alterInSync"
	// OpElect makes NewMaster the master (0: no master) with the next epoch, if the group is
	// still at ExpectEpoch.
	OpElect Op = "elect"
)

// Command is one entry of the replicated log (JSON encoded).
type Command struct {
	Op Op `json:"op"`
	// ProposalID matches the applied command to the request the proposing member waits on
	// (0: nobody waits).
	ProposalID uint64 `json:"pid,omitempty"`
	Cluster    string `json:"cluster"`
	Group      string `json:"group"`

	// OpRegister.
	BrokerID int64  `json:"brokerId,omitempty"`
	Addr     string `json:"addr,omitempty"`

	// OpAlterInSync: the asking master, the epochs it knows, the set it wants.
	MasterID    int64   `json:"masterId,omitempty"`
	MasterEpoch int64   `json:"masterEpoch,omitempty"`
	InSyncEpoch int64   `json:"inSyncEpoch,omitempty"`
	InSync      []int64 `json:"inSync,omitempty"`

	// OpElect.
	NewMaster   int64 `json:"newMaster,omitempty"`
	ExpectEpoch int64 `json:"expectEpoch,omitempty"`
	// Unclean marks an election of a replica outside the in-sync set. Only the planted bug
	// Config.Bugs.Has(bugs.ElectOutsideInSyncSet) proposes one; applying it skips the in-sync check.
	Unclean bool `json:"unclean,omitempty"`
}

func (c Command) key() GroupKey { return GroupKey{c.Cluster, c.Group} }

// Result is what applying a command did: Code is a codec response code (Success or why the
// command was refused); Group is the group's record afterwards (nil if there is none).
type Result struct {
	Code   int16
	Remark string
	Group  *Group
}

// State is the replicated state machine: every member applies the same committed commands
// in the same order and so holds the same State. It is pure: no clock, no randomness.
type State struct {
	groups map[GroupKey]*Group
	// keepEpoch is the planted bug bugs.ElectKeepsEpoch (every member is configured alike, so
	// every member applies alike): an election of a new master keeps the master epoch.
	keepEpoch bool
}

// NewState returns an empty state.
func NewState() *State { return &State{groups: map[GroupKey]*Group{}} }

// Group returns the record of one group, or nil. The caller must not modify it.
func (s *State) Group(k GroupKey) *Group { return s.groups[k] }

// Keys lists every group, sorted by cluster then group.
func (s *State) Keys() []GroupKey {
	keys := slices.Collect(maps.Keys(s.groups))
	slices.SortFunc(keys, func(a, b GroupKey) int {
		switch {
		case a.less(b):
			return -1
		case b.less(a):
			return 1
		}
		return 0
	})
	return keys
}

// Apply applies one committed command. A refused command changes nothing.
func (s *State) Apply(c Command) Result {
	var r Result
	switch c.Op {
	case OpRegister:
		r = s.register(c)
	case OpAlterInSync:
		r = s.alterInSync(c)
	case OpElect:
		r = s.elect(c)
	default:
		r = Result{Code: codec.ControllerInvalidRequest, Remark: "unknown controller command " + strconv.Quote(string(c.Op))}
	}
	if g := s.groups[c.key()]; g != nil {
		g.check()
		r.Group = g
	}
	return r
}

func (s *State) register(c Command) Result {
	if c.Cluster == "" || c.Group == "" || c.BrokerID < 1 || c.Addr == "" {
		return Result{Code: codec.ControllerInvalidRequest, Remark: "register: cluster, group, broker id (>= 1) and address are required"}
	}
	g := s.groups[c.key()]
	if g == nil {
		if len(s.groups) >= MaxGroups {
			return Result{Code: codec.ControllerInvalidRequest, Remark: fmt.Sprintf("register: the controller already tracks %d broker groups", MaxGroups)}
		}
		g = &Group{Key: c.key(), Replicas: map[int64]string{}}
		s.groups[c.key()] = g
	}
	if _, known := g.Replicas[c.BrokerID]; !known && len(g.Replicas) >= MaxReplicasPerGroup {
		return Result{Code: codec.ControllerInvalidReplicas, Remark: fmt.Sprintf("register: group %s already has %d replicas", g.Key, MaxReplicasPerGroup)}
	}
	g.Replicas[c.BrokerID] = c.Addr
	return Result{Code: codec.Success}
}

func (s *State) alterInSync(c Command) Result {
	g := s.groups[c.key()]
	if g == nil {
		return Result{Code: codec.ControllerInvalidRequest, Remark: "alter in-sync set: no such broker group " + c.key().String()}
	}
	if code, remark := g.checkAlter(c.MasterID, c.MasterEpoch, c.InSyncEpoch, c.InSync); code != codec.Success {
		return Result{Code: code, Remark: remark}
	}
	g.InSync = sortedSet(c.InSync)
	g.InSyncEpoch++
	return Result{Code: codec.Success}
}

// checkAlter says whether the master masterID, knowing masterEpoch and inSyncEpoch, may set the
// in-sync set to set.
func (g *Group) checkAlter(masterID, masterEpoch, inSyncEpoch int64, set []int64) (int16, string) {
	switch {
	case masterEpoch != g.MasterEpoch:
		return codec.ControllerFencedMasterEpoch, fmt.Sprintf("alter in-sync set: master epoch %d is not the current epoch %d", masterEpoch, g.MasterEpoch)
	case g.MasterID == 0 || masterID != g.MasterID:
		return codec.ControllerInvalidMaster, fmt.Sprintf("alter in-sync set: broker %d is not the master of %s (master %d)", masterID, g.Key, g.MasterID)
	case inSyncEpoch != g.InSyncEpoch:
		return codec.ControllerFencedInSyncEpoch, fmt.Sprintf("alter in-sync set: in-sync epoch %d is not the current epoch %d", inSyncEpoch, g.InSyncEpoch)
	case !slices.Contains(set, masterID):
		return codec.ControllerInvalidReplicas, "alter in-sync set: the set must contain the master"
	}
	seen := map[int64]bool{}
	for _, id := range set {
		if _, ok := g.Replicas[id]; !ok || seen[id] {
			return codec.ControllerInvalidReplicas, fmt.Sprintf("alter in-sync set: broker %d is not a registered replica of %s, or is listed twice", id, g.Key)
		}
		seen[id] = true
	}
	return codec.Success, ""
}

func (s *State) elect(c Command) Result {
	g := s.groups[c.key()]
	if g == nil {
		return Result{Code: codec.ControllerInvalidRequest, Remark: "elect: no such broker group " + c.key().String()}
	}
	if c.ExpectEpoch != g.MasterEpoch {
		return Result{Code: codec.ControllerFencedMasterEpoch, Remark: fmt.Sprintf("elect: proposed at epoch %d, the group is at epoch %d", c.ExpectEpoch, g.MasterEpoch)}
	}
	if c.NewMaster == 0 {
		if g.MasterID == 0 {
			return Result{Code: codec.ControllerInvalidRequest, Remark: "elect: the group is already masterless"}
		}
		// The master is gone and nobody may replace it: the group goes masterless under a
		// new epoch (fencing the old master) and keeps its in-sync set, whose members stay
		// the only ones eligible.
		g.MasterID = 0
		g.MasterEpoch++
		return Result{Code: codec.Success}
	}
	if _, ok := g.Replicas[c.NewMaster]; !ok {
		return Result{Code: codec.ControllerInvalidMaster, Remark: fmt.Sprintf("elect: broker %d is not a replica of %s", c.NewMaster, g.Key)}
	}
	if c.NewMaster == g.MasterID {
		return Result{Code: codec.ControllerInvalidMaster, Remark: fmt.Sprintf("elect: broker %d is already the master", c.NewMaster)}
	}
	// An empty in-sync set means the group never had a master: any replica may be first.
	if len(g.InSync) > 0 && !g.inSync(c.NewMaster) && !c.Unclean {
		return Result{Code: codec.ControllerInvalidMaster, Remark: fmt.Sprintf("elect: broker %d is not in the in-sync set %v", c.NewMaster, g.InSync)}
	}
	g.MasterID = c.NewMaster
	if !s.keepEpoch {
		g.MasterEpoch++
	}
	// Only the new master is known to hold everything now; the others rejoin once they have
	// caught up with it (the master alters the set).
	g.InSync = []int64{c.NewMaster}
	g.InSyncEpoch++
	return Result{Code: codec.Success}
}

// check panics if the group breaks an invariant of the state machine.
func (g *Group) check() {
	if err := g.invariant(); err != nil {
		panic(err.Error())
	}
}

// invariant reports the first invariant of the state machine the group breaks, or nil.
func (g *Group) invariant() error {
	if g.MasterID != 0 {
		if _, ok := g.Replicas[g.MasterID]; !ok {
			return fmt.Errorf("controller: group %s: master %d is not a replica", g.Key, g.MasterID)
		}
		if !g.inSync(g.MasterID) {
			return fmt.Errorf("controller: group %s: master %d is not in the in-sync set %v", g.Key, g.MasterID, g.InSync)
		}
	}
	for i, id := range g.InSync {
		if _, ok := g.Replicas[id]; !ok || (i > 0 && g.InSync[i-1] >= id) {
			return fmt.Errorf("controller: group %s: in-sync set %v is not a sorted set of replicas", g.Key, g.InSync)
		}
	}
	if g.MasterEpoch < 0 || g.InSyncEpoch < 0 || len(g.Replicas) > MaxReplicasPerGroup {
		return fmt.Errorf("controller: group %s: bad epochs or too many replicas", g.Key)
	}
	return nil
}

func sortedSet(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

func encodeCommand(c Command) []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("controller: encode command: %v", err))
	}
	return b
}

func decodeCommand(b []byte) (Command, error) {
	var c Command
	if err := json.Unmarshal(b, &c); err != nil {
		return Command{}, fmt.Errorf("decode controller command: %w", err)
	}
	return c, nil
}
