package simdisk

import (
	"testing"

	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/node/disktest"
)

// TestConformance runs the node.Disk conformance suite the production disk also passes.
func TestConformance(t *testing.T) {
	disktest.Run(t, func(t *testing.T) node.Disk { return New() })
}
