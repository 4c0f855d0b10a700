package brokernode

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/route"
)

func createTopicExt(topic string, queues int) map[string]string {
	n := strconv.Itoa(queues)
	return map[string]string{"topic": topic, "defaultTopic": "defaultTopic", "readQueueNums": n, "writeQueueNums": n,
		"perm": "6", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false"}
}

// lastRegistration is the topic table of the last REGISTER_BROKER the broker sent.
func (h *brokerHarness) lastRegistration() map[string]route.TopicConfig {
	h.t.Helper()
	frames := h.framesTo(h.nameServerConn())
	if len(frames) == 0 || frames[len(frames)-1].Code != codec.ReqRegisterBroker {
		h.t.Fatalf("the last frame to the name server is not REGISTER_BROKER: %v", frames)
	}
	var body route.RegisterBody
	if err := json.Unmarshal(frames[len(frames)-1].Body, &body); err != nil {
		h.t.Fatal(err)
	}
	return body.TopicConfigTable
}

// createTopic is UPDATE_AND_CREATE_TOPIC from an admin on c, with the name servers answering
// the registration it sends; it returns the answer.
func (h *brokerHarness) createTopic(c node.ConnID, ext map[string]string) *codec.Command {
	h.t.Helper()
	op := h.request(c, codec.ReqUpdateAndCreateTopic, ext, nil)
	h.nameServersAnswer()
	return h.mustAnswer(c, op)
}

// UPDATE_AND_CREATE_TOPIC (as the admin client sends it) creates the topic and registers it
// with the name servers at once (the admin client never tells them itself), and is answered
// only once every name server has answered that registration, as Java's registerBrokerAll
// waits for them: a client that looks the route up as soon as the admin returns finds it.
func TestCreateTopicAnsweredAfterRegistration(t *testing.T) {
	cfg := testConfig()
	cfg.NameServers = []string{"127.0.0.1:9876", "127.0.0.2:9876"}
	h := startBroker(t, cfg, nil)
	h.nameServersAnswer() // the startup registration
	a := h.env.accept(h.b, "127.0.9.5:50000")
	regs := func() (out []*codec.Command) {
		for _, f := range h.env.Sent() {
			if !f.Cmd.IsResponse() && f.Cmd.Code == codec.ReqRegisterBroker {
				out = append(out, f.Cmd)
			}
		}
		return out
	}
	before := len(regs())
	op := h.request(a, codec.ReqUpdateAndCreateTopic, createTopicExt("Made", 3), nil)
	if n := len(regs()); n != before+2 {
		t.Fatalf("%d registrations after the create, want one to each of 2 name servers", n-before)
	}
	if tc := h.lastRegistration()["Made"]; tc.ReadQueueNums != 3 || tc.WriteQueueNums != 3 || tc.Perm != 6 || tc.TopicFilterType != "SINGLE_TAG" {
		t.Fatalf("registered Made as %+v", tc)
	}
	if h.answer(a, op) != nil {
		t.Fatal("the create was answered before the name servers answered its registration")
	}
	// One name server answers (with an error: Java waits for answers, not successes).
	var first node.ConnID
	for id, addr := range h.env.Dials() {
		if addr == cfg.NameServers[0] {
			first = id
		}
	}
	for _, f := range h.env.Sent() {
		if f.Conn == first && f.Cmd.Code == codec.ReqRegisterBroker && !f.Cmd.IsResponse() {
			h.b.OnFrame(first, codec.NewResponse(f.Cmd, codec.SystemError, "busy"))
		}
	}
	if h.answer(a, op) != nil {
		t.Fatal("the create was answered with one name server yet to answer")
	}
	h.nameServersAnswer()
	if r := h.mustAnswer(a, op); r.Code != codec.Success {
		t.Fatalf("create: code %d %q", r.Code, r.Remark)
	}

	// A silent name server holds the answer RegistrationWait at most, a closed one not at all.
	op = h.request(a, codec.ReqUpdateAndCreateTopic, createTopicExt("Silent", 1), nil)
	h.env.advance(h.b, RegistrationWait-time.Millisecond)
	if h.answer(a, op) != nil {
		t.Fatal("answered before RegistrationWait with no name server answering")
	}
	h.env.advance(h.b, time.Millisecond)
	if r := h.mustAnswer(a, op); r.Code != codec.Success {
		t.Fatalf("create after the wait: code %d %q", r.Code, r.Remark)
	}
	op = h.request(a, codec.ReqUpdateAndCreateTopic, createTopicExt("Closed", 1), nil)
	for id, addr := range h.env.Dials() {
		if slices.Contains(cfg.NameServers, addr) {
			h.b.OnConnClosed(id)
		}
	}
	if r := h.mustAnswer(a, op); r.Code != codec.Success {
		t.Fatalf("create with the name-server connections closed: code %d %q", r.Code, r.Remark)
	}
	// A refused create is answered at once.
	if r := h.mustAnswer(a, h.request(a, codec.ReqUpdateAndCreateTopic, createTopicExt("bad name", 1), nil)); r.Code != codec.SystemError {
		t.Fatalf("create of a bad name: code %d", r.Code)
	}
}

// The registration carries Java's header: compressed false and the body's CRC, which Java's
// name server checks.
func TestRegistrationHeader(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	frames := h.framesTo(h.nameServerConn())
	reg := frames[len(frames)-1]
	if reg.Ext("compressed") != "false" || reg.Ext("bodyCrc32") != strconv.Itoa(int(route.BodyCRC32(reg.Body))) || reg.Ext("bodyCrc32") == "0" {
		t.Errorf("registration header %v", reg.ExtFields)
	}
	body, err := route.DecodeRegisterBody(reg.Body)
	if err != nil || !strings.HasPrefix(string(reg.Body), `{"topicConfigSerializeWrapper":{"topicConfigTable":{`) || body.DataVersion.Counter == 0 {
		t.Errorf("registration body %s (%v)", reg.Body, err)
	}
}

// DELETE_TOPIC_IN_BROKER: the topic leaves the broker's registration at once, pulls parked on
// it are answered as for an unknown topic, offsets on it are gone, a checkpoint in flight is
// not held up by the removed queues, and a later send creates a fresh topic (auto-create on)
// whose offsets start at 0 again.
func TestDeleteTopicInBroker(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	a := h.env.accept(h.b, "127.0.9.5:50000")
	p := h.env.accept(h.b, "127.0.9.7:50000")
	c := h.env.accept(h.b, "127.0.9.8:50000")
	h.createTopic(a, createTopicExt("Gone", 2))
	for i := range 4 {
		h.send(p, "Gone", i%2, "m"+strconv.Itoa(i), nil)
	}
	h.syncAll()
	upd := map[string]string{"consumerGroup": "cg", "topic": "Gone", "queueId": "0", "commitOffset": "2"}
	h.mustAnswer(c, h.request(c, codec.ReqUpdateConsumerOffset, upd, nil))
	parked := h.pull(c, "Gone", 1, 2, "sysFlag", "6", "suspendTimeoutMillis", "15000")
	if h.answer(c, parked) != nil {
		t.Fatal("a pull at the end of the queue was answered instead of parked")
	}
	h.env.advance(h.b, h.cfg.CheckpointInterval) // a checkpoint starts: it waits for Gone's queues
	if h.b.ckptPending == nil {
		t.Fatal("no checkpoint in flight")
	}
	upTo := h.b.ckptUpTo

	if resp := h.mustAnswer(a, h.request(a, codec.ReqDeleteTopicInBroker, map[string]string{"topic": "Gone"}, nil)); resp.Code != codec.Success {
		t.Fatalf("delete: code %d %q", resp.Code, resp.Remark)
	}
	if _, ok := h.lastRegistration()["Gone"]; ok {
		t.Error("the broker's registration after the delete still has the topic")
	}
	if resp := h.answer(c, parked); resp == nil || resp.Code != codec.TopicNotExist {
		t.Errorf("parked pull after the delete: %+v, want an answer with 17", resp)
	}
	if resp := h.mustAnswer(c, h.pull(c, "Gone", 0, 0)); resp.Code != codec.TopicNotExist {
		t.Errorf("pull after the delete: code %d, want 17", resp.Code)
	}
	if resp := h.mustAnswer(c, h.request(c, codec.ReqQueryConsumerOffset, map[string]string{"consumerGroup": "cg", "topic": "Gone", "queueId": "0"}, nil)); resp.Code != codec.QueryNotFound {
		t.Errorf("offset query after the delete: code %d, want 22", resp.Code)
	}
	if h.b.ckptPending != nil || h.b.store.Checkpoint() != upTo {
		t.Errorf("checkpoint still waits for the deleted queues (pending %v, checkpoint %d, want %d)", h.b.ckptPending, h.b.store.Checkpoint(), upTo)
	}
	// The syncs of the removed logs fail (as syncing a closed log does), harmlessly.
	if n := h.env.CompleteSyncs(h.b, errors.New("sync of a removed log")); n != 2 {
		t.Fatalf("%d syncs were pending, want the checkpoint's 2", n)
	}

	op := h.send(p, "Gone", 1, "fresh", nil)
	h.syncAll()
	if resp := h.mustAnswer(p, op); resp.Code != codec.Success || resp.Ext("queueOffset") != "0" {
		t.Fatalf("send after the delete: code %d queueOffset %q, want a fresh queue at 0", resp.Code, resp.Ext("queueOffset"))
	}
	resp := h.mustAnswer(c, h.pull(c, "Gone", 1, 0))
	if msgs := decodeBody(t, resp.Body); len(msgs) != 1 || string(msgs[0].Body) != "fresh" {
		t.Fatalf("the re-created topic serves %d messages, want only the new one", len(msgs))
	}

	if resp := h.mustAnswer(a, h.request(a, codec.ReqDeleteTopicInBroker, map[string]string{"topic": "Never"}, nil)); resp.Code != codec.TopicNotExist {
		t.Errorf("delete of an unknown topic: code %d, want 17", resp.Code)
	}
	if resp := h.mustAnswer(a, h.request(a, codec.ReqDeleteTopicInBroker, map[string]string{"topic": "../x"}, nil)); resp.Code != codec.SystemError {
		t.Errorf("delete of an invalid name: code %d, want 1", resp.Code)
	}
}

// With auto-create off, a send to a deleted topic is refused as for any unknown topic.
func TestSendToDeletedTopicWithoutAutoCreate(t *testing.T) {
	cfg := testConfig()
	cfg.AutoCreateTopic = false
	h := startBroker(t, cfg, nil)
	a := h.env.accept(h.b, "127.0.9.5:50000")
	h.createTopic(a, createTopicExt("Gone", 1))
	h.mustAnswer(a, h.request(a, codec.ReqDeleteTopicInBroker, map[string]string{"topic": "Gone"}, nil))
	if resp := h.mustAnswer(a, h.send(a, "Gone", 0, "late", nil)); resp.Code != codec.TopicNotExist {
		t.Fatalf("send to a deleted topic: code %d, want 17", resp.Code)
	}
}

func allGroups(t *testing.T, h *brokerHarness, c node.ConnID) string {
	t.Helper()
	resp := h.mustAnswer(c, h.request(c, codec.ReqGetAllSubscriptionGroup, nil, nil))
	if resp.Code != codec.Success {
		t.Fatalf("GET_ALL_SUBSCRIPTIONGROUP_CONFIG: code %d", resp.Code)
	}
	return string(resp.Body)
}

// GET_ALL_SUBSCRIPTIONGROUP_CONFIG lists the groups known from heartbeats and from committed
// offsets, in name order with Java's defaults; its dataVersion changes when the set does.
func TestAllSubscriptionGroups(t *testing.T) {
	h := startBroker(t, testConfig(), nil)
	c := h.env.accept(h.b, "127.0.9.8:50000")
	h.mustAnswer(c, h.request(c, codec.ReqHeartBeat, nil, heartbeat("127.0.9.8@1", "live")))
	upd := map[string]string{"consumerGroup": "committed", "topic": "Orders", "queueId": "0", "commitOffset": "3"}
	h.mustAnswer(c, h.request(c, codec.ReqUpdateConsumerOffset, upd, nil))

	defaults := `"consumeEnable":true,"consumeFromMinEnable":true,"consumeBroadcastEnable":true,"retryQueueNums":1,"retryMaxTimes":16,"brokerId":0,"whichBrokerWhenConsumeSlowly":1,"notifyConsumerIdsChangedEnable":true}`
	first := allGroups(t, h, c)
	want := `{"subscriptionGroupTable":{"committed":{"groupName":"committed",` + defaults +
		`,"live":{"groupName":"live",` + defaults + `},"dataVersion":{"timestamp":1767225600000,"counter":1}}`
	if first != want {
		t.Fatalf("body\n got %s\nwant %s", first, want)
	}
	if again := allGroups(t, h, c); again != first {
		t.Errorf("unchanged groups gave a different body:\n%s\n%s", again, first)
	}
	h.mustAnswer(c, h.request(c, codec.ReqHeartBeat, nil, heartbeat("127.0.9.8@1", "another")))
	var got struct {
		SubscriptionGroupTable map[string]codec.SubscriptionGroupConfig
		DataVersion            dataVersion
	}
	if err := json.Unmarshal([]byte(allGroups(t, h, c)), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.SubscriptionGroupTable) != 3 || got.SubscriptionGroupTable["another"].GroupName != "another" || got.DataVersion.Counter != 2 {
		t.Errorf("after a new group joined: %+v", got)
	}
}
