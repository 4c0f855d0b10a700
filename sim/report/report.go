// Package report turns a failing simulator run into one self-contained HTML page a person can
// read: the violation in words, the fault plan and the failovers on a timeline against every
// node's role and epoch, the client operations around the failure, Porcupine's visualisation
// of the failing queue embedded, and the command that replays the run. The page fetches
// nothing: its CSS and SVG are inline and the visualisation is embedded as an iframe's srcdoc.
//
// It owns the page's model (Build, a plain value a test can compare) and its rendering
// (Render, html/template); it runs nothing and judges nothing: the run and its checks are
// package sim/cluster's.
package report

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/linearizability"
	"github.com/sluicemq/sluice/sim/checks"
	"github.com/sluicemq/sluice/sim/cluster"
)

// Input is what a report is built from.
type Input struct {
	// Config is the configuration of the failing run (after shrinking, the shrunk run's), and
	// Report its report; Report.Timeline must be set (cluster.Run always sets it).
	Config cluster.Config
	Report *cluster.Report
	// Replay is the command that replays the run (see Replay).
	Replay string
	// PlanFile is the fault plan's file when the run replays one ("" when drawn from the seed);
	// OriginalFaults, when above 0, is how many faults the plan had before shrinking.
	PlanFile       string
	OriginalFaults int
	// VizHTML, if set, reads a Porcupine visualisation (nil: os.ReadFile).
	VizHTML func(path string) ([]byte, error)
}

// Model is the page's content, laid out: everything the template shows, and nothing it must
// compute.
type Model struct {
	Title    string
	Seed     uint64
	Topology string
	// Headline says in one sentence what went wrong; Meaning what that kind of violation
	// means (empty for kinds without an explanation).
	Headline string
	Meaning  string
	// Kinds counts the violations by kind, in the order first reported; Violations lists at
	// most maxPerKind of each kind, and MoreViolations counts those left out.
	Kinds          []KindRow
	Violations     []ViolationRow
	MoreViolations int
	// Replay is the command that replays the run; PlanNote says where its plan came from.
	Replay   string
	PlanNote string
	Summary  string
	Timeline Timeline
	Faults   []FaultRow
	// Failovers are the controllers' elections (groups topology only).
	Failovers []FailoverRow
	Focus     Focus
	Ops       []OpRow
	// OpsTotal is how many operations the focus's scope (its queue, or every queue) had.
	OpsTotal int
	Viz      Viz
}

// ViolationRow is one violation of the run.
type ViolationRow struct {
	Kind, Queue, MsgID, Detail string
}

// KindRow is one kind of violation the run had, and how many.
type KindRow struct {
	Kind  string
	Count int
}

// FaultRow is one fault of the plan, with where it struck.
type FaultRow struct {
	At, Kind, Target, Duration, Extra, Struck string
}

// FailoverRow is one election.
type FailoverRow struct {
	At, Group, Master string
	Epoch             int64
}

// Focus is the moment and place the report centres on.
type Focus struct {
	At    time.Duration
	Queue string
	MsgID string
	// Why says how the focus was chosen.
	Why string
}

// OpRow is one client operation of the window shown.
type OpRow struct {
	Call, Return string
	Client       int
	Op           string // "send" or "pull"
	Queue        string
	Offset       int64
	Outcome      string
	Result       string
	// Highlight: the operation carried or returned the violation's message.
	Highlight bool
	// AfterFocus: it was called after the focus instant (the window's second half).
	AfterFocus bool
}

// Viz is the embedded Porcupine visualisation.
type Viz struct {
	Queue string
	Path  string
	HTML  string
	// Missing says why there is none ("" when there is).
	Missing string
}

// maxPerKind bounds the violations of one kind the page lists.
const maxPerKind = 5

// opsEachSide is how many operations of the focus's scope the window shows before and after
// the focus instant.
const opsEachSide = 20

