package sim

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// probe is a test node: the dialer ("a") connects to the listener ("b") and sends frame k
// (Opaque k) every interval from its first tick on; b answers every frame with a response of
// the same opaque. Each node logs what reaches it, stamped with virtual time.
type probe struct {
	env      node.Env
	dial     string // address to dial at start ("" for the listener)
	frames   int    // frames to send once dialed
	interval time.Duration
	conn     node.ConnID
	sent     int
	timerTag string // a timer to set at start, due after timerAfter
	timerAt  time.Duration

	got    []stamped // frames received (Opaque)
	timers []stamped
	closed []time.Duration
	synced []syncEvent
	dialed bool
}

type stamped struct {
	at time.Duration
	v  int32
}

type syncEvent struct {
	at   time.Duration
	upTo uint64
	err  error
}

func (p *probe) at() time.Duration { return p.env.Now().Sub(Epoch) }

func (p *probe) Start() {
	if p.timerTag != "" {
		p.env.SetTimer(p.timerAt, p.timerTag)
	}
	if p.dial != "" {
		p.conn = p.env.Dial(p.dial)
	}
}
func (p *probe) OnAccepted(c node.ConnID, _ string) { p.conn = c }
func (p *probe) OnDialed(node.ConnID) {
	p.dialed = true
	if p.frames > 0 {
		p.env.SetTimer(p.interval, "tick")
	}
}
func (p *probe) OnConnClosed(node.ConnID) { p.closed = append(p.closed, p.at()) }
func (p *probe) OnFrame(c node.ConnID, cmd *codec.Command) {
	p.got = append(p.got, stamped{p.at(), cmd.Opaque})
	if cmd.Flag&codec.FlagResponse == 0 {
		p.env.Send(c, codec.NewResponse(cmd, 0, ""))
	}
}
func (p *probe) OnTimer(_ node.TimerID, tag any) {
	if tag == "tick" {
		p.sent++
		cmd := codec.NewRequest(10, nil, nil)
		cmd.Opaque = int32(p.sent)
		p.env.Send(p.conn, cmd)
		if p.sent < p.frames {
			p.env.SetTimer(p.interval, "tick")
		}
		return
	}
	p.timers = append(p.timers, stamped{p.at(), 0})
}
func (p *probe) OnSynced(_ string, upTo uint64, err error) {
	p.synced = append(p.synced, syncEvent{p.at(), upTo, err})
}

// pair builds a world with fixed 1 ms latency (no random draws: times are exact) or, with
// jitter, 1..3 ms; a sends frames frames every interval to b.
func pair(seed uint64, jitter bool, frames int, interval time.Duration) (*World, *probe, *probe) {
	net := NetConfig{MinLatency: time.Millisecond, MaxLatency: time.Millisecond}
	if jitter {
		net.MaxLatency = 3 * time.Millisecond
	}
	w := NewWorld(seed, net, DiskConfig{MinFsync: time.Millisecond, MaxFsync: time.Millisecond}, nil)
	a := &probe{dial: "b:1", frames: frames, interval: interval}
	b := &probe{}
	w.AddNode("b:1", func(env node.Env) node.Handler { b.env = env; return b })
	w.AddNode("a:1", func(env node.Env) node.Handler { a.env = env; return a })
	return w, a, b
}

// opaques lists the opaque values of frames, in arrival order.
func opaques(s []stamped) []int32 {
	out := make([]int32, len(s))
	for i, x := range s {
		out[i] = x.v
	}
	return out
}

func seq(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i + 1)
	}
	return out
}

// A paused node sees nothing while paused, then everything the pause held back, in arrival
// order and at the moment it resumes: frames and timers late, none lost; its peer's
// connection stays up.
func TestPauseHoldsEventsThenDeliversInOrder(t *testing.T) {
	w, a, b := pair(1, false, 10, 100*time.Millisecond)
	b.timerTag, b.timerAt = "late", 500*time.Millisecond
	w.At(350*time.Millisecond, func() { w.Node("b:1").Pause(time.Second) })
	w.RunUntil(3 * time.Second)

	if !slices.Equal(opaques(b.got), seq(10)) || !slices.Equal(opaques(a.got), seq(10)) {
		t.Fatalf("frames lost or reordered across a pause: b got %v, a got answers %v", opaques(b.got), opaques(a.got))
	}
	resume := 1350 * time.Millisecond
	for _, g := range b.got {
		// a sent k at 2ms+k*100ms (dialed at 2ms), arriving 1ms later.
		sent := 2*time.Millisecond + time.Duration(g.v)*100*time.Millisecond
		want := sent + time.Millisecond
		if want >= 350*time.Millisecond && want < resume {
			want = resume
		}
		if g.at != want {
			t.Errorf("frame %d reached b at %v, want %v", g.v, g.at, want)
		}
	}
	if len(b.timers) != 1 || b.timers[0].at != resume {
		t.Fatalf("b's timer due at 500ms fired at %v, want once at the resume %v", b.timers, resume)
	}
	if len(a.closed)+len(b.closed) != 0 {
		t.Fatalf("a pause closed connections: a %v, b %v", a.closed, b.closed)
	}
	if n := w.Node("b:1"); n.Pauses != 1 || n.Paused() {
		t.Fatalf("b: %d pauses, paused now %v", n.Pauses, n.Paused())
	}
}

