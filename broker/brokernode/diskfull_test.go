package brokernode

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/node/nodetest"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// A failed fsync leaves the sends it covered unanswered (never FLUSH_DISK_TIMEOUT: they are
// not known stored), refuses new sends with SERVICE_NOT_AVAILABLE, and once a later sync
// succeeds the waiting send is acknowledged and sends are accepted again.
func TestFailedFsyncNeverAnswersStored(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	op := h.send(p, "Orders", 0, "m1", nil)
	h.env.CompleteSyncs(h.b, errIO)
	if resp := h.answer(p, op); resp != nil {
		t.Fatalf("send answered after a failed fsync: code %d %q", resp.Code, resp.Remark)
	}
	if max := h.b.Store().MaxOffset("Orders", 0); max != 0 {
		t.Fatalf("a message whose fsync failed is visible: max offset %d", max)
	}
	refused := h.mustAnswer(p, h.send(p, "Orders", 0, "m2", nil))
	if refused.Code != codec.ServiceNotAvailable || !strings.Contains(refused.Remark, "sync") {
		t.Fatalf("send after a failed fsync: code %d %q, want 14 naming the failed sync", refused.Code, refused.Remark)
	}
	// The retry succeeds: the first send is acknowledged; the next check accepts sends again.
	h.env.advance(h.b, h.cfg.CheckpointInterval)
	h.syncAll()
	if resp := h.mustAnswer(p, op); resp.Code != codec.Success {
		t.Fatalf("send once the sync succeeded: code %d %q", resp.Code, resp.Remark)
	}
	h.mustSend(p, "Orders", "m3")
	if got := h.b.RetentionStats().SendsRefused; got != 1 {
		t.Fatalf("SendsRefused = %d, want 1", got)
	}
}

// mustSend sends body to queue 0 of topic, completes the fsyncs and checks it is acknowledged.
func (h *brokerHarness) mustSend(c node.ConnID, topic, body string) {
	h.t.Helper()
	op := h.send(c, topic, 0, body, nil)
	h.syncAll()
	if resp := h.mustAnswer(c, op); resp.Code != codec.Success {
		h.t.Fatalf("send %q: code %d %q", body, resp.Code, resp.Remark)
	}
}

// A write that fails for lack of space refuses the send with SERVICE_NOT_AVAILABLE and the
// disk-full remark (the official client's retriable answer), pulls go on, and sends resume
// once the next check finds the disk writable.
func TestNoSpaceRefusesSendsAndResumes(t *testing.T) {
	disk := simdisk.New()
	h := startBroker(t, testConfig(), disk)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	h.mustSend(p, "Orders", "m1")
	disk.SetWriteError(node.ErrNoSpace)
	for i := range 3 {
		resp := h.mustAnswer(p, h.send(p, "Orders", 0, "full", nil))
		if resp.Code != codec.ServiceNotAvailable || resp.Remark != diskFullRemark {
			t.Fatalf("send %d on a full disk: code %d %q", i, resp.Code, resp.Remark)
		}
	}
	resp := h.mustAnswer(p, h.pull(p, "Orders", 0, 0))
	if resp.Code != codec.Success || len(decodeBody(t, resp.Body)) != 1 {
		t.Fatalf("pull on a full disk: code %d %q", resp.Code, resp.Remark)
	}
	// Still full a second later: the retry's append fails and refuses again.
	h.env.advance(h.b, noSpaceRetryDelay)
	if resp := h.mustAnswer(p, h.send(p, "Orders", 0, "still full", nil)); resp.Code != codec.ServiceNotAvailable {
		t.Fatalf("send on a disk still full after the retry delay: code %d %q", resp.Code, resp.Remark)
	}
	// Space freed: within a retry delay, not a checkpoint interval, sends are taken again.
	disk.SetWriteError(nil)
	h.env.advance(h.b, noSpaceRetryDelay)
	h.syncAll()
	h.mustSend(p, "Orders", "m2")
}

// Above DiskFullRatio sends are refused; below, accepted again. Pulls work throughout.
func TestDiskFullRatio(t *testing.T) {
	disk := simdisk.New()
	h := startBroker(t, testConfig(), disk)
	p := h.env.accept(h.b, "127.0.9.7:50000")
	h.mustSend(p, "Orders", "m1")
	used, _, _ := func() (uint64, uint64, error) { disk.SetCapacity(1 << 40); return disk.Space() }()
	disk.SetCapacity(used * 100 / 95) // 95 % used
	h.env.advance(h.b, h.cfg.CheckpointInterval)
	h.syncAll()
	resp := h.mustAnswer(p, h.send(p, "Orders", 0, "m2", nil))
	if resp.Code != codec.ServiceNotAvailable || resp.Remark != diskFullRemark {
		t.Fatalf("send at 95%% use: code %d %q", resp.Code, resp.Remark)
	}
	if resp := h.mustAnswer(p, h.pull(p, "Orders", 0, 0)); resp.Code != codec.Success {
		t.Fatalf("pull at 95%% use: code %d %q", resp.Code, resp.Remark)
	}
	disk.SetCapacity(used * 10) // 10 % used
	h.env.advance(h.b, h.cfg.CheckpointInterval)
	h.syncAll()
	h.mustSend(p, "Orders", "m3")
}

// noFilesDisk is a disk whose process has run out of file descriptors while fail is set:
// opening a log and writing a metadata file fail with node.ErrNoFiles, as the production
// disk reports EMFILE.
type noFilesDisk struct {
	node.Disk
	fail bool
}

