package main

// Every request code the official Go client defines (internal/request.go of the module this
// build uses, read from the module cache) is answered by a real 'sluice dev', by its broker and
// by its name server: served, or refused with REQUEST_CODE_NOT_SUPPORTED naming the code.
// Nothing hangs. The README's compatibility table rests on this test.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
)

// The Go client's request codes by who sends them (see the README's compatibility table).
var (
	// Sent by its producers, consumers and admin to a broker.
	clientToBroker = []int16{10, 11, 14, 15, 17, 29, 30, 34, 36, 37, 38, 41, 42, 201, 215, 320, 324}
	// Sent by it to a name server.
	clientToNameServer = []int16{105, 206, 216}
	// Defined but never sent by it.
	clientNeverSends = []int16{12, 31, 33, 106, 325}
	// Requests it serves, sent by a broker (it registers a handler for each).
	brokerToClient = []int16{39, 40, 220, 221, 307, 309, 326}
)

// servedBy lists the codes each Sluice node must serve (never answer REQUEST_CODE_NOT_SUPPORTED).
// SEND_REPLY_MESSAGE(_V2) are left out: request/reply is TestCompatRequestReply's.
var (
	brokerServes     = []int16{10, 11, 12, 14, 15, 17, 29, 30, 31, 33, 34, 36, 37, 38, 41, 42, 201, 215, 320}
	nameServerServes = []int16{105, 106, 206, 216}
)

// clientRequestCodes reads the Req* constants of the official client's internal/request.go.
func clientRequestCodes(t *testing.T) map[string]int16 {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/apache/rocketmq-client-go/v2").Output()
	if err != nil {
		t.Fatalf("go list the official client's module: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "internal", "request.go"))
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int16{}
	for _, m := range regexp.MustCompile(`(Req\w+)\s*=\s*int16\((\d+)\)`).FindAllStringSubmatch(string(src), -1) {
		n, err := strconv.ParseInt(m[2], 10, 16)
		if err != nil {
			t.Fatal(err)
		}
		codes[m[1]] = int16(n)
	}
	if len(codes) < 20 {
		t.Fatalf("found only %d request codes in the client's request.go: %v", len(codes), codes)
	}
	return codes
}

func TestCompatEveryClientRequestCode(t *testing.T) {
	t.Parallel()
	codes := clientRequestCodes(t)
	var defined []int16
	for _, c := range codes {
		defined = append(defined, c)
	}
	slices.Sort(defined)
	classified := slices.Concat(clientToBroker, clientToNameServer, clientNeverSends, brokerToClient)
	slices.Sort(classified)
	if !slices.Equal(defined, classified) {
		t.Fatalf("the official client defines request codes %v; this test (and the README's table) classifies %v: update both", defined, classified)
	}

	c := startCompat(t)
	for _, node := range []struct {
		name, addr string
		serves     []int16
		either     []int16 // served by a parallel branch: not checked here
	}{{"broker", c.Broker, brokerServes, []int16{324, 325}}, {"name server", c.NameServer, nameServerServes, nil}} {
		for name, code := range codes {
			// An empty request: no ext fields, no body. rawRequest fails the test unless an
			// answer comes back on the connection within 10 s.
			resp := rawRequest(t, node.addr, codec.NewRequest(code, nil, nil))
			refused := resp.Code == codec.RequestCodeNotSupported
			switch {
			case slices.Contains(node.either, code):
			case slices.Contains(node.serves, code):
				// Served (an empty request may well be answered with an error).
				if refused {
					t.Errorf("%s refuses %s (%d), which it serves: %q", node.name, name, code, resp.Remark)
				}
			default:
				want := "request code " + strconv.Itoa(int(code)) + " (" + codec.RequestCodeName(int32(code)) + ") is not supported by this " + node.name
				if !refused || codec.RequestCodeName(int32(code)) == "" || resp.Remark != want {
					t.Errorf("%s answers %s (%d) with code %d %q, want REQUEST_CODE_NOT_SUPPORTED %q", node.name, name, code, resp.Code, resp.Remark, want)
				}
			}
		}
		for _, code := range node.serves {
			if !slices.Contains(defined, code) {
				t.Errorf("%s: code %d is listed as served but the client does not define it", node.name, code)
			}
		}
	}
}
