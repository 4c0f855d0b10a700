package client

import (
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
)

// FuzzBrokerInput feeds the client what a broker may send it unasked or in answer: a
// CHECK_TRANSACTION_STATE with any body and offsets, and a LOCK_BATCH_MQ answer with any body.
// Nothing may panic; a check is answered only with END_TRANSACTION, and a lock reports only
// queues that were asked for.
func FuzzBrokerInput(f *testing.F) {
	valid := checkRequest(f, "pg")
	f.Add(valid.Body, "3", "77", []byte(`{"lockOKMQSet":[{"topic":"Orders","brokerName":"broker-a","queueId":0}]}`))
	f.Add([]byte{0, 0, 0, 9, 1, 2}, "x", "-1", []byte(`{"lockOKMQSet":null}`))
	f.Add([]byte{}, "", "", []byte(`[`))
	f.Fuzz(func(t *testing.T, checkBody []byte, tranOff, clOff string, lockBody []byte) {
		cfg := DefaultConfig(nsAddr)
		cfg.ProducerGroup = "pg"
		cfg.CheckTransaction = func(_ TransactionCheck, reply func(TransactionState, func(error))) {
			reply(TxRollback, nil)
		}
		h := newHarnessWith(t, cfg)
		q := MessageQueue{Topic: "Orders", BrokerName: "broker-a", QueueID: 1}
		var locked []MessageQueue
		h.c.Lock("og", []MessageQueue{q}, func(l []MessageQueue, _ error) { locked = l })
		h.answerRoute("Orders", routeBody("broker-a"))
		lock := h.next(codec.ReqLockBatchMQ)
		h.reply(lock, codec.Success, nil, lockBody)
		for _, l := range locked {
			if l != q {
				t.Fatalf("lock reported %v, which was not asked for", l)
			}
		}
		req := codec.NewRequest(codec.ReqCheckTransactionState, map[string]string{
			"tranStateTableOffset": tranOff, "commitLogOffset": clOff, "msgId": "m"}, checkBody)
		h.c.OnFrame(lock.Conn, req)
		for _, p := range h.pending() {
			if p.Cmd.Code != codec.ReqEndTransaction || p.Conn != lock.Conn {
				t.Fatalf("a check made the client send code %d on conn %d", p.Cmd.Code, p.Conn)
			}
			h.drop(p)
		}
	})
}