// Overlapping pauses end with the last; a crash ends a pause and drops what it held.
func TestPauseOverlapAndCrash(t *testing.T) {
	w, _, b := pair(1, false, 10, 100*time.Millisecond)
	nb := w.Node("b:1")
	w.At(150*time.Millisecond, func() { nb.Pause(300 * time.Millisecond) }) // to 450ms
	w.At(200*time.Millisecond, func() { nb.Pause(500 * time.Millisecond) }) // to 700ms
	w.At(300*time.Millisecond, func() { nb.Pause(100 * time.Millisecond) }) // inside: no change
	w.RunUntil(699 * time.Millisecond)
	if !nb.Paused() || len(b.got) != 1 {
		t.Fatalf("at 699ms b paused=%v with %d frames; want paused with 1 (the one before 150ms)", nb.Paused(), len(b.got))
	}
	w.RunUntil(700 * time.Millisecond)
	if nb.Paused() || len(b.got) != 6 || b.got[5].at != 700*time.Millisecond {
		t.Fatalf("at 700ms b paused=%v got %v; want 6 frames, the held ones at 700ms", nb.Paused(), b.got)
	}

	w.At(750*time.Millisecond, func() { nb.Pause(time.Second) })
	w.At(900*time.Millisecond, func() { nb.Crash() })
	w.RunUntil(1200 * time.Millisecond)
	if nb.Paused() || len(b.got) != 7 {
		t.Fatalf("after a crash during a pause: paused=%v, b got %d frames (held frames must be dropped with the process)", nb.Paused(), len(b.got))
	}
}

// A one-way loss holds a->b frames (b->a flows), then delivers them in order once the link
// clears, with the connection intact: TCP retransmits, the application never sees a gap.
func TestDropStallsOneDirectionThenDelivers(t *testing.T) {
	w, a, b := pair(1, false, 10, 100*time.Millisecond)
	w.At(250*time.Millisecond, func() { w.Drop("a:1", "b:1") })
	w.At(650*time.Millisecond, func() { w.Undrop("a:1", "b:1") })
	// b -> a must still work during the loss: b sends its own request at 400ms.
	w.At(400*time.Millisecond, func() {
		cmd := codec.NewRequest(11, nil, nil)
		cmd.Opaque = 99
		b.env.Send(b.conn, cmd)
	})
	w.RunUntil(3 * time.Second)

	var fromA []stamped
	var answer99 bool
	for _, g := range b.got {
		if g.v != 99 {
			fromA = append(fromA, g)
		}
	}
	for _, g := range a.got {
		if g.v == 99 && g.at == 401*time.Millisecond {
			answer99 = true
		}
	}
	if !slices.Equal(opaques(fromA), seq(10)) {
		t.Fatalf("b got %v from a, want 1..10 in order", opaques(fromA))
	}
	if !answer99 {
		t.Fatalf("b's request during the loss did not reach a at once: a got %v", a.got)
	}
	// Frames 3..6 (sent 302..602ms) stall; retransmissions at 502 (200ms after the first
	// stall) and 902: the link is clear at 902, so they arrive at 903, and so do 7 and 8,
	// sent after the loss ended but queued behind them.
	for _, g := range fromA {
		if g.v >= 3 && g.v <= 8 && g.at != 903*time.Millisecond {
			t.Errorf("frame %d arrived at %v, want 903ms", g.v, g.at)
		}
	}
	if len(a.closed)+len(b.closed) != 0 {
		t.Fatalf("a short loss closed the connection: a %v, b %v", a.closed, b.closed)
	}
}

