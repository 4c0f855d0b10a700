package adminclient

import (
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/route"
)

// A broker that answers INVOKE_BROKER_TO_RESET_OFFSET with CONSUMER_NOT_ONLINE (a RocketMQ 4
// broker with no client of the group connected) gets mqadmin's fallback: each queue's offset
// at the time (SEARCH_OFFSET_BY_TIMESTAMP) is committed (UPDATE_CONSUMER_OFFSET), except,
// unforced, where it would move the queue forward; the result shows each queue's move.
func TestResetOffsetByTimeFallsBackWhenNoConsumerIsOnline(t *testing.T) {
	for _, force := range []bool{true, false} {
		t.Run("force="+strconv.FormatBool(force), func(t *testing.T) {
			var mu sync.Mutex
			commits := map[string]string{} // queue id -> committed offset
			broker := fakePeer(t, func(req *codec.Command) []*codec.Command {
				resp := codec.NewResponse(req, codec.Success, "")
				switch req.Code {
				case codec.ReqQueryConsumerOffset:
					resp.SetHeader(&codec.OffsetResponseHeader{Offset: 5})
				case codec.ReqInvokeBrokerToResetOffset:
					resp = codec.NewResponse(req, codec.ConsumerNotOnline, "not online")
				case codec.ReqSearchOffsetByTimestamp:
					off := int64(2) // queue 0 goes back, queue 1 would go forward
					if req.ExtFields["queueId"] == "1" {
						off = 9
					}
					if req.ExtFields["timestamp"] != "1700000000000" {
						off = -100
					}
					resp.SetHeader(&codec.OffsetResponseHeader{Offset: off})
				case codec.ReqUpdateConsumerOffset:
					mu.Lock()
					commits[req.ExtFields["queueId"]] = req.ExtFields["commitOffset"]
					mu.Unlock()
				default:
					resp = codec.NewResponse(req, codec.RequestCodeNotSupported, "")
				}
				return []*codec.Command{resp}
			})
			rt := route.TopicRouteData{QueueDatas: []route.QueueData{{BrokerName: "broker-a", ReadQueueNums: 2, WriteQueueNums: 2, Perm: 6}},
				BrokerDatas: []route.BrokerData{{Cluster: "c", BrokerName: "broker-a", BrokerAddrs: map[string]string{"0": broker}}}}
			ns := fakePeer(t, func(req *codec.Command) []*codec.Command {
				resp := codec.NewResponse(req, codec.Success, "")
				resp.Body = rt.Encode()
				return []*codec.Command{resp}
			})
			c := New([]string{ns}, 5*time.Second)
			defer c.Close()
			res, err := c.ResetOffsetByTime(ResetSpec{Group: "g", Topic: "T", TimestampMs: 1700000000000, Force: force})
			if err != nil {
				t.Fatal(err)
			}
			want := []OffsetReset{{"broker-a", 0, 5, 2}, {"broker-a", 1, 5, 9}}
			wantCommits := map[string]string{"0": "2", "1": "9"}
			if !force {
				want[1].New = 5
				wantCommits["1"] = "5"
			}
			if !slices.Equal(res.Queues, want) || !slices.Equal(res.Offline, []string{"broker-a"}) {
				t.Errorf("result %+v, want queues %v offline [broker-a]", res, want)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(commits) != 2 || commits["0"] != wantCommits["0"] || commits["1"] != wantCommits["1"] {
				t.Errorf("committed %v, want %v", commits, wantCommits)
			}
		})
	}
}

func TestControllerBesideNameServer(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1:9876": "127.0.0.1:9878", "[::1]:100": "[::1]:102", "nohost": "", "h:x": "", "h:65535": ""} {
		got, err := ControllerBesideNameServer(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
}
