package real

// The cluster's processes: each a real 'sluice' process started in its node's namespace
// (ip netns exec), killed with SIGKILL and restarted on its data, or paused with SIGSTOP and
// resumed with SIGCONT. Every process is in its own process group and dies with the harness
// (Pdeathsig); Stop kills each by its pid.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// proc is one node's process.
type proc struct {
	name   string
	ns     string
	bin    string
	args   []string
	env    []string
	logPth string
	probe  string // the address that accepts connections once it is up
	// fsyncTrigger and fullTrigger are the files whose existence fails its fsyncs with EIO
	// and its writes with ENOSPC (a binary built with -tags faultinject).
	fsyncTrigger, fullTrigger string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
	// killed: the harness killed the last run of the process (a down process that was not
	// killed exited on its own: a crash of the production code, reported).
	killed bool
}

// start starts the process (it must be down) and waits up to bound for its address to accept
// connections.
func (p *proc) start(bound time.Duration) error {
	p.mu.Lock()
	logf, err := os.OpenFile(p.logPth, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.mu.Unlock()
		return fmt.Errorf("%s: log file: %w", p.name, err)
	}
	fmt.Fprintf(logf, "=== %s start %s\n", time.Now().UTC().Format(time.RFC3339Nano), p.name)
	cmd := exec.Command("ip", append([]string{"netns", "exec", p.ns, p.bin}, p.args...)...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		p.mu.Unlock()
		return fmt.Errorf("%s: start: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	p.cmd, p.exited, p.paused, p.killed = cmd, exited, false, false
	p.mu.Unlock()
	deadline := time.Now().Add(bound)
	for {
		select {
		case <-exited:
			return fmt.Errorf("%s: exited while starting (see %s)", p.name, p.logPth)
		default:
		}
		c, err := net.DialTimeout("tcp", p.probe, 300*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not accepting connections at %s after %v (see %s)", p.name, p.probe, bound, p.logPth)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// up reports whether the process is running (paused counts as running).
func (p *proc) up() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to exit; false if it was not running.
func (p *proc) kill() bool {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
	}
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
	return true
}

// expectExit marks the running process's exit as one the harness caused.
func (p *proc) expectExit() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killed = true
}

// diedAlone reports whether the process is down though the harness never killed it.
func (p *proc) diedAlone() bool {
	if p.up() {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !p.killed
}

// signal sends sig to the running process; false if it is not running.
func (p *proc) signal(sig syscall.Signal) bool {
	if !p.up() {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.cmd.Process.Signal(sig); err != nil {
		return false
	}
	switch sig {
	case syscall.SIGSTOP:
		p.paused = true
	case syscall.SIGCONT:
		p.paused = false
	}
	return true
}

// pause stops the process with SIGSTOP; false if it was down or already paused.
func (p *proc) pause() bool {
	p.mu.Lock()
	already := p.paused
	p.mu.Unlock()
	return !already && p.signal(syscall.SIGSTOP)
}

// resume continues a paused process.
func (p *proc) resume() bool {
	p.mu.Lock()
	was := p.paused
	p.mu.Unlock()
	return was && p.signal(syscall.SIGCONT)
}
