package report

// The timeline's layout: one lane per node (its role and epoch over time, with the faults that
// struck it), lanes for the network faults, the controllers' elections and the focus as
// vertical lines, and a time axis. Everything is placed here, in pixels, so the template only
// draws.

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/sim/cluster"
)

// Timeline is the laid-out SVG.
type Timeline struct {
	Width, Height int
	// LabelWidth is the width of the lane names' column; PlotRight the plot's right edge.
	LabelWidth, PlotRight int
	Lanes                 []Lane
	Lines                 []Line
	Ticks                 []Tick
	// AxisY is where the time axis is drawn.
	AxisY int
}

// Lane is one row: a node, or a row of network faults.
type Lane struct {
	Name, Title string
	Y, H        int
	Bars        []Bar
	Marks       []Mark
}

// Bar is a span of a lane: a role held, or a fault lasting.
type Bar struct {
	X, W                float64
	Y, H                int
	Class, Label, Title string
}

// Mark is an instantaneous event in a lane (a reset, a bit flip, a crash that found the node
// down).
type Mark struct {
	X            float64
	Y            int
	Class, Title string
}

// Line is a vertical line across every lane: an election, the focus, the end of the workload.
// Its label sits at LabelY, staggered so that close lines' labels do not overlap.
type Line struct {
	X            float64
	Class, Title string
	Label        string
	LabelY       int
}

// Tick is a label of the time axis.
type Tick struct {
	X     float64
	Label string
}

// Geometry of the timeline.
const (
	tlWidth      = 1200
	tlLabelWidth = 190
	tlRightPad   = 16
	tlTop        = 40 // room for the vertical lines' labels, in labelRows rows
	labelRows    = 3
	labelRowH    = 11
	laneH        = 20
	laneGap      = 4
	charWidth    = 6.2 // of the bars' 10px font, to judge whether a label fits
)

