package client

import (
	"fmt"
	"strconv"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
)

// Transactions (docs/protocol.md, "Transactions"): a half message is a send with sysFlag 4 and the properties
// TRAN_MSG=true and PGROUP=<producer group>; the broker keeps it from consumers until an
// END_TRANSACTION commits it (it is then written to its real topic) or rolls it back. A half
// message left unresolved makes the broker ask a producer of the group, with
// CHECK_TRANSACTION_STATE, which Config.CheckTransaction answers.

// TransactionState is a transaction's outcome as END_TRANSACTION carries it.
type TransactionState int

const (
	// TxUnknown leaves the half message pending: the broker will check back.
	TxUnknown TransactionState = 0
	// TxCommit delivers the message to its real topic.
	TxCommit TransactionState = codec.SysFlagTxnCommit
	// TxRollback discards it.
	TxRollback TransactionState = codec.SysFlagTxnRollback
)

func (s TransactionState) String() string {
	switch s {
	case TxUnknown:
		return "unknown"
	case TxCommit:
		return "commit"
	case TxRollback:
		return "rollback"
	}
	return "TransactionState(" + strconv.Itoa(int(s)) + ")"
}

// TransactionCheck is a broker asking about a half message (CHECK_TRANSACTION_STATE).
type TransactionCheck struct {
	// Msg is the half message in the stored layout, with its real topic and properties.
	Msg *codec.Message
	// UniqKey is the message's client id (its UNIQ_KEY, else the header's msgId).
	UniqKey              string
	TranStateTableOffset int64
	CommitLogOffset      int64
	TransactionID        string
	OffsetMsgID          string
}

// SendHalf sends m as the half message of a transaction: stored, not delivered, until
// EndTransaction (or the answer to a check) commits it. m must not be delayed.
func (c *Client) SendHalf(m Message, done func(SendResult, error)) {
	if m.DelayLevel > 0 {
		done(SendResult{}, fmt.Errorf("send half message to %s: a transactional message cannot be delayed: %w", m.Topic, errNotSent))
		return
	}
	encoded := m.properties(map[string]string{codec.PropTranMsg: "true", codec.PropProducerGroup: c.cfg.ProducerGroup})
	c.send(m.Topic, func(q MessageQueue) *codec.Command {
		return c.sendRequest(q, codec.SysFlagTxnPrepared, encoded, m.Body)
	}, done)
}

// EndTransaction reports the outcome of the transaction whose half message SendHalf stored
// (half is its result, uniqKey its UNIQ_KEY) to the master of its broker group. With a nil
// done it does not wait for an answer, as the official client; otherwise done gets the
// broker's answer (or ErrTimeout and friends: the outcome is then unknown).
func (c *Client) EndTransaction(half SendResult, uniqKey string, state TransactionState, done func(error)) {
	fail := func(err error) {
		if done != nil {
			done(err)
		}
	}
	_, commitLogOffset, err := codec.ParseOffsetMsgID(half.OffsetMsgID)
	if err != nil {
		fail(fmt.Errorf("end transaction of %s: the half message's send result has no usable msgId: %w (%w)", uniqKey, errNotSent, err))
		return
	}
	q := half.Queue
	c.masterOf(q.Topic, q.BrokerName, func(addr string, err error) {
		if err != nil {
			fail(fmt.Errorf("end transaction of %s: %w", uniqKey, err))
			return
		}
		req := c.endTransactionRequest(half.QueueOffset, commitLogOffset, state, false, uniqKey, half.TransactionID, q.BrokerName)
		if done == nil {
			c.oneway(addr, req)
			return
		}
		c.invoke(addr, req, func(resp *codec.Command, err error) {
			done(answerError(fmt.Sprintf("end transaction of %s (%v) at %s", uniqKey, state, addr), resp, err))
		})
	})
}

func (c *Client) endTransactionRequest(tranStateTableOffset, commitLogOffset int64, state TransactionState, fromCheck bool,
	uniqKey, transactionID, brokerName string) *codec.Command {
	return codec.NewRequest(codec.ReqEndTransaction, codec.EncodeHeader(&codec.EndTransactionHeader{
		ProducerGroup: c.cfg.ProducerGroup, TranStateTableOffset: tranStateTableOffset, CommitLogOffset: commitLogOffset,
		CommitOrRollback: int64(state), FromTransactionCheck: fromCheck, MsgID: uniqKey, TransactionID: transactionID,
		BrokerName: brokerName,
	}), nil)
}

// onCheckTransaction serves CHECK_TRANSACTION_STATE as the official client does: a check
// whose message is not of this producer group (PGROUP) is ignored, and the answer is an
// END_TRANSACTION on the connection the check came in on. The check itself gets no response.
func (c *Client) onCheckTransaction(conn node.ConnID, cmd *codec.Command) {
	h, herr := codec.DecodeHeader[codec.CheckTransactionStateHeader](cmd)
	if c.cfg.CheckTransaction == nil {
		c.log.Warn("transaction check ignored: no checker configured", "msgId", h.MsgID)
		return
	}
	m, _, err := codec.DecodeRecord(cmd.Body)
	if err != nil {
		c.log.Warn("transaction check ignored: its body is not a stored message", "err", err)
		return
	}
	if pg := codec.Property(m.Properties, codec.PropProducerGroup); pg == "" || pg != c.cfg.ProducerGroup {
		c.log.Warn("transaction check ignored: not this producer group", "group", pg, "ours", c.cfg.ProducerGroup)
		return
	}
	if herr != nil {
		c.log.Warn("transaction check ignored: bad header", "err", herr)
		return
	}
	tranOff, clOff := h.TranStateTableOffset, h.CommitLogOffset
	check := TransactionCheck{
		Msg: m, UniqKey: codec.Property(m.Properties, codec.PropUniqKey),
		TranStateTableOffset: tranOff, CommitLogOffset: clOff,
		TransactionID: codec.Property(m.Properties, codec.PropTransactionID), OffsetMsgID: h.OffsetMsgID,
	}
	if check.UniqKey == "" {
		check.UniqKey = h.MsgID
	}
	if check.TransactionID == "" {
		check.TransactionID = h.TransactionID
	}
	if check.TransactionID == "" {
		check.TransactionID = check.UniqKey
	}
	c.cfg.CheckTransaction(check, func(state TransactionState, done func(error)) {
		if _, open := c.addrOf[conn]; !open {
			if done != nil {
				done(fmt.Errorf("answer transaction check of %s: the connection it came in on closed: %w", check.UniqKey, errNotSent))
			}
			return
		}
		req := c.endTransactionRequest(tranOff, clOff, state, true, check.UniqKey, check.TransactionID, "")
		if done == nil {
			c.opaque++
			req.Opaque = c.opaque
			c.env.Send(conn, req)
			return
		}
		c.invokeOn(conn, req, c.cfg.RequestTimeout, func(resp *codec.Command, err error) {
			done(answerError(fmt.Sprintf("answer transaction check of %s (%v)", check.UniqKey, state), resp, err))
		})
	})
}

// answerError is the error of a request that expects a plain success answer.
func answerError(what string, resp *codec.Command, err error) error {
	if err == nil && resp.Code != codec.Success {
		err = &BrokerError{resp.Code, resp.Remark}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
