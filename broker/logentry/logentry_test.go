package logentry

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/sluicemq/sluice/broker/bugs"
	"github.com/sluicemq/sluice/broker/node"
)

// Every single-bit flip of a stored entry, checksum or payload, is caught; the planted bug's
// decoder returns the flipped payload instead.
func TestEveryBitFlipIsCaught(t *testing.T) {
	payload := []byte("a message, as the broker stores it")
	stored := Append([]byte("prefix"), payload)[len("prefix"):]
	if got, err := Decode(stored); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("Decode = %q, %v", got, err)
	}
	for bit := 0; bit < 8*len(stored); bit++ {
		flipped := bytes.Clone(stored)
		flipped[bit/8] ^= 1 << (bit % 8)
		if Valid(flipped) {
			t.Fatalf("bit %d: still valid", bit)
		}
		if got, err := Decode(flipped); !errors.Is(err, node.ErrCorrupt) || got != nil {
			t.Fatalf("bit %d: Decode = %q, %v; want ErrCorrupt", bit, got, err)
		}
		if got, err := (Decoder{Bugs: bugs.Of(bugs.SkipChecksum)}).Decode(flipped); err != nil || !bytes.Equal(got, flipped[CRCBytes:]) {
			t.Fatalf("bit %d: unchecked Decode = %q, %v", bit, got, err)
		}
	}
	for n := 0; n < CRCBytes; n++ {
		if _, err := Decode(stored[:n]); !errors.Is(err, node.ErrCorrupt) {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
}

// A checksum failure carries the payload as stored, for a best-effort reading of it.
func TestCorruptErrorCarriesUnverifiedPayload(t *testing.T) {
	stored := Append(nil, []byte("payload"))
	stored[CRCBytes+1] ^= 0x10
	_, err := Decode(stored)
	if !errors.Is(err, node.ErrCorrupt) {
		t.Fatalf("Decode: %v", err)
	}
	wrapped := fmt.Errorf("read: %w", err)
	if got := Unverified(wrapped); !bytes.Equal(got, stored[CRCBytes:]) {
		t.Fatalf("Unverified = %q, want %q", got, stored[CRCBytes:])
	}
	if got := Unverified(node.ErrCorrupt); got != nil {
		t.Fatalf("Unverified(ErrCorrupt) = %q, want nil", got)
	}
}
