package main

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/clientrt"
	"github.com/sluicemq/sluice/broker/codec"
)

// The steady-rate (soak) mode of 'sluice bench': --rate messages a second, open loop, for
// --duration, with a consumer group reading along. Every --report-every it prints one line:
// the interval's acknowledged rate, send latency percentiles (measured from each message's
// intended send time, so a stalled broker shows as latency, not as a slower sender), sends
// refused and failed, the consumers' rate and lag, and, when asked, a broker process's RSS and
// its data directory's disk use and deleted files. At the end it prints a summary of the
// intervals: is throughput flat, is memory flat, is disk use bounded.

// rateOptions configure a steady-rate run.
type rateOptions struct {
	topic     string
	rate      float64       // messages a second
	duration  time.Duration // how long messages are sent
	every     time.Duration // report interval
	size      int           // body bytes
	inflight  int           // sends in flight at most (all clients together)
	consume   bool          // a consumer group reads along
	group     string        // its name
	brokerPID int           // sampled for RSS when > 0
	dataDir   string        // sampled for disk use when not empty
	drain     time.Duration // after the last send, how long consumers may take to catch up

	// progress is the live progress line (bench_progress.go; nil: none).
	progress *benchProgress
}

// total is the number of messages a run sends: those whose intended send time, i/rate, is
// before the end.
func (o rateOptions) total() uint64 {
	return uint64(math.Ceil(o.duration.Seconds() * o.rate))
}

// bodyHeader is the bytes at the front of a body: its sequence number and its intended send
// time (nanoseconds after the run started), so a consumer can check it and time it end to end.
const bodyHeader = 16

// bodyMaker builds message bodies: the header, then bytes of a fixed random pattern starting
// at an offset that depends on the sequence number (incompressible, and checkable).
type bodyMaker struct {
	size    int
	pattern []byte
}

func newBodyMaker(size int) *bodyMaker {
	rng := rand.New(rand.NewPCG(uint64(size), 17))
	p := make([]byte, size+4096)
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return &bodyMaker{size: size, pattern: p}
}

// fill is the filler of message seq: the pattern from an offset seq selects.
func (m *bodyMaker) fill(seq uint64, n int) []byte {
	off := int(seq*61) % (len(m.pattern) - m.size)
	return m.pattern[off : off+n]
}

func (m *bodyMaker) make(seq uint64, intended time.Duration) []byte {
	b := make([]byte, m.size)
	if m.size < bodyHeader {
		copy(b, m.fill(seq, m.size))
		return b
	}
	binary.BigEndian.PutUint64(b, seq)
	binary.BigEndian.PutUint64(b[8:], uint64(intended))
	copy(b[bodyHeader:], m.fill(seq, m.size-bodyHeader))
	return b
}

// check returns a body's intended send time; ok is false when the body is not one of ours
// unchanged (wrong size, or its filler does not match its sequence number).
func (m *bodyMaker) check(b []byte) (intended time.Duration, ok bool) {
	if len(b) != m.size {
		return 0, false
	}
	if m.size < bodyHeader {
		return 0, true // too small to carry a header: only the size is checked
	}
	seq := binary.BigEndian.Uint64(b)
	if !bytes.Equal(b[bodyHeader:], m.fill(seq, m.size-bodyHeader)) {
		return 0, false
	}
	return time.Duration(binary.BigEndian.Uint64(b[8:])), true
}

// interval is what happened in one report interval.
type interval struct {
	start, end time.Duration // since the run started
	acked      int64
	sendLat    latencyHist
	refused    map[int16]int64 // definite refusals by response code
	failed     int64           // sends whose outcome is unknown (timeouts, lost connections)
	consumed   int64
	e2eLat     latencyHist // intended send time to consumption
	moved      int64       // offsets a consumer was moved forward (PULL_OFFSET_MOVED)
	corrupt    int64
	pullErrs   int64

	// Sampled: the broker's RSS at the interval's end, the data directory's most bytes used
	// in it, the file system's most bytes used, and the files that vanished from it by kind.
	rss               uint64
	diskMax, fsMax    uint64
	fsSize            uint64
	deleted           map[string]int
	lagEnd            int64 // acknowledged sends not yet consumed, at the interval's end
	issuedBehindAtEnd int64 // messages due but not yet issued (the window was full)
}

