package brokernode

import (
	"fmt"
	"slices"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
)

// eventLog collects what a broker reports to Config.Observe.
type eventLog struct{ events []Event }

func (l *eventLog) observe(e Event) { l.events = append(l.events, e) }

// take returns the events collected since the last take.
func (l *eventLog) take() []Event {
	out := l.events
	l.events = nil
	return out
}

func sameEvents(t *testing.T, what string, got, want []Event) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: events %v, want %v", what, fmt.Sprint(got), fmt.Sprint(want))
	}
}

// A single broker reports a send's write, its confirmation and its acknowledgement, at epoch 0,
// the acknowledgement only once the answer goes out after the fsync.
func TestObserveSingleBroker(t *testing.T) {
	var log eventLog
	cfg := testConfig()
	cfg.Observe = log.observe
	h := startBroker(t, cfg, nil)
	last := h.b.store.CommitLog().LastIndex()
	log.take()
	c := h.env.accept(h.b, "10.0.0.1:5000")
	op := h.send(c, "T", 0, "a", nil)
	sameEvents(t, "after the send", log.take(), []Event{Wrote{Index: last + 1}})
	if h.answer(c, op) != nil {
		t.Fatal("answered before the fsync")
	}
	h.syncAll()
	sameEvents(t, "after the fsync", log.take(), []Event{Confirmed{Index: last + 1}, Acknowledged{Index: last + 1}})
	if resp := h.mustAnswer(c, op); resp.Code != codec.Success {
		t.Fatalf("send answered %d %s", resp.Code, resp.Remark)
	}
}

// A replica reports the roles it takes, and a slave the truncation of its log at a handshake.
func TestObserveReplicaRolesAndTruncation(t *testing.T) {
	var log eventLog
	cfg := replicaConfig()
	cfg.Observe = log.observe
	h := startBroker(t, cfg, nil)
	h.controllerSays(1, testMaster, 1, "1,2", 2)
	sameEvents(t, "named slave", log.take(), []Event{RoleChanged{Role: "slave", Epoch: 1, MasterID: 1}})
	c, hs := h.lastRequest(testMaster, codec.ReqReplicaHandshake)
	h.reply(c, hs, codec.Success, map[string]string{"lastIndex": "0", "epoch": "1"}, epochsJSON(t, 1, 1))
	h.fetchAnswer(1, 1, 1, record(t, "m1", 1, 0), record(t, "m2", 2, 1), record(t, "m3", 3, 2))
	h.syncAll()
	sameEvents(t, "replicated, master confirmed 1", log.take(), []Event{Confirmed{Epoch: 1, Index: 1}})

	h.env.advance(h.b, h.b.cfg.ControllerHeartbeatInterval+replicaTickInterval)
	h.controllerSays(3, "127.0.0.13:10911", 3, "3", 5)
	c, hs = h.lastRequest("127.0.0.13:10911", codec.ReqReplicaHandshake)
	h.reply(c, hs, codec.Success, map[string]string{"lastIndex": "1", "epoch": "3"}, epochsJSON(t, 1, 1, 3, 2))
	sameEvents(t, "a new master whose log shares index 1", log.take(), []Event{
		RoleChanged{Role: "slave", Epoch: 3, MasterID: 3},
		Truncated{Epoch: 3, After: 1, Dropped: 2},
	})

	h.env.advance(h.b, h.b.cfg.ControllerHeartbeatInterval+replicaTickInterval)
	h.controllerSays(0, "", 4, "", 6)
	sameEvents(t, "no master", log.take(), []Event{RoleChanged{Role: "none", Epoch: 4}})
}
