package main

// 'sluice probe URL': one HTTP GET, for health checks where the image has nothing else to make
// one with (the distroless image of the Dockerfile has no shell, curl or wget). It exits 0 when
// the answer is 2xx, 1 otherwise, saying why in one line; deploy/docker-compose.yml's
// healthchecks call it on each node's /readyz.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// probeBodyLimit bounds how much of an answer's body is read to quote in the reason.
const probeBodyLimit = 4 << 10

// probeReasonLimit bounds the quoted body in the one-line reason.
const probeReasonLimit = 300

func runProbe(args []string) int {
	return probe(args, os.Stdout, os.Stderr)
}

// probe runs 'sluice probe' with its output to stdout and stderr, returning the exit code:
// 0 on a 2xx answer, 1 on any other answer or none, 2 on a usage error.
func probe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 3*time.Second, "give up (exit 1) if the whole answer has not come within this long")
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "usage: sluice probe [--timeout D] URL\n\nGET URL: exit 0 on a 2xx answer, 1 otherwise (with the reason on stderr).\n\nflags:")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "sluice probe: %v\nrun 'sluice probe -h' for its usage\n", err)
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "sluice probe: want one URL (sluice probe [--timeout D] URL)")
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "sluice probe: --timeout %v: want a positive duration\n", *timeout)
		return 2
	}
	target := fs.Arg(0)
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "sluice probe: %q: want an http:// or https:// URL\n", target)
		return 2
	}
	status, err := probeGet(target, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "sluice probe: %s: %v\n", target, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s\n", target, status)
	return 0
}

// probeGet GETs target within timeout and returns its status line on a 2xx answer; any other
// answer is an error carrying the status and the start of the body, on one line.
func probeGet(target string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", err
	}
	// Its own transport: no proxy from the environment, no connection kept for later.
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("no answer within %v", timeout)
		}
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, probeBodyLimit))
	if err != nil && resp.StatusCode/100 == 2 {
		return "", fmt.Errorf("%s, but reading its body: %w", resp.Status, err)
	}
	if resp.StatusCode/100 != 2 {
		if reason := oneLine(string(body)); reason != "" {
			return "", fmt.Errorf("%s: %s", resp.Status, reason)
		}
		return "", errors.New(resp.Status)
	}
	return resp.Status, nil
}

// oneLine joins text's non-blank lines with "; ", cut to probeReasonLimit bytes.
func oneLine(text string) string {
	var parts []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	s := strings.Join(parts, "; ")
	if len(s) > probeReasonLimit {
		s = strings.ToValidUTF8(s[:probeReasonLimit], "") + "..."
	}
	return s
}
