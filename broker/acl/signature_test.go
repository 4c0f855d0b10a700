package acl

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/sluicemq/sluice/broker/codec"
)

func init() { rlog.SetLogLevel("error") }

// The official Go client's own test vector for its signature function
// (internal/remote/interceptor_test.go, Test_CalculateSignature).
func TestSignatureGoldenOfficialVector(t *testing.T) {
	got := signature([]byte("Hello RocketMQ Client ACL Feature"), "adiaushdiaushd")
	if want := "tAb/54Rwwcq+pbH8Loi7FWX4QSQ="; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
}

// A signature over a header and a body, worked by hand from RocketMQ's rule (values sorted by
// key, Signature left out, then the body): "AK1234567" + "b-value" + "body".
func TestSignatureContent(t *testing.T) {
	ext := map[string]string{"b": "b-value", "AccessKey": "AK1234567", "Signature": "ignored"}
	if got, want := string(content(ext, []byte("body"))), "AK1234567b-valuebody"; got != want {
		t.Fatalf("content %q, want %q", got, want)
	}
	if Sign(ext, []byte("body"), "secret") != signature([]byte("AK1234567b-valuebody"), "secret") {
		t.Fatal("Sign does not sign the content")
	}
}

// fakeCluster is a name server and a broker in one listener, enough for the official producer
// to send one message: it answers route queries with a route to itself and captures the
// first send.
func fakeCluster(t *testing.T) (addr string, sends <-chan *codec.Command) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	addr = ln.Addr().String()
	got := make(chan *codec.Command, 16)
	route := fmt.Sprintf(`{"queueDatas":[{"brokerName":"b","readQueueNums":1,"writeQueueNums":1,"perm":6,"topicSynFlag":0}],`+
		`"brokerDatas":[{"cluster":"c","brokerName":"b","brokerAddrs":{"0":"%s"}}]}`, addr)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					frame, err := codec.ReadFrame(br, codec.DefaultMaxFrameBytes)
					if err != nil {
						return
					}
					req, err := codec.Decode(frame)
					if err != nil {
						return
					}
					resp := codec.NewResponse(req, codec.Success, "")
					switch req.Code {
					case codec.ReqGetRouteInfoByTopic:
						resp.Body = []byte(route)
					case codec.ReqSendMessage, codec.ReqSendMessageV2:
						select {
						case got <- req:
						default:
						}
						resp.Code = codec.SystemError // the test needs the request only
					}
					out, _ := codec.Encode(resp)
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	return addr, got
}

var instances atomic.Int64

// officialSend has the official Go producer, with creds, send one message with body to a
// fake cluster, and returns the send request as it arrived.
func officialSend(t *testing.T, creds primitive.Credentials, body string) *codec.Command {
	t.Helper()
	addr, sends := fakeCluster(t)
	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{addr}), producer.WithCredentials(creds),
		producer.WithInstanceName(fmt.Sprintf("acl-golden-%d", instances.Add(1))), producer.WithRetry(0),
		producer.WithSendMsgTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	msg := primitive.NewMessage("TopicGolden", []byte(body))
	msg.WithTag("tagA")
	msg.WithKeys([]string{"key1"})
	go func() { _, _ = p.SendSync(context.Background(), msg) }()
	select {
	case req := <-sends:
		return req
	case <-time.After(10 * time.Second):
		t.Fatal("the official producer sent nothing")
		return nil
	}
}

// What the official Go client sends with WithCredentials verifies with the account's secret
// and with no other, and changing any header field or the body breaks it.
func TestVerifyOfficialGoClient(t *testing.T) {
	const ak, sk = "goldenAK1", "goldenSecret1"
	req := officialSend(t, primitive.Credentials{AccessKey: ak, SecretKey: sk}, "hello acl")
	auth, err := codec.DecodeHeader[codec.ACLHeader](req)
	if err != nil || auth.AccessKey != ak || auth.Signature == "" {
		t.Fatalf("the official client's request carries %+v (%v)", auth, err)
	}
	if !Verify(req, sk, auth) {
		t.Fatalf("the official client's signature does not verify; ext %v", req.ExtFields)
	}
	if Verify(req, "wrongSecret1", auth) {
		t.Fatal("verifies with a wrong secret")
	}
	tampered := *req
	tampered.Body = []byte("hello acL")
	if Verify(&tampered, sk, auth) {
		t.Fatal("verifies with the body changed")
	}
	tampered = *req
	tampered.ExtFields = map[string]string{}
	for k, v := range req.ExtFields {
		tampered.ExtFields[k] = v
	}
	tampered.ExtFields["b"] = "OtherTopic" // SEND_MESSAGE_V2's topic
	if Verify(&tampered, sk, auth) {
		t.Fatal("verifies with the topic changed")
	}
	// Our own signer, over the same header and body, signs as the official client does.
	plain := *req
	plain.ExtFields = map[string]string{}
	for k, v := range req.ExtFields {
		if k != codec.ExtSignature && k != codec.ExtAccessKey {
			plain.ExtFields[k] = v
		}
	}
	if got := (Credentials{ak, sk}).Sign(&plain).ExtFields[codec.ExtSignature]; got != auth.Signature {
		t.Fatalf("Credentials.Sign gives %s, the official client %s", got, auth.Signature)
	}
}

// The official Go client sends a SecurityToken but leaves it out of what it signs; the Java
// client signs over it. Both verify.
func TestVerifySecurityToken(t *testing.T) {
	const ak, sk, token = "tokenAK12", "tokenSecret1", "session-token"
	req := officialSend(t, primitive.Credentials{AccessKey: ak, SecretKey: sk, SecurityToken: token}, "with token")
	auth, _ := codec.DecodeHeader[codec.ACLHeader](req)
	if auth.SecurityToken != token {
		t.Fatalf("the official client sent SecurityToken %q", auth.SecurityToken)
	}
	if !Verify(req, sk, auth) {
		t.Fatal("the official Go client's signature with a SecurityToken does not verify")
	}
	java := codec.NewRequest(codec.ReqPullMessage, map[string]string{"topic": "t", "AccessKey": ak, "SecurityToken": token}, nil)
	java.ExtFields["Signature"] = Sign(java.ExtFields, nil, sk)
	jauth, _ := codec.DecodeHeader[codec.ACLHeader](java)
	if !Verify(java, sk, jauth) {
		t.Fatal("a Java-style signature over the SecurityToken does not verify")
	}
}