func (d *noFilesDisk) OpenLog(name string) (node.Log, error) {
	if d.fail {
		return nil, fmt.Errorf("open log %s: %w", name, node.ErrNoFiles)
	}
	return d.Disk.OpenLog(name)
}

func (d *noFilesDisk) WriteFile(name string, data []byte) error {
	if d.fail {
		return fmt.Errorf("write file %s: %w", name, node.ErrNoFiles)
	}
	return d.Disk.WriteFile(name, data)
}

// Running out of file descriptors is handled like a full disk: a send that needs to open a
// consume queue, and one that needs to auto-create its topic, are refused with
// SERVICE_NOT_AVAILABLE saying the broker is out of file descriptors, new sends are refused
// for a retry delay, the store is not failed, and sends resume by themselves once descriptors
// are free.
func TestOutOfDescriptorsRefusesSendsAndResumes(t *testing.T) {
	inner := simdisk.New()
	disk := &noFilesDisk{Disk: inner}
	cfg := testConfig()
	cfg.MaxOpenQueueFiles = 1
	env := brokerEnv{nodetest.New(t, disk), t}
	b, err := New(env, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &brokerHarness{t: t, env: env, b: b, cfg: cfg, disk: inner}
	b.Start()
	h.syncAll()
	p := h.env.accept(h.b, "127.0.9.7:50000")
	h.mustSend(p, "Orders", "m1") // opens Orders/0, the one log the budget allows

	disk.fail = true
	resp := h.mustAnswer(p, h.send(p, "Orders", 1, "needs a new log", nil))
	if resp.Code != codec.ServiceNotAvailable || resp.Remark != noFilesRemark {
		t.Fatalf("send needing a consume queue without descriptors: code %d %q", resp.Code, resp.Remark)
	}
	if resp := h.mustAnswer(p, h.send(p, "Orders", 0, "refused meanwhile", nil)); resp.Code != codec.ServiceNotAvailable || resp.Remark != noFilesRemark {
		t.Fatalf("send during the refusal: code %d %q", resp.Code, resp.Remark)
	}
	h.env.advance(h.b, noSpaceRetryDelay)
	if resp := h.mustAnswer(p, h.send(p, "NewTopic", 0, "auto-create", nil)); resp.Code != codec.ServiceNotAvailable || resp.Remark != noFilesRemark {
		t.Fatalf("send auto-creating a topic without descriptors: code %d %q", resp.Code, resp.Remark)
	}
	if h.b.Store().Failed() {
		t.Fatal("running out of descriptors failed the store")
	}

	disk.fail = false
	h.env.advance(h.b, noSpaceRetryDelay)
	h.syncAll()
	h.mustSend(p, "Orders", "m2")
	op := h.send(p, "Orders", 1, "m3", nil)
	h.syncAll()
	if resp = h.mustAnswer(p, op); resp.Code != codec.Success {
		t.Fatalf("send to a new consume queue after descriptors were freed: code %d %q", resp.Code, resp.Remark)
	}
	h.mustSend(p, "NewTopic", "auto-created")
	if resp := h.mustAnswer(p, h.pull(p, "Orders", 0, 0)); resp.Code != codec.Success || len(decodeBody(t, resp.Body)) != 2 {
		t.Fatalf("pull of Orders/0: code %d %q", resp.Code, resp.Remark)
	}
}

// A sync the disk says can never succeed again in place (node.ErrSyncLost: the production
// disk's failed fsync) stops the broker: Failed says why, naming the log, the send it covered
// is never answered, new sends are refused, and no sync is retried.
func TestLostSyncStopsTheBroker(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) {
			cfg := testConfig()
			if async {
				cfg.FlushMode = AsyncFlush
			}
			h := startBroker(t, cfg, nil)
			p := h.env.accept(h.b, "127.0.9.7:50000")
			h.mustSend(p, "Orders", "m1")
			op := h.send(p, "Orders", 0, "m2", nil)
			if async {
				h.mustAnswer(p, op) // async flush: answered as appended, before any fsync
				h.env.advance(h.b, cfg.AsyncFlushInterval)
			}
			lost := fmt.Errorf("sync log commitlog: %w: %w", errIO, node.ErrSyncLost)
			if n := h.env.CompleteSyncs(h.b, lost); n == 0 {
				t.Fatal("no sync to fail")
			}
			err := h.b.Failed()
			if err == nil || !strings.Contains(err.Error(), "commitlog") || !errors.Is(err, node.ErrSyncLost) {
				t.Fatalf("Failed() = %v, want the lost sync of the commit log", err)
			}
			if !async {
				if resp := h.answer(p, op); resp != nil {
					t.Fatalf("send answered after its fsync was lost: code %d %q", resp.Code, resp.Remark)
				}
			}
			refused := h.mustAnswer(p, h.send(p, "Orders", 0, "m3", nil))
			if refused.Code != codec.ServiceNotAvailable {
				t.Fatalf("send after a lost sync: code %d %q, want 14", refused.Code, refused.Remark)
			}
			h.env.advance(h.b, 5*time.Second)
			if n := h.env.CompleteSyncs(h.b, nil); n != 0 {
				t.Fatalf("%d syncs retried after a lost sync", n)
			}
			if max := h.b.Store().MaxOffset("Orders", 0); !async && max != 1 {
				t.Fatalf("max offset %d after the lost sync, want 1 (m2 never confirmed)", max)
			}
		})
	}
}