// Build lays out the report of a failing run.
func Build(in Input) (Model, error) {
	rep := in.Report
	if rep == nil || rep.Timeline == nil {
		return Model{}, fmt.Errorf("report: the run has no timeline")
	}
	if len(rep.Violations) == 0 {
		return Model{}, fmt.Errorf("report: seed %d has no violation", rep.Seed)
	}
	tl := rep.Timeline
	m := Model{
		Title:    fmt.Sprintf("Sluice simulator: seed %d (%s topology) violated %s", rep.Seed, in.Config.Topology, rep.Violations[0].Kind),
		Seed:     rep.Seed,
		Topology: in.Config.Topology.String(),
		Replay:   in.Replay,
		Summary:  rep.Summary(),
	}
	v0 := rep.Violations[0]
	m.Headline = fmt.Sprintf("Seed %d of the %s topology failed the check %q: %s", rep.Seed, in.Config.Topology, v0.Kind, v0.Detail)
	if len(rep.Violations) > 1 {
		m.Headline += fmt.Sprintf(" (and %d more violations below)", len(rep.Violations)-1)
	}
	m.Meaning = meanings[v0.Kind]
	perKind := map[string]int{}
	for _, v := range rep.Violations {
		if perKind[v.Kind] == 0 {
			m.Kinds = append(m.Kinds, KindRow{Kind: v.Kind})
		}
		perKind[v.Kind]++
		if perKind[v.Kind] > maxPerKind {
			m.MoreViolations++
			continue
		}
		row := ViolationRow{Kind: v.Kind, MsgID: v.MsgID, Detail: v.Detail}
		if v.Queue.Broker != "" {
			row.Queue = v.Queue.String()
		}
		m.Violations = append(m.Violations, row)
	}
	switch {
	case in.PlanFile != "" && in.OriginalFaults > 0:
		m.PlanNote = fmt.Sprintf("The fault plan was shrunk from %d to %d faults and written to %s; the command replays it.", in.OriginalFaults, len(rep.Plan), in.PlanFile)
	case in.PlanFile != "":
		m.PlanNote = fmt.Sprintf("The fault plan was read from %s.", in.PlanFile)
	default:
		m.PlanNote = "The fault plan was drawn from the seed."
	}
	for i := range m.Kinds {
		m.Kinds[i].Count = perKind[m.Kinds[i].Kind]
	}
	m.Faults = faultRows(rep.Plan, tl.Strikes)
	for _, e := range tl.Elections {
		master := "none"
		if e.Master != 0 {
			master = fmt.Sprintf("replica %d (%s)", e.Master, e.Addr)
		}
		m.Failovers = append(m.Failovers, FailoverRow{At: fmtTime(e.At), Group: e.Group, Master: master, Epoch: e.Epoch})
	}
	m.Focus = focus(rep, tl)
	m.Ops, m.OpsTotal = window(tl.History, m.Focus, v0)
	m.Timeline = layout(rep, tl, m.Focus)
	m.Viz = viz(in, rep, v0)
	return m, nil
}

// meanings explains the violation kinds a person meets most ("linearizability" and
// "undecided" are sim/cluster's log check's).
var meanings = map[string]string{
	checks.KindLostAcked:      "A producer was told its message was stored (SEND_OK), yet the final drain of its queue, after every fault healed, did not return it: the broker acknowledged something it then lost.",
	checks.KindLostObserved:   "A consumer pulled a message that the final drain of its queue no longer returns: the broker served a message it then lost.",
	checks.KindTwoOffsets:     "One message was acknowledged or seen at two positions of its queue.",
	checks.KindOffsetConflict: "Two different messages were acknowledged or seen at one position of a queue: the log was rewritten under its readers.",
	"linearizability":         "No order of appends explains every acknowledged send and answered pull of the queue: Porcupine's visualisation below shows the longest explainable prefix.",
	"undecided":               "Porcupine did not decide the queue within its time budget, so the queue is unchecked; this is not a proof of a bug.",
	checks.KindDrainOrder:     "The final drain of a queue skipped or reordered offsets.",
	checks.KindFailedObserved: "A message whose every send was refused was nevertheless delivered.",
	checks.KindPhantom:        "A consumer received a message no producer sent.",
	cluster.KindOffsetPastUnprocessed: "A consumer group's committed offset passed a message none of its consumers processed: " +
		"a consumer resuming from that offset skips the message for good.",
}

// faultRows lists the plan with where each fault struck.
func faultRows(plan []faults.Fault, strikes []cluster.Strike) []FaultRow {
	var rows []FaultRow
	for _, f := range plan {
		row := FaultRow{At: fmtTime(f.At), Kind: string(f.Kind), Target: target(f), Duration: fmtTime(f.Duration)}
		if f.Delta != 0 {
			row.Extra = "delta " + fmtDelta(f.Delta)
		}
		if f.Kind == faults.BitFlip {
			row.Extra = strings.TrimSpace(fmt.Sprintf("pick %d %s", f.Pick, f.Log))
		}
		if isNodeFault(f.Kind) {
			var hit []string
			for _, s := range strikes {
				if sameFault(s.Fault, f) {
					note := s.Addr
					if !s.WasUp {
						note += " (was down)"
					}
					hit = append(hit, note)
				}
			}
			row.Struck = strings.Join(hit, ", ")
			if len(hit) == 0 {
				row.Struck = "nobody"
			}
		} else {
			row.Struck = "network"
		}
		rows = append(rows, row)
	}
	return rows
}

