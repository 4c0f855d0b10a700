package report

import (
	"fmt"
	"strings"

	"github.com/sluicemq/sluice/sim/cluster"
)

// Replay is the sluice sim command that replays the run of cfg: every flag that changes what
// the run does (topology, seed, duration, flush and replication modes, offered load, the
// simulated disk's capacity and retention, planted bug, scenario, a plan file). Porcupine's wall-clock budget (--check-timeout, scaled by
// --parallel) changes no event of the run and is left out. planFile is the fault plan's file
// when the run replays one (after shrinking); scenario the named scenario it ran ("" for
// none).
func Replay(cfg cluster.Config, planFile, scenario string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "sluice sim --topology %s --seed %d --duration %v --flush %s", cfg.Topology, cfg.Seed, cfg.Duration, cfg.FlushMode)
	if cfg.Topology == cluster.BrokerGroups {
		fmt.Fprintf(&b, " --replication %s", cfg.Replication)
	}
	if cfg.Rate > 0 {
		fmt.Fprintf(&b, " --rate %v", cfg.Rate)
	}
	if cfg.DiskCapacity > 0 {
		fmt.Fprintf(&b, " --disk-capacity %d", cfg.DiskCapacity)
	}
	if cfg.Retention > 0 {
		fmt.Fprintf(&b, " --retention %v", cfg.Retention)
	}
	if len(cfg.DeleteWhen) > 0 {
		hours := make([]string, len(cfg.DeleteWhen))
		for i, h := range cfg.DeleteWhen {
			hours[i] = fmt.Sprint(h)
		}
		b.WriteString(" --delete-when " + strings.Join(hours, ","))
	}
	if planFile != "" {
		b.WriteString(" --plan " + shellQuote(planFile))
	}
	if cfg.Plant != "" {
		b.WriteString(" --plant " + cfg.Plant)
	}
	if scenario != "" {
		b.WriteString(" --scenario " + scenario)
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe characters.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=+,@%", r)) {
			safe = false
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
