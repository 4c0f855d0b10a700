package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/faults"
	"github.com/sluicemq/sluice/linearizability"
	"github.com/sluicemq/sluice/sim/cluster"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// fixture is a hand-made failing run of the groups topology: replica 1 of broker-a is master
// at epoch 1, crashes at 3s and is back at 4s; replica 2 is elected at epoch 2; message m30,
// acknowledged at offset 30, is missing from the final drain.
func fixture() Input {
	r1, r2 := cluster.ReplicaAddr(0, 1), cluster.ReplicaAddr(0, 2)
	ns, ctl := cluster.HostNameServerAddr(1), cluster.HostControllerAddr(1)
	q := linearizability.QueueKey{Broker: "broker-a", Topic: "SimTopic", QueueID: 0}
	s := time.Second
	ms := time.Millisecond
	crash := faults.Fault{At: 3 * s, Kind: faults.Crash, Node: r1, Duration: s}
	pause := faults.Fault{At: 6 * s, Kind: faults.Pause, Node: r2, Duration: 500 * ms}
	reset := faults.Fault{At: 2 * s, Kind: faults.Reset, Node: ns}
	eio := faults.Fault{At: 7 * s, Kind: faults.DiskWriteEIO, Node: r2, Duration: s}
	plan := []faults.Fault{
		reset, crash, pause, eio,
		{At: 8 * s, Kind: faults.Partition, Node: r2, Duration: s},
		{At: 8500 * ms, Kind: faults.Delay, Nodes: []string{r1}, Peers: []string{r2}, Duration: s, Delta: 1234567 * time.Nanosecond},
		{At: 9 * s, Kind: faults.Crash, Node: faults.MasterOf("broker-a"), Duration: s},
	}
	var h linearizability.History
	for i := range 60 {
		call := int64(s + time.Duration(i)*100*ms)
		h.AddSend(linearizability.SendOp{Client: i % 2, Queue: q, MsgID: fmt.Sprintf("m%d", i), Call: call, Return: call + int64(2*ms),
			Outcome: linearizability.OK, Offset: int64(i)})
	}
	h.AddPull(linearizability.PullOp{Client: 0, Queue: q, Offset: 29, Call: int64(5200 * ms), Return: int64(5210 * ms),
		Outcome: linearizability.OK, Msgs: []linearizability.PulledMsg{{Offset: 29, MsgID: "m29"}, {Offset: 30, MsgID: "m30"}}})
	tl := &cluster.Timeline{
		Nodes:    []string{ns, ctl, r1, r2},
		Brokers:  map[string]string{r1: "broker-a", r2: "broker-a"},
		Workload: 10 * s, Healed: 12 * s, End: 14 * s,
		Strikes: []cluster.Strike{
			{At: 2 * s, Addr: ns, Fault: reset, WasUp: true},
			{At: 3 * s, Addr: r1, Fault: crash, WasUp: true},
			{At: 6 * s, Addr: r2, Fault: pause, WasUp: true},
			{At: 7 * s, Addr: r2, Fault: eio, WasUp: true},
		},
		Ups: []cluster.UpChange{{At: 3 * s, Addr: r1, Up: false}, {At: 4 * s, Addr: r1, Up: true}},
		Roles: []cluster.RoleChange{
			{At: 500 * ms, Addr: r1, Group: "broker-a", Role: "master", Epoch: 1, MasterID: 1},
			{At: 600 * ms, Addr: r2, Group: "broker-a", Role: "slave", Epoch: 1, MasterID: 1},
			{At: 5 * s, Addr: r2, Group: "broker-a", Role: "master", Epoch: 2, MasterID: 2},
			{At: 5500 * ms, Addr: r1, Group: "broker-a", Role: "slave", Epoch: 2, MasterID: 2},
		},
		Elections: []cluster.Election{
			{At: 400 * ms, Group: "broker-a", Master: 1, Epoch: 1, Addr: r1},
			{At: 4900 * ms, Group: "broker-a", Master: 2, Epoch: 2, Addr: r2},
		},
		History: &h,
	}
	cfg := cluster.GroupsConfig(7)
	rep := &cluster.Report{Seed: 7, Topology: cluster.BrokerGroups, Plan: plan, Timeline: tl,
		Violations: []cluster.Violation{
			{Kind: "lost acknowledged message", Detail: "m30 acknowledged at offset 30 to send #30 (client 0) is not in the final drain", Queue: q, MsgID: "m30"},
			{Kind: "deposed master", Detail: "group broker-a: replica 1 wrote as the master of epoch 1 at 5.1s, but the controllers had elected epoch 2 at 4.9s"},
		},
		VizPath:  "/viz/linearizability-broker-a-SimTopic-0.html",
		VizPaths: map[linearizability.QueueKey]string{q: "/viz/linearizability-broker-a-SimTopic-0.html"},
	}
	return Input{Config: cfg, Report: rep, Replay: Replay(cfg, "", ""),
		VizHTML: func(path string) ([]byte, error) {
			if path != rep.VizPath {
				return nil, fmt.Errorf("unexpected path %s", path)
			}
			return []byte(`<!DOCTYPE html><html><body><div id="canvas">porcupine "quoted" &amp; </div></body></html>`), nil
		}}
}

