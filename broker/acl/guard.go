package acl

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
)

// refusalLogInterval rate-limits the log lines about refused requests: one at once, then at
// most one per interval (the counter counts every refusal), so a client retrying with a wrong
// secret cannot flood the log.
const refusalLogInterval = time.Second

// Guard vets requests for a runtime with the current Policy. Admit may be called from any
// goroutine, concurrently with Set.
type Guard struct {
	policy  atomic.Pointer[Policy]
	log     *slog.Logger
	refused atomic.Uint64

	logMu      sync.Mutex
	loggedAt   time.Time
	suppressed uint64
}

// NewGuard returns a Guard that decides with p and logs refusals to log.
func NewGuard(p *Policy, log *slog.Logger) *Guard {
	if p == nil {
		panic("acl: NewGuard with a nil policy")
	}
	g := &Guard{log: log}
	g.policy.Store(p)
	return g
}

// Set replaces the policy: requests admitted from now on are decided with p.
func (g *Guard) Set(p *Policy) {
	if p == nil {
		panic("acl: Guard.Set with a nil policy")
	}
	g.policy.Store(p)
}

// Refused counts the requests Admit refused.
func (g *Guard) Refused() uint64 { return g.refused.Load() }

// Admit decides a request arriving from remote: nil to serve it, or the NO_PERMISSION
// answer to send in its place. The refusal is logged (the account, never its secret).
func (g *Guard) Admit(remote string, cmd *codec.Command) *codec.Command {
	err := g.policy.Load().Check(remote, cmd)
	if err == nil {
		return nil
	}
	g.refused.Add(1)
	var r *Refusal
	accessKey := ""
	if errors.As(err, &r) {
		accessKey = r.AccessKey
	}
	g.logRefusal(remote, cmd.WireCode(), accessKey, err)
	return codec.NewResponse(cmd, codec.NoPermission, err.Error())
}

func (g *Guard) logRefusal(remote string, code int32, accessKey string, err error) {
	now := time.Now()
	g.logMu.Lock()
	if !g.loggedAt.IsZero() && now.Sub(g.loggedAt) < refusalLogInterval {
		g.suppressed++
		g.logMu.Unlock()
		return
	}
	g.loggedAt = now
	suppressed := g.suppressed
	g.suppressed = 0
	g.logMu.Unlock()
	g.log.Warn("acl: request refused", "remote", remote, "code", code, "accessKey", accessKey,
		"reason", err.Error(), "refusedUnlogged", suppressed)
}

// Load reads and parses the ACL file at path.
func Load(path string) (*Policy, []byte, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, nil, err
	}
	p, err := Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, data, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("acl file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("acl file %s: %w", path, err)
	}
	return data, nil
}

// Watch reloads the ACL file at path into g whenever its contents change, checking every
// interval until stop is closed; loaded is the contents g's policy came from. New contents
// are applied once two checks in a row read them, so an edit caught half-written (a file
// truncated and not yet rewritten reads as no accounts at all) is not applied; a file that
// cannot be read or parsed is logged and the policy in force kept. It returns at once; the
// watching runs on its own goroutine.
func Watch(g *Guard, path string, loaded []byte, interval time.Duration, stop <-chan struct{}) {
	applied := sha256.Sum256(loaded)
	var seen [sha256.Size]byte // the contents the last check read, if they differ from applied
	var lastErr string
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			data, err := readFile(path)
			if err == nil {
				sum := sha256.Sum256(data)
				if sum == applied {
					seen = [sha256.Size]byte{}
					continue
				}
				if sum != seen {
					seen = sum // changed since the last check: wait for the next to read the same
					continue
				}
			}
			var p *Policy
			if err == nil {
				p, err = Parse(data)
			}
			if err != nil {
				if msg := err.Error(); msg != lastErr {
					lastErr = msg
					g.log.Error("acl: cannot reload the ACL file; keeping the accounts in force", "file", path, "err", err)
				}
				continue
			}
			lastErr = ""
			applied = sha256.Sum256(data)
			g.Set(p)
			g.log.Info("acl: reloaded the ACL file", "file", path, "accounts", len(p.Accounts),
				"globalWhiteRemoteAddresses", len(p.GlobalWhite), "bytes", len(data))
		}
	}()
}
