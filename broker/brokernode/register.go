package brokernode

import (
	"maps"
	"slices"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
)

// RegistrationWait bounds how long an answer held for a registration round (a topic creation)
// waits for the name servers: Java's registerBrokerAll waits registerBrokerTimeoutMills (6 s),
// but the Go admin client gives UPDATE_AND_CREATE_TOPIC 5 s, so the answer must go out first.
const RegistrationWait = 3 * time.Second

// registrations tracks the REGISTER_BROKER requests some answer waits for.
type registrations struct {
	// version is the dataVersion of the topic table registered last: it moves when the
	// table's bytes change, as Java's TopicConfigManager dataVersion does.
	version metaVersion
	// body is the last registration body encoded, with its CRC and the data version it
	// carries: while the version stays (the topic table's bytes and the epoch are the same) a
	// registration sends the same body, shared by its requests and never modified.
	body      []byte
	bodyCRC   int64
	bodyOfVer route.DataVersion
	// accepted: a name server answered a REGISTER_BROKER with success (Health).
	accepted bool
	// nextRound numbers rounds; held lists the answers waiting, oldest round first.
	nextRound uint64
	held      []*heldAnswer
}

// heldAnswer is an answer sent once every name server has answered the REGISTER_BROKER it was
// sent (whatever the code), its connection closed, or RegistrationWait passed.
type heldAnswer struct {
	round   uint64
	conn    node.ConnID
	resp    *codec.Command
	waiting map[int32]node.ConnID // opaque of each unanswered REGISTER_BROKER → its connection
	timer   node.TimerID
	fired   bool // the timer fired: nothing to cancel
}

type registrationTimeout struct{ round uint64 }

// registerAll registers every topic with every name server, in Java's RegisterBrokerBody shape
// (route.RegisterBody) with the header Java's BrokerOuterAPI writes (compressed false, the
// body's CRC). It returns the requests sent: opaque → name-server connection.
func (b *Broker) registerAll() map[int32]node.ConnID {
	body := route.RegisterBody{TopicConfigTable: map[string]route.TopicConfig{}}
	for _, tc := range b.store.Topics() {
		body.TopicConfigTable[tc.Name] = route.TopicConfig{TopicName: tc.Name, ReadQueueNums: tc.ReadQueueNums,
			WriteQueueNums: tc.WriteQueueNums, Perm: tc.Perm, TopicFilterType: route.FilterSingleTag}
	}
	dv := b.reg.version.of(mustJSON(body.TopicConfigTable), b.env.Now())
	body.DataVersion = route.DataVersion{Timestamp: dv.Timestamp, Counter: dv.Counter}
	// Name servers route the master of the highest epoch when two replicas claim id 0 (0
	// without a group).
	body.DataVersion.StateVersion = b.epoch()
	// The counter moves whenever the table's bytes do, so the same version is the same body.
	if b.reg.body == nil || b.reg.bodyOfVer != body.DataVersion {
		b.reg.body = mustJSON(body)
		b.reg.bodyCRC = int64(route.BodyCRC32(b.reg.body))
		b.reg.bodyOfVer = body.DataVersion
	}
	payload, crc := b.reg.body, b.reg.bodyCRC
	sent := map[int32]node.ConnID{}
	for _, addr := range b.cfg.NameServers {
		c, ok := b.nsConns[addr]
		if !ok {
			c = b.env.Dial(addr)
			b.nsConns[addr] = c
		}
		req := codec.NewRequest(codec.ReqRegisterBroker, codec.EncodeHeader(&codec.RegisterBrokerHeader{
			BrokerName: b.cfg.BrokerName, BrokerAddr: b.cfg.Addr, ClusterName: b.cfg.ClusterName,
			BrokerID: b.nameServerID(), HAServerAddr: b.cfg.Addr, BodyCRC32: crc,
		}), payload)
		req.Opaque = b.nextOpaque()
		b.env.Send(c, req)
		sent[req.Opaque] = c
	}
	return sent
}

// answerAfterRegistration sends resp on c once the registration requests sent have all been
// answered (or their connections closed), or RegistrationWait has passed, whichever is first:
// the node cannot block the way Java's registerBrokerAll does, so the answer waits instead.
func (b *Broker) answerAfterRegistration(c node.ConnID, resp *codec.Command, sent map[int32]node.ConnID) {
	if len(sent) == 0 {
		b.env.Send(c, resp)
		return
	}
	b.reg.nextRound++
	h := &heldAnswer{round: b.reg.nextRound, conn: c, resp: resp, waiting: sent}
	h.timer = b.env.SetTimer(RegistrationWait, registrationTimeout{h.round})
	b.reg.held = append(b.reg.held, h)
}

// onRegisterResponse takes a name server's answer to REGISTER_BROKER, reporting whether resp
// was one some held answer waited for.
func (b *Broker) onRegisterResponse(c node.ConnID, resp *codec.Command) bool {
	matched := false
	for _, h := range b.reg.held {
		if conn, ok := h.waiting[resp.Opaque]; ok && conn == c {
			delete(h.waiting, resp.Opaque)
			matched = true
		}
	}
	if matched && resp.Code != codec.Success {
		b.log.Warn("name server refused a registration", "code", resp.Code, "remark", resp.Remark)
	}
	b.releaseHeld()
	return matched
}

// registrationConnClosed stops waiting for answers on a closed name-server connection.
func (b *Broker) registrationConnClosed(c node.ConnID) {
	for _, h := range b.reg.held {
		for _, op := range slices.Sorted(maps.Keys(h.waiting)) {
			if h.waiting[op] == c {
				delete(h.waiting, op)
			}
		}
	}
	b.releaseHeld()
}

func (b *Broker) registrationTimedOut(t registrationTimeout) {
	for _, h := range b.reg.held {
		if h.round == t.round {
			b.log.Warn("name servers did not answer a registration in time; answering anyway",
				"wait", RegistrationWait, "unanswered", len(h.waiting))
			h.waiting = nil
			h.fired = true
		}
	}
	b.releaseHeld()
}

// releaseHeld sends the held answers no longer waiting, in the order they were held.
func (b *Broker) releaseHeld() {
	keep := b.reg.held[:0]
	for _, h := range b.reg.held {
		if len(h.waiting) > 0 {
			keep = append(keep, h)
			continue
		}
		if !h.fired {
			b.env.CancelTimer(h.timer)
		}
		b.env.Send(h.conn, h.resp)
	}
	clear(b.reg.held[len(keep):])
	b.reg.held = keep
}
