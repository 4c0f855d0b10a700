// Package logentry owns the stored form of one log entry, shared by every node.Disk: the
// payload's CRC32C (Castagnoli, 4 bytes, big-endian) followed by the payload. The production
// disk (broker/diskfile) writes entries with Append and checks them with Decode on every read
// from its files; the simulator's disk (sim/simdisk) stores every entry in the same form and
// reads it through the same Decode, so a bit flip the simulator injects is caught by the
// production check, not by a flag of the simulator.
//
// It does no I/O and holds no state: safe for node code and runtimes alike.
package logentry

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/node"
)

// CRCBytes is the size of the checksum in front of every stored payload.
const CRCBytes = 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum is the CRC32C of payload.
func Checksum(payload []byte) uint32 { return crc32.Checksum(payload, castagnoli) }

// Append appends the stored form of payload to dst and returns the extended slice.
func Append(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, Checksum(payload))
	return append(dst, payload...)
}

// Valid reports whether stored holds a checksum and a payload that matches it.
func Valid(stored []byte) bool {
	return len(stored) >= CRCBytes && binary.BigEndian.Uint32(stored) == Checksum(stored[CRCBytes:])
}

// Decoder turns stored entries back into payloads. The zero Decoder verifies every checksum.
type Decoder struct {
	// Bugs is the set of planted bugs (package bugs) the decoder honours: SkipChecksum returns
	// the payload without verifying its checksum. Empty in production.
	Bugs bugs.Set
}

// Decode returns the payload of a stored entry (a view into stored), or an error wrapping
// node.ErrCorrupt when the entry is too short to hold a checksum or fails it.
func (d Decoder) Decode(stored []byte) ([]byte, error) {
	if len(stored) < CRCBytes {
		return nil, fmt.Errorf("entry of %d bytes has no checksum: %w", len(stored), node.ErrCorrupt)
	}
	payload := stored[CRCBytes:]
	if d.Bugs.Has(bugs.SkipChecksum) {
		return payload, nil
	}
	if want, got := binary.BigEndian.Uint32(stored), Checksum(payload); want != got {
		return nil, &CorruptError{Checksum: got, Stored: want, Unverified: append([]byte(nil), payload...)}
	}
	return payload, nil
}

// CorruptError is the error Decode returns for an entry that fails its checksum. It wraps
// node.ErrCorrupt and carries a copy of the payload as stored, unverified: never to be served,
// but a caller may make a best-effort use of it (the store's recovery reads from it which
// queue a damaged record belonged to, to keep its queue offset taken; see broker/store).
type CorruptError struct {
	Checksum   uint32 // of the stored payload
	Stored     uint32 // the checksum stored with it
	Unverified []byte // the payload as stored: at least one bit of it, or of Stored, is wrong
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("checksum %08x, stored %08x: %v", e.Checksum, e.Stored, node.ErrCorrupt)
}

// Unwrap makes errors.Is(err, node.ErrCorrupt) hold.
func (e *CorruptError) Unwrap() error { return node.ErrCorrupt }

// Unverified returns the unverified payload an error from Decode carries (see CorruptError),
// or nil if err carries none (an entry too short, torn, or another error).
func Unverified(err error) []byte {
	var ce *CorruptError
	if errors.As(err, &ce) {
		return ce.Unverified
	}
	return nil
}

// Decode is Decoder{}.Decode: every checksum verified.
func Decode(stored []byte) ([]byte, error) { return Decoder{}.Decode(stored) }