// TestModel checks the structure of the report of the fixture, then compares the whole model
// with testdata/model.golden.json (go test ./sim/report -run TestModel -update rewrites it).
func TestModel(t *testing.T) {
	in := fixture()
	m, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Headline, `"lost acknowledged message"`) || !strings.Contains(m.Headline, "Seed 7 of the groups topology") {
		t.Errorf("headline %q does not name the seed, topology and violation", m.Headline)
	}
	if want := []KindRow{{"lost acknowledged message", 1}, {"deposed master", 1}}; !slices.Equal(m.Kinds, want) {
		t.Errorf("kinds %v, want %v", m.Kinds, want)
	}
	if m.Meaning == "" {
		t.Error("no explanation of a lost acknowledged message")
	}
	if want := "sluice sim --topology groups --seed 7 --duration 2m0s --flush sync --replication sync"; m.Replay != want {
		t.Errorf("replay %q, want %q", m.Replay, want)
	}
	// The focus is the first send of the lost message, and the window centres on it.
	if m.Focus.At != 4*time.Second || m.Focus.MsgID != "m30" || m.Focus.Queue != "broker-a/SimTopic/0" {
		t.Errorf("focus %+v, want m30's send at 4s on broker-a/SimTopic/0", m.Focus)
	}
	var hl []string
	for _, o := range m.Ops {
		if o.Highlight {
			hl = append(hl, o.Op+" "+o.Call)
		}
	}
	if want := []string{"send 4s", "pull 5.2s"}; !slices.Equal(hl, want) {
		t.Errorf("highlighted operations %v, want %v", hl, want)
	}
	if len(m.Ops) != 2*opsEachSide || m.OpsTotal != 61 {
		t.Errorf("%d operations shown of %d, want %d of 61", len(m.Ops), m.OpsTotal, 2*opsEachSide)
	}
	// Lanes: the four nodes, then the two network faults in two rows (they overlap).
	var names []string
	for _, l := range m.Timeline.Lanes {
		names = append(names, l.Name)
	}
	if want := []string{"name server 1", "controller 1", "broker-a replica 1", "broker-a replica 2", "network 1", "network 2"}; !slices.Equal(names, want) {
		t.Errorf("lanes %v, want %v", names, want)
	}
	r1 := m.Timeline.Lanes[2]
	var r1bars []string
	for _, b := range r1.Bars {
		r1bars = append(r1bars, b.Class+":"+b.Label)
	}
	if want := []string{"role-starting:", "role-master:master e1", "role-slave:slave e2", "down:down"}; !slices.Equal(r1bars, want) {
		t.Errorf("replica 1's bars %v, want %v", r1bars, want)
	}
	if len(r1.Marks) != 1 || r1.Marks[0].Class != "mark-crash" {
		t.Errorf("replica 1's marks %+v, want the crash", r1.Marks)
	}
	down := r1.Bars[3]
	if x3, x4 := xAt(m, 3*time.Second), xAt(m, 4*time.Second); down.X != x3 || down.X+down.W != x4 {
		t.Errorf("replica 1 down from x=%v to %v, want %v to %v", down.X, down.X+down.W, x3, x4)
	}
	var lines []string
	for _, l := range m.Timeline.Lines {
		lines = append(lines, l.Class+":"+l.Label)
	}
	if want := []string{"line-election:a e1", "line-election:a e2", "line-phase:stop", "line-phase:healed", "line-focus:focus"}; !slices.Equal(lines, want) {
		t.Errorf("lines %v, want %v", lines, want)
	}
	if got := m.Faults[len(m.Faults)-1].Struck; got != "nobody" {
		t.Errorf("a crash of a master that never struck shows as struck by %q", got)
	}
	if len(m.Failovers) != 2 || m.Failovers[1].Master != "replica 2 ("+cluster.ReplicaAddr(0, 2)+")" {
		t.Errorf("failovers %+v", m.Failovers)
	}
	if m.Viz.HTML == "" || m.Viz.Queue != "broker-a/SimTopic/0" {
		t.Errorf("visualisation %+v, want broker-a/SimTopic/0's page", m.Viz)
	}

	// The run summary is cluster.Report's one line, whose format is that package's: it is
	// checked to be there, and left out of the golden file.
	if !strings.Contains(m.Summary, "seed=7 ") {
		t.Errorf("summary %q", m.Summary)
	}
	m.Summary = ""
	got, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "model.golden.json")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(append(got, '\n'), want) {
		t.Errorf("model differs from %s (review, then rerun with -update):\n%s", golden, firstDiff(string(want), string(got)+"\n"))
	}
}