func (iv *interval) refusedTotal() int64 {
	var n int64
	for _, c := range iv.refused {
		n += c
	}
	return n
}

// absorb adds the interval that follows iv to it.
func (iv *interval) absorb(next *interval) {
	if next.start != iv.end {
		panic(fmt.Sprintf("bench: absorbing an interval starting at %v into one ending at %v", next.start, iv.end))
	}
	iv.end = next.end
	iv.acked += next.acked
	iv.sendLat.merge(&next.sendLat)
	for c, n := range next.refused {
		iv.refused[c] += n
	}
	iv.failed += next.failed
	iv.consumed += next.consumed
	iv.e2eLat.merge(&next.e2eLat)
	iv.moved += next.moved
	iv.corrupt += next.corrupt
	iv.pullErrs += next.pullErrs
	iv.rss = next.rss
	iv.diskMax, iv.fsMax = max(iv.diskMax, next.diskMax), max(iv.fsMax, next.fsMax)
	for k, n := range next.deleted {
		iv.deleted[k] += n
	}
	iv.lagEnd, iv.issuedBehindAtEnd = next.lagEnd, next.issuedBehindAtEnd
}

func (iv *interval) secs() float64 { return (iv.end - iv.start).Seconds() }

// rateRun is the shared state of one run.
type rateRun struct {
	o     rateOptions
	out   io.Writer
	start time.Time
	body  *bodyMaker

	mu       sync.Mutex
	cur      *interval
	firstErr map[string]string // the first error text of each kind, for the summary

	ackedTotal, consumedTotal atomic.Int64

	sampleMu  sync.Mutex
	rss       uint64
	sampleErr map[string]bool // sampling errors already reported
	lastFiles map[string]struct{}
	diskMax   uint64
	fsMax     uint64
	fsSize    uint64
	deleted   map[string]int
}

func (r *rateRun) since() time.Duration { return time.Since(r.start) }

func newInterval(start time.Duration) *interval {
	return &interval{start: start, refused: map[int16]int64{}, deleted: map[string]int{}}
}

// noteErr keeps the first error text of a kind.
func (r *rateRun) noteErr(kind string, err error) {
	if _, ok := r.firstErr[kind]; !ok {
		r.firstErr[kind] = err.Error()
	}
}

