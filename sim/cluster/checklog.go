package cluster

// The log check: Porcupine's append-only log model (package linearizability) per queue, over
// every send and pull of the history. It verifies that each queue's acknowledged sends and
// answered pulls fit one sequence of appends (an acknowledged offset is where the message
// went; a pull saw what the log held then; an empty pull saw the log end). It does not verify
// that acknowledged messages survive to the end (the drain check does), nor anything about
// replicas, consumer offsets or masters (their own checkers).

import (
	"path/filepath"
	"sort"

	"github.com/sluicemq/sluice/linearizability"
)

// KindNotLinearizable is the kind of the log check's violations.
const KindNotLinearizable = "linearizability"

// checkLog checks h with Porcupine's append-only log model per queue (pictures of the queues
// in show go to VizDir/dir: one directory per seed, so a sweep keeps every failing seed's),
// then sorts the run's violations by kind.
func (r *run) checkLog(h linearizability.History, dir string, show []linearizability.QueueKey) {
	defer sort.SliceStable(r.report.Violations, func(i, j int) bool { return r.report.Violations[i].Kind < r.report.Violations[j].Kind })
	if r.reached() || r.cfg.StopAtKind != "" && r.cfg.StopAtKind != KindNotLinearizable {
		// A cheaper check already showed what the run was for, or the run is for a kind this
		// check never reports (Config.StopAtKind).
		return
	}
	vizDir := r.cfg.VizDir
	if vizDir != "" {
		vizDir = filepath.Join(vizDir, dir)
	}
	res, err := linearizability.Check(h, r.cfg.CheckTimeout, vizDir, show...)
	if err != nil {
		r.violate("checker", "porcupine: %v", err)
		return
	}
	for _, q := range res.Failed() {
		r.violate(KindNotLinearizable, "queue %s: history is not linearizable as an append-only log", q)
		r.report.Violations[len(r.report.Violations)-1].Queue = q
	}
	// A queue Porcupine could not decide in time is unchecked, not fine: say so, so a run
	// never passes on a check that did not happen.
	for _, q := range res.Undecided() {
		r.violate("undecided", "queue %s: Porcupine did not decide within %v; the queue is unchecked (raise CheckTimeout or shorten the run)", q, r.cfg.CheckTimeout)
	}
	if paths := res.VizPaths(); len(paths) > 0 {
		r.report.VizPath = paths[0]
	}
	for _, q := range res.Queues {
		if q.VizPath != "" {
			if r.report.VizPaths == nil {
				r.report.VizPaths = map[linearizability.QueueKey]string{}
			}
			r.report.VizPaths[q.Queue] = q.VizPath
		}
	}
}
