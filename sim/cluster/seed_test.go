package cluster

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/brokernode"
	"github.com/sluicemq/sluice/sim/internal/seedflag"
)

// TestSeed replays the one run the flags name, as sluice sim with the same flags would (the
// same trace), so that a seed that failed in CI can be stepped through in a debugger:
//
//	go test ./sim/... -run TestSeed -seed 45 -topology groups [-flush async] [-replication async] [-duration 30s] [-plan FILE] [-plant NAME]
//	dlv test ./sim/cluster -- -test.run TestSeed -seed 45 -topology groups
//
// It fails with the run's violations (Porcupine's pages go to the temp directory, as sluice
// sim's do), and skips when no -seed is given, so a plain go test run passes it by.
func TestSeed(t *testing.T) {
	if *seedflag.Seed == 0 {
		t.Skip("no -seed: go test ./sim/... -run TestSeed -seed N -topology single|groups replays seed N")
	}
	cfg, err := seedConfig()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("replaying: %s", seedCommand(cfg))
	rep, err := Run(cfg, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep.Summary())
	for _, v := range rep.Violations {
		t.Errorf("%s: %s", v.Kind, v.Detail)
	}
	paths := slices.Sorted(maps.Values(rep.VizPaths))
	for _, path := range paths {
		t.Logf("visualisation: %s", path)
	}
}

// Every package under sim/ with tests imports seedflag from them, so that the documented
// command does not stop at "flag provided but not defined: -seed" in a package added later.
func TestEverySimPackageTakesTheSeedFlags(t *testing.T) {
	const imp = `"github.com/sluicemq/sluice/sim/internal/seedflag"`
	hasTests := map[string]bool{}
	imports := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		dir := filepath.Dir(path)
		hasTests[dir] = true
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		imports[dir] = imports[dir] || strings.Contains(string(b), imp)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(hasTests) < 5 {
		t.Fatalf("found tests in %d packages under sim/ only: %v", len(hasTests), hasTests)
	}
	for dir := range hasTests {
		if !imports[dir] {
			t.Errorf("sim/%s: no test file imports %s (add a seedflag_test.go as sim/report's)", strings.TrimPrefix(filepath.ToSlash(dir), "../"), imp)
		}
	}
}

// skipWhileReplaying skips a test that -run TestSeed matches too (TestSeedsHaveNoViolations)
// when TestSeed replays a seed: the command then runs that one seed only.
func skipWhileReplaying(t *testing.T) {
	if *seedflag.Seed != 0 {
		t.Skipf("-seed %d: TestSeed replays that seed alone", *seedflag.Seed)
	}
}

// seedConfig is the run the seedflag flags name.
func seedConfig() (Config, error) {
	topo, err := ParseTopology(*seedflag.Topology)
	if err != nil {
		return Config{}, err
	}
	mode, err := brokernode.ParseFlushMode(*seedflag.Flush)
	if err != nil {
		return Config{}, err
	}
	repl, err := brokernode.ParseReplicationMode(*seedflag.Replication)
	if err != nil {
		return Config{}, err
	}
	cfg := DefaultConfig(*seedflag.Seed)
	if topo == BrokerGroups {
		cfg = GroupsConfig(*seedflag.Seed)
		cfg.Replication = repl
	}
	cfg.FlushMode = mode
	if *seedflag.Duration > 0 {
		cfg.Duration = *seedflag.Duration
	}
	if *seedflag.Plant != "" {
		if _, err := LookupPlant(*seedflag.Plant, topo); err != nil {
			return Config{}, err
		}
		cfg.Plant = *seedflag.Plant
	}
	if *seedflag.Plan != "" {
		b, err := os.ReadFile(*seedflag.Plan)
		if err != nil {
			return Config{}, fmt.Errorf("-plan: %w", err)
		}
		pf, err := DecodePlanFile(b)
		if err != nil {
			return Config{}, fmt.Errorf("-plan %s: %w", *seedflag.Plan, err)
		}
		pf.Apply(&cfg)
	}
	cfg.VizDir = os.TempDir()
	return cfg, nil
}

// seedCommand is the sluice sim command of the same run.
func seedCommand(cfg Config) string {
	cmd := fmt.Sprintf("sluice sim --topology %s --seed %d --duration %v --flush %s", cfg.Topology, cfg.Seed, cfg.Duration, cfg.FlushMode)
	if cfg.Topology == BrokerGroups {
		cmd += fmt.Sprintf(" --replication %s", cfg.Replication)
	}
	if *seedflag.Plan != "" {
		cmd += " --plan " + *seedflag.Plan
	}
	if cfg.Plant != "" {
		cmd += " --plant " + cfg.Plant
	}
	return cmd
}
