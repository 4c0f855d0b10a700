package cluster

// The catalogue of planted bugs: one-line mistakes that test-only switches of the node code
// turn on, each standing for a class of bug the simulator's checks must catch. A harness that
// cannot fail proves nothing, so every entry is run by make mutants ('sluice sim --mutants':
// caught within PLANT_SEEDS seeds, or the target fails) and by the tests of this package. A
// planted bug is caught by a violation of a semantic check; a node's panic is not a catch.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/broker/bugs"
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
	// Retention: the bug lives in retention, so its runs (planted and clean) turn it on with
	// plantRetention's settings unless the run sets its own (retention.go).
	Retention bool
	// Bugs is what it plants; every node of the run (brokers, their disks, controllers, name
	// servers) is configured with the whole set and honours the bugs that live in its code.
	Bugs bugs.Set
}

// Plants is the catalogue, by topology then name.
var Plants = []Plant{
	{Name: "ack-before-sync", CaughtAt: 3, Topology: SingleBroker,
		Class: "sync flush acknowledges before the fsync: a crash loses acknowledged messages (lost acknowledged)",
		Bugs:  bugs.Of(bugs.AckBeforeSync)},
	{Name: "unflushed-offsets", CaughtAt: 2, Topology: SingleBroker,
		Class: "consumer offsets answered before they are persisted: a crash moves a read offset back (offset went backwards)",
		Bugs:  bugs.Of(bugs.QueryUnflushedOffsets)},
	{Name: "metadata-write-not-retried", CaughtAt: 36, Topology: SingleBroker,
		Class: "a consumer-offset write the disk refused (EIO, full disk) is dropped, never retried, and answered as durable: a crash moves a read offset back (offset went backwards)",
		Bugs:  bugs.Of(bugs.DropFailedOffsetWrites)},
	{Name: "never-expire-brokers", CaughtAt: 23, Topology: SingleBroker,
		Class: "the name server's expiry scan measures silence backwards and never drops a hung broker (dead broker still routed)",
		Bugs:  bugs.Of(bugs.NeverExpireBrokers)},
	{Name: "serve-corrupt", CaughtAt: 1, Topology: SingleBroker,
		Class: "the disk's read path skips the entry checksum: a flipped bit is served (served corrupt)",
		Bugs:  bugs.Of(bugs.SkipChecksum)},
	{Name: "async-flush-once", CaughtAt: 1, Topology: SingleBroker, AsyncFlush: true,
		Class: "async flush does not re-arm its timer, so the log is synced once per start: a crash loses messages acknowledged long before it (lost acknowledged beyond the flush interval)",
		Bugs:  bugs.Of(bugs.AsyncFlushOnce)},
	{Name: "retain-unexpired", CaughtAt: 1, Topology: SingleBroker, Retention: true,
		Class: "retention's expiry deadline lies ahead of the broker's clock instead of behind it: segments nobody may delete yet go (retained unexpired message)",
		Bugs:  bugs.Of(bugs.RetainUnexpired)},
	{Name: "sql-absent-as-empty", CaughtAt: 2, Topology: SingleBroker,
		Class: "a SQL92 filter reads a property the message lacks as an empty string, not NULL: IS NULL never holds and <> holds for it (filter skipped matching, filter delivered non-matching)",
		Bugs:  bugs.Of(bugs.SQLAbsentAsEmpty)},
	{Name: "delay-level-off-by-one", CaughtAt: 1, Topology: SingleBroker,
		Class: "the delay schedule reads each level's delay one entry down the table: a message of level 2 or 3 is delivered before it is due (broker write too early)",
		Bugs:  bugs.Of(bugs.DelayLevelOffByOne)},
	{Name: "rollback-as-commit", CaughtAt: 1, Topology: SingleBroker,
		Class: "END_TRANSACTION tests the commit bit instead of comparing the type, and rollback (12) has it: a rolled-back transaction is delivered (withheld message delivered)",
		Bugs:  bugs.Of(bugs.RollbackAsCommit)},
	{Name: "lock-renewal-keeps-lease", CaughtAt: 4, Topology: SingleBroker,
		Class: "renewing a queue lock does not move its lease: another orderly consumer is granted the queue while its holder still renews it (two lock holders)",
		Bugs:  bugs.Of(bugs.LockRenewalKeepsLease)},

	{Name: "skip-truncation", CaughtAt: 1, Topology: BrokerGroups,
		Class: "a returning replica keeps the tail that differs from the new master's (acknowledged entry truncated, replicas differ)",
		Bugs:  bugs.Of(bugs.SkipTruncation)},
	{Name: "stale-master-acks", CaughtAt: 1, Topology: BrokerGroups,
		Class: "a master whose lease lapsed keeps acknowledging on its own fsync (two masters in one epoch, lost acknowledged)",
		Bugs:  bugs.Of(bugs.StaleMasterAcks)},
	{Name: "slave-ack-before-fsync", CaughtAt: 1, Topology: BrokerGroups,
		Class: "a slave reports entries synced before its fsync (slave reported unsynced entries): a power loss loses acknowledged messages",
		Bugs:  bugs.Of(bugs.SlaveAckBeforeFsync)},
	{Name: "deposed-master-pulls", CaughtAt: 4, Topology: BrokerGroups,
		Class: "a master whose lease lapsed still answers pulls from its own log (deposed master: it answered a pull called after the controllers elected another)",
		Bugs:  bugs.Of(bugs.DeposedMasterPulls)},
	{Name: "lease-free-master", CaughtAt: 1, Topology: BrokerGroups,
		Class: "a master whose lease lapsed still writes and acknowledges, by the in-sync rule (deposed master: it wrote or acknowledged after the controllers elected another)",
		Bugs:  bugs.Of(bugs.LeaseFreeMaster)},
	{Name: "elect-outside-in-sync", CaughtAt: 1, Topology: BrokerGroups,
		Class: "the controller elects a replica outside the in-sync set (lost acknowledged, acknowledged entry truncated)",
		Bugs:  bugs.Of(bugs.ElectOutsideInSyncSet)},
	{Name: "offset-sync-backwards", CaughtAt: 20, Topology: BrokerGroups,
		Class: "a slave's metadata round clamps the master's offsets to its own queue ends even below offsets it holds that the master has passed: a restarted slave's copy goes back (slave offset copy went backwards)",
		Bugs:  bugs.Of(bugs.OffsetSyncLowers)},
	{Name: "slave-reports-ahead", CaughtAt: 7, Topology: BrokerGroups,
		Class: "a slave counts entries synced after its fsync failed (its durable index runs ahead of its disk, which no assertion of the node can see) and reports them to its master (slave reported unsynced entries)",
		Bugs:  bugs.Of(bugs.SlaveSyncedOnFsyncError)},
	{Name: "never-expire-brokers", CaughtAt: 15, Topology: BrokerGroups,
		Class: "the name server's expiry scan measures silence backwards and never drops a hung replica (dead broker still routed)",
		Bugs:  bugs.Of(bugs.NeverExpireBrokers)},
	{Name: "serve-corrupt", CaughtAt: 1, Topology: BrokerGroups,
		Class: "the disk's read path skips the entry checksum: a flipped bit is served, to consumers or to slaves (served corrupt)",
		Bugs:  bugs.Of(bugs.SkipChecksum)},
}

// Config is the configuration of the planted bug's run at seed: its topology's default run, in
// the modes the bug lives in, with the bug planted. The same run with Plant "" is its clean
// twin (TestPlantedBugsAreCaught runs both).
func (p Plant) Config(seed uint64) Config {
	cfg := DefaultConfig(seed)
	if p.Topology == BrokerGroups {
		cfg = GroupsConfig(seed)
	}
	if p.AsyncFlush {
		cfg.FlushMode = brokernode.AsyncFlush
	}
	if p.Retention {
		cfg.Retention = plantRetention
	}
	cfg.Plant = p.Name
	return cfg
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

// checkPlant reports an unknown planted bug before a run starts.
func (cfg Config) checkPlant() error {
	if cfg.Plant == "" || slices.Contains(PlantNames(cfg.Topology), cfg.Plant) {
		return nil
	}
	_, err := LookupPlant(cfg.Plant, cfg.Topology)
	return err
}