// sameFault reports whether a and b are the same planned fault (a strike carries its fault).
func sameFault(a, b faults.Fault) bool {
	return a.At == b.At && a.Kind == b.Kind && a.Node == b.Node && a.Duration == b.Duration &&
		slices.Equal(a.Nodes, b.Nodes) && a.Delta == b.Delta && a.Pick == b.Pick && a.Log == b.Log
}

// isNodeFault reports whether faults of kind k strike nodes (and so are reported by
// faults.Injector.OnStrike), rather than links.
func isNodeFault(k faults.Kind) bool {
	switch k {
	case faults.Partition, faults.GroupPartition, faults.Split, faults.Bridge, faults.OneWay, faults.Delay:
		return false
	}
	return true
}

// target names a fault's sides.
func target(f faults.Fault) string {
	side := func(s []string) string {
		if len(s) == 0 {
			return "every other node"
		}
		return strings.Join(s, ", ")
	}
	a := f.Nodes
	if len(a) == 0 && f.Node != "" {
		a = []string{f.Node}
	}
	if isNodeFault(f.Kind) {
		return side(a)
	}
	sep := " | "
	if f.Kind == faults.OneWay {
		sep = " > "
	}
	return side(a) + sep + side(f.Peers)
}

// focus picks the moment and place the report centres on: the violation's message (the call
// of its first send), else the first instant the violation's text names, else the last fault
// or election before the workload stopped, else the end of the workload.
func focus(rep *cluster.Report, tl *cluster.Timeline) Focus {
	v := rep.Violations[0]
	f := Focus{MsgID: v.MsgID}
	if v.Queue.Broker != "" {
		f.Queue = v.Queue.String()
	}
	if v.MsgID != "" && tl.History != nil {
		for _, s := range tl.History.Sends {
			if s.MsgID == v.MsgID {
				f.At = time.Duration(s.Call)
				f.Why = fmt.Sprintf("the first send of message %s (client %d, called at %s)", s.MsgID, s.Client, fmtTime(f.At))
				return f
			}
		}
	}
	if at, ok := namedTime(v.Detail); ok {
		f.At = at
		f.Why = fmt.Sprintf("the first instant the violation names (%s)", fmtTime(at))
		return f
	}
	end := tl.Workload
	var last time.Duration = -1
	what := ""
	for _, s := range tl.Strikes {
		if s.At <= end && s.At > last {
			last, what = s.At, fmt.Sprintf("the last fault to strike a node (%s on %s)", s.Fault.Kind, s.Addr)
		}
	}
	for _, e := range tl.Elections {
		if e.At <= end && e.At > last && e.At > 0 {
			last, what = e.At, fmt.Sprintf("the last election (%s epoch %d)", e.Group, e.Epoch)
		}
	}
	if last >= 0 {
		f.At, f.Why = last, what+" before the workload stopped"
		return f
	}
	f.At, f.Why = end, "the end of the workload (no fault struck a node)"
	return f
}

// detailTime finds an instant in a violation's text: a duration after "at " or "(".
var detailTime = regexp.MustCompile(`(?:\bat |\()((?:\d+h)?(?:\d+m)?\d+(?:\.\d+)?(?:s|ms|µs|ns))\b`)

// namedTime is the first instant a violation's detail names, if any.
func namedTime(detail string) (time.Duration, bool) {
	for _, sub := range detailTime.FindAllStringSubmatch(detail, -1) {
		if d, err := time.ParseDuration(sub[1]); err == nil && d >= 0 {
			return d, true
		}
	}
	return 0, false
}

// op is a send or a pull, for the window.
type op struct {
	call, ret int64
	row       OpRow
}

