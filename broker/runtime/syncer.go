package runtime

import (
	"github.com/sluicemq/sluice/broker/diskfile"
	"github.com/sluicemq/sluice/broker/node"
)

// syncer makes logs durable off the loop, covering many requests with one fsync (group
// commit); done runs on the syncer's goroutine. diskfile.Syncer is the production one.
type syncer interface {
	Request(l node.Log, upTo uint64, done func(upTo uint64, err error))
	Close()
}

var _ syncer = (*diskfile.Syncer)(nil)

// newSyncer is the syncer Start gives the node.
func newSyncer() syncer { return diskfile.NewSyncer() }
