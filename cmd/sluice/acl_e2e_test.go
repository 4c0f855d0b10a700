package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/sluicemq/sluice/broker/acl"
	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/controller"
)

// The ACL file of the end-to-end test: the broker's own (admin) account, an application that
// may publish and consume one topic with one group, one that may only subscribe, one that may
// read topics but use no group, and one whose requests from 127.0.0.2 need no signature;
// requests from 127.0.0.3 skip every check.
const e2eACL = `
globalWhiteRemoteAddresses:
  - 127.0.0.3
accounts:
  - accessKey: brokerNode1
    secretKey: brokerNodeSecret
    admin: true
  - accessKey: appUser01
    secretKey: appUserSecret
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms:
      - %[1]s=PUB|SUB
    groupPerms:
      - %[2]s=SUB
  - accessKey: subOnly01
    secretKey: subOnlySecret
    defaultTopicPerm: SUB
    defaultGroupPerm: SUB
    topicPerms:
      - %[1]s=%[3]s
  - accessKey: noGroup01
    secretKey: noGroupSecret
    defaultTopicPerm: SUB
    defaultGroupPerm: DENY
  - accessKey: internal01
    secretKey: internalSecret
    whiteRemoteAddress: 127.0.0.2
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
`

// aclCluster is a name server and a broker, each its own process with aclEnable=true.
type aclCluster struct {
	ns, broker, aclFile string
	brokerProc          *devProcess
	topic, group        string
}

func (c *aclCluster) writeACL(t *testing.T, subOnlyTopicPerm string) {
	t.Helper()
	text := fmt.Sprintf(e2eACL, c.topic, c.group, subOnlyTopicPerm)
	tmp := c.aclFile + ".new" // replaced whole, as docs/security.md advises
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, c.aclFile); err != nil {
		t.Fatal(err)
	}
}