func (r *rateRun) sendDone(intended time.Duration, err error) {
	lat := r.since() - intended
	r.o.progress.sendDone(lat, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	var be *client.BrokerError
	switch {
	case err == nil:
		r.cur.acked++
		r.cur.sendLat.record(lat)
	case errors.As(err, &be) && client.Definite(err):
		r.cur.refused[be.Code]++
		r.noteErr(fmt.Sprintf("refused (code %d)", be.Code), err)
	default:
		r.cur.failed++
		r.noteErr("failed", err)
	}
	if err == nil {
		r.ackedTotal.Add(1)
	}
}

// runRateBench runs the steady-rate mode on started, warmed-up clients and writes its report
// lines and summary to out. It returns the process exit code: 1 when a consumer read a body
// that was not what was sent.
func runRateBench(o rateOptions, cls []*clientrt.Client, out io.Writer) int {
	r := &rateRun{o: o, out: out, body: newBodyMaker(o.size), firstErr: map[string]string{}, sampleErr: map[string]bool{},
		deleted: map[string]int{}}
	fmt.Fprintf(out, "steady rate: %.0f msgs/s of %d bytes to %s for %v, report every %v, %d clients, %d in flight at most",
		o.rate, o.size, o.topic, o.duration, o.every, len(cls), o.inflight)
	if o.consume {
		fmt.Fprintf(out, ", group %s reading along", o.group)
	}
	fmt.Fprintln(out)
	r.sample() // a first look: the files there before the run are not counted as deleted
	r.resetSampleInterval()

	var queues []client.MessageQueue
	var from []int64 // each queue's end before the run: the consumers read what the run sends
	if o.consume {
		var err error
		if queues, err = cls[0].Queues(o.topic); err != nil {
			fmt.Fprintln(out, "sluice bench: queues:", err)
			return 1
		}
		for _, q := range queues {
			res, err := cls[0].Pull(client.PullRequest{Queue: q, Group: o.group, MaxMsgs: 1})
			if err != nil {
				fmt.Fprintln(out, "sluice bench: find the end of the queues:", err)
				return 1
			}
			from = append(from, res.MaxOffset)
		}
	}
	r.start = time.Now()
	r.cur = newInterval(0)
	var stopConsumers atomic.Bool
	var cwg sync.WaitGroup
	for i, q := range queues {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			r.consume(cls[i%len(cls)], q, from[i], &stopConsumers)
		}()
	}
	var history []*interval
	var issued atomic.Int64
	monitorDone := make(chan struct{})
	stopMonitor := make(chan struct{})
	go func() {
		defer close(monitorDone)
		history = r.monitor(out, &issued, stopMonitor)
	}()

	window := make(chan struct{}, o.inflight)
	var swg sync.WaitGroup
	perMsg := float64(time.Second) / o.rate
	total := o.total()
	for seq := uint64(0); seq < total; {
		due := min(uint64(float64(r.since())/perMsg)+1, total) // message i is due at i/rate
		for ; seq < due; seq++ {
			intended := time.Duration(float64(seq) * perMsg)
			window <- struct{}{}
			swg.Add(1)
			c := cls[seq%uint64(len(cls))]
			msg := client.Message{Topic: o.topic, Body: r.body.make(seq, intended), Keys: fmt.Sprintf("soak-%d", seq)}
			c.SendAsync(msg, func(_ client.SendResult, err error) {
				r.sendDone(intended, err)
				<-window
				swg.Done()
			})
			issued.Store(int64(seq) + 1)
		}
		time.Sleep(time.Duration(float64(seq)*perMsg) - r.since())
	}
	swg.Wait()
	if o.consume {
		deadline := time.Now().Add(o.drain)
		for r.consumedTotal.Load() < r.ackedTotal.Load() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	close(stopMonitor)
	<-monitorDone
	stopConsumers.Store(true)
	cwg.Wait()
	o.progress.stop()
	return r.summarize(out, history)
}

// consume reads queue q along with the producers, as a consumer group does: long-polling
// pulls from offset off, offsets committed every second, moved forward when retention removed
// what it had not read.
func (r *rateRun) consume(c *clientrt.Client, q client.MessageQueue, off int64, stop *atomic.Bool) {
	lastCommit := time.Now()
	for !stop.Load() {
		if time.Since(lastCommit) >= time.Second {
			c.CommitOffset(r.o.group, q, off)
			lastCommit = time.Now()
		}
		res, err := c.Pull(client.PullRequest{Queue: q, Group: r.o.group, Offset: off, MaxMsgs: 256, SuspendMillis: 1000})
		if err != nil {
			r.mu.Lock()
			r.cur.pullErrs++
			r.noteErr("pull failed", err)
			r.mu.Unlock()
			time.Sleep(100 * time.Millisecond)
			continue
		}
		switch res.Status {
		case codec.Success:
			now := r.since()
			var n, bad int64
			var lats []time.Duration
			for _, m := range res.Msgs {
				intended, ok := r.body.check(m.Body)
				if !ok {
					bad++
					continue
				}
				n++
				lats = append(lats, now-intended)
			}
			r.mu.Lock()
			r.cur.consumed += n
			r.cur.corrupt += bad
			for _, l := range lats {
				r.cur.e2eLat.record(l)
			}
			r.mu.Unlock()
			r.consumedTotal.Add(n)
			r.o.progress.readDone(n)
		case codec.PullOffsetMoved:
			if res.NextBeginOffset > off {
				r.mu.Lock()
				r.cur.moved += res.NextBeginOffset - off
				r.mu.Unlock()
			}
		case codec.PullNotFound, codec.PullRetryImmediately:
		default:
			// An answer that is not about the offset (the broker is busy, say): its
			// nextBeginOffset means nothing, keep ours.
			r.mu.Lock()
			r.cur.pullErrs++
			r.noteErr("pull refused", fmt.Errorf("pull %s at %d: code %d", q, off, res.Status))
			r.mu.Unlock()
			time.Sleep(100 * time.Millisecond)
			continue
		}
		off = res.NextBeginOffset
	}
	c.CommitOffset(r.o.group, q, off)
}

// sample looks at the broker's RSS and the data directory once, keeping the interval's
// maxima and the files that vanished since the last look.
func (r *rateRun) sample() {
	r.sampleMu.Lock()
	defer r.sampleMu.Unlock()
	reportOnce := func(kind string, err error) {
		if !r.sampleErr[kind] {
			r.sampleErr[kind] = true
			fmt.Fprintf(r.out, "sluice bench: %v (reported once)\n", err)
		}
	}
	if r.o.brokerPID > 0 {
		rss, err := readRSS(r.o.brokerPID)
		if err != nil {
			reportOnce("rss", err)
		} else {
			r.rss = rss
		}
	}
	if r.o.dataDir != "" {
		u, err := measureDir(r.o.dataDir)
		if err != nil {
			reportOnce("disk", err)
			return
		}
		r.diskMax = max(r.diskMax, u.bytes)
		r.fsMax = max(r.fsMax, u.fsUsed)
		r.fsSize = u.fsSize
		if r.lastFiles != nil {
			for kind, n := range vanished(r.lastFiles, u.files) {
				r.deleted[kind] += n
			}
		}
		r.lastFiles = u.files
	}
}

// resetSampleInterval starts a new interval of sampled maxima and deletions.
func (r *rateRun) resetSampleInterval() {
	r.sampleMu.Lock()
	defer r.sampleMu.Unlock()
	r.diskMax, r.fsMax = 0, 0
	r.deleted = map[string]int{}
}

// monitor samples every second (or every report interval, if shorter) and closes an interval
// every o.every, printing its line; it closes the last one when stop is closed and returns
// them all.
func (r *rateRun) monitor(out io.Writer, issued *atomic.Int64, stop <-chan struct{}) []*interval {
	period := min(time.Second, r.o.every)
	tick := time.NewTicker(period)
	defer tick.Stop()
	var history []*interval
	next := r.o.every
	closeInterval := func(last bool) {
		r.sample()
		now := r.since()
		r.mu.Lock()
		iv := r.cur
		r.cur = newInterval(now)
		r.mu.Unlock()
		iv.end = now
		r.sampleMu.Lock()
		iv.rss, iv.diskMax, iv.fsMax, iv.fsSize = r.rss, r.diskMax, r.fsMax, r.fsSize
		for k, v := range r.deleted {
			iv.deleted[k] = v
		}
		r.sampleMu.Unlock()
		r.resetSampleInterval()
		// A consumer may read a message before its send's acknowledgement is counted.
		iv.lagEnd = max(r.ackedTotal.Load()-r.consumedTotal.Load(), 0)
		due := min(int64(now.Seconds()*r.o.rate)+1, int64(r.o.total()))
		iv.issuedBehindAtEnd = max(due-issued.Load(), 0)
		if last && len(history) > 0 && iv.end-iv.start < r.o.every/2 {
			// The drain after the last whole interval (the last sends' acknowledgements, the
			// consumers catching up): part of that interval, not a line of its own whose rate
			// would mean nothing.
			prev := history[len(history)-1]
			prev.absorb(iv)
			fmt.Fprintf(out, "[%6s] drained: %d more acknowledged, %d more consumed, lag %d\n",
				iv.end.Round(time.Millisecond), iv.acked, iv.consumed, iv.lagEnd)
			return
		}
		history = append(history, iv)
		fmt.Fprintln(out, r.line(iv))
	}
	for {
		select {
		case <-stop:
			closeInterval(true)
			return history
		case <-tick.C:
			if r.since() >= next {
				closeInterval(false)
				next += r.o.every
			} else {
				r.sample()
			}
		}
	}
}

// line is an interval's report line.
func (r *rateRun) line(iv *interval) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%6s] send %7.0f/s p50 %s p99 %s max %s refused %d failed %d",
		iv.end.Round(time.Second), float64(iv.acked)/iv.secs(), ms(iv.sendLat.quantile(0.5)),
		ms(iv.sendLat.quantile(0.99)), ms(iv.sendLat.quantile(1)), iv.refusedTotal(), iv.failed)
	if float64(iv.issuedBehindAtEnd) >= max(2, r.o.rate/100) {
		// More than 10 ms of messages due but not sent: the in-flight window is full.
		fmt.Fprintf(&b, " behind %d", iv.issuedBehindAtEnd)
	}
	if r.o.consume {
		fmt.Fprintf(&b, " | consume %7.0f/s lag %d e2e p99 %s", float64(iv.consumed)/iv.secs(), iv.lagEnd, ms(iv.e2eLat.quantile(0.99)))
		if iv.moved > 0 {
			fmt.Fprintf(&b, " moved %d", iv.moved)
		}
		if iv.pullErrs > 0 {
			fmt.Fprintf(&b, " pull errors %d", iv.pullErrs)
		}
		if iv.corrupt > 0 {
			fmt.Fprintf(&b, " CORRUPT %d", iv.corrupt)
		}
	}
	if r.o.brokerPID > 0 {
		fmt.Fprintf(&b, " | rss %s", mib(iv.rss))
	}
	if r.o.dataDir != "" {
		fmt.Fprintf(&b, " | data %s fs %s of %s (%.0f%%)", mib(iv.diskMax), mib(iv.fsMax), mib(iv.fsSize),
			100*float64(iv.fsMax)/float64(max(iv.fsSize, 1)))
		if len(iv.deleted) > 0 {
			fmt.Fprintf(&b, " deleted %s", kindCounts(iv.deleted))
		}
	}
	return b.String()
}