// A loss that outlasts the retransmit timeout resets the connection on both sides and what was
// stalled is never delivered; dials across a lossy link fail.
func TestDropPastRetransmitTimeoutResets(t *testing.T) {
	w, a, b := pair(1, false, 10, 100*time.Millisecond)
	w.net.RetransmitTimeout = time.Second
	w.At(250*time.Millisecond, func() { w.Drop("a:1", "b:1") })
	w.RunUntil(5 * time.Second)
	if !slices.Equal(opaques(b.got), seq(2)) {
		t.Fatalf("b got %v; want 1, 2 (sent before the loss) and nothing stalled", opaques(b.got))
	}
	// First stalled frame at 302ms: give up at 1302ms; a knows at once, b a latency later.
	if !slices.Equal(a.closed, []time.Duration{1302 * time.Millisecond}) || !slices.Equal(b.closed, []time.Duration{1303 * time.Millisecond}) {
		t.Fatalf("closes: a %v, b %v; want a at 1302ms, b at 1303ms", a.closed, b.closed)
	}
	// The loss is still on: a dial from b to a (reverse direction) cannot complete a handshake.
	b.env.Dial("a:1")
	w.RunUntil(10 * time.Second)
	if len(b.closed) != 2 || b.closed[1] != 8*time.Second {
		t.Fatalf("dial across a lossy link: b closes %v, want a failure 3s after the dial at 5s", b.closed)
	}
}

// A delay spike adds its latency to one direction only, while it lasts, and never reorders a
// connection: a frame sent after the spike waits for those sent during it.
func TestDelaySpikeIsPerLinkAndKeepsOrder(t *testing.T) {
	w, a, b := pair(1, false, 10, 100*time.Millisecond)
	w.At(250*time.Millisecond, func() { w.AddDelay("a:1", "b:1", 300*time.Millisecond) })
	w.At(260*time.Millisecond, func() { w.AddDelay("a:1", "b:1", 100*time.Millisecond) }) // adds up
	w.At(450*time.Millisecond, func() { w.RemoveDelay("a:1", "b:1", 300*time.Millisecond) })
	w.At(550*time.Millisecond, func() { w.RemoveDelay("a:1", "b:1", 100*time.Millisecond) })
	w.At(560*time.Millisecond, func() { w.RemoveDelay("a:1", "b:1", 100*time.Millisecond) }) // stray: no-op
	w.RunUntil(3 * time.Second)
	want := map[int32]time.Duration{
		2: 203 * time.Millisecond, // before the spike
		3: 703 * time.Millisecond, // 302 + 1 + 400
		4: 803 * time.Millisecond, // 402 + 1 + 400
		5: 803 * time.Millisecond, // 502 + 1 + 100, but behind frame 4
		6: 803 * time.Millisecond, // 602 + 1: after the spike, but behind frame 4 as well
		7: 803 * time.Millisecond,
		8: 803 * time.Millisecond,
		9: 903 * time.Millisecond,
	}
	for _, g := range b.got {
		if at, ok := want[g.v]; ok && g.at != at {
			t.Errorf("frame %d reached b at %v, want %v", g.v, g.at, at)
		}
	}
	if !slices.Equal(opaques(b.got), seq(10)) {
		t.Fatalf("order broken: %v", opaques(b.got))
	}
	// Answers b -> a are not delayed: the answer to frame 3 leaves b at 703ms, reaches a at 704ms.
	for _, g := range a.got {
		if g.v == 3 && g.at != 704*time.Millisecond {
			t.Errorf("answer 3 reached a at %v, want 704ms (the spike is one direction only)", g.at)
		}
	}
	if len(w.delays) != 0 {
		t.Fatalf("delays left after every spike ended: %v", w.delays)
	}
}

