package main

// A second, independent client: the Node.js RocketMQ 4.x client ali-ons (npm, pinned in
// testdata/nodeclient/package-lock.json and installed by 'make nodeclient', which 'make test'
// runs first). It shares no code with the Go client: it sends with SEND_MESSAGE_V2, writes
// numbers and booleans as JSON header values, rebalances, pulls and commits offsets its own
// way. The scripts (testdata/nodeclient/client.js) print one JSON object per line; these tests
// run them against a real 'sluice dev' and judge by that output.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// nodeEvent is one line a client.js script printed.
type nodeEvent struct {
	Event      string `json:"event"`
	Body       string `json:"body"`
	Tag        string `json:"tag"`  // sent
	Tags       string `json:"tags"` // received
	Keys       string `json:"keys"`
	DelayLevel int    `json:"delayLevel"`
	SentAt     int64  `json:"sentAt"`
	Status     string `json:"status"`
	MsgID      string `json:"msgId"`
	Topic      string `json:"topic"`
	QueueID    int    `json:"queueId"`
	// QueueOffset is the message's offset in its queue (sent: from the send result).
	QueueOffset    int64             `json:"queueOffset"`
	ReconsumeTimes int               `json:"reconsumeTimes"`
	At             int64             `json:"at"`
	Properties     map[string]string `json:"properties"`
	Queues         []struct {
		QueueID    int   `json:"queueId"`
		NextOffset int64 `json:"nextOffset"`
	} `json:"queues"`
	Why   string `json:"why"`
	Error string `json:"error"`
}

// nodeClientDir is where package.json and client.js live; it fails the test when ali-ons is
// not installed there, naming the step that installs it.
func nodeClientDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "nodeclient"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed: the Node.js client tests need Node.js 20 and npm (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ali-ons", "package.json")); err != nil {
		t.Fatalf("ali-ons is not installed in %s: run 'make nodeclient' (npm ci) first (%v)", dir, err)
	}
	return dir
}

// nodeProc is one running client.js.
type nodeProc struct {
	name   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stderr *logBuffer
	events chan nodeEvent // every line, in order; closed at EOF
	mu     sync.Mutex
	all    []nodeEvent
	err    error         // how it exited; set before done is closed
	done   chan struct{} // closed once it has exited
}

// startNode starts 'node client.js args...'; it is killed after timeout at the latest.
func startNode(t *testing.T, name string, timeout time.Duration, args ...string) *nodeProc {
	t.Helper()
	dir := nodeClientDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, "node", append([]string{"client.js"}, args...)...)
	cmd.Dir = dir
	p := &nodeProc{name: name, cmd: cmd, cancel: cancel, stderr: &logBuffer{}, events: make(chan nodeEvent, 1024), done: make(chan struct{})}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev nodeEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ev = nodeEvent{Event: "unparsed", Error: sc.Text()}
			}
			p.mu.Lock()
			p.all = append(p.all, ev)
			p.mu.Unlock()
			p.events <- ev
		}
		close(p.events)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

// waitReady waits for the script's "ready" line and returns it.
func (p *nodeProc) waitReady(t *testing.T, timeout time.Duration) nodeEvent {
	t.Helper()
	return p.waitEvent(t, timeout, "ready", func(ev nodeEvent) bool { return ev.Event == "ready" })
}

// waitEvent reads lines until one satisfies match, and returns it.
func (p *nodeProc) waitEvent(t *testing.T, timeout time.Duration, what string, match func(nodeEvent) bool) nodeEvent {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-p.events:
			if !ok {
				t.Fatalf("%s exited before it was %s:\n%s", p.name, what, p.report())
			}
			if match(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("%s not %s after %v:\n%s", p.name, what, timeout, p.report())
		}
	}
}

// wait waits for the script to exit, fails the test unless it exited 0, and returns every
// line it printed.
func (p *nodeProc) wait(t *testing.T) []nodeEvent {
	t.Helper()
	for range p.events {
	}
	<-p.done
	if p.err != nil {
		t.Fatalf("%s failed: %v\n%s", p.name, p.err, p.report())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.all)
}

func (p *nodeProc) report() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b bytes.Buffer
	fmt.Fprintf(&b, "--- %s stdout (%d lines)\n", p.name, len(p.all))
	for _, ev := range p.all {
		line, _ := json.Marshal(ev)
		b.Write(line)
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "--- %s stderr\n%s", p.name, p.stderr)
	return b.String()
}

