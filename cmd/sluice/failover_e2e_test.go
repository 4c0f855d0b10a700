package main

// Issue 4's real-process failover test: a controller, a name server and a broker group of three
// 'sluice broker' processes on loopback, sync replication with at least two in-sync replicas.
// Producers (the project's client and the official Go client) keep sync sends in flight; the
// master is killed with SIGKILL; a slave must be elected and acknowledge sends within 10 s;
// every acknowledged message must be consumable from the new master afterwards; and the old
// master, restarted on its data, must rejoin as a slave and truncate exactly the tail of its
// log that was never acknowledged.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/clientrt"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/controller"
	"github.com/sluicemq/sluice/broker/diskfile"
)

const (
	foCluster = "FailoverCluster"
	foGroup   = "fo"
	foTopic   = "FailoverTopic"
	// officialRouteRefresh is how often the official Go client asks the name server for the
	// routes it uses (its unexported _PullNameServerInterval); between refreshes it keeps
	// sending to the master it knows.
	officialRouteRefresh = 30 * time.Second
)

// foProcs is the processes of the failover test.
type foProcs struct {
	data       string
	ctl, ns    string
	brokerAddr map[int64]string
	brokers    map[int64]*devProcess
}

func (c *foProcs) brokerArgs(id int64) []string {
	return []string{"broker", "--data", c.data, "--addr", c.brokerAddr[id], "--namesrv", c.ns,
		"--cluster", foCluster, "--group", foGroup, "--id", strconv.FormatInt(id, 10), "--controllers", c.ctl,
		"--replication", "sync", "--min-insync", "2", "--log-level", "info"}
}

func (c *foProcs) startBroker(t *testing.T, id int64) {
	t.Helper()
	c.brokers[id] = startProcess(t, "listening on", c.brokerArgs(id)...)
}

func (c *foProcs) dataDir(id int64) string {
	return filepath.Join(c.data, fmt.Sprintf("%s-%d", foGroup, id))
}

// foGroupInfo asks the controller for the group (a read-only request).
func foGroupInfo(ctl string) (controller.GroupInfo, error) {
	resp, err := controllerCall(ctl, codec.ReqControllerGetReplicaInfo,
		map[string]string{"clusterName": foCluster, "brokerName": foGroup}, nil)
	if err != nil {
		return controller.GroupInfo{}, err
	}
	if resp.Code != codec.Success {
		return controller.GroupInfo{}, fmt.Errorf("replica info: code %d: %s", resp.Code, resp.Remark)
	}
	var body controller.ReplicaInfoBody
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return controller.GroupInfo{}, fmt.Errorf("replica info body: %w", err)
	}
	if len(body.Groups) != 1 {
		return controller.GroupInfo{}, fmt.Errorf("replica info: %d groups", len(body.Groups))
	}
	return body.Groups[0], nil
}

// foAck is one acknowledged send.
type foAck struct {
	queue  client.MessageQueue
	offset int64
	crc    uint32
}

// foAcks records acknowledged sends from every producer, and the first acknowledgement of a
// send started after the kill (only a new master can give one).
type foAcks struct {
	mu         sync.Mutex
	acks       map[string]foAck
	after      time.Time // the kill; zero before it
	firstAfter map[string]time.Time
	nAfter     int // acknowledged sends started after the kill
	perVia     map[string]int
}

func (a *foAcks) add(via, id string, ack foAck, started time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, dup := a.acks[id]; dup {
		panic("failover test: id acknowledged twice: " + id)
	}
	a.acks[id] = ack
	a.perVia[via]++
	if !a.after.IsZero() && started.After(a.after) {
		a.nAfter++
		if _, ok := a.firstAfter[via]; !ok {
			a.firstAfter[via] = time.Now()
		}
	}
}

func (a *foAcks) count(via string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.perVia[via]
}

func (a *foAcks) first(via string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.firstAfter[via]
	return at, ok
}

// foBody is a message body that carries its id before a '|', then random bytes.
func foBody(id string, rng *rand.Rand) []byte {
	body := make([]byte, 512)
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	copy(body, id+"|")
	return body
}

// foID reads the id back out of a body ("" if it has none).
func foID(body []byte) string {
	if i := bytes.IndexByte(body, '|'); i > 0 {
		return string(body[:i])
	}
	return ""
}

// foEntry is one commit-log entry of a replica.
type foEntry struct {
	topic string
	id    string
}