// Disk faults on a node: write and sync errors compose (the newest active one is reported),
// heal independently and survive a crash; a slow fsync delays sync completions.
func TestNodeDiskFaults(t *testing.T) {
	w, a, _ := pair(1, false, 0, 0)
	w.RunUntil(10 * time.Millisecond)
	na := w.Node("a:1")
	l, err := a.env.Disk().OpenLog("log")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append([]byte("x")); err != nil {
		t.Fatal(err)
	}
	eio := fmt.Errorf("injected: %w", node.ErrIO)
	full := fmt.Errorf("injected: %w", node.ErrNoSpace)
	healEIO := na.FailDiskWrites(eio)
	healFull := na.FailDiskWrites(full)
	if _, err := l.Append([]byte("y")); !errors.Is(err, node.ErrNoSpace) {
		t.Fatalf("append with EIO then ENOSPC active = %v, want ENOSPC (the newest)", err)
	}
	healFull()
	if _, err := l.Append([]byte("y")); !errors.Is(err, node.ErrIO) {
		t.Fatalf("append after ENOSPC healed = %v, want EIO (still active)", err)
	}
	healFull() // a second heal of the same fault changes nothing
	if err := a.env.Disk().WriteFile("meta", []byte("m")); !errors.Is(err, node.ErrIO) {
		t.Fatalf("write file with EIO active = %v", err)
	}
	healEIO()
	if _, err := l.Append([]byte("y")); err != nil {
		t.Fatalf("append after every write fault healed: %v", err)
	}

	healSync := na.FailDiskSyncs(eio)
	a.env.Sync(l, 2)
	w.RunFor(5 * time.Millisecond)
	if len(a.synced) != 1 || !errors.Is(a.synced[0].err, node.ErrIO) {
		t.Fatalf("sync with EIO on syncs: %+v", a.synced)
	}
	if d, _ := na.Disk.Durable("log"); d != 0 {
		t.Fatalf("a failed sync made %d entries durable", d)
	}
	healSync()

	heal := na.SlowFsync(200 * time.Millisecond)
	start := w.Now()
	a.env.Sync(l, 2)
	w.RunFor(time.Second)
	if len(a.synced) != 2 || a.synced[1].err != nil || a.synced[1].at != start+201*time.Millisecond {
		t.Fatalf("slow fsync: %+v, want success at %v", a.synced, start+201*time.Millisecond)
	}
	heal()
	start = w.Now()
	a.env.Sync(l, 2)
	w.RunFor(time.Second)
	if a.synced[2].at != start+time.Millisecond {
		t.Fatalf("fsync after the slowdown healed completed at %v, want %v", a.synced[2].at, start+time.Millisecond)
	}

	na.FailDiskWrites(eio)
	na.Crash()
	na.Restart()
	w.RunFor(10 * time.Millisecond)
	if err := na.Disk.WriteFile("meta", nil); !errors.Is(err, node.ErrIO) {
		t.Fatalf("a disk write fault did not survive a crash: %v", err)
	}
	w.HealAll()
	if err := na.Disk.WriteFile("meta", nil); err != nil {
		t.Fatalf("HealAll left a disk fault: %v", err)
	}
}

// Clock faults change only what the node reads from Now: a skew is a constant offset until
// healed; a jump steps the clock and slews it back linearly. Virtual time and timers do not
// move.
func TestClockSkewAndJump(t *testing.T) {
	w, a, b := pair(1, false, 0, 0)
	a.timerTag, a.timerAt = "t", time.Second
	na := w.Node("a:1")
	w.RunUntil(100 * time.Millisecond)
	heal := na.SkewClock(-time.Hour)
	if got := a.at(); got != 100*time.Millisecond-time.Hour {
		t.Fatalf("skewed clock reads %v", got)
	}
	if got := b.at(); got != 100*time.Millisecond {
		t.Fatalf("a's skew moved b's clock: %v", got)
	}
	w.RunUntil(2 * time.Second)
	if len(a.timers) != 1 || a.timers[0].at != time.Second-time.Hour {
		t.Fatalf("timer under skew: %v (it must fire at virtual 1s, which a reads 1h early)", a.timers)
	}
	heal()
	if got := a.at(); got != 2*time.Second {
		t.Fatalf("healed clock reads %v", got)
	}

	// A jump forward by 10s, slewed back over 20s; plus a jump back by 4s over 8s.
	na.JumpClock(10*time.Second, 20*time.Second)
	if got := a.at(); got != 12*time.Second {
		t.Fatalf("right after a +10s jump the clock reads %v", got)
	}
	w.RunUntil(7 * time.Second) // 5s into the slew: +7.5s left
	na.JumpClock(-4*time.Second, 8*time.Second)
	if got := a.at(); got != 7*time.Second+7500*time.Millisecond-4*time.Second {
		t.Fatalf("two jumps: clock reads %v", got)
	}
	w.RunUntil(11 * time.Second) // +5.5s and -2s left
	if got := a.at(); got != 11*time.Second+5500*time.Millisecond-2*time.Second {
		t.Fatalf("slewing: clock reads %v", got)
	}
	w.RunUntil(22 * time.Second)
	if got := a.at(); got != 22*time.Second || na.ClockOffset() != 0 || len(na.clock) != 0 {
		t.Fatalf("after both slews the clock reads %v (offset %v, %d faults)", got, na.ClockOffset(), len(na.clock))
	}
	// Offsets of minutes over slews of minutes do not overflow.
	na.JumpClock(-30*time.Minute, 2*time.Hour)
	w.RunFor(time.Hour)
	if off := na.ClockOffset(); off != -15*time.Minute {
		t.Fatalf("half-way through a long slew the offset is %v, want -15m", off)
	}
	w.HealAll()
	if na.ClockOffset() != 0 {
		t.Fatal("HealAll left a clock offset")
	}
}

