package runtime

import (
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// env is the node.Env the handler gets. Every method runs on the loop goroutine (the handler
// calls them while handling an event) and returns at once.
type env struct{ r *Runtime }

var _ node.Env = env{}

func envOf(r *Runtime) node.Env { return env{r} }

// liveTimer is a timer that has been set and neither delivered nor cancelled.
type liveTimer struct {
	t   *time.Timer
	tag any
}

func (e env) Now() time.Time { return e.r.cfg.Now() }

func (e env) SetTimer(d time.Duration, tag any) node.TimerID {
	r := e.r
	r.timerID++
	id := r.timerID
	t := time.AfterFunc(d, func() { r.q.post(event{kind: evTimer, timer: id}) })
	r.timers[id] = liveTimer{t: t, tag: tag}
	return id
}

// CancelTimer forgets the timer: even if time.AfterFunc already fired and its event is queued,
// the loop finds no live timer and drops it.
func (e env) CancelTimer(id node.TimerID) {
	if t, ok := e.r.timers[id]; ok {
		t.t.Stop()
		delete(e.r.timers, id)
	}
}

func (e env) Dial(addr string) node.ConnID { return e.r.dial(addr) }

func (e env) Send(id node.ConnID, cmd *codec.Command) {
	r := e.r
	c, ok := r.live[id]
	if !ok {
		return // closed: the node hears through OnConnClosed
	}
	if cmd.IsResponse() && !r.answered(c, cmd) {
		return // the runtime answered this request for the node while shutting down
	}
	if r.cfg.Sign != nil && !cmd.IsResponse() {
		cmd = r.cfg.Sign(cmd)
	}
	n, err := c.enqueue(cmd)
	if err != nil {
		r.log.Error("dropping a frame that cannot be encoded", "conn", uint64(id), "remote", c.remote, "code", cmd.Code, "err", err)
		return
	}
	if n > r.cfg.MaxOutboundBytes {
		r.log.Warn("closing connection: outbound queue over limit", "conn", uint64(id), "remote", c.remote,
			"queuedBytes", n, "limitBytes", r.cfg.MaxOutboundBytes)
		r.forget(c)
		c.shutdown()
	}
	if max := r.limits.cfg.MaxOutboundTotalBytes; max > 0 && r.limits.outbound.Load() > max {
		r.shedOutbound()
	}
}

func (e env) Close(id node.ConnID) {
	c, ok := e.r.live[id]
	if !ok {
		return
	}
	e.r.forget(c)
	c.close()
}

func (e env) Disk() node.Disk { return e.r.disk }

func (e env) Sync(l node.Log, upTo uint64) {
	r := e.r
	name := l.Name()
	r.syncer.Request(r.timed(l), upTo, func(upTo uint64, err error) {
		r.q.post(event{kind: evSynced, logName: name, upTo: upTo, err: err})
	})
}

func (e env) Rand() *rand.Rand { return e.r.rng }

func (e env) Logger() *slog.Logger { return e.r.log }

// forget removes c from the node's view while the node is running and queues the
// OnConnClosed that must follow (it cannot be delivered re-entrantly).
func (r *Runtime) forget(c *conn) {
	delete(r.live, c.id)
	r.untrack(c)
	r.q.post(event{kind: evDeliverClosed, c: c})
}