// summarize prints the run's summary and returns the exit code.
func (r *rateRun) summarize(out io.Writer, history []*interval) int {
	var all, e2e latencyHist
	var acked, failed, consumed, moved, corrupt, pullErrs, maxLag int64
	refused := map[int16]int64{}
	deleted := map[string]int{}
	var diskMax, fsMax, fsSize uint64
	var rates []float64
	var rss []uint64
	for _, iv := range history {
		all.merge(&iv.sendLat)
		e2e.merge(&iv.e2eLat)
		acked += iv.acked
		failed += iv.failed
		consumed += iv.consumed
		moved += iv.moved
		corrupt += iv.corrupt
		pullErrs += iv.pullErrs
		maxLag = max(maxLag, iv.lagEnd)
		for c, n := range iv.refused {
			refused[c] += n
		}
		for k, n := range iv.deleted {
			deleted[k] += n
		}
		diskMax, fsMax, fsSize = max(diskMax, iv.diskMax), max(fsMax, iv.fsMax), iv.fsSize
		if iv.rss > 0 {
			rss = append(rss, iv.rss)
		}
		// A short interval at the end (the drain) would skew the rates: only whole ones count.
		if iv.end-iv.start >= r.o.every*9/10 {
			rates = append(rates, float64(iv.acked)/iv.secs())
		}
	}
	el := r.since()
	fmt.Fprintf(out, "summary of %v at %.0f msgs/s target (%d-byte bodies):\n", el.Round(time.Second), r.o.rate, r.o.size)
	var refusedTotal int64
	for _, n := range refused {
		refusedTotal += n
	}
	fmt.Fprintf(out, "  sends: %d acknowledged, %d refused%s, %d failed (outcome unknown)\n",
		acked, refusedTotal, codeCounts(refused), failed)
	if len(rates) > 0 {
		sorted := slices.Clone(rates)
		slices.Sort(sorted)
		fmt.Fprintf(out, "  throughput per %v interval (acknowledged msgs/s): min %.0f median %.0f max %.0f",
			r.o.every, sorted[0], median(sorted), sorted[len(sorted)-1])
		if first, last, ok := firstLastRates(history, r.o.every); ok {
			fmt.Fprintf(out, "; last minute / first minute %.3f (%.0f / %.0f)", last/first, last, first)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "  send latency from intended send time: p50 %s p99 %s p99.9 %s max %s\n",
		ms(all.quantile(0.5)), ms(all.quantile(0.99)), ms(all.quantile(0.999)), ms(all.quantile(1)))
	if r.o.consume {
		fmt.Fprintf(out, "  consume: %d read, max lag %d at an interval's end, end-to-end p50 %s p99 %s, moved forward %d, pull errors %d, corrupt %d\n",
			consumed, maxLag, ms(e2e.quantile(0.5)), ms(e2e.quantile(0.99)), moved, pullErrs, corrupt)
	}
	if len(rss) > 0 {
		sorted := slices.Clone(rss)
		slices.Sort(sorted)
		fmt.Fprintf(out, "  broker RSS at interval ends: first %s median %s max %s last %s\n",
			mib(rss[0]), mib(sorted[len(sorted)/2]), mib(sorted[len(sorted)-1]), mib(rss[len(rss)-1]))
	}
	if r.o.dataDir != "" {
		fmt.Fprintf(out, "  data directory: at most %s in its files; file system at most %s used of %s (%.0f%%); files deleted: %s\n",
			mib(diskMax), mib(fsMax), mib(fsSize), 100*float64(fsMax)/float64(max(fsSize, 1)), kindCounts(deleted))
	}
	for _, k := range slices.Sorted(maps.Keys(r.firstErr)) {
		fmt.Fprintf(out, "  first %s: %s\n", k, r.firstErr[k])
	}
	if corrupt > 0 {
		fmt.Fprintf(out, "sluice bench: %d messages read back were not what was sent\n", corrupt)
		return 1
	}
	return 0
}

// firstLastRates are the acknowledged rates of the first and the last minute's whole
// intervals (or of the first and last half of a run shorter than two minutes); ok is false
// when there are not two separate spans of whole intervals.
func firstLastRates(history []*interval, every time.Duration) (first, last float64, ok bool) {
	var whole []*interval
	for _, iv := range history {
		if iv.end-iv.start >= every*9/10 {
			whole = append(whole, iv)
		}
	}
	if len(whole) < 2 {
		return 0, 0, false
	}
	runEnd := whole[len(whole)-1].end
	span := min(time.Minute, (runEnd-whole[0].start)/2)
	rate := func(keep func(*interval) bool) float64 {
		var n int64
		var secs float64
		for _, iv := range whole {
			if keep(iv) {
				n += iv.acked
				secs += iv.secs()
			}
		}
		if secs == 0 {
			return 0
		}
		return float64(n) / secs
	}
	first = rate(func(iv *interval) bool { return iv.end <= whole[0].start+span })
	last = rate(func(iv *interval) bool { return iv.start >= runEnd-span })
	if first == 0 {
		return 0, 0, false
	}
	return first, last, true
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func mib(b uint64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }

// kindCounts formats deleted files by kind, sorted: "commitlog 12 cq 4".
func kindCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	return sortedCounts(m, "%s %d", " ")
}

// codeCounts formats refusals by response code: " (code 14: 3)", or "" when none.
func codeCounts(m map[int16]int64) string {
	if len(m) == 0 {
		return ""
	}
	return " (" + sortedCounts(m, "code %d: %d", ", ") + ")"
}

// sortedCounts formats m's entries in key order, each with format (key, count), joined by sep.
func sortedCounts[K cmp.Ordered, V int | int64](m map[K]V, format, sep string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf(format, k, m[k]))
	}
	return strings.Join(parts, sep)
}
