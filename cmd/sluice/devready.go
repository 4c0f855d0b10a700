package main

// 'sluice dev' says it is ready only once its nodes are: the same readiness /readyz reports
// (recovered, registered, a writable master or a caught-up slave; a controller with a raft
// leader), asked of each node directly, so it holds with the metrics endpoint off too.

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sluicemq/sluice/broker/runtime"
)

// defaultDevReadyTimeout is --ready-timeout's default: how long 'sluice dev' waits for its
// nodes to be ready before it says which are not and serves on.
const defaultDevReadyTimeout = 20 * time.Second

// devReadyPoll is how often 'sluice dev' asks its nodes whether they are ready.
const devReadyPoll = 50 * time.Millisecond

// readyCheck is one node's readiness: nil when ready, else why not.
type readyCheck struct {
	name  string
	ready func() error
}

// runtimeCheck asks rt's node (runtime.Runtime.Health, what /readyz asks).
func runtimeCheck(name string, rt *runtime.Runtime) readyCheck {
	return readyCheck{name: name, ready: rt.Health}
}

// errReadyInterrupted is waitReady's answer when a stop signal came first.
var errReadyInterrupted = errors.New("interrupted")

// waitReady asks every check each poll until all are ready at once, and returns nil then.
// Otherwise it returns, after timeout, an error naming each node not ready at the last look
// and why (a node whose loop does not answer counts as not ready); or errReadyInterrupted when
// a signal comes on signals first, which it puts back for waitForStop to act on.
func waitReady(checks []readyCheck, timeout, poll time.Duration, signals chan os.Signal) error {
	var mu sync.Mutex
	last := map[string]string{} // node -> why not, at the last look (guarded by mu)
	asking := ""                // the node being asked (guarded by mu)
	for _, c := range checks {
		last[c.name] = "not asked yet"
	}
	done := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		for {
			allReady := true
			for _, c := range checks {
				mu.Lock()
				asking = c.name
				mu.Unlock()
				err := c.ready()
				mu.Lock()
				asking = ""
				if err != nil {
					last[c.name] = err.Error()
					allReady = false
				} else {
					delete(last, c.name)
				}
				mu.Unlock()
			}
			if allReady {
				close(done)
				return
			}
			select {
			case <-quit:
				return
			case <-time.After(poll):
			}
		}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case sig := <-signals:
		close(quit)
		select {
		case signals <- sig:
		default:
		}
		return errReadyInterrupted
	case <-t.C:
		close(quit)
	}
	mu.Lock()
	defer mu.Unlock()
	if asking != "" {
		last[asking] = "did not answer (its event loop may be stuck)"
	}
	var why []string
	for _, c := range checks { // in the checks' order
		if w, ok := last[c.name]; ok {
			why = append(why, c.name+": "+w)
		}
	}
	return fmt.Errorf("not ready after %v: %s", timeout, strings.Join(why, "; "))
}

// announceReady waits for checks and says what came of it: the line that the cluster is
// ready, or which nodes are not yet (the process serves on; /readyz says when they are).
func announceReady(checks []readyCheck, timeout time.Duration, ops *opsEndpoint) {
	if timeout <= 0 {
		return
	}
	start := time.Now()
	err := waitReady(checks, timeout, devReadyPoll, stopSignals)
	switch {
	case err == nil:
		where := ""
		if ops != nil {
			where = fmt.Sprintf("; %s/readyz answers 200", ops.url())
		}
		after := ""
		if el := time.Since(start); el >= time.Millisecond {
			after = " after " + el.Round(time.Millisecond).String()
		}
		fmt.Printf("sluice dev: ready%s (every node is%s)\n", after, where)
	case errors.Is(err, errReadyInterrupted):
	default:
		fmt.Printf("sluice dev: %v (still starting; it serves on)\n", err)
	}
}