// xAt is where the timeline draws instant t.
func xAt(m Model, t time.Duration) float64 {
	end := m.Timeline.PlotRight - m.Timeline.LabelWidth
	return round1(float64(m.Timeline.LabelWidth) + float64(t)/float64(14*time.Second)*float64(end))
}

// firstDiff shows the first line where two texts differ.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, x, y)
		}
	}
	return ""
}

// TestRenderIsSelfContained renders the fixture and checks the page loads nothing from
// outside and carries each section, the visualisation escaped into its srcdoc.
func TestRenderIsSelfContained(t *testing.T) {
	m, err := Build(fixture())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := Render(&b, m); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, bad := range []string{`src="http`, `href="http`, "<link", "<script src", "url(", "@import"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page refers outside itself: %q", bad)
		}
	}
	for _, want := range []string{`id="timeline-svg"`, `id="headline"`, `id="replay-command"`, `id="ops-table"`, `id="fault-table"`,
		`id="failover-table"`, `srcdoc="&lt;!DOCTYPE html&gt;&lt;html&gt;&lt;body&gt;&lt;div id=&#34;canvas&#34;&gt;porcupine &#34;quoted&#34; &amp;amp; `} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
}

// TestNamedTime: the instants a violation's text names, as the focus reads them.
func TestNamedTime(t *testing.T) {
	for _, c := range []struct {
		detail string
		want   time.Duration
		ok     bool
	}{
		{"group broker-a: index 918 acknowledged by replica 2 at epoch 5 (1m46.589512714s) is gone", 106589512714, true},
		{"replica 2 wrote as the master of epoch 5 at 1m47.107s (index 934)", 107107 * time.Millisecond, true},
		{"Porcupine did not decide within 30s", 0, false},
		{"offset 1394 holds p0-3570", 0, false},
	} {
		got, ok := namedTime(c.detail)
		if got != c.want || ok != c.ok {
			t.Errorf("namedTime(%q) = %v, %v; want %v, %v", c.detail, got, ok, c.want, c.ok)
		}
	}
}

// TestReplay: the command names every flag that changes the run.
func TestReplay(t *testing.T) {
	cfg := cluster.DefaultConfig(3)
	cfg.Plant, cfg.Rate, cfg.CheckTimeout = "ack-before-sync", 100, 5*time.Second
	cfg.DiskCapacity, cfg.Retention, cfg.DeleteWhen = 64<<20, 2*time.Hour, []int{4, 16}
	got := Replay(cfg, "/tmp/a plan.json", "")
	want := "sluice sim --topology single --seed 3 --duration 1m0s --flush sync --rate 100 --disk-capacity 67108864 --retention 2h0m0s --delete-when 4,16 --plan '/tmp/a plan.json' --plant ack-before-sync"
	if got != want {
		t.Errorf("replay\n %s\nwant\n %s", got, want)
	}
}
