package node_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/node/nodetest"
)

// logEnv is a test env whose log is kept.
type logEnv struct {
	*nodetest.Env
	log *slog.Logger
}

func (e logEnv) Logger() *slog.Logger { return e.log }

// An unsupported request is answered REQUEST_CODE_NOT_SUPPORTED with its code in the remark,
// and RocketMQ's name of it when it has one, a code beyond int16 included. The log has the first of each code at once, then at most one
// line per code per UnsupportedLogInterval and a bounded number of lines in all, each counting
// the requests it stands for.
func TestUnsupportedAnswersAndLogsRateLimited(t *testing.T) {
	var logs bytes.Buffer
	env := logEnv{Env: nodetest.New(t, nil), log: slog.New(slog.NewTextHandler(&logs, nil))}
	u := node.Unsupported{What: "broker"}
	ask := func(code int16, wide int32) *codec.Command {
		req := codec.NewRequest(code, nil, nil)
		req.WideCode, req.Opaque = wide, 7
		return u.Answer(env, 3, "127.0.0.1:5000", req)
	}
	lines := func() []string { return strings.Split(strings.TrimSpace(logs.String()), "\n") }

	resp := ask(codec.ReqSendReplyMessageV2, 0)
	if resp.Code != codec.RequestCodeNotSupported || resp.Opaque != 7 || !resp.IsResponse() ||
		resp.Remark != "request code 325 (SEND_REPLY_MESSAGE_V2) is not supported by this broker" {
		t.Fatalf("answer %+v", resp)
	}
	if r := ask(codec.CodeOutOfRange, 40000); r.Code != codec.RequestCodeNotSupported || r.Remark != "request code 40000 is not supported by this broker" {
		t.Fatalf("answer to code 40000: %+v", r)
	}
	if n := len(lines()); n != 2 {
		t.Fatalf("%d log lines after two codes, want one each:\n%s", n, logs.String())
	}
	for range 100 {
		ask(codec.ReqSendReplyMessageV2, 0)
	}
	if n := len(lines()); n != 2 {
		t.Fatalf("repeats within the interval logged: %d lines", n)
	}
	// Ever new codes: logged until the window is full, then only counted.
	for code := range int16(1000) {
		if r := ask(2000+code, 0); r.Code != codec.RequestCodeNotSupported {
			t.Fatalf("code %d answered %d", 2000+code, r.Code)
		}
	}
	if n := len(lines()); n != 16 {
		t.Fatalf("%d log lines in one interval, want the cap of 16:\n%s", n, logs.String())
	}
	env.StepClock(node.UnsupportedLogInterval)
	ask(codec.ReqSendReplyMessageV2, 0)
	l := lines()
	if last := l[len(l)-1]; len(l) != 17 || !strings.Contains(last, "code=325") || !strings.Contains(last, "sameCodeNotLogged=100") ||
		!strings.Contains(last, "otherCodesNotLogged=986") || !strings.Contains(last, "remote=127.0.0.1:5000") ||
		!strings.Contains(last, "level=WARN") {
		t.Fatalf("log after the interval:\n%s", strings.Join(l[len(l)-2:], "\n"))
	}
}