// HealAll ends a pause (delivering what it held) and every network fault.
func TestHealAllEndsEveryFault(t *testing.T) {
	w, a, b := pair(1, false, 3, 100*time.Millisecond)
	w.At(150*time.Millisecond, func() {
		w.Node("b:1").Pause(time.Hour)
		w.Drop("b:1", "a:1")
		w.Block("a:1", "x")
		w.AddDelay("b:1", "a:1", time.Minute)
	})
	w.RunUntil(time.Second)
	if len(b.got) != 1 {
		t.Fatalf("b got %v while paused", b.got)
	}
	w.HealAll()
	w.RunFor(time.Second)
	if !slices.Equal(opaques(b.got), seq(3)) || !slices.Equal(opaques(a.got), seq(3)) {
		t.Fatalf("after HealAll: b got %v, a got %v", opaques(b.got), opaques(a.got))
	}
	if w.isDropped("b:1", "a:1") || w.isBlocked("a:1", "x") || w.extraDelay("b:1", "a:1") != 0 || w.Node("b:1").Paused() {
		t.Fatal("HealAll left a fault behind")
	}
}

// Every fault above, with jittered latencies: the same seed gives the same trace, another
// seed another trace.
func TestFaultsReplayFromSeed(t *testing.T) {
	run := func(seed uint64) (uint64, uint64) {
		w, _, _ := pair(seed, true, 40, 50*time.Millisecond)
		w.net.RetransmitTimeout = 700 * time.Millisecond
		nb, na := w.Node("b:1"), w.Node("a:1")
		w.At(200*time.Millisecond, func() { nb.Pause(300 * time.Millisecond) })
		w.At(400*time.Millisecond, func() { w.Drop("a:1", "b:1") })
		w.At(700*time.Millisecond, func() { w.Undrop("a:1", "b:1") })
		w.At(800*time.Millisecond, func() { w.AddDelay("b:1", "a:1", 80*time.Millisecond) })
		w.At(900*time.Millisecond, func() { na.JumpClock(-time.Second, 2*time.Second) })
		w.At(1000*time.Millisecond, func() { w.Drop("b:1", "a:1") }) // resets after 700ms
		w.At(1100*time.Millisecond, func() { na.SlowFsync(30 * time.Millisecond) })
		w.RunUntil(4 * time.Second)
		return w.TraceHash(), w.Delivered()
	}
	h1, n1 := run(5)
	h2, n2 := run(5)
	if h1 != h2 || n1 != n2 {
		t.Fatalf("seed 5 twice: %016x (%d events) then %016x (%d events)", h1, n1, h2, n2)
	}
	if h3, _ := run(6); h3 == h1 {
		t.Fatalf("seeds 5 and 6 gave the same trace %016x", h1)
	}
}

// A paused listener's kernel still completes handshakes: the dialer learns its connection is up
// on time and may send at once; the paused process sees the accept, then the frames, when it
// resumes.
func TestPausedListenerAcceptsInKernel(t *testing.T) {
	w, a, b := pair(1, false, 3, 100*time.Millisecond)
	w.Node("b:1").Pause(500 * time.Millisecond) // before anything ran: even b's Start waits
	w.RunUntil(450 * time.Millisecond)
	if !a.dialed || len(b.got) != 0 || b.conn != 0 {
		t.Fatalf("at 450ms: a dialed=%v, b got %v, b conn %d; want a dialed, b nothing", a.dialed, b.got, b.conn)
	}
	w.RunUntil(time.Second)
	if b.conn == 0 || !slices.Equal(opaques(b.got), seq(3)) || b.got[0].at != 500*time.Millisecond {
		t.Fatalf("after the pause: b conn %d, got %v; want the accept then frames 1..3 from 500ms", b.conn, b.got)
	}
}

