package controller

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/node/nodetest"
	"github.com/sluicemq/sluice/sim/simdisk"
)

const cluster, group = "C", "G"

// member is one controller on a hand-driven nodetest.Env; the test plays brokers and peers.
type member struct {
	t      testing.TB
	env    *nodetest.Env
	disk   *simdisk.Disk
	cfg    Config
	c      *Controller
	opaque int32
}

// oneMember is a single-member group whose leader needs no grace period (the stories of a new
// leader's grace set one).
func oneMember() Config {
	cfg := DefaultConfig(1, map[uint64]string{1: "10.0.0.1:9878"})
	cfg.NewLeaderGrace = 0
	return cfg
}

func threeMembers(id uint64) Config {
	return DefaultConfig(id, map[uint64]string{1: "10.0.0.1:9878", 2: "10.0.0.2:9878", 3: "10.0.0.3:9878"})
}

// startMember starts a member on disk (a new one if nil) and completes its start-up syncs.
func startMember(t testing.TB, cfg Config, disk *simdisk.Disk) *member {
	t.Helper()
	if disk == nil {
		disk = simdisk.New()
	}
	env := nodetest.New(t, disk)
	c, err := New(env, cfg)
	if err != nil {
		t.Fatalf("new controller: %v", err)
	}
	m := &member{t: t, env: env, disk: disk, cfg: cfg, c: c}
	env.Start(c)
	m.settle()
	return m
}

// settle completes every requested sync until the member asks for no more.
func (m *member) settle() {
	for i := 0; m.env.CompleteSyncs(m.c, nil) > 0; i++ {
		if i > 1000 {
			m.t.Fatal("the member keeps asking for syncs")
		}
	}
}

// run moves time forward by d, one tick at a time, completing syncs as they come.
func (m *member) run(d time.Duration) {
	for end := m.env.Now().Add(d); m.env.Now().Before(end); {
		step := min(m.cfg.TickInterval, end.Sub(m.env.Now()))
		m.env.Advance(m.c, step)
		m.settle()
	}
}

// request delivers a request on conn, completes the syncs it causes and returns its answer
// (nil if none came).
func (m *member) request(conn node.ConnID, code int16, ext map[string]string, body []byte) *codec.Command {
	m.t.Helper()
	m.opaque++
	req := codec.NewRequest(code, ext, body)
	req.Opaque = m.opaque
	before := len(m.env.Sent())
	m.env.Frame(m.c, conn, req)
	m.settle()
	for _, s := range m.env.Sent()[before:] {
		if s.Conn == conn && s.Cmd.IsResponse() && s.Cmd.Opaque == req.Opaque {
			return s.Cmd
		}
	}
	return nil
}

func (m *member) heartbeat(conn node.ConnID, id int64, extra ...string) *codec.Command {
	m.t.Helper()
	ext := map[string]string{"clusterName": cluster, "brokerName": group,
		"brokerId": strconv.FormatInt(id, 10), "brokerAddr": brokerAddr(id)}
	for i := 0; i+1 < len(extra); i += 2 {
		ext[extra[i]] = extra[i+1]
	}
	resp := m.request(conn, codec.ReqControllerBrokerHeartbeat, ext, nil)
	if resp == nil {
		m.t.Fatalf("heartbeat of broker %d: no answer", id)
	}
	return resp
}

func (m *member) alter(conn node.ConnID, master, epoch, inSyncEpoch int64, set ...int64) *codec.Command {
	m.t.Helper()
	body, _ := json.Marshal(AlterInSyncBody{InSync: set, InSyncEpoch: inSyncEpoch})
	resp := m.request(conn, codec.ReqControllerAlterInSyncSet, map[string]string{"clusterName": cluster, "brokerName": group,
		"masterBrokerId": strconv.FormatInt(master, 10), "masterEpoch": strconv.FormatInt(epoch, 10)}, body)
	if resp == nil {
		m.t.Fatalf("alter in-sync set by %d: no answer", master)
	}
	return resp
}

func brokerAddr(id int64) string { return "10.1.0." + strconv.FormatInt(id, 10) + ":10911" }

// info decodes the group carried by an answer.
func info(t testing.TB, resp *codec.Command) GroupInfo {
	t.Helper()
	var g GroupInfo
	if err := json.Unmarshal(resp.Body, &g); err != nil {
		t.Fatalf("answer code %d (%s) carries no group: %v", resp.Code, resp.Remark, err)
	}
	return g
}

// wantGroup checks an answer's code and group (master, epoch, in-sync set) and that the ext
// fields say the same as the body.
func wantGroup(t testing.TB, resp *codec.Command, code int16, master, epoch int64, inSync ...int64) GroupInfo {
	t.Helper()
	if resp.Code != code {
		t.Fatalf("answer code %d (%s), want %d", resp.Code, resp.Remark, code)
	}
	g := info(t, resp)
	if g.MasterID != master || g.MasterEpoch != epoch || !equalIDs(g.InSync, inSync) {
		t.Fatalf("group: master %d epoch %d in-sync %v; want master %d epoch %d in-sync %v", g.MasterID, g.MasterEpoch, g.InSync, master, epoch, inSync)
	}
	if resp.Ext("masterBrokerId") != strconv.FormatInt(master, 10) || resp.Ext("masterEpoch") != strconv.FormatInt(epoch, 10) {
		t.Fatalf("ext fields %v disagree with the body %+v", resp.ExtFields, g)
	}
	if master != 0 && (g.MasterAddr != brokerAddr(master) || resp.Ext("masterAddress") != g.MasterAddr) {
		t.Fatalf("master address %q / %q, want %q", g.MasterAddr, resp.Ext("masterAddress"), brokerAddr(master))
	}
	return g
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// raftFrame wraps a raft message as a peer sends it.
func raftFrame(t testing.TB, m *pb.Message) *codec.Command {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	cmd := codec.NewRequest(codec.ReqControllerRaftMessage, nil, b)
	cmd.Flag |= codec.FlagOneway
	return cmd
}

// raftSent decodes the raft messages the member sent after index from of env.Sent().
func raftSent(t testing.TB, env *nodetest.Env, from int) []*pb.Message {
	t.Helper()
	var out []*pb.Message
	for _, s := range env.Sent()[from:] {
		if s.Cmd.Code != codec.ReqControllerRaftMessage || s.Cmd.IsResponse() {
			continue
		}
		m := &pb.Message{}
		if err := proto.Unmarshal(s.Cmd.Body, m); err != nil {
			t.Fatalf("member sent an undecodable raft message: %v", err)
		}
		out = append(out, m)
	}
	return out
}
