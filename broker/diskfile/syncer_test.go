package diskfile

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/node"
)

// gatedLog is a node.Log whose Sync blocks until the test releases it, counting calls.
type gatedLog struct {
	node.Log // only Name and Sync are used
	name     string
	syncs    atomic.Int32
	entered  chan struct{} // receives when a Sync starts
	release  chan error    // a Sync returns the next value sent
}

func newGatedLog(name string) *gatedLog {
	return &gatedLog{name: name, entered: make(chan struct{}, 100), release: make(chan error)}
}

func (l *gatedLog) Name() string { return l.name }

func (l *gatedLog) Sync() error {
	l.syncs.Add(1)
	l.entered <- struct{}{}
	return <-l.release
}

type result struct {
	log  string
	upTo uint64
	err  error
}

// recorder collects done callbacks.
type recorder struct {
	mu      sync.Mutex
	results []result
	ch      chan result
}

func newRecorder() *recorder { return &recorder{ch: make(chan result, 1000)} }

func (r *recorder) done(log string) func(uint64, error) {
	return func(upTo uint64, err error) {
		r.ch <- result{log, upTo, err}
	}
}

func (r *recorder) wait(t *testing.T, n int) []result {
	t.Helper()
	var got []result
	for range n {
		select {
		case res := <-r.ch:
			got = append(got, res)
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d of %d done callbacks: %v", len(got), n, got)
		}
	}
	return got
}

func (r *recorder) none(t *testing.T) {
	t.Helper()
	select {
	case res := <-r.ch:
		t.Fatalf("unexpected done callback %v", res)
	case <-time.After(20 * time.Millisecond):
	}
}

func waitEntered(t *testing.T, l *gatedLog) {
	t.Helper()
	select {
	case <-l.entered:
	case <-time.After(10 * time.Second):
		t.Fatalf("Sync of %s did not start", l.name)
	}
}

// TestSyncerCoalesces: requests made while an fsync runs are all covered by the next one.
func TestSyncerCoalesces(t *testing.T) {
	s := NewSyncer()
	defer s.Close()
	l := newGatedLog("cl")
	r := newRecorder()

	s.Request(l, 1, r.done("cl"))
	waitEntered(t, l) // the first fsync is running
	for i := uint64(2); i <= 11; i++ {
		s.Request(l, i, r.done("cl"))
	}
	r.none(t) // nobody is acknowledged before their fsync finishes
	l.release <- nil
	if got := r.wait(t, 1); got[0].upTo != 1 || got[0].err != nil {
		t.Fatalf("first fsync completed %v, want upTo 1", got)
	}
	waitEntered(t, l) // one fsync for the ten queued requests
	r.none(t)
	l.release <- nil
	got := r.wait(t, 10)
	var ups []uint64
	for _, res := range got {
		if res.err != nil {
			t.Fatalf("done with error %v", res.err)
		}
		ups = append(ups, res.upTo)
	}
	if want := []uint64{2, 3, 4, 5, 6, 7, 8, 9, 10, 11}; !slices.Equal(ups, want) {
		t.Fatalf("done upTo values %v, want %v in request order", ups, want)
	}
	r.none(t)
	if n := l.syncs.Load(); n != 2 {
		t.Fatalf("%d fsyncs for 11 requests, want 2", n)
	}
}

// TestSyncerLogsIndependent: each log gets its own Sync and its own result.
func TestSyncerLogsIndependent(t *testing.T) {
	s := NewSyncer()
	defer s.Close()
	a, b := newGatedLog("a"), newGatedLog("b")
	r := newRecorder()

	s.Request(a, 5, r.done("a"))
	waitEntered(t, a)
	s.Request(b, 7, r.done("b"))
	s.Request(a, 6, r.done("a"))
	s.Request(b, 8, r.done("b"))
	failure := errors.New("EIO on a")
	a.release <- failure
	if got := r.wait(t, 1); got[0] != (result{"a", 5, failure}) {
		t.Fatalf("got %v, want a's failure for upTo 5", got)
	}
	// b's requests came first among the queued ones: b is synced next, once for both.
	waitEntered(t, b)
	b.release <- nil
	got := r.wait(t, 2)
	if want := []result{{"b", 7, nil}, {"b", 8, nil}}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	waitEntered(t, a)
	a.release <- nil
	if got := r.wait(t, 1); got[0] != (result{"a", 6, nil}) {
		t.Fatalf("got %v, want a upTo 6 without error", got)
	}
	if a.syncs.Load() != 2 || b.syncs.Load() != 1 {
		t.Fatalf("fsyncs: a %d, b %d; want 2, 1", a.syncs.Load(), b.syncs.Load())
	}
}

// TestSyncerCloseDrains: Close serves every request made before it, then refuses new ones.
func TestSyncerCloseDrains(t *testing.T) {
	s := NewSyncer()
	l := newGatedLog("cl")
	r := newRecorder()
	s.Request(l, 1, r.done("cl"))
	waitEntered(t, l)
	s.Request(l, 2, r.done("cl"))
	s.Request(l, 3, r.done("cl"))
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	l.release <- nil
	waitEntered(t, l)
	select {
	case <-closed:
		t.Fatal("Close returned before the pending requests were served")
	case <-time.After(20 * time.Millisecond):
	}
	l.release <- nil
	<-closed
	if got := r.wait(t, 3); got[2] != (result{"cl", 3, nil}) {
		t.Fatalf("got %v", got)
	}
	s.Request(l, 4, r.done("cl"))
	if got := r.wait(t, 1); got[0].upTo != 4 || !errors.Is(got[0].err, ErrSyncerClosed) {
		t.Fatalf("request after Close: %v, want ErrSyncerClosed", got)
	}
	s.Close() // a second Close is a no-op
}

// TestSyncerRealLog: requests from many goroutines against a real log, each acknowledged
// only after an fsync that started after its append.
func TestSyncerRealLog(t *testing.T) {
	d := openDisk(t, t.TempDir(), 1<<16)
	l, err := d.OpenLog("cl")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := NewSyncer()
	defer s.Close()
	var mu sync.Mutex // the event loop
	var wg sync.WaitGroup
	var acked atomic.Int64
	for range 16 {
		wg.Go(func() {
			for range 50 {
				mu.Lock()
				i, err := l.Append([]byte("payload"))
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				done := make(chan error, 1)
				s.Request(l, i, func(upTo uint64, err error) {
					if upTo != i {
						err = errors.New("wrong upTo")
					}
					done <- err
				})
				if err := <-done; err != nil {
					t.Error(err)
					return
				}
				acked.Add(1)
			}
		})
	}
	wg.Wait()
	if acked.Load() != 800 {
		t.Fatalf("%d acknowledged, want 800", acked.Load())
	}
}
