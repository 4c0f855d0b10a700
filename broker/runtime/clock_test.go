package runtime

import (
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/node"
)

// A Config.Now shifts the node's Env.Now, and only that: a timer set for a duration fires
// after that duration of real time, whatever the node's clock says.
func TestConfigNowShiftsEnvNowNotTimers(t *testing.T) {
	const offset = -3 * time.Hour
	fired := make(chan time.Time, 1)
	n := &testNode{}
	n.onTimer = func(_ node.TimerID, _ any) { fired <- n.env.Now() }
	r := startNode(t, Config{Now: func() time.Time { return time.Now().Add(offset) }}, n)
	var seen time.Time
	set := time.Now()
	if err := r.Do(func() { seen = n.env.Now(); n.env.SetTimer(50*time.Millisecond, "t") }); err != nil {
		t.Fatal(err)
	}
	if d := set.Sub(seen) + offset; d < -time.Second || d > time.Second {
		t.Fatalf("Env.Now = %v, want about %v (the real time shifted by %v)", seen, set.Add(offset), offset)
	}
	select {
	case at := <-fired:
		real := time.Since(set)
		if real < 50*time.Millisecond || real > 5*time.Second {
			t.Errorf("a 50ms timer fired after %v of real time", real)
		}
		if at.Sub(seen) < 50*time.Millisecond || at.After(time.Now().Add(offset)) {
			t.Errorf("the node's clock at the timer: %v, set at %v", at, seen)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the timer never fired")
	}

	// The zero Config reads the real clock.
	n2 := &testNode{}
	r2 := startNode(t, Config{}, n2)
	var now time.Time
	if err := r2.Do(func() { now = n2.env.Now() }); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(now); d < 0 || d > time.Second {
		t.Errorf("the default Env.Now is %v from time.Now", d)
	}
}
