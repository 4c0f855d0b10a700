package main

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLatencyHistQuantiles: every quantile the histogram reports is within its stated
// precision (1/64) above the exact one from the sorted values, never below it, and the max is
// exact; merging two histograms equals recording everything in one.
func TestLatencyHistQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var a, b, both latencyHist
	var exact []time.Duration
	for i := range 20000 {
		// Spread over six orders of magnitude: 1 µs to about 1 s.
		d := time.Duration(float64(time.Microsecond) * float64(int64(1)<<rng.IntN(20)) * (1 + rng.Float64()))
		d = d.Truncate(time.Microsecond)
		exact = append(exact, d)
		both.record(d)
		if i%3 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	a.merge(&b)
	slices.Sort(exact)
	for _, q := range []float64{0, 0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		rank := int(q*float64(len(exact))+0.999999) - 1
		want := exact[max(rank, 0)]
		for name, h := range map[string]*latencyHist{"one": &both, "merged": &a} {
			got := h.quantile(q)
			if got < want || float64(got-want) > float64(want)/64+float64(time.Microsecond) {
				t.Errorf("%s: quantile %v = %v, exact %v (more than 1/64 off)", name, q, got, want)
			}
		}
	}
	if got := both.quantile(1); got != exact[len(exact)-1] {
		t.Errorf("max %v, want %v", got, exact[len(exact)-1])
	}
	var empty latencyHist
	if empty.quantile(0.5) != 0 {
		t.Errorf("an empty histogram's median is %v, want 0", empty.quantile(0.5))
	}
}

// TestHistBuckets: buckets tile the values without gaps or overlaps: every value lies in its
// bucket's range, and the bucket before ends just below the bucket's first value.
func TestHistBuckets(t *testing.T) {
	prevHigh := int64(-1)
	for i := 0; i < 64*40; i++ {
		high := histBucketHigh(i)
		if histBucket(high) != i || histBucket(uint64(prevHigh+1)) != i {
			t.Fatalf("bucket %d holds [%d, %d], but those values map to buckets %d and %d",
				i, prevHigh+1, high, histBucket(uint64(prevHigh+1)), histBucket(high))
		}
		if width := high - uint64(prevHigh); i >= 128 && float64(width) > float64(high)/64 {
			t.Fatalf("bucket %d is %d wide at %d: coarser than 1/64", i, width, high)
		}
		prevHigh = int64(high)
	}
}

// TestBodyMaker: a body carries its intended send time and checks; a changed byte, a
// truncated body or a body of another message's filler does not.
func TestBodyMaker(t *testing.T) {
	m := newBodyMaker(1024)
	b := m.make(12345, 1500*time.Millisecond)
	if got, ok := m.check(b); !ok || got != 1500*time.Millisecond {
		t.Fatalf("check = %v, %v; want 1.5s, true", got, ok)
	}
	if other := m.make(12346, 0); slices.Equal(other[bodyHeader:], b[bodyHeader:]) {
		t.Fatalf("two messages have the same filler")
	}
	bad := slices.Clone(b)
	bad[700] ^= 1
	if _, ok := m.check(bad); ok {
		t.Errorf("a body with a flipped bit checks")
	}
	if _, ok := m.check(b[:1000]); ok {
		t.Errorf("a truncated body checks")
	}
	swapped := slices.Clone(b)
	copy(swapped, m.make(7, 0)[:8]) // another message's sequence number
	if _, ok := m.check(swapped); ok {
		t.Errorf("a body whose header does not match its filler checks")
	}
	small := newBodyMaker(10)
	if _, ok := small.check(small.make(1, 0)); !ok {
		t.Errorf("a body smaller than the header does not check")
	}
}

func TestReadRSS(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("skipped: no /proc")
	}
	rss, err := readRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Fatalf("readRSS(self) = %d, %v; want at least 1 MiB", rss, err)
	}
	if _, err := readRSS(1 << 30); err == nil {
		t.Errorf("readRSS of a process that does not exist did not fail")
	}
	path := filepath.Join(t.TempDir(), "status")
	for content, want := range map[string]string{
		"Name:\tx\nVmPeak:\t 9 kB\nVmRSS:\t  1234 kB\nThreads:\t1\n": "1263616",
		"Name:\tkthreadd\n":       "no VmRSS line",
		"VmRSS:\t  12 pages\n":    "malformed",
		"VmRSS:\t  -12 kB\n":      "malformed",
		"VmRSS:\t  1234 kB 5\n":   "malformed",
		"VmRSS:\t 99999999999 kB": "102399999998976",
	} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		rss, err := parseVmRSS(f)
		f.Close()
		got := strconv.FormatUint(rss, 10)
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, want) {
			t.Errorf("parseVmRSS(%q) = %q, want %q", content, got, want)
		}
	}
}

