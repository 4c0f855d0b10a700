package cluster

// The catalogue of planted bugs: one-line mistakes that test-only switches of the node code
// turn on, each standing for a class of bug the simulator's checks must catch. A harness that
// cannot fail proves nothing, so every entry is run by make sim-swarm (caught within
// PLANT_SEEDS seeds, or the target fails) and by the tests of this package. A planted bug is
// caught by a violation of a semantic check; a node's panic is not a catch.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/controller"
	"github.com/sluicemq/sluice/broker/namesrv"
	"github.com/sluicemq/sluice/sim/simdisk"
)

// Plant is one planted bug.
type Plant struct {
	Name     string
	Topology Topology
	// Class is the class of bug it stands for, and what catches it.
	Class string
	// CaughtAt is the first seed at which the topology's default run catches it, as
	// measured by 'sluice sim --plant NAME --seed 1 --seeds 200 --stop-on-violation';
	// TestPlantedBugsAreCaught replays it, with and without the bug.
	CaughtAt uint64
	// AsyncFlush: the bug lives in async-flush mode, so its runs (planted and clean) use it.
	AsyncFlush bool
	// The switches it turns on, per kind of node (nil: none of that kind).
	broker     func(*brokernode.Config)
	controller func(*controller.Config)
	nameServer func(*namesrv.Config)
	disk       func(*simdisk.Disk) // every broker's disk
}

// Plants is the catalogue, by topology then name.
var Plants = []Plant{
	{Name: "ack-before-sync", CaughtAt: 3, Topology: SingleBroker,
		Class:  "sync flush acknowledges before the fsync: a crash loses acknowledged messages (lost acknowledged)",
		broker: func(c *brokernode.Config) { c.UnsafeAckBeforeSync = true }},
	{Name: "unflushed-offsets", CaughtAt: 2, Topology: SingleBroker,
		Class:  "consumer offsets answered before they are persisted: a crash moves a read offset back (offset went backwards)",
		broker: func(c *brokernode.Config) { c.UnsafeQueryUnflushedOffsets = true }},
	{Name: "metadata-write-not-retried", CaughtAt: 36, Topology: SingleBroker,
		Class:  "a consumer-offset write the disk refused (EIO, full disk) is dropped, never retried, and answered as durable: a crash moves a read offset back (offset went backwards)",
		broker: func(c *brokernode.Config) { c.UnsafeDropFailedOffsetWrites = true }},
	{Name: "never-expire-brokers", CaughtAt: 23, Topology: SingleBroker,
		Class:      "the name server's expiry scan measures silence backwards and never drops a hung broker (dead broker still routed)",
		nameServer: func(c *namesrv.Config) { c.UnsafeNeverExpireBrokers = true }},
	{Name: "serve-corrupt", CaughtAt: 1, Topology: SingleBroker,
		Class: "the disk's read path skips the entry checksum: a flipped bit is served (served corrupt)",
		disk:  func(d *simdisk.Disk) { d.SetUnsafeSkipChecksum(true) }},
	{Name: "async-flush-once", CaughtAt: 1, Topology: SingleBroker, AsyncFlush: true,
		Class:  "async flush does not re-arm its timer, so the log is synced once per start: a crash loses messages acknowledged long before it (lost acknowledged beyond the flush interval)",
		broker: func(c *brokernode.Config) { c.UnsafeAsyncFlushOnce = true }},
	{Name: "sql-absent-as-empty", CaughtAt: 2, Topology: SingleBroker,
		Class:  "a SQL92 filter reads a property the message lacks as an empty string, not NULL: IS NULL never holds and <> holds for it (filter skipped matching, filter delivered non-matching)",
		broker: func(c *brokernode.Config) { c.UnsafeSQLAbsentAsEmpty = true }},

	{Name: "skip-truncation", CaughtAt: 1, Topology: BrokerGroups,
		Class:  "a returning replica keeps the tail that differs from the new master's (acknowledged entry truncated, replicas differ)",
		broker: func(c *brokernode.Config) { c.UnsafeSkipTruncation = true }},
	{Name: "stale-master-acks", CaughtAt: 1, Topology: BrokerGroups,
		Class:  "a master whose lease lapsed keeps acknowledging on its own fsync (two masters in one epoch, lost acknowledged)",
		broker: func(c *brokernode.Config) { c.UnsafeStaleMasterAcks = true }},
	{Name: "slave-ack-before-fsync", CaughtAt: 1, Topology: BrokerGroups,
		Class:  "a slave reports entries synced before its fsync (slave reported unsynced entries): a power loss loses acknowledged messages",
		broker: func(c *brokernode.Config) { c.UnsafeSlaveAckBeforeFsync = true }},
	{Name: "deposed-master-pulls", CaughtAt: 6, Topology: BrokerGroups,
		Class:  "a master whose lease lapsed still answers pulls from its own log (deposed master: it answered a pull called after the controllers elected another)",
		broker: func(c *brokernode.Config) { c.UnsafeDeposedMasterPulls = true }},
	{Name: "lease-free-master", CaughtAt: 1, Topology: BrokerGroups,
		Class:  "a master whose lease lapsed still writes and acknowledges, by the in-sync rule (deposed master: it wrote or acknowledged after the controllers elected another)",
		broker: func(c *brokernode.Config) { c.UnsafeLeaseFreeMaster = true }},
	{Name: "elect-outside-in-sync", CaughtAt: 2, Topology: BrokerGroups,
		Class:      "the controller elects a replica outside the in-sync set (lost acknowledged, acknowledged entry truncated)",
		controller: func(c *controller.Config) { c.UnsafeElectOutsideInSyncSet = true }},
	{Name: "offset-sync-backwards", CaughtAt: 2, Topology: BrokerGroups,
		Class:  "a slave's metadata round clamps the master's offsets to its own queue ends even below offsets it holds that the master has passed: a restarted slave's copy goes back (slave offset copy went backwards)",
		broker: func(c *brokernode.Config) { c.UnsafeOffsetSyncLowers = true }},
	{Name: "slave-reports-ahead", CaughtAt: 7, Topology: BrokerGroups,
		Class:  "a slave counts entries synced after its fsync failed (its durable index runs ahead of its disk, which no assertion of the node can see) and reports them to its master (slave reported unsynced entries)",
		broker: func(c *brokernode.Config) { c.UnsafeSlaveSyncedOnFsyncError = true }},
	{Name: "never-expire-brokers", CaughtAt: 15, Topology: BrokerGroups,
		Class:      "the name server's expiry scan measures silence backwards and never drops a hung replica (dead broker still routed)",
		nameServer: func(c *namesrv.Config) { c.UnsafeNeverExpireBrokers = true }},
	{Name: "serve-corrupt", CaughtAt: 1, Topology: BrokerGroups,
		Class: "the disk's read path skips the entry checksum: a flipped bit is served, to consumers or to slaves (served corrupt)",
		disk:  func(d *simdisk.Disk) { d.SetUnsafeSkipChecksum(true) }},
}