// layout places the run's timeline.
func layout(rep *cluster.Report, tl *cluster.Timeline, f Focus) Timeline {
	end := max(tl.End, time.Millisecond)
	plotW := float64(tlWidth - tlLabelWidth - tlRightPad)
	x := func(t time.Duration) float64 {
		t = min(max(t, 0), end)
		return round1(tlLabelWidth + float64(t)/float64(end)*plotW)
	}
	out := Timeline{Width: tlWidth, LabelWidth: tlLabelWidth, PlotRight: tlWidth - tlRightPad}
	y := tlTop
	bar := func(lane *Lane, from, to time.Duration, class, label, title string) {
		b := Bar{X: x(from), Y: lane.Y, H: lane.H, Class: class, Title: title}
		b.W = round1(max(x(to)-b.X, 1.5))
		if float64(len(label))*charWidth < b.W-4 {
			b.Label = label
		}
		lane.Bars = append(lane.Bars, b)
	}
	for _, addr := range tl.Nodes {
		lane := Lane{Name: nodeName(addr, tl), Title: addr, Y: y, H: laneH}
		group, isBroker := tl.Brokers[addr]
		switch {
		case isBroker && group != "":
			var mine []cluster.RoleChange
			for _, rc := range tl.Roles {
				if rc.Addr == addr {
					mine = append(mine, rc)
				}
			}
			if len(mine) == 0 || mine[0].At > 0 {
				first := end
				if len(mine) > 0 {
					first = mine[0].At
				}
				bar(&lane, 0, first, "role-starting", "no role yet", "no role reported yet")
			}
			for i, rc := range mine {
				to := end
				if i+1 < len(mine) {
					to = mine[i+1].At
				}
				label := fmt.Sprintf("%s e%d", rc.Role, rc.Epoch)
				title := fmt.Sprintf("%s %s from %s: %s at epoch %d (controller's master: replica %d)", group, addr, fmtTime(rc.At), rc.Role, rc.Epoch, rc.MasterID)
				bar(&lane, rc.At, to, "role-"+rc.Role, label, title)
			}
		case isBroker:
			bar(&lane, 0, end, "role-single", "broker (single, epoch 0)", addr+": the only broker (no group, no epochs)")
		default:
			bar(&lane, 0, end, "role-other", "", addr+": up unless a fault below says otherwise")
		}
		downAt := time.Duration(-1)
		for _, u := range tl.Ups {
			switch {
			case u.Addr != addr:
			case !u.Up && downAt < 0:
				downAt = u.At
			case u.Up && downAt >= 0:
				bar(&lane, downAt, u.At, "down", "down", fmt.Sprintf("%s: down from %s to %s", addr, fmtTime(downAt), fmtTime(u.At)))
				downAt = -1
			}
		}
		if downAt >= 0 {
			bar(&lane, downAt, end, "down", "down", fmt.Sprintf("%s: down from %s to the end of the run", addr, fmtTime(downAt)))
		}
		for _, s := range tl.Strikes {
			if s.Addr != addr {
				continue
			}
			fl := s.Fault
			title := fmt.Sprintf("%s: %s at %s for %s", addr, fl.Kind, fmtTime(s.At), fmtTime(fl.Duration))
			switch fl.Kind {
			case faults.Crash:
				if !s.WasUp {
					title += " (the node was already down: no effect)"
				}
				lane.Marks = append(lane.Marks, Mark{X: x(s.At), Y: lane.Y, Class: "mark-crash", Title: title})
			case faults.Pause:
				bar(&lane, s.At, s.At+fl.Duration, "paused", "paused", title)
			case faults.Reset, faults.BitFlip, faults.ClockJump:
				if fl.Kind == faults.ClockJump {
					title = fmt.Sprintf("%s: clock jump of %s at %s, slewed back over %s", addr, fmtDelta(fl.Delta), fmtTime(s.At), fmtTime(fl.Duration))
				}
				if fl.Kind != faults.ClockJump {
					title = fmt.Sprintf("%s: %s at %s", addr, fl.Kind, fmtTime(s.At))
				}
				lane.Marks = append(lane.Marks, Mark{X: x(s.At), Y: lane.Y, Class: "mark-" + string(fl.Kind), Title: title})
			default: // disk and clock conditions: a thin bar along the lane's foot
				b := Bar{X: x(s.At), Y: lane.Y + lane.H - 5, H: 5, Class: "cond", Title: title}
				if fl.Delta != 0 {
					b.Title += fmt.Sprintf(" (delta %s)", fmtDelta(fl.Delta))
				}
				b.W = round1(max(x(s.At+fl.Duration)-b.X, 1.5))
				lane.Bars = append(lane.Bars, b)
			}
		}
		out.Lanes = append(out.Lanes, lane)
		y += laneH + laneGap
	}
	// Network faults, packed into as few rows as overlap allows.
	var rowsEnd []time.Duration
	var netLanes []Lane
	for _, fl := range rep.Plan {
		if isNodeFault(fl.Kind) {
			continue
		}
		row := slices.IndexFunc(rowsEnd, func(e time.Duration) bool { return e <= fl.At })
		if row < 0 {
			row = len(rowsEnd)
			rowsEnd = append(rowsEnd, 0)
			netLanes = append(netLanes, Lane{Name: "network", Title: "network faults", Y: y, H: laneH})
			y += laneH + laneGap
		}
		rowsEnd[row] = fl.At + fl.Duration
		title := fmt.Sprintf("%s at %s for %s: %s", fl.Kind, fmtTime(fl.At), fmtTime(fl.Duration), target(fl))
		if fl.Delta != 0 {
			title += fmt.Sprintf(" (delta %s)", fmtDelta(fl.Delta))
		}
		bar(&netLanes[row], fl.At, fl.At+fl.Duration, "net", string(fl.Kind)+" "+shortTarget(fl), title)
	}
	if len(netLanes) > 1 {
		for i := range netLanes {
			netLanes[i].Name = fmt.Sprintf("network %d", i+1)
		}
	}
	out.Lanes = append(out.Lanes, netLanes...)
	for _, e := range tl.Elections {
		label := fmt.Sprintf("%s e%d", strings.TrimPrefix(e.Group, "broker-"), e.Epoch)
		title := fmt.Sprintf("%s: the controllers named replica %d master of epoch %d at %s", e.Group, e.Master, e.Epoch, fmtTime(e.At))
		if e.Master == 0 {
			title = fmt.Sprintf("%s: the controllers named no master at epoch %d at %s", e.Group, e.Epoch, fmtTime(e.At))
		}
		out.Lines = append(out.Lines, Line{X: x(e.At), Class: "line-election", Title: title, Label: label})
	}
	out.Lines = append(out.Lines,
		Line{X: x(tl.Workload), Class: "line-phase", Title: "the workload stopped at " + fmtTime(tl.Workload), Label: "stop"},
		Line{X: x(tl.Healed), Class: "line-phase", Title: "every fault healed at " + fmtTime(tl.Healed) + "; the final drain followed", Label: "healed"},
		Line{X: x(f.At), Class: "line-focus", Title: "focus: " + f.Why, Label: "focus"})
	staggerLabels(out.Lines)
	out.AxisY = y + 4
	out.Height = out.AxisY + 22
	step := tickStep(end)
	for t := time.Duration(0); t <= end; t += step {
		out.Ticks = append(out.Ticks, Tick{X: x(t), Label: t.String()})
	}
	return out
}

