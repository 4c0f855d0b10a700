package report

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sluicemq/sluice/internal/chromium"
	"github.com/sluicemq/sluice/sim/checks"
	"github.com/sluicemq/sluice/sim/cluster"
)

// TestShrunkReportInChromium produces the report of a shrunk planted failure (the catalogue's
// ack-before-sync, on the single topology at the seed it is caught at) and opens it in
// headless Chromium: the page must render its timeline, name the violation, embed
// Porcupine's visualisation (whose own script draws into it), show the replay command with
// the shrunk plan, and fetch nothing from outside.
func TestShrunkReportInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the simulator and a browser")
	}
	bin := chromium.Require(t)
	plant, err := cluster.LookupPlant("ack-before-sync", cluster.SingleBroker)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := cluster.DefaultConfig(plant.CaughtAt)
	cfg.Plant = plant.Name
	cfg.VizDir = dir
	rep, err := cluster.Run(cfg, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Violations) == 0 {
		t.Fatalf("seed %d with %s planted found no violation", cfg.Seed, plant.Name)
	}
	// A small shrinking budget: the test needs a shrunk plan and its replay, not the smallest.
	sh, err := cluster.Shrink(cfg, rep, time.Now, 4)
	if err != nil {
		t.Fatal(err)
	}
	small := sh.Config
	planFile := filepath.Join(dir, "plan.json")
	b, err := cluster.EncodePlanFile(small)
	if err == nil {
		err = os.WriteFile(planFile, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	replay := Replay(small, planFile, "")
	path, err := Write(dir, Input{Config: small, Report: sh.Report, Replay: replay, PlanFile: planFile, OriginalFaults: len(rep.Plan)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report of seed %d (%d of %d faults): %s", cfg.Seed, len(small.Plan), len(rep.Plan), path)

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromium.Options(bin)...)
	defer cancelAlloc()
	var mu sync.Mutex
	var outside []string
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			u := e.Request.URL
			if !strings.HasPrefix(u, "file:") && !strings.HasPrefix(u, "about:") && !strings.HasPrefix(u, "data:") {
				mu.Lock()
				outside = append(outside, u)
				mu.Unlock()
			}
		}
	}))
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path), chromedp.WaitVisible(chromedp.CSS("#timeline-svg"))); err != nil {
		t.Fatalf("open %s in Chromium: %v", path, err)
	}
	eval := func(expr string) float64 {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	text := func(sel string) string {
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	svgWidth := eval(`document.getElementById('timeline-svg').getBoundingClientRect().width`)
	rects := eval(`document.querySelectorAll('#timeline-svg rect').length`)
	lanes := eval(`document.querySelectorAll('#timeline-svg g.lane').length`)
	headline, kinds, replayShown := text("#headline"), text("#kinds"), text("#replay-command")
	// Porcupine's page draws its history with its own script, inside the iframe.
	vizDrawn, err := chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const f = document.getElementById('porcupine-viz');
		const d = f && f.contentDocument; return !!d && !!d.querySelector('#canvas svg') })()`, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("Porcupine's visualisation did not draw inside the page: %v", err)
	}
	if svgWidth < 500 || rects < 3 || lanes < 2 {
		t.Errorf("the timeline did not render: width %v, %v rects, %v lanes", svgWidth, rects, lanes)
	}
	const kind = checks.KindLostAcked // what catches ack-before-sync (its catalogue class)
	if !strings.Contains(headline, kind) || !strings.Contains(kinds, kind) {
		t.Errorf("the page does not name the violation %q: headline %q, kinds %q", kind, headline, kinds)
	}
	if !vizDrawn {
		t.Error("Porcupine's visualisation did not draw inside the page")
	}
	if strings.TrimSpace(replayShown) != replay || !strings.HasPrefix(replay, "sluice sim --topology single --seed ") ||
		!strings.Contains(replay, " --plan "+planFile) || !strings.Contains(replay, " --plant ack-before-sync") {
		t.Errorf("replay command shown %q, want %q (with the shrunk plan and the plant)", replayShown, replay)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(outside) > 0 {
		t.Errorf("the page fetched from outside itself: %v", outside)
	}
}
