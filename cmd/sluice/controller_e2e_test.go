package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/controller"
)

// startProcess starts the sluice binary with args and waits until its stdout contains ready.
func startProcess(t *testing.T, ready string, args ...string) *devProcess {
	t.Helper()
	return startProcessEnv(t, nil, ready, args...)
}

// startProcessEnv is startProcess with env added to the process's environment.
func startProcessEnv(t *testing.T, env []string, ready string, args ...string) *devProcess {
	t.Helper()
	cmd := exec.Command(sluiceBinary(t), args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &devProcess{cmd: cmd, stderr: &logBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	up := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), ready) {
				up <- struct{}{}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		p.exited <- cmd.Wait()
	}()
	select {
	case <-up:
	case err := <-p.exited:
		t.Fatalf("sluice %v exited early: %v\n%s", args, err, p.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("sluice %v not ready after 30s\n%s", args, p.stderr)
	}
	return p
}

// controllerCall sends one request to addr on a fresh connection and returns the answer.
func controllerCall(addr string, code int16, ext map[string]string, body []byte) (*codec.Command, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	req := codec.NewRequest(code, ext, body)
	req.Opaque = 1
	frame, err := codec.Encode(req)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write(frame); err != nil {
		return nil, err
	}
	resp, err := codec.ReadFrame(conn, codec.DefaultMaxFrameBytes)
	if err != nil {
		return nil, err
	}
	return codec.Decode(resp)
}

// replicaLoop heartbeats to the controller as one broker replica every 300 ms, following
// redirects, until stopped; the master also adds every live replica to the in-sync set.
type replicaLoop struct {
	id      int64
	members []string
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	mu       sync.Mutex
	view     controller.GroupInfo
	answerer string // the member that answered last
}

func startReplica(id int64, members []string) *replicaLoop {
	r := &replicaLoop{id: id, members: members, stop: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r
}

func (r *replicaLoop) run() {
	defer close(r.done)
	target := r.members[0]
	next := func() {
		for i, m := range r.members {
			if m == target {
				target = r.members[(i+1)%len(r.members)]
				return
			}
		}
	}
	for {
		select {
		case <-r.stop:
			return
		case <-time.After(300 * time.Millisecond):
		}
		resp, err := controllerCall(target, codec.ReqControllerBrokerHeartbeat, map[string]string{
			"clusterName": "C", "brokerName": "G", "brokerId": strconv.FormatInt(r.id, 10),
			"brokerAddr": fmt.Sprintf("127.0.0.9:%d", 10000+r.id)}, nil)
		switch {
		case err != nil:
			next()
			continue
		case resp.Code == codec.ControllerNotLeader:
			if resp.Ext("leaderAddr") != "" {
				target = resp.Ext("leaderAddr")
			} else {
				next()
			}
			continue
		case resp.Code != codec.Success:
			continue
		}
		var g controller.GroupInfo
		if json.Unmarshal(resp.Body, &g) != nil {
			continue
		}
		r.mu.Lock()
		r.view, r.answerer = g, target
		r.mu.Unlock()
		var live []int64
		for _, rep := range g.Replicas {
			if rep.Alive {
				live = append(live, rep.ID)
			}
		}
		if g.MasterID == r.id && len(live) > len(g.InSync) {
			body, _ := json.Marshal(controller.AlterInSyncBody{InSync: live, InSyncEpoch: g.InSyncEpoch})
			_, _ = controllerCall(target, codec.ReqControllerAlterInSyncSet, map[string]string{"clusterName": "C", "brokerName": "G",
				"masterBrokerId": strconv.FormatInt(r.id, 10), "masterEpoch": strconv.FormatInt(g.MasterEpoch, 10)}, body)
		}
	}
}

func (r *replicaLoop) last() (controller.GroupInfo, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.view, r.answerer
}

// Stop stops the loop (once; later calls do nothing) and waits for it.
func (r *replicaLoop) Stop() {
	r.once.Do(func() { close(r.stop) })
	<-r.done
}

// Three controller members as real processes (the third embedded in 'sluice namesrv
// --controller'); two broker replicas heartbeat. A master is elected and both replicas join
// the in-sync set; kill -9 of the leading member leaves the state intact on the new leader;
// when the master stops heartbeating, the slave becomes master under epoch 2.
func TestControllerProcessesSurviveLeaderKill(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	addrs := []string{freePort(t), freePort(t), freePort(t)}
	peers := fmt.Sprintf("1=%s,2=%s,3=%s", addrs[0], addrs[1], addrs[2])
	procs := map[string]*devProcess{}
	for i := range 2 {
		procs[addrs[i]] = startProcess(t, "listening on", "controller", "--id", strconv.Itoa(i+1), "--peers", peers,
			"--data", data, "--log-level", "warn")
	}
	procs[addrs[2]] = startProcess(t, "controller member 3 listening", "namesrv", "--addr", freePort(t), "--log-level", "warn",
		"--controller", "--controller-id", "3", "--controller-peers", peers, "--controller-data", data)

	r1, r2 := startReplica(1, addrs), startReplica(2, addrs)
	defer r1.Stop()
	defer r2.Stop()
	waitFor(t, 20*time.Second, "a master with both replicas in sync", func() bool {
		g, _ := r2.last()
		return g.MasterID != 0 && len(g.InSync) == 2
	})
	before, leader := r2.last()

	if err := procs[leader].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "an answer from a new leader", func() bool {
		_, by := r2.last()
		return by != leader
	})
	if g, by := r2.last(); g.MasterID != before.MasterID || g.MasterEpoch != before.MasterEpoch || !slicesEqual(g.InSync, before.InSync) {
		t.Fatalf("the new leader %s says %+v; the killed one %s said %+v", by, g, leader, before)
	}

	// The master falls silent; the other replica takes over.
	master, other := r1, r2
	if before.MasterID == 2 {
		master, other = r2, r1
	}
	master.Stop()
	waitFor(t, 20*time.Second, "the slave elected master", func() bool {
		g, _ := other.last()
		return g.MasterID == other.id && g.MasterEpoch == before.MasterEpoch+1
	})
}

func slicesEqual(a, b []int64) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}