// window lists the operations of the focus's queue (every queue when it has none) nearest the
// focus instant: opsEachSide before and after it, plus every operation that carried or
// returned the violation's message. It returns them in call order, and the scope's size.
func window(h *linearizability.History, f Focus, v cluster.Violation) ([]OpRow, int) {
	if h == nil {
		return nil, 0
	}
	inScope := func(q linearizability.QueueKey) bool { return v.Queue.Broker == "" || q == v.Queue }
	var ops []op
	for _, s := range h.Sends {
		if !inScope(s.Queue) {
			continue
		}
		row := OpRow{Call: fmtTime(time.Duration(s.Call)), Client: s.Client, Op: "send", Queue: s.Queue.String(),
			Offset: s.Offset, Outcome: s.Outcome.String(), Result: "message " + s.MsgID, Highlight: v.MsgID != "" && s.MsgID == v.MsgID}
		if s.Outcome == linearizability.OK {
			row.Result = fmt.Sprintf("message %s at offset %d", s.MsgID, s.Offset)
		} else {
			row.Offset = -1
		}
		row.Return = fmtTime(time.Duration(s.Return))
		if s.Outcome == linearizability.Unknown {
			row.Return = "never (timed out)"
		}
		ops = append(ops, op{call: s.Call, ret: s.Return, row: row})
	}
	for _, p := range h.Pulls {
		if !inScope(p.Queue) {
			continue
		}
		row := OpRow{Call: fmtTime(time.Duration(p.Call)), Return: fmtTime(time.Duration(p.Return)), Client: p.Client, Op: "pull",
			Queue: p.Queue.String(), Offset: p.Offset, Outcome: p.Outcome.String()}
		var ids []string
		for _, msg := range p.Msgs {
			ids = append(ids, fmt.Sprintf("%d:%s", msg.Offset, msg.MsgID))
			if v.MsgID != "" && msg.MsgID == v.MsgID {
				row.Highlight = true
			}
		}
		switch {
		case p.Outcome != linearizability.OK:
			row.Result = "-"
		case len(ids) == 0:
			row.Result = "nothing at or after the offset"
		case len(ids) > 6:
			row.Result = fmt.Sprintf("%d messages: %s ... %s", len(ids), strings.Join(ids[:3], " "), ids[len(ids)-1])
		default:
			row.Result = strings.Join(ids, " ")
		}
		ops = append(ops, op{call: p.Call, ret: p.Return, row: row})
	}
	slices.SortStableFunc(ops, func(a, b op) int { return cmp.Compare(a.call, b.call) })
	at := int64(f.At)
	split, _ := slices.BinarySearchFunc(ops, at, func(o op, t int64) int { return cmp.Compare(o.call, t+1) })
	lo, hi := max(0, split-opsEachSide), min(len(ops), split+opsEachSide)
	var out []OpRow
	for i, o := range ops {
		if i >= lo && i < hi || o.row.Highlight {
			o.row.AfterFocus = i >= split
			out = append(out, o.row)
		}
	}
	return out, len(ops)
}

// viz reads Porcupine's visualisation of the violation's queue (or the run's first one).
func viz(in Input, rep *cluster.Report, v cluster.Violation) Viz {
	path, q := rep.VizPath, ""
	if p, ok := rep.VizPaths[v.Queue]; ok && v.Queue.Broker != "" {
		path, q = p, v.Queue.String()
	} else {
		for k, p := range rep.VizPaths {
			if p == path {
				q = k.String()
			}
		}
	}
	if path == "" {
		return Viz{Missing: "No visualisation was written for this run (--viz-dir empty, or the violation names no queue Porcupine could draw)."}
	}
	read := in.VizHTML
	if read == nil {
		read = os.ReadFile
	}
	b, err := read(path)
	if err != nil {
		return Viz{Queue: q, Path: path, Missing: fmt.Sprintf("The visualisation %s could not be read: %v", path, err)}
	}
	return Viz{Queue: q, Path: path, HTML: string(b)}
}

// fmtTime shows a simulated instant or span to the millisecond.
func fmtTime(d time.Duration) string {
	return d.Round(time.Millisecond).String()
}

// FileName is the report's file name for a run: one per topology and seed.
func FileName(t cluster.Topology, seed uint64) string {
	return fmt.Sprintf("sluice-report-%s-seed%d.html", t, seed)
}

// Write builds the report of in and writes it into dir (the temp directory when dir is
// empty), returning its path.
func Write(dir string, in Input) (string, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	m, err := Build(in)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	path := filepath.Join(dir, FileName(in.Config.Topology, in.Report.Seed))
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	if err := Render(f, m); err != nil {
		f.Close()
		return "", fmt.Errorf("report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("report %s: %w", path, err)
	}
	return path, nil
}

// fmtDelta shows a fault's delta (a latency, a clock offset) to the microsecond.
func fmtDelta(d time.Duration) string { return d.Round(time.Microsecond).String() }
