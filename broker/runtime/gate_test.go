package runtime

import (
	"bufio"
	"net"
	"sync/atomic"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// Config.Gate answers the requests it refuses in the node's place (the node never sees them),
// sends no answer to a refused oneway request, and lets everything else through in order.
func TestGateRefusesAtTheEdge(t *testing.T) {
	const refusedCode = 99
	var seen atomic.Int64
	n := &testNode{}
	n.onFrame = func(c node.ConnID, cmd *codec.Command) {
		if cmd.Code == refusedCode {
			t.Errorf("the node saw a refused request")
		}
		seen.Add(1)
		resp := codec.NewResponse(cmd, codec.Success, "")
		resp.Body = cmd.Body
		n.env.Send(c, resp)
	}
	var remotes atomic.Value
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0", Gate: func(remote string, req *codec.Command) *codec.Command {
		remotes.Store(remote)
		if req.Code != refusedCode {
			return nil
		}
		return codec.NewResponse(req, codec.NoPermission, "no")
	}}, n)
	c := dialRaw(t, r.Addr().String())
	oneway := codec.NewRequest(refusedCode, nil, nil)
	oneway.Flag, oneway.Opaque = codec.FlagOneway, 1
	c.write(oneway)
	refused := codec.NewRequest(refusedCode, nil, nil)
	refused.Opaque = 2
	c.write(refused)
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	resp, err := c.read()
	if err != nil || resp.Opaque != 2 || resp.Code != codec.NoPermission || resp.Remark != "no" {
		t.Fatalf("answer %+v, %v; want NO_PERMISSION to opaque 2 (none to the oneway)", resp, err)
	}
	c.roundTrip(3, "allowed")
	if seen.Load() != 1 {
		t.Fatalf("the node saw %d requests, want 1", seen.Load())
	}
	if got, _ := remotes.Load().(string); got != c.nc.LocalAddr().String() {
		t.Errorf("the gate saw remote %q, want %q", got, c.nc.LocalAddr())
	}
}

// Config.Sign rewrites the requests the node sends, not its responses.
func TestSignRewritesRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan *codec.Command, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		frame, err := codec.ReadFrame(bufio.NewReader(nc), codec.DefaultMaxFrameBytes)
		if err != nil {
			return
		}
		cmd, _ := codec.Decode(frame)
		got <- cmd
	}()
	n := &testNode{}
	sign := func(req *codec.Command) *codec.Command {
		signed := *req
		signed.ExtFields = map[string]string{"Signature": "signed"}
		return &signed
	}
	n.onStart = func() {
		id := n.env.Dial(ln.Addr().String())
		n.env.Send(id, codec.NewRequest(7, map[string]string{"k": "v"}, nil))
	}
	r := startNode(t, Config{ListenAddr: "127.0.0.1:0", Sign: sign}, n)
	if cmd := <-got; cmd.Ext("Signature") != "signed" {
		t.Fatalf("the request left unsigned: %v", cmd.ExtFields)
	}
	c := dialRaw(t, r.Addr().String())
	req := codec.NewRequest(1, nil, []byte("echo"))
	req.Opaque = 5
	c.write(req)
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	resp, err := c.read()
	if err != nil || resp.Opaque != 5 || resp.Ext("Signature") != "" {
		t.Fatalf("response %+v, %v: want the echo as the node wrote it", resp, err)
	}
}
