package adminclient

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
)

// fakePeer accepts one connection and answers each request with the frames reply builds.
func fakePeer(t *testing.T, reply func(req *codec.Command) []*codec.Command) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			f, err := codec.ReadFrame(conn, 1<<20)
			if err != nil {
				return
			}
			req, err := codec.Decode(f)
			if err != nil {
				return
			}
			for _, c := range reply(req) {
				b, _ := codec.Encode(c)
				conn.Write(b)
			}
		}
	}()
	return ln.Addr().String()
}

// A response is matched by opaque: a request from the peer and a stale response on the same
// connection are skipped; a non-success code is a *ResponseError with the remark.
func TestCallMatchesByOpaque(t *testing.T) {
	addr := fakePeer(t, func(req *codec.Command) []*codec.Command {
		notify := codec.NewRequest(40, map[string]string{"consumerGroup": "g"}, nil)
		notify.Opaque = req.Opaque
		stale := codec.NewResponse(&codec.Command{Opaque: req.Opaque + 100}, codec.Success, "stale")
		resp := codec.NewResponse(req, codec.Success, "")
		if req.Code == codec.ReqDeleteTopicInNamesrv {
			resp = codec.NewResponse(req, codec.SystemError, "no")
		}
		resp.Body = []byte(`{"topicList":["b","a"],"brokerAddr":null}`)
		return []*codec.Command{notify, stale, resp}
	})
	c := New([]string{addr}, 5*time.Second)
	defer c.Close()
	topics, err := c.TopicList()
	if err != nil || len(topics) != 2 || topics[0] != "a" {
		t.Fatalf("TopicList = %v, %v; want [a b]", topics, err)
	}
	_, err = c.callOK(addr, codec.NewRequest(codec.ReqDeleteTopicInNamesrv, map[string]string{"topic": "x"}, nil))
	var re *ResponseError
	if !errors.As(err, &re) || re.Code != codec.SystemError || re.Remark != "no" {
		t.Fatalf("error answer: %v", err)
	}
}

// A peer that never answers makes the call fail after the timeout, and the next call redials.
func TestCallTimesOut(t *testing.T) {
	addr := fakePeer(t, func(*codec.Command) []*codec.Command { return nil })
	c := New([]string{addr}, 200*time.Millisecond)
	defer c.Close()
	if _, err := c.Call(addr, codec.NewRequest(codec.ReqGetAllTopicListFromNS, nil, nil)); err == nil {
		t.Fatal("a call nobody answers succeeded")
	}
	if len(c.conns) != 0 {
		t.Fatal("the failed connection was kept")
	}
}

func TestViewMessageRejectsBadID(t *testing.T) {
	c := New(nil, time.Second)
	for _, id := range []string{"", "zz", "7F000001"} {
		if _, err := c.ViewMessage(id); err == nil {
			t.Errorf("ViewMessage(%q) succeeded", id)
		}
	}
}
