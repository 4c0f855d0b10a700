package controller

import (
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/sluicemq/sluice/broker/node"
)

// On-disk layout of a member: the raft log, one entry per log index (index i of the disk log
// holds raft entry i, protobuf encoded), and the hard state (term, vote, commit) as a small
// metadata file that WriteFile replaces atomically and durably.
const (
	raftLogName   = "controller/raft"
	hardStateFile = "controller/hardstate"
)

var marshal = proto.MarshalOptions{Deterministic: true}

// storage is what raft reads: an in-memory copy of the durable log plus the hard state,
// with the group's fixed membership as its configuration. Membership never changes at run
// time (it comes from Config.Peers), so no configuration entry is ever written and no
// snapshot is ever taken.
type storage struct {
	*raft.MemoryStorage
	conf *pb.ConfState
}

// InitialState reports the fixed membership instead of MemoryStorage's empty one.
func (s storage) InitialState() (*pb.HardState, *pb.ConfState, error) {
	hs, _, err := s.MemoryStorage.InitialState()
	return hs, s.conf, err
}

// hardState is the JSON form of the hard state file.
type hardState struct {
	Term   uint64 `json:"term"`
	Vote   uint64 `json:"vote"`
	Commit uint64 `json:"commit"`
}

// loadStorage opens the member's log and hard state and loads them into a storage for raft.
// A corrupt entry is an error: a member that lost part of a log it acknowledged must not
// vote or serve as if it had not.
func loadStorage(disk node.Disk, voters []uint64) (storage, node.Log, error) {
	st := storage{MemoryStorage: raft.NewMemoryStorage(), conf: pb.EnsureConfState(&pb.ConfState{Voters: voters})}
	l, err := disk.OpenLog(raftLogName)
	if err != nil {
		return storage{}, nil, fmt.Errorf("open controller log: %w", err)
	}
	first, last := l.FirstIndex(), l.LastIndex()
	if first != 1 && last >= first {
		return storage{}, nil, fmt.Errorf("controller log starts at index %d: controller logs are never compacted", first)
	}
	ents := make([]*pb.Entry, 0, last)
	for i := uint64(1); i <= last; i++ {
		b, err := l.Read(i)
		if err != nil {
			return storage{}, nil, fmt.Errorf("read controller log entry %d: %w", i, err)
		}
		e := &pb.Entry{}
		if err := proto.Unmarshal(b, e); err != nil {
			return storage{}, nil, fmt.Errorf("decode controller log entry %d: %w", i, err)
		}
		if e.GetIndex() != i {
			return storage{}, nil, fmt.Errorf("controller log entry %d claims index %d", i, e.GetIndex())
		}
		ents = append(ents, e)
	}
	if err := st.Append(ents); err != nil {
		return storage{}, nil, fmt.Errorf("load controller log: %w", err)
	}
	b, err := disk.ReadFile(hardStateFile)
	switch {
	case errors.Is(err, node.ErrNotFound):
	case err != nil:
		return storage{}, nil, fmt.Errorf("read controller hard state: %w", err)
	default:
		var hs hardState
		if err := json.Unmarshal(b, &hs); err != nil {
			return storage{}, nil, fmt.Errorf("decode controller hard state: %w", err)
		}
		if hs.Commit > last {
			return storage{}, nil, fmt.Errorf("controller hard state commits index %d beyond the log's last index %d", hs.Commit, last)
		}
		if err := st.SetHardState(&pb.HardState{Term: new(hs.Term), Vote: new(hs.Vote), Commit: new(hs.Commit)}); err != nil {
			return storage{}, nil, fmt.Errorf("load controller hard state: %w", err)
		}
	}
	return st, l, nil
}

// appendEntries writes entries to the disk log, first dropping any conflicting suffix raft
// replaces. They are durable only after a sync.
func appendEntries(l node.Log, ents []*pb.Entry) error {
	first := ents[0].GetIndex()
	if first <= l.LastIndex() {
		if err := l.TruncateBack(first - 1); err != nil {
			return fmt.Errorf("truncate controller log after %d: %w", first-1, err)
		}
	}
	if first != l.LastIndex()+1 {
		panic(fmt.Sprintf("controller: raft appends entry %d to a log ending at %d", first, l.LastIndex()))
	}
	for _, e := range ents {
		b, err := marshal.Marshal(e)
		if err != nil {
			panic(fmt.Sprintf("controller: encode raft entry: %v", err))
		}
		idx, err := l.Append(b)
		if err != nil {
			return fmt.Errorf("append controller log entry %d: %w", e.GetIndex(), err)
		}
		if idx != e.GetIndex() {
			panic(fmt.Sprintf("controller: raft entry %d landed at log index %d", e.GetIndex(), idx))
		}
	}
	return nil
}

// writeHardState replaces the hard state file (atomically and durably).
func writeHardState(disk node.Disk, hs *pb.HardState) error {
	b, _ := json.Marshal(hardState{Term: hs.GetTerm(), Vote: hs.GetVote(), Commit: hs.GetCommit()})
	if err := disk.WriteFile(hardStateFile, b); err != nil {
		return fmt.Errorf("write controller hard state: %w", err)
	}
	return nil
}
