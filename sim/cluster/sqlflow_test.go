package cluster

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/sqlfilter"
)

// The SQL92 flow's predicates say what RocketMQ's selectors mean, written apart from the
// broker's parser: they must agree with it on every combination of the flow's properties (the
// parser's own semantics are tested against Java's in broker/sqlfilter), and the properties
// drawn from ids must cover every value, absent ones included.
func TestSQLSelectorsAgreeWithTheParser(t *testing.T) {
	var all []sqlProps
	for a := 0; a <= 10; a++ {
		for _, c := range sqlColors {
			all = append(all, sqlProps{a: a % 10, hasA: a < 10, color: c})
		}
	}
	for _, sel := range sqlSelectors {
		e, err := sqlfilter.Parse(sel.expr)
		if err != nil {
			t.Fatalf("%q: %v", sel.expr, err)
		}
		matched := 0
		for _, p := range all {
			get := func(name string) (string, bool) {
				switch {
				case name == "a" && p.hasA:
					return strconv.Itoa(p.a), true
				case name == "color" && p.color != "":
					return p.color, true
				}
				return "", false
			}
			if got, want := e.Match(get), sel.match(p); got != want {
				t.Errorf("%q on %+v: the parser says %v, the predicate %v", sel.expr, p, got, want)
			}
			if sel.match(p) {
				matched++
			}
		}
		if matched == 0 || matched == len(all) {
			t.Errorf("%q matches %d of %d property sets: it filters nothing", sel.expr, matched, len(all))
		}
	}
	seen := map[sqlProps]bool{}
	for i := 0; i < 2000; i++ {
		seen[sqlPropsOf(fmt.Sprintf("p%d-%d", i%2, i))] = true
	}
	if len(seen) != len(all) {
		t.Errorf("ids give %d of the %d property sets", len(seen), len(all))
	}
}

// The SQL92 check catches both halves of a filter bug: with a property the message lacks read
// as an empty string, "a IS NULL" never holds (messages skipped) and "color <> 'green'" holds
// for a message without a color (delivered); a correct broker passes the same runs, with the
// selector in every pull or only in the group's heartbeats (before the first heartbeat the
// broker must refuse such pulls, not serve them unfiltered).
func TestSQLFlowCatchesFilterBugs(t *testing.T) {
	for _, tc := range []struct {
		selector  int
		heartbeat bool
		want      string
	}{{1, false, KindFilterSkipped}, {3, false, KindFilterNonMatching}, {1, true, KindFilterSkipped}, {3, true, KindFilterNonMatching}} {
		for _, plant := range []string{"", "sql-absent-as-empty"} {
			cfg := DefaultConfig(1)
			cfg.Duration = 10 * time.Second
			cfg.Flows = &Flows{SQL92: true, SQLSelector: tc.selector, SQLViaHeartbeat: tc.heartbeat}
			cfg.Plant = plant
			rep := runSeed(t, cfg)
			kinds := map[string]bool{}
			for _, v := range rep.Violations {
				kinds[v.Kind] = true
			}
			switch {
			case rep.FlowCounts["sql"] == 0:
				t.Errorf("selector %q: the filtered consumer received nothing: %s", sqlSelectors[tc.selector].expr, rep.Summary())
			case plant == "" && len(rep.Violations) > 0:
				t.Errorf("selector %q, correct broker: %v", sqlSelectors[tc.selector].expr, rep.Violations)
			case plant != "" && !kinds[tc.want]:
				t.Errorf("selector %q, %s: no %q violation among %v", sqlSelectors[tc.selector].expr, plant, tc.want, rep.Violations)
			}
		}
	}
}
