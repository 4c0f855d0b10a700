package brokernode

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// The disk guard. RocketMQ refuses new messages when the data disk is more than
// diskSpaceWarningLevelRatio (90 %) full, with SERVICE_NOT_AVAILABLE, which the official
// clients treat as retriable and answer by sending to another broker. Sluice does the same
// above Config.DiskFullRatio; after an append failed for lack of space (ENOSPC), for
// noSpaceRetryDelay, after which appends are tried again (and refused again while the disk
// stays full), so writes resume about a second after space is freed; and after a commit-log sync failed,
// until one succeeds (the broker retries it, every second for a lack of space; the production disk keeps what a
// write lacking space could not write and writes it then). A sync that keeps failing for
// another reason (EIO: the kernel may have dropped the pages) refuses writes until the broker
// is restarted, which recovers the store from its files. Pulls, offsets and replication
// of what is stored go on: only new messages are refused. A message that was not stored is
// never answered with FLUSH_DISK_TIMEOUT or FLUSH_SLAVE_TIMEOUT, which mean stored but not yet
// flushed or replicated (see syncFailed).
//
// Repeated errors are logged once, then counted: the count is logged when the error changes
// or stops.

// diskFullRemark is the remark of a send refused for lack of space.
const diskFullRemark = "service not available now: the broker's disk is full (" +
	"retry on another broker; writes resume once space is freed)"

// diskFullState tracks why sends are refused and the repeated-error log.
type diskFullState struct {
	byRatio bool // the last check found the disk at or above DiskFullRatio
	noSpace bool // an append failed for lack of space; cleared by noSpaceTimer
	// noSpaceArmed: a noSpaceTimer is set.
	noSpaceArmed bool
	// syncErr is the last commit-log sync failure, until a sync succeeds.
	syncErr error
	percent int // the disk use the last check found

	lastErr string // the error last logged
	repeats uint64 // times it came again since
}

// diskFull reports whether new messages are refused.
func (b *Broker) diskFull() bool {
	f := &b.retention.full
	return f.byRatio || f.noSpace || f.syncErr != nil
}

// refuseIfDiskFull answers a send SERVICE_NOT_AVAILABLE when the disk is full, nil otherwise.
func (b *Broker) refuseIfDiskFull(req *codec.Command) *codec.Command {
	if !b.diskFull() {
		return nil
	}
	b.retention.stats.SendsRefused++
	b.observe(SendRefused{})
	if err := b.retention.full.syncErr; err != nil && !errors.Is(err, node.ErrNoSpace) {
		return codec.NewResponse(req, codec.ServiceNotAvailable,
			"service not available now: the broker's commit log failed to sync ("+err.Error()+
				"); writes resume once a sync succeeds (if it never does, the broker needs a restart)")
	}
	return codec.NewResponse(req, codec.ServiceNotAvailable, diskFullRemark)
}

// updateDiskFull is the periodic check's part: the ratio rule, and a write that failed for
// lack of space gets tried again.
func (b *Broker) updateDiskFull(percent int, known bool) {
	f := &b.retention.full
	full := known && b.cfg.DiskFullRatio > 0 && percent >= b.cfg.DiskFullRatio
	if full != f.byRatio {
		if full {
			b.log.Error("disk is full: refusing new messages", "usedPercent", percent, "diskFullRatio", b.cfg.DiskFullRatio)
		} else {
			b.log.Info("disk has room again: accepting new messages", "usedPercent", percent, "diskFullRatio", b.cfg.DiskFullRatio)
		}
	}
	f.byRatio, f.percent = full, percent
	f.flush(b)
}

// noSpaceRetryDelay is how long after an append failed for lack of space new messages are
// refused before appends are tried again.
const noSpaceRetryDelay = time.Second

// noSpaceTimer ends a refusal after a failed append: appends are tried again.
type noSpaceTimer struct{}

// retryAfterNoSpace is noSpaceTimer's handler.
func (b *Broker) retryAfterNoSpace() {
	f := &b.retention.full
	f.noSpaceArmed = false
	if f.noSpace {
		b.log.Info("trying appends again after a lack of space")
		f.noSpace = false
	}
}

// storeFailed answers a send whose message could not be stored: SERVICE_NOT_AVAILABLE with
// the disk-full remark for a lack of space (and sends are refused for noSpaceRetryDelay),
// SYSTEM_ERROR for anything else.
func (b *Broker) storeFailed(req *codec.Command, err error) *codec.Command {
	b.retention.full.report(b, "append to commit log failed", err)
	if errors.Is(err, node.ErrNoSpace) {
		f := &b.retention.full
		f.noSpace = true
		b.observe(SendRefused{NoSpace: true})
		if !f.noSpaceArmed {
			f.noSpaceArmed = true
			b.env.SetTimer(noSpaceRetryDelay, noSpaceTimer{})
		}
		return codec.NewResponse(req, codec.ServiceNotAvailable, diskFullRemark)
	}
	return codec.NewResponse(req, codec.SystemError, "store message: "+err.Error())
}

// noteSyncFailed is OnSynced's part (syncFailed) for a failed commit-log fsync. The sends it covered are not
// answered: whether their messages are on disk is unknown until a later sync succeeds, when
// they are acknowledged as usual (a client that times out first retries, which may duplicate
// but never loses a message). FLUSH_DISK_TIMEOUT would tell the client they were stored.
// New sends are refused until a sync succeeds.
func (b *Broker) noteSyncFailed(upTo uint64, err error) {
	f := &b.retention.full
	f.report(b, fmt.Sprintf("commit log fsync up to %d failed; sends waiting for it stay unanswered until a sync succeeds "+
		"(new sends are refused meanwhile; if it never succeeds, restart the broker)", upTo), err)
	f.syncErr = err
}

// syncRetryDelay is how long after a failed commit-log sync the next is tried: a full disk
// frees space slowly (and each try of the production disk rereads its tail segment), other
// failures may pass at once.
func syncRetryDelay(err error) time.Duration {
	if errors.Is(err, node.ErrNoSpace) {
		return time.Second
	}
	return 100 * time.Millisecond
}

// syncSucceeded is OnSynced's part for a commit-log sync that succeeded: writes resume.
func (b *Broker) syncSucceeded() {
	f := &b.retention.full
	if f.syncErr == nil {
		return
	}
	f.flush(b)
	b.log.Info("commit log syncs again: accepting new messages", "after", f.syncErr.Error())
	f.syncErr = nil
}

// report logs err once, then counts its repetitions.
func (f *diskFullState) report(b *Broker, msg string, err error) {
	s := msg + ": " + err.Error()
	if s == f.lastErr {
		f.repeats++
		return
	}
	f.flush(b)
	f.lastErr = s
	b.log.Error(msg, "err", err)
}

// flush logs how often the last error came again, and forgets it.
func (f *diskFullState) flush(b *Broker) {
	if f.repeats > 0 {
		b.log.Error("error repeated", "err", f.lastErr, "times", f.repeats)
	}
	f.lastErr, f.repeats = "", 0
}
