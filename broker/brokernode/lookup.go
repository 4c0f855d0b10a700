package brokernode

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/store"
)

// handleViewMessageByID serves VIEW_MESSAGE_BY_ID (33): ext offset is the commit-log offset
// (a message's physical offset, parsed out of its offset message id); the body of the answer
// is the stored record, as Java's broker sends it.
func (b *Broker) handleViewMessageByID(req *codec.Command) *codec.Command {
	if !b.ready {
		return codec.NewResponse(req, codec.SystemBusy, "broker is recovering its store")
	}
	h, err := codec.DecodeHeader[codec.ViewMessageHeader](req)
	off := h.Offset
	if err != nil || off < 0 {
		return codec.NewResponse(req, codec.SystemError, "view message: offset must be a non-negative integer")
	}
	rec, err := b.store.ViewMessage(uint64(off))
	if errors.Is(err, node.ErrNotFound) {
		return codec.NewResponse(req, codec.SystemError, "can not find message by the offset, "+strconv.FormatInt(off, 10))
	}
	if err != nil {
		b.log.Error("view message", "offset", off, "err", err)
		return codec.NewResponse(req, codec.SystemError, "view message at offset "+strconv.FormatInt(off, 10)+": "+err.Error())
	}
	resp := codec.NewResponse(req, codec.Success, "")
	resp.Body = rec
	return resp
}

// handleQueryMessage serves QUERY_MESSAGE (12) from the store's index by key: ext topic, key,
// maxNum, beginTimestamp, endTimestamp (store times, ms); the answer's body is the matching
// stored records, oldest first, with ext indexLastUpdateTimestamp and indexLastUpdatePhyoffset;
// 22 QUERY_NOT_FOUND when nothing matches, as Java answers.
func (b *Broker) handleQueryMessage(req *codec.Command) *codec.Command {
	if !b.ready {
		return codec.NewResponse(req, codec.SystemBusy, "broker is recovering its store")
	}
	h, _ := codec.DecodeHeader[codec.QueryMessageHeader](req) // its numbers default when malformed
	topic, key := h.Topic, h.Key
	if err := validTopic(topic); err != nil {
		return codec.NewResponse(req, codec.SystemError, "query message: "+err.Error())
	}
	if key == "" {
		return codec.NewResponse(req, codec.SystemError, "query message: key is required")
	}
	res, err := b.store.QueryMessage(topic, key, int(min(max(h.MaxNum, 1), store.MaxQueryNum)), h.BeginTimestampMs, h.EndTimestampMs)
	if err != nil {
		b.log.Error("query message", "topic", topic, "key", key, "err", err)
		return codec.NewResponse(req, codec.SystemError, "query message: "+err.Error())
	}
	resp := codec.NewResponse(req, codec.Success, "")
	resp.SetHeader(&codec.QueryMessageResponseHeader{IndexLastUpdateTimestampMs: res.LastIndexedMs,
		IndexLastUpdatePhyoffset: int64(res.LastIndexedIndex)})
	if len(res.Records) == 0 {
		resp.Code, resp.Remark = codec.QueryNotFound, "can not find message, maybe time range not correct"
		return resp
	}
	resp.Body = bytes.Join(res.Records, nil)
	return resp
}
