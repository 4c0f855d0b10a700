package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/clientrt"
	"github.com/sluicemq/sluice/internal/chromium"
)

// The web console in a real browser: against a running 'sluice dev' with a consumer group that
// has committed only part of what was sent, headless Chromium opens the page a separate
// 'sluice console' process serves, finds the group's lag (what was sent less what it
// committed), looks a message up by key and then by offset message id through the page's
// forms, and screenshots the page: $SLUICE_CONSOLE_ARTIFACTS keeps the screenshots (else a
// temporary directory), and SLUICE_UPDATE_SCREENSHOT=1 rewrites docs/console.png, the
// README's. Under CI=true a missing Chromium fails the test instead of skipping it. The dev
// process's own console (--console-addr) is checked to serve the same cluster.
func TestConsoleInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes and a browser")
	}
	chrome := chromium.Require(t)
	devConsoleAddr := freePort(t)
	c := startCompat(t, "--console-addr", devConsoleAddr, "--metrics-addr", "")
	consoleAddr := freePort(t)
	con := startProcess(t, "press Ctrl-C", "console", "--namesrv", c.NameServer, "--addr", consoleAddr,
		"--interval", "250ms", "--refresh", "5s", "--log-level", "warn")
	base := "http://" + consoleAddr + "/"

	cli, err := clientrt.Start(client.DefaultConfig(c.NameServer), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	topic, group := "Orders", "billing"
	waitSendable(t, cli, topic)
	sent := map[client.MessageQueue]int64{}
	var needle client.SendResult
	const needleKey = "order-4711"
	send := func(round, n int) {
		for i := range n {
			key := fmt.Sprintf("order-%d", 10000+round*1000+i)
			m := client.Message{Topic: topic, Keys: key, Tags: "created", Body: []byte(fmt.Sprintf(`{"order":%q,"amount":%d}`, key, 10+i))}
			if i == n/2 && needle.OffsetMsgID == "" {
				m.Keys, m.Body = needleKey, []byte(`{"order":"order-4711","amount":99.5,"currency":"EUR"}`)
			}
			r, err := cli.Send(m)
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			if m.Keys == needleKey {
				needle = r
			}
			sent[r.Queue] = max(sent[r.Queue], r.QueueOffset+1)
		}
	}
	// The group reads half of what is there, then falls further behind as more is sent, so
	// its lag chart climbs across the samples.
	wantLag := int64(0)
	for round := range 4 {
		send(round, 40+20*round)
		wantLag = 0
		for q, n := range sent {
			commit := n / 2
			cli.CommitOffset(group, q, commit)
			wantLag += n - commit
		}
		time.Sleep(400 * time.Millisecond)
	}
	if needle.OffsetMsgID == "" {
		t.Fatal("the message with the key to look up was not sent")
	}

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromium.Options(chrome, chromedp.WindowSize(1280, 1100))...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	attr := func(sel, name string) chromedp.AttributeResult {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
		if err != nil {
			t.Fatalf("attribute %s of %s: %v", name, sel, err)
		}
		return v
	}
	screenshot := func() []byte {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		return png
	}

	// The group's lag, as the page shows it once a sample has seen the last commits.
	lagSel := fmt.Sprintf(`[data-group=%q] .lag-total`, group)
	var shown string
	deadline := time.Now().Add(15 * time.Second)
	for shown != fmt.Sprint(wantLag) {
		if time.Now().After(deadline) {
			t.Fatalf("the page shows lag %q for %s, want %d", shown, group, wantLag)
		}
		if shown != "" {
			time.Sleep(200 * time.Millisecond)
		}
		do("open the console", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS("#groups")))
		// The group is missing from a page sampled before its first commit.
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || "missing"`, lagSel)))
		if err != nil {
			t.Fatalf("read the lag of %s: %v", group, err)
		}
		shown = strings.TrimSpace(v)
	}
	if points := strings.Fields(attr(fmt.Sprintf(`[data-group=%q] polyline`, group), "points").Value); len(points) < 3 {
		t.Errorf("the lag chart of %s has points %q, want several samples", group, points)
	}
	if refresh := attr(`meta[http-equiv=refresh]`, "content"); refresh.Value != "5" {
		t.Errorf("the page refreshes every %q s, want 5", refresh.Value)
	}
	if row := text(fmt.Sprintf(`[data-topic=%q]`, topic)); !strings.Contains(row, topic) {
		t.Errorf("topic row: %q", row)
	}
	// The README's picture: the page with the topic's queues unfolded.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector('[data-topic=%q] details').open = true`, topic))); err != nil {
		t.Fatalf("unfold the topic: %v", err)
	}
	page := screenshot()

	// The lookup by key, through the page's form.
	do("look the message up by key",
		chromedp.SetValue(chromedp.CSS(`#lookup-key input[name=topic]`), topic),
		chromedp.SetValue(chromedp.CSS(`#lookup-key input[name=key]`), needleKey),
		chromedp.Click(chromedp.CSS(`#lookup-key button`)),
		chromedp.WaitVisible(chromedp.CSS(`#lookup-summary`)))
	summary, keys := text(`#lookup-summary`), text(`article.message .keys`)
	body, offsetID := text(`article.message pre.body`), text(`article.message .offset-msg-id`)
	if !strings.HasPrefix(summary, "1 message found") || keys != needleKey || !strings.Contains(body, `"currency":"EUR"`) || offsetID != needle.OffsetMsgID {
		t.Errorf("lookup by key %s: summary %q, keys %q, body %q, offset id %q (sent as %s)", needleKey, summary, keys, body, offsetID, needle.OffsetMsgID)
	}
	found := screenshot()
	// From the main page again: the lookup page has a summary already, which a wait would take
	// for the new one's.
	do("look the message up by id", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS("#lookup-id")),
		chromedp.SetValue(chromedp.CSS(`#lookup-id input[name=id]`), needle.OffsetMsgID),
		chromedp.Click(chromedp.CSS(`#lookup-id button`)),
		chromedp.WaitVisible(chromedp.CSS(`#lookup-summary`)))
	if byID := text(`article.message .keys`); byID != needleKey {
		t.Errorf("lookup by id %s found keys %q, want %s", needle.OffsetMsgID, byID, needleKey)
	}

	dir := os.Getenv("SLUICE_CONSOLE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, png := range map[string][]byte{"console.png": page, "console-lookup.png": found} {
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	if os.Getenv("SLUICE_UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "console.png"), page, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// sluice dev's own console serves the same cluster (it samples every 5 s, the first time
	// before the broker registered).
	waitFor(t, 12*time.Second, "sluice dev's console to show the broker and the group", func() bool {
		code, body := getStatus("http://" + devConsoleAddr + "/")
		return code == http.StatusOK && strings.Contains(body, c.Broker) && strings.Contains(body, group)
	})

	// The console stops cleanly on SIGTERM.
	if err := con.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-con.exited:
		if err != nil {
			t.Errorf("sluice console exited with %v after SIGTERM\n%s", err, con.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("sluice console did not stop within 10s of SIGTERM")
	}
}