// A handler that cannot be built (nil from newHandler: the process exits at startup, here
// because its disk refuses writes) leaves the node down; it is started again every StartRetry
// until a start succeeds, and nothing set up by a failed start survives it.
func TestFailedStartIsRetried(t *testing.T) {
	w := NewWorld(1, NetConfig{MinLatency: time.Millisecond, MaxLatency: time.Millisecond}, DiskConfig{}, nil)
	var started []time.Duration
	fired := 0
	n := w.AddNode("x:1", func(env node.Env) node.Handler {
		env.SetTimer(10*time.Millisecond, "from a start") // must not fire if the start fails
		if err := env.Disk().WriteFile("boot", []byte("ok")); err != nil {
			return nil
		}
		started = append(started, w.Now())
		return &timerCounter{fired: &fired}
	})
	w.RunUntil(100 * time.Millisecond)
	heal := n.FailDiskWrites(fmt.Errorf("injected: %w", node.ErrIO))
	n.Crash()
	n.Restart() // fails at 100ms; retried at 1.1s, 2.1s (fails), 3.1s (succeeds)
	w.At(2500*time.Millisecond, heal)
	w.RunUntil(5 * time.Second)
	if !n.Up() || n.StartFailures != 3 || !slices.Equal(started, []time.Duration{0, 3100 * time.Millisecond}) {
		t.Fatalf("up=%v, %d failed starts, started at %v; want up after 3 failures, started at 0 and 3.1s", n.Up(), n.StartFailures, started)
	}
	if fired != 2 {
		t.Fatalf("%d timers fired; want 2, one per successful start", fired)
	}
}

type timerCounter struct{ fired *int }

func (c *timerCounter) Start()                              {}
func (c *timerCounter) OnAccepted(node.ConnID, string)      {}
func (c *timerCounter) OnDialed(node.ConnID)                {}
func (c *timerCounter) OnConnClosed(node.ConnID)            {}
func (c *timerCounter) OnFrame(node.ConnID, *codec.Command) {}
func (c *timerCounter) OnTimer(node.TimerID, any)           { *c.fired++ }
func (c *timerCounter) OnSynced(string, uint64, error)      {}

// OnDurable reports what the disk made durable: as an fsync completes, everything the log held
// when it was asked for (not what arrived while it ran); nothing for a failed one; and, as the
// node crashes, each log that holds nothing unsynced, as of then.
func TestOnDurableReportsWhatTheDiskSynced(t *testing.T) {
	w, a, _ := pair(1, false, 0, 0)
	w.RunUntil(10 * time.Millisecond)
	na := w.Node("a:1")
	type report struct {
		log     string
		through time.Duration
	}
	var got []report
	na.OnDurable = func(log string, through time.Duration) { got = append(got, report{log, through}) }
	l, err := a.env.Disk().OpenLog("log")
	if err != nil {
		t.Fatal(err)
	}
	appendOne := func() {
		t.Helper()
		if _, err := l.Append([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	appendOne()
	asked := w.Now()
	a.env.Sync(l, l.LastIndex())
	appendOne() // after the request: not covered by it
	w.RunFor(5 * time.Millisecond)
	if want := []report{{"log", asked}}; !slices.Equal(got, want) {
		t.Fatalf("after one sync: %v, want %v", got, want)
	}

	heal := na.FailDiskSyncs(fmt.Errorf("injected: %w", node.ErrIO))
	a.env.Sync(l, l.LastIndex())
	w.RunFor(5 * time.Millisecond)
	heal()
	if len(got) != 1 {
		t.Fatalf("a failed sync was reported: %v", got)
	}
	// A sync asked for less than the log held says nothing about the time it was asked at.
	a.env.Sync(l, 1)
	w.RunFor(5 * time.Millisecond)
	if len(got) != 1 {
		t.Fatalf("a sync of part of the log was reported: %v", got)
	}

	na.Crash() // the second entry is unsynced: nothing to report
	if len(got) != 1 {
		t.Fatalf("a crash with an unsynced entry was reported: %v", got)
	}
	na.Restart()
	w.RunFor(5 * time.Millisecond)
	l, err = a.env.Disk().OpenLog("log")
	if err != nil {
		t.Fatal(err)
	}
	a.env.Sync(l, l.LastIndex())
	w.RunFor(5 * time.Millisecond)
	got = nil
	na.Crash() // everything synced: the crash can lose nothing of it
	if want := []report{{"log", w.Now()}}; !slices.Equal(got, want) {
		t.Fatalf("crash with nothing unsynced: %v, want %v", got, want)
	}
}