// staggerLabels gives each line's label the first of labelRows rows in which it does not
// overlap an earlier label (in X order); when none is free, the row whose last label is
// furthest left.
func staggerLabels(lines []Line) {
	order := make([]int, len(lines))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(lines[a].X, lines[b].X) })
	var rowEnd [labelRows]float64
	for r := range rowEnd {
		rowEnd[r] = math.Inf(-1)
	}
	for _, i := range order {
		l := &lines[i]
		half := float64(len(l.Label)) * charWidth / 2
		row := 0
		for r := range rowEnd {
			if rowEnd[r] <= l.X-half-2 {
				row = r
				break
			}
			if rowEnd[r] < rowEnd[row] {
				row = r
			}
		}
		rowEnd[row] = l.X + half
		l.LabelY = 10 + row*labelRowH
	}
}

// tickStep picks a round step giving about ten ticks over end.
func tickStep(end time.Duration) time.Duration {
	for _, s := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second, 30 * time.Second, time.Minute} {
		if end/s <= 12 {
			return s
		}
	}
	return 5 * time.Minute
}

// nodeName is a lane's name for the node at addr.
func nodeName(addr string, tl *cluster.Timeline) string {
	if g, ok := tl.Brokers[addr]; ok {
		if g == "" {
			return "broker " + addr
		}
		for gi, name := range cluster.GroupNames {
			for id := 1; id <= 3; id++ {
				if cluster.ReplicaAddr(gi, id) == addr {
					return fmt.Sprintf("%s replica %d", name, id)
				}
			}
		}
		return g + " " + addr
	}
	if addr == cluster.NameServerAddr {
		return "name server"
	}
	for h := 1; h <= 3; h++ {
		if addr == cluster.HostNameServerAddr(h) {
			return fmt.Sprintf("name server %d", h)
		}
		if addr == cluster.HostControllerAddr(h) {
			return fmt.Sprintf("controller %d", h)
		}
	}
	return "client " + addr
}

// shortTarget is a network fault's sides, abbreviated for a bar's label.
func shortTarget(f faults.Fault) string {
	a := f.Nodes
	if len(a) == 0 && f.Node != "" {
		a = []string{f.Node}
	}
	if len(a) == 1 {
		return a[0]
	}
	return fmt.Sprintf("%d nodes", len(a))
}

// round1 rounds to a tenth of a pixel, so the page is the same on every machine.
func round1(v float64) float64 { return math.Round(v*10) / 10 }