// startACLCluster starts the name server and the broker with aclEnable=true and extra (more
// key=value lines) in both configuration files.
func startACLCluster(t *testing.T, dir, extra string) *aclCluster {
	t.Helper()
	c := &aclCluster{ns: freePort(t), broker: freePort(t), aclFile: filepath.Join(dir, "plain_acl.yml"),
		topic: uniqueName(t, "topic"), group: uniqueName(t, "group")}
	c.writeACL(t, "SUB")
	nsConf := filepath.Join(dir, "namesrv.conf")
	brokerConf := filepath.Join(dir, "broker.conf")
	common := "aclEnable=true\naclFile=" + c.aclFile + "\n" + extra
	if err := os.WriteFile(nsConf, []byte(common), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(brokerConf, []byte(common+"aclAccessKey=brokerNode1\naclSecretKey=brokerNodeSecret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	startProcess(t, "listening", "namesrv", "--config", nsConf, "--addr", c.ns, "--log-level", "warn")
	c.brokerProc = startProcess(t, "listening", "broker", "--config", brokerConf, "--addr", c.broker, "--vip-addr", "off",
		"--namesrv", c.ns, "--data", filepath.Join(dir, "data"), "--log-level", "warn")
	return c
}

// call sends one request on a fresh connection and returns the answer.
func (c *aclCluster) call(t *testing.T, addr string, req *codec.Command) *codec.Command {
	t.Helper()
	return c.callFrom(t, "127.0.0.1", addr, req)
}

// callFrom is call from the loopback address src.
func (c *aclCluster) callFrom(t *testing.T, src, addr string, req *codec.Command) *codec.Command {
	t.Helper()
	d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	req.Opaque = 1
	frame, err := codec.Encode(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	resp, err := codec.ReadFrame(conn, codec.DefaultMaxFrameBytes)
	if err != nil {
		t.Fatalf("no answer from %s: %v", addr, err)
	}
	cmd, err := codec.Decode(resp)
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

// producer starts an official producer signing with creds (and opts); it is shut down when the
// test ends.
func (c *aclCluster) producer(t *testing.T, creds primitive.Credentials, opts ...producer.Option) rocketmq.Producer {
	t.Helper()
	p, err := rocketmq.NewProducer(append([]producer.Option{producer.WithNameServer([]string{c.ns}),
		producer.WithInstanceName(uniqueName(t, "inst")), producer.WithGroupName(uniqueName(t, "pg")), producer.WithRetry(0),
		producer.WithCredentials(creds), producer.WithSendMsgTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// ctx2 is a context for one call of the official client, cancelled when the test ends.
func ctx2(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func send(p rocketmq.Producer, topic, body string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(body)))
	if err == nil && res.Status != primitive.SendOK {
		err = fmt.Errorf("send status %v", res.Status)
	}
	return err
}

// wantNoPermission checks that err is the official client's error for a NO_PERMISSION answer
// whose remark contains want.
func wantNoPermission(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), "CODE: 16") || !strings.Contains(err.Error(), want) {
		t.Fatalf("%s: error %v, want NO_PERMISSION (CODE: 16) naming %q", what, err, want)
	}
}

// The official Go client against a name server and a broker with aclEnable=true: the broker
// registers with its own signed account and a stranger cannot; an account with the
// permissions sends and consumes; a wrong secret, an unknown account and an account without
// PUB are refused with NO_PERMISSION; an admin operation is refused to a normal account and
// allowed to an admin; a change to the file grants and then revokes without a restart.
func TestACLEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	c := startACLCluster(t, t.TempDir(), "")

	// A fake broker without credentials cannot register; a normal account cannot either.
	reg := func() *codec.Command {
		return codec.NewRequest(codec.ReqRegisterBroker, map[string]string{"brokerName": "fake", "brokerAddr": "127.0.0.1:1",
			"clusterName": "DefaultCluster", "haServerAddr": "127.0.0.1:1", "brokerId": "0"}, []byte(`{}`))
	}
	if r := c.call(t, c.ns, reg()); r.Code != codec.NoPermission || !strings.Contains(r.Remark, "not signed") {
		t.Fatalf("unsigned REGISTER_BROKER: code %d %q", r.Code, r.Remark)
	}
	if r := c.call(t, c.ns, acl.Credentials{AccessKey: "appUser01", SecretKey: "appUserSecret"}.Sign(reg())); r.Code != codec.NoPermission ||
		!strings.Contains(r.Remark, "needs an admin account") {
		t.Fatalf("REGISTER_BROKER by a normal account: code %d %q", r.Code, r.Remark)
	}

	// The admin account creates the topic with the official admin client (which signs only
	// after its first GetAllSubscriptionGroup, itself admin-only); the real broker, signing
	// its registration, gets it routed.
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{c.ns})),
		admin.WithCredentials(primitive.Credentials{AccessKey: "brokerNode1", SecretKey: "brokerNodeSecret"}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := adm.GetAllSubscriptionGroup(ctx, c.broker, 5*time.Second); err != nil {
		t.Fatalf("admin-only GET_ALL_SUBSCRIPTIONGROUP_CONFIG as admin: %v", err)
	}
	if err := adm.CreateTopic(ctx, admin.WithTopicCreate(c.topic), admin.WithBrokerAddrCreate(c.broker),
		admin.WithReadQueueNums(2), admin.WithWriteQueueNums(2)); err != nil {
		t.Fatalf("create topic as admin: %v", err)
	}
	waitFor(t, 15*time.Second, "the topic to be routed", func() bool {
		mqs, err := adm.FetchPublishMessageQueues(ctx, c.topic)
		return err == nil && len(mqs) == 2
	})
	_ = adm.Close()

	// An admin operation with a normal account's valid signature is refused, and does nothing.
	other := uniqueName(t, "topic")
	create := codec.NewRequest(codec.ReqUpdateAndCreateTopic, map[string]string{"topic": other, "defaultTopic": "TBW102",
		"readQueueNums": "1", "writeQueueNums": "1", "perm": "6", "topicFilterType": "SINGLE_TAG"}, nil)
	r := c.call(t, c.broker, acl.Credentials{AccessKey: "appUser01", SecretKey: "appUserSecret"}.Sign(create))
	if r.Code != codec.NoPermission || !strings.Contains(r.Remark, "UPDATE_AND_CREATE_TOPIC") || !strings.Contains(r.Remark, "admin") {
		t.Fatalf("UPDATE_AND_CREATE_TOPIC by a normal account: code %d %q", r.Code, r.Remark)
	}

	// 'sluice admin' is refused without an account and allowed with the admin one.
	adminCLI := func(creds ...string) (string, error) {
		args := append([]string{"admin", "--namesrv", c.ns, "topic", "create", "--broker", c.broker, "--queues", "1", other}, creds...)
		out, err := exec.Command(sluiceBinary(t), args...).CombinedOutput()
		return string(out), err
	}
	if out, err := adminCLI(); err == nil || !strings.Contains(out, "code 16") {
		t.Fatalf("sluice admin topic create without an account: %v\n%s", err, out)
	}
	if out, err := adminCLI("--access-key", "brokerNode1", "--secret-key", "brokerNodeSecret"); err != nil {
		t.Fatalf("sluice admin topic create as admin: %v\n%s", err, out)
	}

	// The permitted account sends and consumes with the official client.
	app := primitive.Credentials{AccessKey: "appUser01", SecretKey: "appUserSecret"}
	p := c.producer(t, app)
	const n = 5
	for i := range n {
		if err := send(p, c.topic, fmt.Sprintf("m%d", i)); err != nil {
			t.Fatalf("send %d with a permitted account: %v", i, err)
		}
	}
	var mu sync.Mutex
	got := map[string]bool{}
	pc, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{c.ns}), consumer.WithInstance(uniqueName(t, "inst")),
		consumer.WithGroupName(c.group), consumer.WithCredentials(app),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Shutdown() })
	if err := pc.Subscribe(c.topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			got[string(m.Body)] = true
		}
		return consumer.ConsumeSuccess, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the consumer to receive every message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == n
	})

	// Refusals the official client surfaces as errors.
	wantNoPermission(t, "wrong secret", send(c.producer(t, primitive.Credentials{AccessKey: "appUser01", SecretKey: "wrongSecret1"}), c.topic, "x"),
		"signature check failed for accessKey=appUser01")
	wantNoPermission(t, "unknown account", send(c.producer(t, primitive.Credentials{AccessKey: "stranger1", SecretKey: "whatever1"}), c.topic, "x"),
		"no ACL account stranger1")
	subOnly := c.producer(t, primitive.Credentials{AccessKey: "subOnly01", SecretKey: "subOnlySecret"})
	wantNoPermission(t, "account without PUB", send(subOnly, c.topic, "x"), "lacks PUB on topic:"+c.topic)

	// Pull and offset commit, allowed and denied: with the official pull consumer, an account
	// with SUB on the topic and the group pulls and commits (the push consumer above stops
	// first, so its own commits do not overwrite this one), and one without SUB on the group is
	// refused the pull; its commit, signed and sent as the client would, is refused too and
	// leaves the group's offset where it was. (The official client commits with a oneway
	// request, whose answer it never reads, and only for the queues its rebalance gave it, which
	// a refused heartbeat leaves empty: hence the raw request.)
	_ = pc.Shutdown()
	pullQueue := &primitive.MessageQueue{Topic: c.topic, BrokerName: "broker-a", QueueId: 0}
	puller := func(creds primitive.Credentials, group string) rocketmq.PullConsumer {
		pc, err := rocketmq.NewPullConsumer(consumer.WithNameServer([]string{c.ns}), consumer.WithInstance(uniqueName(t, "inst")),
			consumer.WithGroupName(group), consumer.WithCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		if err := pc.Subscribe(c.topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "*"}); err != nil {
			t.Fatal(err)
		}
		if err := pc.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pc.Shutdown() })
		return pc
	}
	adminCreds := acl.Credentials{AccessKey: "brokerNode1", SecretKey: "brokerNodeSecret"}
	committed := func(group string) int64 {
		q := codec.NewRequest(codec.ReqQueryConsumerOffset, map[string]string{"consumerGroup": group, "topic": c.topic, "queueId": "0"}, nil)
		r := c.call(t, c.broker, adminCreds.Sign(q))
		if r.Code != codec.Success {
			return -1
		}
		off, _ := strconv.ParseInt(r.ExtFields["offset"], 10, 64)
		return off
	}
	allowed := puller(app, c.group)
	if res, err := allowed.PullFrom(ctx2(t), pullQueue, 0, 4); err != nil || res.Status != primitive.PullFound {
		t.Fatalf("pull with SUB on topic and group: %v %v", res, err)
	}
	waitFor(t, 20*time.Second, "the permitted commit to land", func() bool {
		_ = allowed.UpdateOffset(pullQueue, 1)
		_ = allowed.PersistOffset(ctx2(t), c.topic)
		return committed(c.group) == 1
	})
	noGroup := primitive.Credentials{AccessKey: "noGroup01", SecretKey: "noGroupSecret"}
	if _, err := puller(noGroup, c.group).PullFrom(ctx2(t), pullQueue, 0, 4); err == nil || !strings.Contains(err.Error(), "16") {
		t.Fatalf("pull without SUB on the group: %v, want NO_PERMISSION", err)
	}
	commit := codec.NewRequest(codec.ReqUpdateConsumerOffset, map[string]string{"consumerGroup": c.group, "topic": c.topic,
		"queueId": "0", "commitOffset": "3"}, nil)
	if r := c.call(t, c.broker, acl.Credentials{AccessKey: "noGroup01", SecretKey: "noGroupSecret"}.Sign(commit)); r.Code != codec.NoPermission ||
		!strings.Contains(r.Remark, c.group) {
		t.Fatalf("UPDATE_CONSUMER_OFFSET without SUB on the group: code %d %q", r.Code, r.Remark)
	}
	if got := committed(c.group); got != 1 {
		t.Fatalf("the group's offset is %d after a refused commit, want 1", got)
	}

	// Whitelists: internal01's requests from 127.0.0.2 need no valid signature; from another
	// address they do. Requests from 127.0.0.3 (the global whitelist) need none at all.
	maxOff := func() *codec.Command {
		return codec.NewRequest(codec.ReqGetMaxOffset, map[string]string{"topic": c.topic, "queueId": "0"}, nil)
	}
	forged := acl.Credentials{AccessKey: "internal01", SecretKey: "not-the-secret"}
	if r := c.callFrom(t, "127.0.0.2", c.broker, forged.Sign(maxOff())); r.Code != codec.Success {
		t.Errorf("internal01 from its whitelisted address: code %d %q", r.Code, r.Remark)
	}
	if r := c.callFrom(t, "127.0.0.1", c.broker, forged.Sign(maxOff())); r.Code != codec.NoPermission {
		t.Errorf("internal01 with a bad signature from outside its whitelist: code %d %q, want NO_PERMISSION", r.Code, r.Remark)
	}
	if r := c.callFrom(t, "127.0.0.3", c.broker, maxOff()); r.Code != codec.Success {
		t.Errorf("unsigned from the global whitelist: code %d %q", r.Code, r.Remark)
	}
	if r := c.callFrom(t, "127.0.0.4", c.broker, maxOff()); r.Code != codec.NoPermission {
		t.Errorf("unsigned from outside every whitelist: code %d %q, want NO_PERMISSION", r.Code, r.Remark)
	}

	// Reload: grant PUB, then revoke it, without a restart.
	c.writeACL(t, "PUB|SUB")
	waitFor(t, 15*time.Second, "the grant to take effect", func() bool { return send(subOnly, c.topic, "granted") == nil })
	c.writeACL(t, "SUB")
	waitFor(t, 15*time.Second, "the revocation to take effect", func() bool {
		err := send(subOnly, c.topic, "revoked")
		return err != nil && strings.Contains(err.Error(), "CODE: 16")
	})

	// Refusals are logged with the account, never its secret.
	logs := c.brokerProc.stderr.String()
	if !strings.Contains(logs, "acl: request refused") || strings.Contains(logs, "appUserSecret") || strings.Contains(logs, "wrongSecret1") {
		t.Errorf("broker log: want refusals logged without secrets:\n%s", logs)
	}
}

