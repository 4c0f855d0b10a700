package linearizability

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Verdict is the result of a linearizability check.
type Verdict string

const (
	// VerdictOk: a linearization exists.
	VerdictOk Verdict = "Ok"
	// VerdictIllegal: no linearization exists; the history shows a bug.
	VerdictIllegal Verdict = "Illegal"
	// VerdictUnknown: the check ran out of time before deciding.
	VerdictUnknown Verdict = "Unknown"
)

// QueueResult is the verdict for one queue.
type QueueResult struct {
	Queue   QueueKey
	Verdict Verdict
	// Ops is the number of operations checked (failed sends and non-OK pulls excluded).
	Ops int
	// VizPath is the HTML visualisation written for an Illegal queue, "" if none was written.
	VizPath string
}

// Result is the outcome of Check.
type Result struct {
	// Verdict is Illegal if any queue is Illegal, else Unknown if any queue is Unknown, else Ok.
	Verdict Verdict
	// Queues holds one entry per queue, sorted by queue.
	Queues []QueueResult
}

// Failed returns the queues whose history is not linearizable.
func (r Result) Failed() []QueueKey { return r.queuesWith(VerdictIllegal) }

// Undecided returns the queues whose check timed out.
func (r Result) Undecided() []QueueKey { return r.queuesWith(VerdictUnknown) }

func (r Result) queuesWith(v Verdict) []QueueKey {
	var out []QueueKey
	for _, q := range r.Queues {
		if q.Verdict == v {
			out = append(out, q.Queue)
		}
	}
	return out
}

// VizPaths returns the visualisation files written, in queue order.
func (r Result) VizPaths() []string {
	var out []string
	for _, q := range r.Queues {
		if q.VizPath != "" {
			out = append(out, q.VizPath)
		}
	}
	return out
}

// Check checks each queue of h against the append-only log model. Queues are checked in
// parallel; timeout bounds the whole check (0 means no limit), and a queue not decided in time
// is Unknown. For each Illegal queue, when vizDir is not empty, Porcupine's HTML visualisation
// is written to vizDir/linearizability-<broker>-<topic>-<queue>.html. An error means a malformed
// history or a visualisation that could not be written; the Result is still filled in the
// latter case. Queues named in alsoShow get a visualisation whatever their verdict (for a
// violation found by another check, the queue's history as Porcupine linearized it).
func Check(h History, timeout time.Duration, vizDir string, alsoShow ...QueueKey) (Result, error) {
	if err := h.Validate(); err != nil {
		return Result{}, err
	}
	queues := h.Queues()
	res := Result{Verdict: VerdictOk, Queues: make([]QueueResult, len(queues))}
	infos := make([]porcupine.LinearizationInfo, len(queues))
	nm := LogModel()
	model := nm.ToModel()

	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	ids := sendsByID(&h) // read by every worker
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(queues), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				ops := queueOperations(&h, queues[i], ids)
				qr := QueueResult{Queue: queues[i], Ops: len(ops), Verdict: VerdictUnknown}
				var budget time.Duration // porcupine reads 0 as no limit
				if !deadline.IsZero() {
					if budget = time.Until(deadline); budget <= 0 {
						res.Queues[i] = qr
						continue
					}
				}
				verdict, info := porcupine.CheckOperationsVerbose(model, ops, budget)
				qr.Verdict = verdictOf(verdict)
				res.Queues[i] = qr
				infos[i] = info
			}
		}()
	}
	for i := range queues {
		work <- i
	}
	close(work)
	wg.Wait()

	var vizErr error
	used := map[string]bool{} // file names already written by this check
	for i := range res.Queues {
		qr := &res.Queues[i]
		switch qr.Verdict {
		case VerdictIllegal:
			res.Verdict = VerdictIllegal
		case VerdictUnknown:
			if res.Verdict == VerdictOk {
				res.Verdict = VerdictUnknown
			}
		}
		if vizDir == "" || qr.Verdict != VerdictIllegal && !slices.Contains(alsoShow, qr.Queue) {
			continue
		}
		path, err := writeViz(model, infos[i], vizDir, qr.Queue, used)
		if err != nil {
			vizErr = errors.Join(vizErr, err)
			continue
		}
		qr.VizPath = path
	}
	return res, vizErr
}

func verdictOf(r porcupine.CheckResult) Verdict {
	switch r {
	case porcupine.Ok:
		return VerdictOk
	case porcupine.Illegal:
		return VerdictIllegal
	}
	return VerdictUnknown
}

func writeViz(model porcupine.Model, info porcupine.LinearizationInfo, dir string, q QueueKey, used map[string]bool) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("visualisation for %v: %w", q, err)
	}
	base := fmt.Sprintf("linearizability-%s-%s-%d", fileSafe(q.Broker), fileSafe(q.Topic), q.QueueID)
	name := base + ".html"
	for n := 2; used[name]; n++ { // two queues whose names differ only in unsafe characters
		name = fmt.Sprintf("%s-%d.html", base, n)
	}
	used[name] = true
	path := filepath.Join(dir, name)
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		return "", fmt.Errorf("visualisation for %v: %w", q, err)
	}
	return path, nil
}

// fileSafe keeps letters, digits, '-' and '_' and replaces anything else (topics may hold '%').
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}
