package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// probeRun runs 'sluice probe' in the test's process and returns its exit code and output.
func probeRun(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = probe(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// A 2xx answer exits 0; any other answer, none, or one that comes too late exits 1 with a
// reason on one line of stderr that says which.
func TestProbeExitCodes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.Write([]byte("ready\n"))
		case "/notready":
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready\nbroker-a-2: slave catching up: durable to index 3, master confirmed 9\n"))
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/readyz"
	ln.Close()

	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string // a part the one-line reason must hold
	}{
		{"ready", []string{srv.URL + "/readyz"}, 0, ""},
		{"503", []string{srv.URL + "/notready"}, 1, "503 Service Unavailable: not ready; broker-a-2: slave catching up"},
		{"404", []string{srv.URL + "/nothing"}, 1, "404 Not Found"},
		{"refused", []string{refused}, 1, "connection refused"},
		{"timeout", []string{"--timeout", "150ms", srv.URL + "/slow"}, 1, "no answer within 150ms"},
		{"no URL", nil, 2, "want one URL"},
		{"not http", []string{"tcp://127.0.0.1:1"}, 2, "want an http:// or https:// URL"},
		{"bad timeout", []string{"--timeout", "0s", srv.URL}, 2, "want a positive duration"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			code, stdout, stderr := probeRun(c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d (stdout %q, stderr %q)", code, c.code, stdout, stderr)
			}
			if !strings.Contains(stderr, c.stderr) {
				t.Errorf("stderr %q does not say %q", stderr, c.stderr)
			}
			if code == 1 && strings.Count(strings.TrimSuffix(stderr, "\n"), "\n") != 0 {
				t.Errorf("the reason is not one line: %q", stderr)
			}
			if code == 0 && (stderr != "" || !strings.Contains(stdout, "200 OK")) {
				t.Errorf("a 2xx answer printed stdout %q, stderr %q", stdout, stderr)
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("took %v: the timeout did not bound it", el)
			}
		})
	}
}

// A long body is quoted cut short, still on one line.
func TestProbeReasonIsCut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(strings.Repeat("node failed\n", 1000)))
	}))
	defer srv.Close()
	code, _, stderr := probeRun(srv.URL)
	if code != 1 || strings.Count(stderr, "\n") != 1 || len(stderr) > probeReasonLimit+200 || !strings.HasSuffix(stderr, "...\n") {
		t.Errorf("exit %d, stderr %d bytes: %q", code, len(stderr), stderr)
	}
}

// The built binary's 'probe' command exits as the health checks of deploy/docker-compose.yml
// rely on: 0 for a ready node, 1 for one that is not.
func TestProbeCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	bin := sluiceBinary(t)
	for _, want := range []int{0, 1} {
		ready.Store(want == 0)
		cmd := exec.Command(bin, "probe", "--timeout", "5s", srv.URL+"/readyz")
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil {
			t.Fatal(err)
		}
		if code := cmd.ProcessState.ExitCode(); code != want {
			t.Errorf("ready %v: exit %d, want %d: %s", want == 0, code, want, out)
		}
	}
}