// readCommitLog reads a stopped replica's commit log (index to entry) from its data directory.
func readCommitLog(t *testing.T, dir string) (map[uint64]foEntry, uint64) {
	t.Helper()
	d, err := diskfile.Open(dir, diskfile.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	l, err := d.OpenLog("commitlog")
	if err != nil {
		t.Fatalf("open the commit log in %s: %v", dir, err)
	}
	defer l.Close()
	out := map[uint64]foEntry{}
	for i := l.FirstIndex(); i != 0 && i <= l.LastIndex(); i++ {
		rec, err := l.Read(i)
		if err != nil {
			t.Fatalf("%s: read commit log index %d: %v", dir, i, err)
		}
		m, _, err := codec.DecodeRecord(rec)
		if err != nil {
			t.Fatalf("%s: decode commit log index %d: %v", dir, i, err)
		}
		out[i] = foEntry{m.Topic, foID(m.Body)}
	}
	return out, l.LastIndex()
}

var truncatedRE = regexp.MustCompile(`msg="truncated the log where it differs from the master's" .*?after=(\d+) dropped=(\d+)`)

// startFoGroup starts a controller, a name server and a group of three brokers (ids 1 to 3),
// each its own process on free loopback ports; their stderr is logged if the test fails. It
// returns the processes and the controller's.
func startFoGroup(t *testing.T) (*foProcs, *devProcess) {
	t.Helper()
	c := &foProcs{data: t.TempDir(), ctl: freePort(t), ns: freePort(t),
		brokerAddr: map[int64]string{1: freePort(t), 2: freePort(t), 3: freePort(t)}, brokers: map[int64]*devProcess{}}
	ctl := startProcess(t, "listening on", "controller", "--id", "1", "--peers", "1="+c.ctl, "--data", c.data, "--log-level", "warn")
	startProcess(t, "listening on", "namesrv", "--addr", c.ns, "--log-level", "warn")
	for id := int64(1); id <= 3; id++ {
		c.startBroker(t, id)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for id, p := range c.brokers {
				t.Logf("broker %d stderr (last 6000 bytes):\n%s", id, tail(p.stderr.String(), 6000))
			}
		}
	})
	return c, ctl
}

func TestFailoverKillDashNineMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	t.Parallel()
	testStart := time.Now()
	c, _ := startFoGroup(t)
	// The controller's leader elects no replacement during its first NewLeaderGrace: a kill
	// must come later, or the measured failover includes that wait.
	electableFrom := time.Now().Add(controller.DefaultConfig(1, map[uint64]string{1: c.ctl}).NewLeaderGrace + 2*time.Second)

	acks := &foAcks{acks: map[string]foAck{}, firstAfter: map[string]time.Time{}, perVia: map[string]int{}}
	stopOfficial, stopOurs := make(chan struct{}), make(chan struct{})
	var officialWG, oursWG sync.WaitGroup

	// The project's client keeps 64 sends in flight.
	cli, err := clientrt.Start(client.DefaultConfig(c.ns), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	sem := make(chan struct{}, 64)
	oursWG.Add(1)
	go func() {
		defer oursWG.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		for n := 0; ; n++ {
			select {
			case <-stopOurs:
				return
			case sem <- struct{}{}:
			}
			id := fmt.Sprintf("c-%06d", n)
			body := foBody(id, rng)
			started := time.Now()
			oursWG.Add(1)
			cli.SendAsync(client.Message{Topic: foTopic, Body: body}, func(res client.SendResult, err error) {
				if err == nil {
					acks.add("clientrt", id, foAck{res.Queue, res.QueueOffset, crc32.ChecksumIEEE(body)}, started)
				}
				go func() { // done must not block the client's loop
					if err != nil {
						time.Sleep(20 * time.Millisecond)
					}
					<-sem
					oursWG.Done()
				}()
			})
		}
	}()

	// A master with every replica in sync, acknowledged sends, and the controller past its
	// grace period.
	var before controller.GroupInfo
	waitFor(t, 30*time.Second, "a master with all three replicas in sync", func() bool {
		before, err = foGroupInfo(c.ctl)
		return err == nil && before.MasterID != 0 && len(before.InSync) == 3
	})
	// The official producer starts once the group has a master: it looks a route up again only
	// every 30 s from its start (a route without a master leaves it without queues until then).
	officialStart := time.Now()
	op, err := rocketmq.NewProducer(producer.WithNameServer([]string{c.ns}), producer.WithInstanceName(uniqueName(t, "inst")),
		producer.WithGroupName(uniqueName(t, "pg")), producer.WithRetry(2), producer.WithSendMsgTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Start(); err != nil {
		t.Fatal(err)
	}
	defer op.Shutdown()
	for g := range 2 {
		officialWG.Add(1)
		go func() {
			defer officialWG.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for n := 0; ; n++ {
				select {
				case <-stopOfficial:
					return
				default:
				}
				id := fmt.Sprintf("o%d-%06d", g, n)
				body := foBody(id, rng)
				started := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				res, err := op.SendSync(ctx, primitive.NewMessage(foTopic, body))
				cancel()
				if err == nil && res.Status == primitive.SendOK {
					acks.add("official", id, foAck{client.MessageQueue{Topic: foTopic, BrokerName: res.MessageQueue.BrokerName,
						QueueID: int32(res.MessageQueue.QueueId)}, res.QueueOffset, crc32.ChecksumIEEE(body)}, started)
				} else {
					time.Sleep(200 * time.Millisecond)
				}
			}
		}()
	}

	waitFor(t, 30*time.Second, "acknowledged sends from both producers", func() bool {
		return acks.count("clientrt") >= 300 && acks.count("official") >= 20 && time.Now().After(electableFrom)
	})
	master := before.MasterID
	var slaves []int64
	for id := range c.brokers {
		if id != master {
			slaves = append(slaves, id)
		}
	}
	t.Logf("master %d at epoch %d, in-sync %v; sends acknowledged: %d by the project's client, %d by the official one",
		master, before.MasterEpoch, before.InSync, acks.count("clientrt"), acks.count("official"))

	// The slaves pause (SIGSTOP) just before the kill: each has at most one fetch outstanding,
	// which the first burst's entries answer; the second burst then reaches the master only,
	// so the master surely dies with a tail no other replica holds, and none of it can have
	// been acknowledged (the in-sync slaves are paused).
	for _, id := range slaves {
		if err := c.brokers[id].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	resumed := false
	resume := func() {
		if resumed {
			return
		}
		resumed = true
		for _, id := range slaves {
			if err := c.brokers[id].cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Errorf("resume broker %d: %v", id, err)
			}
		}
	}
	defer resume()
	rng := rand.New(rand.NewPCG(3, 4))
	for burst := range 2 {
		for n := range 40 {
			id := fmt.Sprintf("b%d-%03d", burst, n)
			body := foBody(id, rng)
			started := time.Now()
			oursWG.Add(1)
			cli.SendAsync(client.Message{Topic: foTopic, Body: body}, func(res client.SendResult, err error) {
				if err == nil {
					acks.add("burst", id, foAck{res.Queue, res.QueueOffset, crc32.ChecksumIEEE(body)}, started)
				}
				oursWG.Done()
			})
		}
		time.Sleep(400 * time.Millisecond)
	}

	killAt := time.Now()
	acks.mu.Lock()
	acks.after = killAt
	acks.mu.Unlock()
	old := c.brokers[master]
	if err := old.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-old.exited
	resume()

	// The controller elects a slave; measure when, by polling it.
	var after controller.GroupInfo
	waitFor(t, 20*time.Second, "the controller to elect a new master", func() bool {
		after, err = foGroupInfo(c.ctl)
		return err == nil && after.MasterEpoch > before.MasterEpoch && after.MasterID != 0
	})
	electedIn := time.Since(killAt)
	if after.MasterID == master {
		t.Fatalf("the controller re-elected the killed broker %d: %+v", master, after)
	}
	waitFor(t, 20*time.Second, "a send acknowledged by the new master", func() bool { _, ok := acks.first("clientrt"); return ok })
	firstAck, _ := acks.first("clientrt")
	failover := firstAck.Sub(killAt)
	t.Logf("FAILOVER: master %d killed; broker %d elected at epoch %d after %v; first send acknowledged by it %v after the kill",
		master, after.MasterID, after.MasterEpoch, electedIn.Round(time.Millisecond), failover.Round(time.Millisecond))
	if failover > 10*time.Second {
		t.Errorf("the new master acknowledged its first send %v after the kill; want within 10 s", failover)
	}

	// What the old master holds (it is dead: its directory may be read).
	oldLog, oldLast := readCommitLog(t, c.dataDir(master))

	// Let the new master take writes for a moment, so its log grows past the old tail.
	time.Sleep(time.Second)

	// The old master restarts on its data: it must follow the new master and truncate.
	c.startBroker(t, master)
	var truncAfter, dropped uint64
	waitFor(t, 20*time.Second, "the restarted old master to truncate its log", func() bool {
		m := truncatedRE.FindStringSubmatch(c.brokers[master].stderr.String())
		if m == nil {
			return false
		}
		truncAfter, _ = strconv.ParseUint(m[1], 10, 64)
		dropped, _ = strconv.ParseUint(m[2], 10, 64)
		return true
	})
	t.Logf("old master: log ended at %d; truncated after %d, dropping %d", oldLast, truncAfter, dropped)
	if truncAfter+dropped != oldLast || dropped == 0 {
		t.Errorf("old master truncated after %d dropping %d, but its log ended at %d", truncAfter, dropped, oldLast)
	}
	waitFor(t, 20*time.Second, "the old master to replicate from the new one", func() bool {
		g, err := foGroupInfo(c.ctl)
		return err == nil && g.MasterID == after.MasterID && slicesContain(g.InSync, master)
	})

	// The project's client stops (its sends would only load the machine while the official
	// producer waits for its route refresh).
	close(stopOurs)
	oursWG.Wait()

	// The official producer follows the new master at its next route refresh.
	// Its refreshes come every officialRouteRefresh from its start: wait for the first one after
	// the new master took writes, and some slack.
	refreshes := firstAck.Sub(officialStart)/officialRouteRefresh + 1
	officialBy := officialStart.Add(refreshes*officialRouteRefresh + 15*time.Second)
	waitFor(t, time.Until(officialBy), "the official producer to send to the new master",
		func() bool { _, ok := acks.first("official"); return ok })
	officialFirst, _ := acks.first("official")
	t.Logf("the official producer's first send acknowledged by the new master came %v after the kill (it refreshes routes every %v)",
		officialFirst.Sub(killAt).Round(time.Millisecond), officialRouteRefresh)

	close(stopOfficial)
	officialWG.Wait()
	acks.mu.Lock()
	defer acks.mu.Unlock()

	// Drain every queue from the new master.
	reader, err := clientrt.Start(client.DefaultConfig(c.ns), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	queues, err := reader.Queues(foTopic)
	if err != nil {
		t.Fatal(err)
	}
	type stored struct {
		id  string
		crc uint32
	}
	got := map[client.MessageQueue][]stored{}
	present := map[string]int{}
	for _, q := range queues {
		var off int64
		for {
			res, err := reader.Pull(client.PullRequest{Queue: q, Group: "failover-check", Offset: off, MaxMsgs: 256})
			if err != nil {
				t.Fatalf("pull %s at %d: %v", q, off, err)
			}
			if res.Status != codec.Success {
				break
			}
			for _, m := range res.Msgs {
				if m.QueueOffset != off {
					t.Fatalf("%s: expected offset %d, got %d", q, off, m.QueueOffset)
				}
				id := foID(m.Body)
				got[q] = append(got[q], stored{id, crc32.ChecksumIEEE(m.Body)})
				present[id]++
				off++
			}
		}
	}
	missing := 0
	for id, a := range acks.acks {
		list := got[a.queue]
		if a.offset >= int64(len(list)) {
			missing++
			t.Errorf("acknowledged %s at %s offset %d is not on the new master (the queue holds %d)", id, a.queue, a.offset, len(list))
			continue
		}
		if s := list[a.offset]; s.id != id || s.crc != a.crc {
			t.Errorf("%s offset %d: acknowledged %s (crc %08x), the new master has %s (crc %08x)", a.queue, a.offset, id, a.crc, s.id, s.crc)
		}
	}
	for id, n := range present {
		if n > 1 {
			t.Errorf("message %s is stored %d times", id, n)
		}
	}
	t.Logf("new master holds %d messages; %d acknowledged (%d sent after the kill), %d missing", len(present), len(acks.acks),
		acks.nAfter, missing)

	// The old master's truncated tail is exactly what the new master never had, and none of it
	// was acknowledged.
	for i := truncAfter + 1; i <= oldLast; i++ {
		e := oldLog[i]
		if _, ok := acks.acks[e.id]; ok {
			t.Errorf("old master index %d (%s) was truncated but had been acknowledged", i, e.id)
		}
		if present[e.id] > 0 {
			t.Errorf("old master index %d (%s) was truncated but the new master holds it", i, e.id)
		}
	}
	for i := uint64(1); i <= truncAfter; i++ {
		if e := oldLog[i]; e.topic == foTopic && present[e.id] == 0 {
			t.Errorf("old master index %d (%s) is in the shared prefix but not on the new master", i, e.id)
		}
	}

	// Stop the old master and read its log: the prefix it kept, then the new master's entries.
	re := c.brokers[master]
	if err := re.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-re.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("restarted old master did not stop on SIGINT\n%s", re.stderr)
	}
	rejoined, newLast := readCommitLog(t, c.dataDir(master))
	if newLast <= oldLast {
		t.Errorf("the rejoined old master's log ends at %d, not past its old end %d: it did not replicate", newLast, oldLast)
	}
	for i := uint64(1); i <= newLast; i++ {
		e := rejoined[i]
		switch {
		case i <= truncAfter && e != oldLog[i]:
			t.Errorf("rejoined old master index %d: %+v, before the kill %+v", i, e, oldLog[i])
		case i > truncAfter && e.topic == foTopic && present[e.id] == 0:
			t.Errorf("rejoined old master index %d holds %s, which the new master does not", i, e.id)
		}
	}
	t.Logf("test took %v", time.Since(testStart).Round(time.Millisecond))
}

func slicesContain(s []int64, v int64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
