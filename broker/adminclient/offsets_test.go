package adminclient

import (
	"bytes"
	"compress/zlib"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
)

// Each offset request goes out with the header RocketMQ's admin tools send, and its answer is
// decoded: queue offsets from the response header, committed offsets split at "topic@group",
// groups and consumer ids sorted; an error code is a *ResponseError.
func TestOffsetRequests(t *testing.T) {
	var seen []string
	addr := fakePeer(t, func(req *codec.Command) []*codec.Command {
		resp := codec.NewResponse(req, codec.Success, "")
		switch req.Code {
		case codec.ReqGetMaxOffset, codec.ReqGetMinOffset:
			h, _ := codec.DecodeHeader[codec.QueueOffsetHeader](req)
			seen = append(seen, h.Topic)
			off := 100 + h.QueueID
			if req.Code == codec.ReqGetMinOffset {
				off = h.QueueID
			}
			if h.Topic == "missing" {
				resp = codec.NewResponse(req, codec.SystemError, "no such queue")
				break
			}
			resp.SetHeader(&codec.OffsetResponseHeader{Offset: off})
		case codec.ReqGetAllConsumerOffset:
			resp.Body = []byte(`{"offsetTable":{"t@g2":{"1":7,"0":5},"%RETRY%g1@g1":{"0":2},"t@g1":{"3":9}}}`)
		case codec.ReqGetAllSubscriptionGroup:
			resp.Body = []byte(`{"subscriptionGroupTable":{"zz":{"groupName":"zz"},"aa":{"groupName":"aa"}},"dataVersion":{"timestamp":1,"counter":1}}`)
		case codec.ReqGetConsumerListByGroup:
			h, _ := codec.DecodeHeader[codec.ConsumerGroupHeader](req)
			if h.ConsumerGroup == "empty" {
				resp.Body = []byte(`{"consumerIdList":null}`)
			} else {
				resp.Body = []byte(`{"consumerIdList":["c2","c1"]}`)
			}
		default:
			resp = codec.NewResponse(req, codec.RequestCodeNotSupported, "no")
		}
		return []*codec.Command{resp}
	})
	c := New(nil, 5*time.Second)
	defer c.Close()
	if got, err := c.MaxOffset(addr, "t", 3); err != nil || got != 103 {
		t.Errorf("MaxOffset = %d, %v; want 103", got, err)
	}
	if got, err := c.MinOffset(addr, "t", 3); err != nil || got != 3 {
		t.Errorf("MinOffset = %d, %v; want 3", got, err)
	}
	var re *ResponseError
	if _, err := c.MaxOffset(addr, "missing", 0); !errors.As(err, &re) || re.Remark != "no such queue" {
		t.Errorf("MaxOffset of a refused queue: %v", err)
	}
	offs, err := c.ConsumerOffsets(addr)
	want := []ConsumerOffset{{"g1", "%RETRY%g1", 0, 2}, {"g1", "t", 3, 9}, {"g2", "t", 0, 5}, {"g2", "t", 1, 7}}
	if err != nil || !slices.Equal(offs, want) {
		t.Errorf("ConsumerOffsets = %v, %v; want %v", offs, err, want)
	}
	groups, err := c.SubscriptionGroups(addr)
	if err != nil || !slices.Equal(groups, []string{"aa", "zz"}) {
		t.Errorf("SubscriptionGroups = %v, %v; want [aa zz]", groups, err)
	}
	ids, err := c.ConsumerIDs(addr, "g")
	if err != nil || !slices.Equal(ids, []string{"c1", "c2"}) {
		t.Errorf("ConsumerIDs = %v, %v; want [c1 c2]", ids, err)
	}
	if ids, err := c.ConsumerIDs(addr, "empty"); err != nil || len(ids) != 0 {
		t.Errorf("ConsumerIDs of a group without consumers = %v, %v", ids, err)
	}
	if !slices.Equal(seen, []string{"t", "t", "missing"}) {
		t.Errorf("queue offset requests named topics %v", seen)
	}
}

// An offsets body whose key has no '@' is reported, not guessed at.
func TestConsumerOffsetsRejectsBadKey(t *testing.T) {
	addr := fakePeer(t, func(req *codec.Command) []*codec.Command {
		resp := codec.NewResponse(req, codec.Success, "")
		resp.Body = []byte(`{"offsetTable":{"nogroup":{"0":1}}}`)
		return []*codec.Command{resp}
	})
	c := New(nil, 5*time.Second)
	defer c.Close()
	if _, err := c.ConsumerOffsets(addr); err == nil {
		t.Fatal("a key without '@' was accepted")
	}
}

// Inflate gives back what was compressed, and refuses a body that inflates beyond its limit
// or is not zlib at all.
func TestInflate(t *testing.T) {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(bytes.Repeat([]byte("a"), 1000))
	w.Close()
	if out, err := Inflate(buf.Bytes(), 1000); err != nil || len(out) != 1000 {
		t.Errorf("Inflate = %d bytes, %v; want 1000", len(out), err)
	}
	if _, err := Inflate(buf.Bytes(), 999); err == nil {
		t.Error("a body inflating beyond the limit was accepted")
	}
	if _, err := Inflate([]byte("plain"), 1000); err == nil {
		t.Error("a body that is not zlib inflated")
	}
}
