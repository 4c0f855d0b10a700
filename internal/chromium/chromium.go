// Package chromium finds the headless Chromium that the browser tests drive with chromedp
// (the simulator's failure report, the web console), and says how to start it. It is test
// support: no production code imports it.
package chromium

import (
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Find returns a Chromium binary: $SLUICE_CHROMIUM, else Debian's chromium on the PATH
// ('make deps' installs it), else the other usual names.
func Find() (string, bool) {
	if p := os.Getenv("SLUICE_CHROMIUM"); p != "" {
		return p, true
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, true
		}
	}
	return "", false
}

// Require returns the binary Find finds. Without one the test is skipped, except under
// CI=true, where a browser test must run: there it fails.
func Require(t testing.TB) string {
	t.Helper()
	bin, ok := Find()
	if !ok {
		const why = "no Chromium binary found (chromium, chromium-browser, google-chrome or $SLUICE_CHROMIUM): 'make deps' installs Debian's chromium"
		if os.Getenv("CI") == "true" {
			t.Fatal(why + "; under CI=true a browser test must run")
		}
		t.Skip(why)
	}
	return bin
}

// Options are chromedp's default options for bin, plus what a headless test run needs: no
// GPU, and no sandbox when running as root (Chromium refuses to start as root with one).
func Options(bin string, extra ...chromedp.ExecAllocatorOption) []chromedp.ExecAllocatorOption {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.DisableGPU)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	return append(opts, extra...)
}
