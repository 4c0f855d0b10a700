package node

import (
	"strconv"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
)

// UnsupportedLogInterval is the period of Unsupported's log limits.
const UnsupportedLogInterval = time.Minute

const (
	// unsupportedLinesPerInterval bounds Unsupported's log lines per UnsupportedLogInterval,
	// all codes together.
	unsupportedLinesPerInterval = 16
	// unsupportedCodesTracked bounds the codes an Unsupported remembers: a peer sending ever
	// new codes makes it forget them all and start over, not grow.
	unsupportedCodesTracked = 64
)

// Unsupported answers the requests a node has no handler for as the Java nodes do
// (REQUEST_CODE_NOT_SUPPORTED, the code and RocketMQ's name of it in the remark), and logs them, rate-limited: at most
// one line per code per UnsupportedLogInterval, and unsupportedLinesPerInterval lines in all,
// each saying how many it stands for, so a client that keeps sending a code the node does not
// serve is visible without flooding the log. The zero value is ready; it is node state, used
// from the node's loop only.
type Unsupported struct {
	// What is the node's kind, as the remark names it ("broker", "name server").
	What   string
	logged map[int32]unsupportedCode
	// The current log window: its start, the lines logged in it, and the requests not logged
	// since the last line because the window was full.
	windowAt    time.Time
	windowLines int
	dropped     int
}

type unsupportedCode struct {
	at         time.Time // when the code was last logged
	suppressed int       // requests of the code since, not logged
}

// Answer returns the answer to req and logs it as described on Unsupported. remote is the
// peer's address when the node knows it ("" otherwise).
func (u *Unsupported) Answer(env Env, c ConnID, remote string, req *codec.Command) *codec.Command {
	code := req.WireCode()
	what := strconv.Itoa(int(code))
	if name := codec.RequestCodeName(code); name != "" {
		what += " (" + name + ")"
	}
	resp := codec.NewResponse(req, codec.RequestCodeNotSupported, "request code "+what+" is not supported by this "+u.What)
	now := env.Now()
	prev, seen := u.logged[code]
	if seen && now.Sub(prev.at) < UnsupportedLogInterval && now.Sub(prev.at) >= 0 {
		prev.suppressed++
		u.logged[code] = prev
		return resp
	}
	if d := now.Sub(u.windowAt); d >= UnsupportedLogInterval || d < 0 {
		u.windowAt, u.windowLines = now, 0
	}
	if u.windowLines >= unsupportedLinesPerInterval {
		u.dropped++
		return resp
	}
	env.Logger().Warn("request code not supported", "code", code, "name", codec.RequestCodeName(code), "node", u.What, "conn", uint64(c), "remote", remote,
		"language", req.Language, "version", req.Version, "opaque", req.Opaque,
		"sameCodeNotLogged", prev.suppressed, "otherCodesNotLogged", u.dropped)
	u.windowLines++
	u.dropped = 0
	if u.logged == nil || !seen && len(u.logged) >= unsupportedCodesTracked {
		u.logged = make(map[int32]unsupportedCode, 8)
	}
	u.logged[code] = unsupportedCode{at: now}
	return resp
}