// Three controller members with aclEnable=true, signing their own traffic (raft messages
// included) with an admin account: they elect a leader, which answers a broker heartbeat
// signed with that account and refuses an unsigned one and one from a normal account.
func TestACLControllers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	dir := t.TempDir()
	aclFile := filepath.Join(dir, "plain_acl.yml")
	if err := os.WriteFile(aclFile, []byte(`
accounts:
  - accessKey: controllerNode
    secretKey: controllerSecret
    admin: true
  - accessKey: appUser01
    secretKey: appUserSecret
    defaultTopicPerm: PUB|SUB
    defaultGroupPerm: SUB
`), 0o644); err != nil {
		t.Fatal(err)
	}
	addrs := []string{freePort(t), freePort(t), freePort(t)}
	peers := fmt.Sprintf("n1-%s;n2-%s;n3-%s", addrs[0], addrs[1], addrs[2])
	for i := range addrs {
		conf := filepath.Join(dir, fmt.Sprintf("controller%d.conf", i+1))
		text := fmt.Sprintf("controllerDLegerPeers=%s\ncontrollerDLegerSelfId=n%d\ncontrollerStorePath=%s\n", peers, i+1,
			filepath.Join(dir, fmt.Sprintf("c%d", i+1))) +
			"aclEnable=true\naclFile=" + aclFile + "\naclAccessKey=controllerNode\naclSecretKey=controllerSecret\n"
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		startProcess(t, "listening on", "controller", "--config", conf, "--log-level", "warn")
	}
	c := &aclCluster{}
	heartbeat := func() *codec.Command {
		return codec.NewRequest(codec.ReqControllerBrokerHeartbeat, map[string]string{"clusterName": "C", "brokerName": "G",
			"brokerId": "1", "brokerAddr": "127.0.0.9:10001"}, nil)
	}
	node := acl.Credentials{AccessKey: "controllerNode", SecretKey: "controllerSecret"}
	var leader string
	waitFor(t, 30*time.Second, "a leader answering a signed heartbeat", func() bool {
		for _, a := range addrs {
			if r := c.call(t, a, node.Sign(heartbeat())); r.Code == codec.Success {
				leader = a
				return true
			}
		}
		return false
	})
	if r := c.call(t, leader, heartbeat()); r.Code != codec.NoPermission || !strings.Contains(r.Remark, "not signed") {
		t.Fatalf("unsigned heartbeat: code %d %q", r.Code, r.Remark)
	}
	app := acl.Credentials{AccessKey: "appUser01", SecretKey: "appUserSecret"}
	if r := c.call(t, leader, app.Sign(heartbeat())); r.Code != codec.NoPermission || !strings.Contains(r.Remark, "admin") {
		t.Fatalf("heartbeat from a normal account: code %d %q", r.Code, r.Remark)
	}
	raft := codec.NewRequest(codec.ReqControllerRaftMessage, nil, []byte("not a raft message"))
	if r := c.call(t, leader, raft); r.Code != codec.NoPermission {
		t.Fatalf("unsigned raft message: code %d %q", r.Code, r.Remark)
	}
}

