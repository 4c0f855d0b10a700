package console

import "time"

// Source is the cluster as the console reads it: through the admin protocol, like any outside
// tool (AdminSource), or a fake in tests.
type Source interface {
	// Snapshot reads the cluster's state now. What could not be read (a broker that did not
	// answer) is named in Snapshot.Problems; an error means nothing could be read at all.
	Snapshot() (Snapshot, error)
	// MessageByID looks a message up by its offset message id.
	MessageByID(offsetMsgID string) (Message, error)
	// MessagesByKey looks up the messages of topic with key (a word of KEYS, or UNIQ_KEY).
	MessagesByKey(topic, key string) ([]Message, error)
}

// Snapshot is the cluster at one moment. Every list is sorted (the source's job), so a page
// renders the same state the same way.
type Snapshot struct {
	Brokers    []Broker
	SyncStates []SyncState // what the controller says of each broker group; none when unknown
	Queues     []Queue
	Offsets    []Offset
	Groups     []Group
	Problems   []string // what could not be read, for the page's banner
}

// Broker is one broker the name servers route. The pointer fields are optional: nil when the
// source does not know them, and the page then shows "–".
type Broker struct {
	Cluster, Group string
	ID             int64 // as registered with the name servers: 0 is the group's master
	Addr           string
	Epoch          *int64 // the master epoch the broker is at
	DiskUsedBytes  *int64 // of the file system holding its data
	DiskTotalBytes *int64
}

// SyncState is what the controller says of one broker group.
type SyncState struct {
	Group  string
	Epoch  int64    // the master epoch
	Master string   // the master, as the controller names it (replica id or address)
	InSync []string // the in-sync set, as the controller names its members
}

// Queue is one queue of a topic on one broker group's master.
type Queue struct {
	Topic   string
	Broker  string // broker group
	QueueID int32
	Min     int64 // first offset still held
	Max     int64 // offset after the last message
}

// Offset is a consumer group's committed offset on one queue.
type Offset struct {
	Group   string
	Topic   string
	Broker  string // broker group
	QueueID int32
	Offset  int64
}

// Group is one consumer group the brokers know.
type Group struct {
	Name      string
	Consumers []string // client ids of its connected consumers
}

// Message is one message a lookup found.
type Message struct {
	MsgID, OffsetMsgID string
	Topic              string
	Broker             string // address that answered
	QueueID            int32
	QueueOffset        int64
	Tags, Keys         string
	BornAt, StoredAt   time.Time
	BornHost           string
	StoreHost          string
	ReconsumeTimes     int32
	Properties         map[string]string
	Body               []byte // inflated when it was stored compressed
	BodyNote           string // how the body was stored, when that matters ("zlib-compressed")
	BodyBytes          int    // as stored
}