// TestMeasureDir: the bytes allocated to a data directory's files, its file system's size,
// and the files deleted between two looks by the store part they belong to.
func TestMeasureDir(t *testing.T) {
	dir := t.TempDir()
	files := map[string]int{
		"broker-a/logs/commitlog/00000000000000000001": 64 << 10,
		"broker-a/logs/commitlog/00000000000000003636": 64 << 10,
		"broker-a/logs/cq/T/0/00000000000000000001":    4 << 10,
		"broker-a/logs/keyindex/00000000000000000001":  4 << 10,
		"broker-a/meta/topics.json":                    100,
	}
	for name, size := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		data := make([]byte, size)
		for i := range data {
			data[i] = 1 // not sparse
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before, err := measureDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(before.files) != len(files) || before.bytes < 136<<10 || before.fsSize == 0 || before.fsUsed == 0 {
		t.Fatalf("measureDir: %d files, %d bytes, file system %d of %d; want %d files, at least %d bytes",
			len(before.files), before.bytes, before.fsUsed, before.fsSize, len(files), 136<<10)
	}
	for _, name := range []string{"broker-a/logs/commitlog/00000000000000000001", "broker-a/logs/cq/T/0/00000000000000000001", "broker-a/meta/topics.json"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	after, err := measureDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if after.bytes >= before.bytes {
		t.Errorf("bytes did not fall after deleting files: %d then %d", before.bytes, after.bytes)
	}
	got := kindCounts(vanished(before.files, after.files))
	if want := "broker-a 1 commitlog 1 cq 1"; got != want {
		t.Errorf("vanished: %q, want %q", got, want)
	}
	if _, err := measureDir(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("measureDir of a missing directory did not fail")
	}
}

// TestFirstLastRates: the first and last minute's rates come from whole intervals only.
func TestFirstLastRates(t *testing.T) {
	var history []*interval
	for i := range 12 {
		iv := newInterval(time.Duration(i) * 10 * time.Second)
		iv.end = iv.start + 10*time.Second
		iv.acked = 10000
		if i >= 6 {
			iv.acked = 9000
		}
		history = append(history, iv)
	}
	short := newInterval(120 * time.Second)
	short.end = short.start + time.Second
	short.acked = 5
	history = append(history, short)
	first, last, ok := firstLastRates(history, 10*time.Second)
	if !ok || first != 1000 || last != 900 {
		t.Fatalf("firstLastRates = %v, %v, %v; want 1000, 900, true", first, last, ok)
	}
	if _, _, ok := firstLastRates(history[:1], 10*time.Second); ok {
		t.Errorf("one interval gave a first and a last rate")
	}
}

// TestBenchRateProcess runs 'sluice bench --rate' against a 'sluice dev' process: a report
// line per interval with the broker's RSS and data directory, every message acknowledged at
// the asked rate and read back intact by the group reading along.
func TestBenchRateProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short: runs a broker for a few seconds")
	}
	c := startCompat(t)
	out, err := exec.Command(sluiceBinary(t), "bench", "--namesrv", c.NameServer, "--rate", "400", "--duration", "3s",
		"--report-every", "1s", "--broker-pid", strconv.Itoa(c.proc.cmd.Process.Pid), "--data-dir", c.Data).CombinedOutput()
	if err != nil {
		t.Fatalf("sluice bench: %v\n%s", err, out)
	}
	text := string(out)
	lines := regexp.MustCompile(`(?m)^\[ *\d+s\] send +\d+/s .* \| consume +\d+/s lag \d+ .* \| rss [0-9.]+MiB \| data [0-9.]+MiB fs `).FindAllString(text, -1)
	if len(lines) != 3 {
		t.Errorf("want 3 report lines with send, consume, rss and data, got %d:\n%s", len(lines), text)
	}
	for _, want := range []string{
		"sends: 1200 acknowledged, 0 refused, 0 failed",
		"consume: 1200 read",
		"corrupt 0",
		"broker RSS at interval ends: first ",
		"data directory: at most ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the summary lacks %q:\n%s", want, text)
		}
	}
	m := regexp.MustCompile(`median (\d+) max`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no throughput median in:\n%s", text)
	}
	if med, _ := strconv.Atoi(m[1]); med < 360 || med > 440 {
		t.Errorf("median throughput %d msgs/s, want about 400:\n%s", med, text)
	}
}
