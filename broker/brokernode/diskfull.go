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
// write lacking space could not write and writes it then). A sync the disk says can never
// succeed again in place (node.ErrSyncLost: the production disk's failed fsync, after which
// the kernel may have dropped the pages) stops the broker instead (syncLost). Pulls, offsets and replication
// of what is stored go on: only new messages are refused. A message that was not stored is
// never answered with FLUSH_DISK_TIMEOUT or FLUSH_SLAVE_TIMEOUT, which mean stored but not yet
// flushed or replicated (see syncFailed).
//
// Running out of file descriptors (node.ErrNoFiles: EMFILE or ENFILE while opening a consume
// queue, a metadata file or a new segment) is handled like a lack of space: the send is
// refused with SERVICE_NOT_AVAILABLE saying so, new sends are refused for noSpaceRetryDelay,
// and appends are tried again after it; the store is not failed by it (an append that could
// not open its queue changed nothing).
//
// Repeated errors are logged once, then counted: the count is logged when the error changes
// or stops. Errors of one kind (a lack of space or of descriptors) count as one error whatever
// file they name.

// diskFullRemark is the remark of a send refused for lack of space.
const diskFullRemark = "service not available now: the broker's disk is full (" +
	"retry on another broker; writes resume once space is freed)"

// noFilesRemark is the remark of a send refused for lack of file descriptors.
const noFilesRemark = "service not available now: the broker is out of file descriptors (" +
	"retry on another broker; writes resume once descriptors are free)"

// diskFullState tracks why sends are refused and the repeated-error log.
type diskFullState struct {
	byRatio bool // the last check found the disk at or above DiskFullRatio
	noSpace bool // an append failed for lack of space; cleared by noSpaceTimer
	noFiles bool // an append failed for lack of file descriptors; cleared by noSpaceTimer
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
	return f.byRatio || f.noSpace || f.noFiles || f.syncErr != nil
}

// refuseIfDiskFull answers a send SERVICE_NOT_AVAILABLE when the disk is full, nil otherwise.
func (b *Broker) refuseIfDiskFull(req *codec.Command) *codec.Command {
	if !b.diskFull() {
		return nil
	}
	b.retention.stats.SendsRefused++
	b.observe(SendRefused{})
	f := &b.retention.full
	if !f.byRatio && !f.noSpace && (f.noFiles || errors.Is(f.syncErr, node.ErrNoFiles)) {
		return codec.NewResponse(req, codec.ServiceNotAvailable, noFilesRemark)
	}
	if err := f.syncErr; err != nil && !errors.Is(err, node.ErrNoSpace) && !errors.Is(err, node.ErrNoFiles) {
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
	if f.noSpace || f.noFiles {
		b.log.Info("trying appends again after a lack of space or file descriptors")
		f.noSpace, f.noFiles = false, false
	}
}

// storeFailed answers a send whose message could not be stored: SERVICE_NOT_AVAILABLE with
// the disk-full remark for a lack of space or the descriptors remark for a lack of file
// descriptors (and sends are refused for noSpaceRetryDelay), SYSTEM_ERROR for anything else.
func (b *Broker) storeFailed(req *codec.Command, err error) *codec.Command {
	if resp := b.refuseForResources(req, "store message", err); resp != nil {
		return resp
	}
	b.retention.full.report(b, "append to commit log failed", err)
	return codec.NewResponse(req, codec.SystemError, "store message: "+err.Error())
}

// refuseForResources is storeFailed's answer when err is a lack of space or of file
// descriptors (what failed says what was being done), nil for any other error.
func (b *Broker) refuseForResources(req *codec.Command, what string, err error) *codec.Command {
	f := &b.retention.full
	remark := diskFullRemark
	switch {
	case errors.Is(err, node.ErrNoSpace):
		f.noSpace = true
		b.observe(SendRefused{NoSpace: true})
	case errors.Is(err, node.ErrNoFiles):
		f.noFiles = true
		remark = noFilesRemark
		b.metrics.refused(refusedNoFiles)
	default:
		return nil
	}
	f.report(b, what+" failed; refusing new messages for a while", err)
	if !f.noSpaceArmed {
		f.noSpaceArmed = true
		b.env.SetTimer(noSpaceRetryDelay, noSpaceTimer{})
	}
	return codec.NewResponse(req, codec.ServiceNotAvailable, remark)
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
	if errors.Is(err, node.ErrNoSpace) || errors.Is(err, node.ErrNoFiles) {
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

// report logs err once, then counts its repetitions (a lack of space or of descriptors
// counts as one error whichever file it names).
func (f *diskFullState) report(b *Broker, msg string, err error) {
	s := msg + ": " + err.Error()
	switch {
	case errors.Is(err, node.ErrNoSpace):
		s = msg + ": " + node.ErrNoSpace.Error()
	case errors.Is(err, node.ErrNoFiles):
		s = msg + ": " + node.ErrNoFiles.Error()
	}
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

// syncLost handles a sync of logName that failed with node.ErrSyncLost: the disk cannot make
// that log durable again in place, and what the sync covered may never reach the medium, so
// retrying (and acknowledging on a later success) would be fsyncgate's mistake. The broker
// stops: Failed reports why, the runtime stops the node and the process exits non-zero, for
// its supervisor to restart it; recovery then rebuilds the store from what the files hold.
//
// Nothing the failed sync covered is acknowledged: the sends waiting for it are not answered
// (their connections close with the process, which a client reads as a send of unknown
// outcome, as after a crash), and new sends are refused meanwhile. In async-flush mode sends
// were answered SEND_OK as they were appended, before any fsync, as that mode promises: the
// ones the medium lacks are lost, as by a crash.
func (b *Broker) syncLost(logName string, err error) {
	if b.fatal != nil {
		return
	}
	b.fatal = fmt.Errorf("fsync of log %s failed, so what it covered may not be on disk: stopping; "+
		"restart the broker to recover its store from its files (%d sends left unanswered): %w", logName, len(b.acks.pending), err)
	b.retention.full.syncErr = err // refuse sends until the runtime stops the node
}

// Failed reports why the broker stopped for good (syncLost), nil while it runs: the
// production runtime then stops the node.
func (b *Broker) Failed() error { return b.fatal }
