package brokernode

import (
	"errors"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// The disk guard. RocketMQ refuses new messages when the data disk is more than
// diskSpaceWarningLevelRatio (90 %) full, with SERVICE_NOT_AVAILABLE, which the official
// clients treat as retriable and answer by sending to another broker. Sluice does the same
// above Config.DiskFullRatio, and also after a write failed for lack of space (ENOSPC) or a
// sync failed, until the next check (every CheckpointInterval) lets writes try again. Pulls, offsets and replication
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
	noSpace bool // a write or sync failed since the last check
	// syncErr is the commit-log sync failure that set noSpace, if one did (else a lack of
	// space on append).
	syncErr error
	percent int // the disk use the last check found

	lastErr string // the error last logged
	repeats uint64 // times it came again since
}

// diskFull reports whether new messages are refused.
func (b *Broker) diskFull() bool {
	return b.retention.full.byRatio || b.retention.full.noSpace
}

// refuseIfDiskFull answers a send SERVICE_NOT_AVAILABLE when the disk is full, nil otherwise.
func (b *Broker) refuseIfDiskFull(req *codec.Command) *codec.Command {
	if !b.diskFull() {
		return nil
	}
	b.retention.stats.SendsRefused++
	if err := b.retention.full.syncErr; err != nil && !errors.Is(err, node.ErrNoSpace) {
		return codec.NewResponse(req, codec.ServiceNotAvailable,
			"service not available now: the broker's disk failed to sync ("+err.Error()+"); writes are tried again shortly")
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
	if f.noSpace {
		b.log.Info("trying writes again after a failed write", "usedPercent", percent)
		f.noSpace, f.syncErr = false, nil
	}
	f.flush(b)
}

// storeFailed answers a send whose message could not be stored: SERVICE_NOT_AVAILABLE with
// the disk-full remark for a lack of space (and sends are refused until the next check),
// SYSTEM_ERROR for anything else.
func (b *Broker) storeFailed(req *codec.Command, err error) *codec.Command {
	b.retention.full.report(b, "append to commit log failed", err)
	if errors.Is(err, node.ErrNoSpace) {
		b.retention.full.noSpace = true
		return codec.NewResponse(req, codec.ServiceNotAvailable, diskFullRemark)
	}
	return codec.NewResponse(req, codec.SystemError, "store message: "+err.Error())
}

// syncFailed is OnSynced's part for a failed commit-log fsync. The sends it covered are not
// answered: whether their messages are on disk is unknown until a later sync succeeds, when
// they are acknowledged as usual (a client that times out first retries, which may duplicate
// but never loses a message). FLUSH_DISK_TIMEOUT would tell the client they were stored.
// New sends are refused until the next check (every CheckpointInterval) lets writes try again.
func (b *Broker) syncFailed(err error) {
	f := &b.retention.full
	f.report(b, "commit log fsync failed; sends waiting for it stay unanswered until a sync succeeds", err)
	f.noSpace = true
	f.syncErr = err
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