// PlantNames lists the planted bugs of topology t, in catalogue order.
func PlantNames(t Topology) []string {
	var out []string
	for _, p := range Plants {
		if p.Topology == t {
			out = append(out, p.Name)
		}
	}
	return out
}

// LookupPlant finds planted bug name of topology t.
func LookupPlant(name string, t Topology) (Plant, error) {
	for _, p := range Plants {
		if p.Name == name && p.Topology == t {
			return p, nil
		}
	}
	return Plant{}, fmt.Errorf("unknown planted bug %q for the %s topology (known: %s)", name, t, strings.Join(PlantNames(t), ", "))
}

// plant is the run's planted bug (the zero Plant, which plants nothing, when cfg.Plant is "").
func (cfg Config) plant() Plant {
	if cfg.Plant == "" {
		return Plant{}
	}
	p, err := LookupPlant(cfg.Plant, cfg.Topology)
	if err != nil {
		panic(fmt.Sprintf("cluster: %v", err)) // Run checks the name before it builds anything
	}
	return p
}

func (p Plant) applyBroker(c *brokernode.Config) {
	if p.broker != nil {
		p.broker(c)
	}
}

func (p Plant) applyController(c *controller.Config) {
	if p.controller != nil {
		p.controller(c)
	}
}

func (p Plant) applyDisk(d *simdisk.Disk) {
	if p.disk != nil {
		p.disk(d)
	}
}

func (p Plant) applyNameServer(c *namesrv.Config) {
	if p.nameServer != nil {
		p.nameServer(c)
	}
}

// checkPlant reports an unknown planted bug before a run starts.
func (cfg Config) checkPlant() error {
	if cfg.Plant == "" || slices.Contains(PlantNames(cfg.Topology), cfg.Plant) {
		return nil
	}
	_, err := LookupPlant(cfg.Plant, cfg.Topology)
	return err
}