// A broker group of two replicas with sync replication (two in sync), a name server with an
// embedded controller member, all with aclEnable=true: every acknowledged send needs the slave
// to have fetched it from the master, so sends succeeding means the replicas' handshake and
// fetches, their heartbeats to the controller and their registrations, all signed with the
// node account, pass the ACL.
func TestACLReplicatedGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	dir := t.TempDir()
	c := &aclCluster{ns: freePort(t), aclFile: filepath.Join(dir, "plain_acl.yml"), topic: uniqueName(t, "topic"),
		group: uniqueName(t, "group")}
	c.writeACL(t, "SUB")
	conf := filepath.Join(dir, "node.conf")
	if err := os.WriteFile(conf, []byte("aclEnable=true\naclFile="+c.aclFile+
		"\naclAccessKey=brokerNode1\naclSecretKey=brokerNodeSecret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctl := freePort(t)
	startProcess(t, "controller member 1 listening", "namesrv", "--config", conf, "--addr", c.ns, "--log-level", "warn",
		"--controller", "--controller-id", "1", "--controller-peers", "1="+ctl, "--controller-data", dir)
	brokers := []string{freePort(t), freePort(t)}
	var procs []*devProcess
	for i, addr := range brokers {
		procs = append(procs, startProcess(t, "listening on", "broker", "--config", conf, "--data", filepath.Join(dir, "data"), "--addr", addr,
			"--vip-addr", "off", "--namesrv", c.ns, "--cluster", "AclCluster", "--group", "acl", "--id", fmt.Sprint(i+1),
			"--controllers", ctl, "--replication", "sync", "--min-insync", "2", "--log-level", "warn"))
	}
	node := acl.Credentials{AccessKey: "brokerNode1", SecretKey: "brokerNodeSecret"}
	waitFor(t, 30*time.Second, "a master with both replicas in sync", func() bool {
		r := c.call(t, ctl, node.Sign(codec.NewRequest(codec.ReqControllerGetReplicaInfo,
			map[string]string{"clusterName": "AclCluster", "brokerName": "acl"}, nil)))
		var body controller.ReplicaInfoBody
		if r.Code != codec.Success || json.Unmarshal(r.Body, &body) != nil || len(body.Groups) != 1 {
			return false
		}
		return body.Groups[0].MasterID != 0 && len(body.Groups[0].InSync) == 2
	})
	waitFor(t, 30*time.Second, "the topic created by 'sluice admin' as admin", func() bool {
		out, err := exec.Command(sluiceBinary(t), "admin", "--namesrv", c.ns, "--access-key", "brokerNode1",
			"--secret-key", "brokerNodeSecret", "topic", "create", "--queues", "2", c.topic).CombinedOutput()
		if err != nil {
			t.Logf("topic create: %v: %s", err, out)
		}
		return err == nil
	})
	p := c.producer(t, primitive.Credentials{AccessKey: "appUser01", SecretKey: "appUserSecret"})
	var lastErr error
	start := time.Now()
	if !poll(60*time.Second, func() bool { lastErr = send(p, c.topic, "first"); return lastErr == nil }) {
		var logs strings.Builder
		for _, b := range procs {
			logs.WriteString(b.stderr.String())
		}
		t.Fatalf("no send acknowledged by both replicas within 60s: %v\n%s", lastErr, logs.String())
	}
	t.Logf("first send acknowledged after %v", time.Since(start).Round(time.Millisecond))
	for i := range 20 {
		if err := send(p, c.topic, fmt.Sprintf("m%d", i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
}

// poll calls cond until it holds (true) or timeout passes (false).
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// ACL over TLS: with every port enforcing TLS and the broker dialling its name server with
// TLS, the official client with WithTls and WithCredentials sends, a wrong secret is refused,
// and 'sluice admin --tls' creates a topic only with the admin account.
func TestACLWithTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	t.Cleanup(func() { resetOfficialTLS(t) })
	dir := t.TempDir()
	cert, key := selfSignedCert(t, dir)
	c := startACLCluster(t, dir, "tls.server.mode=enforcing\ntls.server.certPath="+cert+"\ntls.server.keyPath="+key+"\ntls.enable=true\n")
	create := func(creds ...string) int {
		var out, errOut strings.Builder
		args := append([]string{"topic", "create", "--tls", "-n", c.ns, "--broker", c.broker, "--queues", "1", c.topic}, creds...)
		code := adminMain(args, &out, &errOut)
		t.Logf("sluice admin %v: exit %d %s%s", args, code, out.String(), errOut.String())
		return code
	}
	if create() == 0 {
		t.Fatal("sluice admin created a topic without an account")
	}
	if create("--access-key", "brokerNode1", "--secret-key", "brokerNodeSecret") != 0 {
		t.Fatal("sluice admin could not create a topic as admin")
	}
	p := c.producer(t, primitive.Credentials{AccessKey: "appUser01", SecretKey: "appUserSecret"}, producer.WithTls(true))
	var err error
	if !poll(20*time.Second, func() bool { err = send(p, c.topic, "over tls"); return err == nil }) {
		t.Fatalf("send over TLS with a permitted account: %v", err)
	}
	wantNoPermission(t, "wrong secret over TLS", send(c.producer(t, primitive.Credentials{AccessKey: "appUser01", SecretKey: "wrongSecret1"}, producer.WithTls(true)), c.topic, "x"),
		"signature check failed")
}

// --print-config lists the ACL keys a file sets, the secret key masked.
func TestACLPrintConfigMasksSecret(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "broker.conf")
	if err := os.WriteFile(conf, []byte("aclEnable=true\naclFile=/etc/plain_acl.yml\naclAccessKey=brokerNode1\naclSecretKey=brokerNodeSecret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"broker", "namesrv"} {
		out, err := exec.Command(sluiceBinary(t), role, "--config", conf, "--print-config").CombinedOutput()
		if err != nil {
			t.Fatalf("%s --print-config: %v\n%s", role, err, out)
		}
		for _, want := range []string{"aclEnable=true", "aclFile=/etc/plain_acl.yml", "aclAccessKey=brokerNode1", "aclSecretKey=********"} {
			if !strings.Contains(string(out), want+"\n") {
				t.Errorf("%s --print-config lacks %s:\n%s", role, want, out)
			}
		}
		if strings.Contains(string(out), "brokerNodeSecret") {
			t.Errorf("%s --print-config shows the secret:\n%s", role, out)
		}
	}
}

// resetOfficialTLS undoes producer.WithTls(true), which the official client keeps in a
// process-wide default (remote.DefaultRemotingClientConfig) that every client made later in
// the process starts from: without this, every later test's clients would dial with TLS.
func resetOfficialTLS(t *testing.T) {
	p, err := rocketmq.NewProducer(producer.WithTls(false), producer.WithNameServer([]string{"127.0.0.1:1"}),
		producer.WithInstanceName(uniqueName(t, "reset-tls")))
	if err != nil {
		t.Errorf("reset the official client's TLS default: %v", err)
		return
	}
	_ = p.Shutdown()
}
