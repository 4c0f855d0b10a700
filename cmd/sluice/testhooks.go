package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/sluicemq/sluice/broker/diskfile"
	"github.com/sluicemq/sluice/broker/testclock"
)

// The test-only fault hooks of a server process (dev, namesrv, controller, broker), read from
// the environment once before the role starts; docs/testing-flags.md describes them. Unset,
// as in production, they change nothing. Set, each is announced at WARN on stderr.
const (
	// envTestClockOffset shifts the clock every node of the process reads (Env.Now) by a
	// signed Go duration ("-90s", "2h"); timers are durations and are not shifted.
	envTestClockOffset = "SLUICE_TEST_CLOCK_OFFSET"
	// envTestClockFile names a file holding the offset, reread every clockFilePoll, so that a
	// harness can jump the clock of a running process (it overrides envTestClockOffset once
	// it exists).
	envTestClockFile = "SLUICE_TEST_CLOCK_FILE"
	// envTestDiskFaults injects disk faults into every log of the process's data directories:
	// diskfile.FaultSpec's text form ("seed=7,slow-fsync=50ms@0.1,fail-fsync=0.01").
	envTestDiskFaults = "SLUICE_TEST_DISK_FAULTS"
)

// clockFilePoll is how often envTestClockFile is reread.
const clockFilePoll = 100 * time.Millisecond

// testHooks are the process's test hooks; the zero value is none.
var testHooks testHookSettings

type testHookSettings struct {
	clock *testclock.Clock // nil: the real clock
	disk  *diskfile.Faults // nil: none
}

// loadTestHooks reads the test hooks from the environment into testHooks, announces those set
// on log, and starts following envTestClockFile for the life of the process.
func loadTestHooks(log *slog.Logger) error {
	var h testHookSettings
	offset, clockFile := os.Getenv(envTestClockOffset), os.Getenv(envTestClockFile)
	if offset != "" || clockFile != "" {
		var d time.Duration
		if offset != "" {
			var err error
			if d, err = testclock.ParseOffset(offset); err != nil {
				return fmt.Errorf("%s: %w", envTestClockOffset, err)
			}
		}
		h.clock = testclock.New(d)
		if clockFile != "" {
			go h.clock.Watch(clockFile, clockFilePoll, log, nil)
		}
		log.Warn("TEST HOOK ACTIVE: this process's clock is shifted; never use in production",
			"offset", d, "offsetFile", clockFile, "env", envTestClockOffset+","+envTestClockFile)
	}
	if spec := os.Getenv(envTestDiskFaults); spec != "" {
		s, err := diskfile.ParseFaultSpec(spec)
		if err != nil {
			return fmt.Errorf("%s: %w", envTestDiskFaults, err)
		}
		h.disk = diskfile.NewFaults(s)
		log.Warn("TEST HOOK ACTIVE: disk faults are injected into this process's logs; never use in production",
			"faults", s.String(), "env", envTestDiskFaults)
	}
	testHooks = h
	return nil
}

// now is the runtimes' Config.Now: nil (the real clock) unless the clock is shifted.
func (h testHookSettings) now() func() time.Time {
	if h.clock == nil {
		return nil
	}
	return h.clock.Now
}
