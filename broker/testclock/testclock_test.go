package testclock

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func near(t *testing.T, got, want time.Time) {
	t.Helper()
	if d := got.Sub(want); d < -time.Second || d > time.Second {
		t.Fatalf("clock reads %v, want about %v", got, want)
	}
}

func TestOffsetAndJump(t *testing.T) {
	c := New(-2 * time.Hour)
	near(t, c.Now(), time.Now().Add(-2*time.Hour))
	before := c.Now()
	c.Set(time.Minute)
	after := c.Now()
	if d := after.Sub(before); d < 2*time.Hour || d > 2*time.Hour+2*time.Minute {
		t.Errorf("a jump from -2h to +1m moved the clock by %v", d)
	}
	near(t, after, time.Now().Add(time.Minute))
}

func TestParseOffset(t *testing.T) {
	for in, want := range map[string]time.Duration{"-90s": -90 * time.Second, " 2h\n": 2 * time.Hour, "0": 0} {
		got, err := ParseOffset(in)
		if err != nil || got != want {
			t.Errorf("ParseOffset(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "5", "soon"} {
		if _, err := ParseOffset(in); err == nil {
			t.Errorf("ParseOffset(%q) succeeded", in)
		}
	}
}

// Watch follows the file: absent keeps the offset, a value sets it, garbage keeps it.
func TestWatchFollowsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "offset")
	c := New(time.Second)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		c.Watch(path, 5*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)), stop)
		close(done)
	}()
	defer func() { close(stop); <-done }()
	wait := func(want time.Duration) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for c.Offset() != want {
			if time.Now().After(deadline) {
				t.Fatalf("offset %v, want %v", c.Offset(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(30 * time.Millisecond)
	wait(time.Second)
	write := func(s string) {
		if err := os.WriteFile(path+".tmp", []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	write("-5m\n")
	wait(-5 * time.Minute)
	write("nonsense")
	time.Sleep(30 * time.Millisecond)
	wait(-5 * time.Minute)
	write("")
	wait(0)
}