// runNode runs a script to completion (see wait).
func runNode(t *testing.T, name string, timeout time.Duration, args ...string) []nodeEvent {
	t.Helper()
	return startNode(t, name, timeout, args...).wait(t)
}

// nodeProduce sends count messages with the ali-ons producer and returns the "sent" lines,
// checking each was SEND_OK.
func nodeProduce(t *testing.T, c *compatCluster, topic, prefix string, count int, extra ...string) []nodeEvent {
	t.Helper()
	args := append([]string{"produce", "--namesrv", c.NameServer, "--topic", topic, "--count", fmt.Sprint(count), "--prefix", prefix}, extra...)
	evs := events(runNode(t, "producer "+prefix, 60*time.Second, args...), "sent")
	if len(evs) != count {
		t.Fatalf("producer %s reported %d sends, want %d", prefix, len(evs), count)
	}
	for _, ev := range evs {
		if ev.Status != "SEND_OK" || ev.MsgID == "" {
			t.Fatalf("send of %s: status %q msgId %q", ev.Body, ev.Status, ev.MsgID)
		}
	}
	return evs
}

// nodeConsume starts an ali-ons push consumer that exits once it has expect distinct bodies.
func nodeConsume(t *testing.T, c *compatCluster, name, topic, group string, expect int, extra ...string) *nodeProc {
	t.Helper()
	args := append([]string{"consume", "--namesrv", c.NameServer, "--topic", topic, "--group", group,
		"--expect", fmt.Sprint(expect), "--instance", uniqueName(t, "node"), "--timeout-ms", "30000"}, extra...)
	return startNode(t, name, 60*time.Second, args...)
}

// events keeps the lines of one kind.
func events(all []nodeEvent, kind string) []nodeEvent {
	var out []nodeEvent
	for _, ev := range all {
		if ev.Event == kind {
			out = append(out, ev)
		}
	}
	return out
}

// byBody indexes deliveries by body; a body delivered twice fails the test.
func byBodyOnce(t *testing.T, who string, got []nodeEvent) map[string]nodeEvent {
	t.Helper()
	m := map[string]nodeEvent{}
	for _, ev := range got {
		if prev, dup := m[ev.Body]; dup {
			t.Errorf("%s: %s delivered twice (queue %d offset %d, then queue %d offset %d)", who, ev.Body,
				prev.QueueID, prev.QueueOffset, ev.QueueID, ev.QueueOffset)
		}
		m[ev.Body] = ev
	}
	return m
}

