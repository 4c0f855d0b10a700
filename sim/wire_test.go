package sim

import (
	"bytes"
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
)

// TestWireHashesTheEncodedFrame checks that what the trace hash mixes in for a frame is the
// frame the codec encodes as it is sent, whether the command travels as codec.Transfer's copy
// (the head encoded at delivery, then the body) or, for a string encoding replaces, encoded
// and decoded at once.
func TestWireHashesTheEncodedFrame(t *testing.T) {
	w := NewWorld(1, NetConfig{}, DiskConfig{}, nil)
	n := &Node{w: w, Addr: "a:1"}
	for _, cmd := range []*codec.Command{
		codec.NewRequest(codec.ReqSendMessage, map[string]string{"topic": "T", "queueId": "1"}, []byte("body")),
		{Code: codec.SystemBusy, Flag: codec.FlagResponse, Remark: "not UTF-8: \xff\xfe", Opaque: 7},
		codec.NewRequest(codec.ReqSendMessage, map[string]string{"k": "\xc3("}, []byte{1, 2, 3}),
	} {
		want, err := codec.Encode(cmd)
		if err != nil {
			t.Fatal(err)
		}
		f := w.wire(n, cmd)
		got := f.encoded
		if got == nil {
			head, err := codec.AppendFrameHead(nil, f.cmd)
			if err != nil {
				t.Fatal(err)
			}
			got = append(head, f.cmd.Body...)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%+v: the trace hash would mix in\n%q\nnot the frame sent,\n%q", cmd, got, want)
		}
	}
}