func TestCompatNodeJS(t *testing.T) {
	nodeClientDir(t)
	c := startCompat(t, "--delay-levels", shortDelayLevels)

	// Tags and keys, clustering: the producer sends TagA, TagB and TagC with two keys each;
	// a push consumer subscribed to "TagA || TagB" gets exactly the TagA and TagB messages,
	// each once, with the tags, keys, queue and offset they were stored with, and the broker
	// never returns a TagC message to its pulls (ali-ons would drop one itself, so its pulls
	// are watched, not only its handler).
	t.Run("TagsKeysClustering", func(t *testing.T) {
		t.Parallel()
		topic, group := uniqueName(t, "T"), uniqueName(t, "G")
		c.createTopic(t, topic, 4)
		cons := nodeConsume(t, c, "consumer", topic, group, 8, "--subscription", "TagA || TagB")
		ready := cons.waitReady(t, 30*time.Second)
		if len(ready.Queues) != 4 {
			t.Fatalf("the only consumer of the group was given %d queues, want 4: %+v", len(ready.Queues), ready.Queues)
		}
		sent := nodeProduce(t, c, topic, "tk", 12, "--tags", "TagA,TagB,TagC", "--keys")
		out := cons.wait(t)
		for _, ev := range events(out, "pulled") {
			if ev.Tags != "TagA" && ev.Tags != "TagB" {
				t.Errorf("the broker answered a pull for TagA || TagB with %s (tag %q)", ev.Body, ev.Tags)
			}
		}
		got := byBodyOnce(t, "consumer", events(out, "received"))
		want := 0
		for _, s := range sent {
			r, ok := got[s.Body]
			if s.Tag == "TagC" {
				if ok {
					t.Errorf("%s has tag TagC and was delivered to a TagA || TagB subscription", s.Body)
				}
				continue
			}
			want++
			switch {
			case !ok:
				t.Errorf("%s (tag %s, queue %d offset %d) never delivered", s.Body, s.Tag, s.QueueID, s.QueueOffset)
			case r.Tags != s.Tag || r.Keys != s.Keys || r.Topic != topic:
				t.Errorf("%s delivered with topic %q tags %q keys %q, sent to %q with %q and %q", s.Body, r.Topic, r.Tags, r.Keys, topic, s.Tag, s.Keys)
			case r.QueueID != s.QueueID || r.QueueOffset != s.QueueOffset || r.MsgID != s.MsgID:
				t.Errorf("%s delivered as queue %d offset %d id %s, the send said queue %d offset %d id %s",
					s.Body, r.QueueID, r.QueueOffset, r.MsgID, s.QueueID, s.QueueOffset, s.MsgID)
			}
		}
		if len(got) != want {
			t.Errorf("%d distinct bodies delivered, want %d", len(got), want)
		}
	})

	// Clustering with two consumers in two processes: ali-ons rebalances on its own timer
	// (it ignores NOTIFY_CONSUMER_IDS_CHANGED) from GET_CONSUMER_LIST_BY_GROUP, so once each
	// holds two of the four queues, every message goes to exactly one of them, the one
	// holding its queue.
	t.Run("ClusteringSharesQueues", func(t *testing.T) {
		t.Parallel()
		topic, group := uniqueName(t, "T"), uniqueName(t, "G")
		c.createTopic(t, topic, 4)
		x := nodeConsume(t, c, "consumer X", topic, group, 4, "--rebalance-ms", "500")
		x.waitReady(t, 30*time.Second)
		y := nodeConsume(t, c, "consumer Y", topic, group, 4, "--rebalance-ms", "500")
		owner := map[int]*nodeProc{}
		for _, p := range []*nodeProc{x, y} {
			ev := p.waitEvent(t, 30*time.Second, "holding two queues", func(ev nodeEvent) bool {
				return (ev.Event == "ready" || ev.Event == "queues") && len(ev.Queues) == 2
			})
			for _, q := range ev.Queues {
				if other, dup := owner[q.QueueID]; dup {
					t.Fatalf("queue %d allocated to both %s and %s", q.QueueID, other.name, p.name)
				}
				owner[q.QueueID] = p
			}
		}
		sent := nodeProduce(t, c, topic, "cl", 8)
		got := map[*nodeProc]map[string]nodeEvent{}
		for _, p := range []*nodeProc{x, y} {
			got[p] = byBodyOnce(t, p.name, events(p.wait(t), "received"))
		}
		for _, s := range sent {
			for _, p := range []*nodeProc{x, y} {
				_, ok := got[p][s.Body]
				if mine := owner[s.QueueID] == p; ok != mine {
					t.Errorf("%s sent to queue %d (held by %s): delivered to %s: %v", s.Body, s.QueueID, owner[s.QueueID].name, p.name, ok)
				}
			}
		}
	})

	// Broadcasting: two consumers of one group, in two processes, each get every message.
	t.Run("Broadcasting", func(t *testing.T) {
		t.Parallel()
		topic, group := uniqueName(t, "T"), uniqueName(t, "G")
		c.createTopic(t, topic, 4)
		a := nodeConsume(t, c, "broadcast consumer A", topic, group, 8, "--broadcast")
		b := nodeConsume(t, c, "broadcast consumer B", topic, group, 8, "--broadcast")
		for _, p := range []*nodeProc{a, b} {
			if r := p.waitReady(t, 30*time.Second); len(r.Queues) != 4 {
				t.Fatalf("%s was given %d queues, want all 4 in broadcasting", p.name, len(r.Queues))
			}
		}
		sent := nodeProduce(t, c, topic, "bc", 8)
		for _, p := range []*nodeProc{a, b} {
			got := byBodyOnce(t, p.name, events(p.wait(t), "received"))
			for _, s := range sent {
				if _, ok := got[s.Body]; !ok {
					t.Errorf("%s never got %s", p.name, s.Body)
				}
			}
			if len(got) != len(sent) {
				t.Errorf("%s got %d distinct bodies, want %d", p.name, len(got), len(sent))
			}
		}
	})

	// Delay levels: a message sent with delay level 2 (2 s here) is delivered on its own
	// topic not before it is due and not much after; one sent without a delay right after it
	// arrives first.
	t.Run("DelayLevel", func(t *testing.T) {
		t.Parallel()
		topic, group := uniqueName(t, "T"), uniqueName(t, "G")
		c.createTopic(t, topic, 2)
		cons := nodeConsume(t, c, "consumer", topic, group, 2)
		cons.waitReady(t, 30*time.Second)
		delayed := nodeProduce(t, c, topic, "late", 1, "--delay-level", "2", "--tags", "Late", "--keys")[0]
		prompt := nodeProduce(t, c, topic, "now", 1)[0]
		got := byBodyOnce(t, "consumer", events(cons.wait(t), "received"))
		d, ok1 := got[delayed.Body]
		n, ok2 := got[prompt.Body]
		if !ok1 || !ok2 {
			t.Fatalf("delivered %v; want %s and %s", got, delayed.Body, prompt.Body)
		}
		due := time.UnixMilli(delayed.SentAt).Add(2 * time.Second)
		at := time.UnixMilli(d.At)
		if at.Before(due.Add(-delayEarly)) || at.After(due.Add(delayLate)) {
			t.Errorf("level-2 message delivered %v after its send, want 2s (tolerance -%v/+%v)", at.Sub(time.UnixMilli(delayed.SentAt)), delayEarly, delayLate)
		}
		if d.Topic != topic || d.Tags != delayed.Tag || d.Keys != delayed.Keys || d.MsgID == delayed.MsgID {
			t.Errorf("delayed message delivered on topic %q with tags %q keys %q id %s; sent to %q with %q %q, id %s (RocketMQ re-puts it: a new offset id)",
				d.Topic, d.Tags, d.Keys, d.MsgID, topic, delayed.Tag, delayed.Keys, delayed.MsgID)
		}
		// RocketMQ's ScheduleMessageService clears DELAY when it re-puts a due message.
		if v, ok := d.Properties["DELAY"]; ok {
			t.Errorf("delayed message delivered with DELAY=%q still set", v)
		}
		if n.At > d.At {
			t.Errorf("the undelayed message arrived at %d, after the delayed one at %d", n.At, d.At)
		}
	})

	// A consumer restart resumes from the committed offsets: the first consumer of a new
	// group gets batch A and closes (ali-ons commits its offsets on close); batch B is sent
	// while no consumer runs; the restarted consumer starts each queue at the offset after
	// batch A and gets all of batch B and nothing of batch A. Batch A leaves two of the four
	// queues empty: for those ali-ons commits -1 (its persistAll writes `offset || -1`), which
	// RocketMQ answers on the next query as a young queue's 0, so batch B's messages there are
	// not skipped even though ali-ons's consumeFromWhere is the last offset.
	t.Run("RestartResumes", func(t *testing.T) {
		t.Parallel()
		topic, group := uniqueName(t, "T"), uniqueName(t, "G")
		c.createTopic(t, topic, 4)
		first := nodeConsume(t, c, "first consumer", topic, group, 2, "--from", "last", "--settle-ms", "500")
		first.waitReady(t, 30*time.Second)
		batchA := nodeProduce(t, c, topic, "A", 2)
		gotA := byBodyOnce(t, "first consumer", events(first.wait(t), "received"))
		for _, s := range batchA {
			if _, ok := gotA[s.Body]; !ok {
				t.Fatalf("first consumer never got %s", s.Body)
			}
		}
		afterA := map[int]int64{}
		for _, s := range batchA {
			afterA[s.QueueID] = max(afterA[s.QueueID], s.QueueOffset+1)
		}
		batchB := nodeProduce(t, c, topic, "B", 8)
		second := nodeConsume(t, c, "restarted consumer", topic, group, 8, "--from", "last", "--settle-ms", "1500")
		ready := second.waitReady(t, 30*time.Second)
		if len(ready.Queues) != 4 {
			t.Fatalf("the restarted consumer was given %d queues, want all 4 (is the closed one still listed?)", len(ready.Queues))
		}
		for _, q := range ready.Queues {
			if q.NextOffset != afterA[q.QueueID] {
				t.Errorf("restarted consumer starts queue %d at %d, want %d (the offset after batch A)", q.QueueID, q.NextOffset, afterA[q.QueueID])
			}
		}
		got := byBodyOnce(t, "restarted consumer", events(second.wait(t), "received"))
		for _, s := range batchA {
			if r, ok := got[s.Body]; ok {
				t.Errorf("restarted consumer got %s (queue %d offset %d) again", s.Body, r.QueueID, r.QueueOffset)
			}
		}
		for _, s := range batchB {
			if _, ok := got[s.Body]; !ok {
				t.Errorf("restarted consumer never got %s (queue %d offset %d)", s.Body, s.QueueID, s.QueueOffset)
			}
		}
		if len(got) != len(batchB) {
			var bodies []string
			for b := range got {
				bodies = append(bodies, b)
			}
			slices.Sort(bodies)
			t.Errorf("restarted consumer got %s, want exactly batch B", strings.Join(bodies, " "))
		}
	})
}
