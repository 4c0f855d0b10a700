package console

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fakeSource serves snapshots from a list (the last repeats) and finds messages in a table.
type fakeSource struct {
	snaps []Snapshot
	err   error
	msgs  []Message
	calls int
}

func (f *fakeSource) Snapshot() (Snapshot, error) {
	if f.err != nil {
		return Snapshot{}, f.err
	}
	s := f.snaps[min(f.calls, len(f.snaps)-1)]
	f.calls++
	return s, nil
}

func (f *fakeSource) MessageByID(id string) (Message, error) {
	for _, m := range f.msgs {
		if m.OffsetMsgID == id {
			return m, nil
		}
	}
	return Message{}, errors.New("no message with id " + id)
}

func (f *fakeSource) MessagesByKey(topic, key string) ([]Message, error) {
	var out []Message
	for _, m := range f.msgs {
		if m.Topic == topic && strings.Contains(" "+m.Keys+" ", " "+key+" ") {
			out = append(out, m)
		}
	}
	return out, nil
}

func ptr(v int64) *int64 { return &v }

// clock is a fake time source the tests step.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestConsoleLag(t *testing.T) {
	for _, tc := range []struct {
		name           string
		max, committed int64
		want           int64
	}{
		{"behind", 100, 40, 60},
		{"caught up", 100, 100, 0},
		{"offset past the end (after a reset or a lost tail)", 100, 130, 0},
		{"nothing committed read yet", 7, 0, 7},
	} {
		if got := lag(tc.max, tc.committed); got != tc.want {
			t.Errorf("%s: lag(%d, %d) = %d, want %d", tc.name, tc.max, tc.committed, got, tc.want)
		}
	}
}

func TestConsoleQueueRates(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a0, a1, b0 := queueKey{"broker-a", "T", 0}, queueKey{"broker-a", "T", 1}, queueKey{"broker-b", "T", 0}
	pt := func(sec int, max map[queueKey]int64) point {
		return point{at: t0.Add(time.Duration(sec) * time.Second), max: max}
	}
	for _, tc := range []struct {
		name    string
		history []point
		window  time.Duration
		want    map[queueKey]float64
	}{
		{"one sample has no rate", []point{pt(0, map[queueKey]int64{a0: 10})}, time.Minute, map[queueKey]float64{}},
		{"delta over the time between", []point{pt(0, map[queueKey]int64{a0: 10, a1: 0}), pt(10, map[queueKey]int64{a0: 110, a1: 5})},
			time.Minute, map[queueKey]float64{a0: 10, a1: 0.5}},
		{"oldest sample within the window", []point{pt(0, map[queueKey]int64{a0: 0}), pt(50, map[queueKey]int64{a0: 500}),
			pt(60, map[queueKey]int64{a0: 600}), pt(70, map[queueKey]int64{a0: 900})},
			30 * time.Second, map[queueKey]float64{a0: 20}},
		{"a queue first seen later counts from its first sample", []point{pt(0, map[queueKey]int64{a0: 0}),
			pt(10, map[queueKey]int64{a0: 10, b0: 100}), pt(20, map[queueKey]int64{a0: 20, b0: 300})},
			time.Minute, map[queueKey]float64{a0: 1, b0: 20}},
		{"a queue seen only now has none", []point{pt(0, map[queueKey]int64{a0: 0}), pt(10, map[queueKey]int64{a0: 10, b0: 50})},
			time.Minute, map[queueKey]float64{a0: 1}},
		{"a max offset that went down (topic recreated) has none", []point{pt(0, map[queueKey]int64{a0: 900}), pt(10, map[queueKey]int64{a0: 3})},
			time.Minute, map[queueKey]float64{}},
	} {
		got := queueRates(tc.history, tc.window)
		if len(got) != len(tc.want) {
			t.Errorf("%s: rates %v, want %v", tc.name, got, tc.want)
			continue
		}
		for k, w := range tc.want {
			if g, ok := got[k]; !ok || g != w {
				t.Errorf("%s: rate of %v = %v (%v), want %v", tc.name, k, g, ok, w)
			}
		}
	}
}

// clusterSnapshot is one broker group of two replicas with two topics and three consumer
// groups: g1 behind on T, g2 caught up, g3 committed on a queue the brokers no longer route.
func clusterSnapshot(tMax0, tMax1 int64) Snapshot {
	return Snapshot{
		Brokers: []Broker{
			{Cluster: "DefaultCluster", Group: "broker-a", ID: 0, Addr: "127.0.0.1:10911", Epoch: ptr(3), DiskUsedBytes: ptr(3 << 30), DiskTotalBytes: ptr(12 << 30)},
			{Cluster: "DefaultCluster", Group: "broker-a", ID: 2, Addr: "127.0.0.1:10921"},
		},
		SyncStates: []SyncState{{Group: "broker-a", Epoch: 3, Master: "1", InSync: []string{"1", "2"}}},
		Queues: []Queue{
			{Topic: "%RETRY%g1", Broker: "broker-a", QueueID: 0, Min: 0, Max: 0},
			{Topic: "T", Broker: "broker-a", QueueID: 0, Min: 0, Max: tMax0},
			{Topic: "T", Broker: "broker-a", QueueID: 1, Min: 4, Max: tMax1},
		},
		Offsets: []Offset{
			{Group: "g1", Topic: "T", Broker: "broker-a", QueueID: 0, Offset: 10},
			{Group: "g1", Topic: "T", Broker: "broker-a", QueueID: 1, Offset: tMax1 + 5},
			{Group: "g2", Topic: "T", Broker: "broker-a", QueueID: 0, Offset: tMax0},
			{Group: "g3", Topic: "Gone", Broker: "broker-a", QueueID: 0, Offset: 8},
		},
		Groups: []Group{{Name: "g1", Consumers: []string{"c1", "c2"}}, {Name: "g2"}, {Name: "idle"}},
	}
}

// The view model: lag per queue and in total (clamped at 0, unknown where the queue is not
// routed), rates from the samples, optional fields as "–" when the source lacks them, system
// topics apart, and the chart drawn over every sample.
func TestConsoleBuildPage(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	src := &fakeSource{snaps: []Snapshot{clusterSnapshot(40, 20), clusterSnapshot(100, 30)}}
	c := New(src, Options{NameServers: []string{"127.0.0.1:9876"}, Interval: 2 * time.Second, Now: clk.now})
	c.Sample()
	clk.t = clk.t.Add(10 * time.Second)
	c.Sample()
	p := c.page()

	if p.RefreshSeconds != 2 || p.SampledAt != "2026-01-02 03:04:15 UTC" || len(p.Problems) != 0 {
		t.Errorf("page header: refresh %d, sampled %q, problems %v", p.RefreshSeconds, p.SampledAt, p.Problems)
	}
	if len(p.Clusters) != 1 || len(p.Clusters[0].Groups) != 1 {
		t.Fatalf("clusters: %+v", p.Clusters)
	}
	g := p.Clusters[0].Groups[0]
	if g.Epoch != "3" || g.InSync != "{1, 2}" || g.ControllerSays != "1" || len(g.Brokers) != 2 {
		t.Errorf("broker group: %+v", g)
	}
	master, slave := g.Brokers[0], g.Brokers[1]
	if master.Role != "master" || master.Epoch != "3" || master.Disk != "3.0 GiB of 12.0 GiB (25%)" {
		t.Errorf("master: %+v", master)
	}
	if slave.Role != "slave" || slave.Epoch != unknown || slave.Disk != unknown {
		t.Errorf("slave without runtime figures: %+v", slave)
	}

	if len(p.Topics) != 1 || p.Topics[0].Name != "T" || len(p.SystemTopics) != 1 || p.SystemTopics[0].Name != "%RETRY%g1" {
		t.Fatalf("topics %+v, system topics %+v", p.Topics, p.SystemTopics)
	}
	topic := p.Topics[0]
	// Queue 0 grew 60 in 10 s, queue 1 grew 10: 7 messages a second in all.
	if topic.Rate != "7.0/s" || topic.Queues[0].Rate != "6.0/s" || topic.Queues[1].Rate != "1.0/s" || topic.Messages != 100+26 {
		t.Errorf("topic T: %+v", topic)
	}

	groups := map[string]GroupView{}
	for _, gv := range p.Groups {
		groups[gv.Name] = gv
	}
	if len(p.Groups) != 4 {
		t.Errorf("groups %v, want g1, g2, g3 and idle", p.Groups)
	}
	g1 := groups["g1"]
	if g1.Lag != "90" || g1.Consumers != 2 || len(g1.Queues) != 2 || g1.Queues[0].Lag != "90" || g1.Queues[1].Lag != "0" {
		t.Errorf("g1 (90 behind on queue 0, past the end on queue 1): %+v", g1)
	}
	if g1.Chart.Points == "" || strings.Count(g1.Chart.Points, ",") != 2 || g1.Chart.MaxLabel != "90" || g1.Chart.Span != "last 10s" {
		t.Errorf("g1's chart: %+v", g1.Chart)
	}
	if g2 := groups["g2"]; g2.Lag != "0" {
		t.Errorf("g2 (caught up): %+v", g2)
	}
	if g3 := groups["g3"]; g3.Lag != unknown || g3.Queues[0].Lag != unknown || g3.Queues[0].BrokerOffset != unknown || g3.Chart.Points != "" {
		t.Errorf("g3 (its queue not routed): %+v", g3)
	}
	if idle := groups["idle"]; idle.Lag != unknown || len(idle.Queues) != 0 {
		t.Errorf("idle (no offsets): %+v", idle)
	}
}

// Before any sample, and when the source fails, the page says so instead of showing stale or
// empty figures as if they were real.
func TestConsolePageWithoutData(t *testing.T) {
	src := &fakeSource{err: errors.New("dial 127.0.0.1:9876: connection refused")}
	c := New(src, Options{})
	if p := c.page(); p.SampledAt != "" || len(p.Problems) != 0 || p.Clusters != nil {
		t.Errorf("before any sample: %+v", p)
	}
	c.Sample()
	p := c.page()
	if len(p.Problems) != 1 || !strings.Contains(p.Problems[0], "connection refused") {
		t.Errorf("a failed sample: problems %v", p.Problems)
	}
	body := get(t, c.Handler(), "/")
	if !strings.Contains(body, "connection refused") || !strings.Contains(body, "No sample of the cluster yet") {
		t.Errorf("page of a cluster that cannot be read:\n%s", body)
	}
}

// The history keeps at most Options.History samples, oldest dropped first.
func TestConsoleHistoryBounded(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := New(&fakeSource{snaps: []Snapshot{clusterSnapshot(1, 1)}}, Options{History: 3, Now: clk.now})
	for range 5 {
		c.Sample()
		clk.t = clk.t.Add(time.Second)
	}
	if len(c.history) != 3 || !c.history[0].at.Equal(time.Unix(1002, 0)) {
		t.Fatalf("history of %d from %v, want 3 from 1002", len(c.history), c.history[0].at)
	}
}

func get(t *testing.T, h http.Handler, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// The page is plain server-rendered HTML: it refreshes itself, has no script, escapes what
// the cluster names, and shows each group's lag and chart.
func TestConsolePageHandler(t *testing.T) {
	snap := clusterSnapshot(40, 20)
	snap.Groups = append(snap.Groups, Group{Name: `<script>alert(1)</script>`})
	c := New(&fakeSource{snaps: []Snapshot{snap}}, Options{Interval: 3 * time.Second})
	c.Sample()
	h := c.Handler()
	body := get(t, h, "/")
	for _, want := range []string{
		`<meta http-equiv="refresh" content="3">`,
		`data-group="g1"`, `<span class="lag-total">30</span>`, `<polyline points=`,
		`127.0.0.1:10921`, `<td class="num">–</td>`, `{1, 2}`,
		`action="/message"`, `&lt;script&gt;alert(1)&lt;/script&gt;`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if regexp.MustCompile(`(?i)<script`).MatchString(body) {
		t.Error("the page has a script")
	}
	if css := get(t, h, "/static/console.css"); !strings.Contains(css, ".lag-total") {
		t.Error("the stylesheet is not served")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/nothing-here", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /nothing-here: %d", rec.Code)
	}
}

// The lookup finds by offset message id or by topic and key, shows text bodies as text and
// others as hex, and says what is wrong with a half-filled form.
func TestConsoleMessageHandler(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	src := &fakeSource{snaps: []Snapshot{{}}, msgs: []Message{
		{MsgID: "U1", OffsetMsgID: "7F00000100002A9F0000000000000010", Topic: "T", Keys: "order-1 customer-9", Body: []byte("hello <b>"), BodyBytes: 9, BornAt: at, StoredAt: at},
		{MsgID: "U2", OffsetMsgID: "7F00000100002A9F0000000000000020", Topic: "T", Keys: "order-2", Body: []byte{0, 1, 2, 0xff}, BodyBytes: 4, BornAt: at, StoredAt: at},
	}}
	h := New(src, Options{}).Handler()
	for _, tc := range []struct {
		name, query string
		want        []string
		not         []string
	}{
		{"by key", "/message?topic=T&key=customer-9", []string{"1 message found by key &#34;customer-9&#34; in topic T", `data-msgid="U1"`, "hello &lt;b&gt;", "9 bytes, text"}, []string{"U2"}},
		{"by id", "/message?id=7F00000100002A9F0000000000000020", []string{`data-msgid="U2"`, "4 bytes, hex", "00 01 02 ff"}, []string{`data-msgid="U1"`}},
		{"unknown id", "/message?id=7F00000100002A9F0000000000000099", []string{"0 messages found", "no message with id"}, nil},
		{"key without topic", "/message?key=order-1", []string{"needs both a topic and a key"}, []string{"found by"}},
		{"empty form", "/message", []string{`id="lookup-key"`}, []string{"found by", `id="lookup-error"`}},
	} {
		body := get(t, h, tc.query)
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: page lacks %q", tc.name, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(body, n) {
				t.Errorf("%s: page has %q", tc.name, n)
			}
		}
	}
}

// A server samples as soon as it starts, serves the page, and stops on Close.
func TestConsoleServerStartClose(t *testing.T) {
	src := &fakeSource{snaps: []Snapshot{clusterSnapshot(5, 5)}}
	s, err := Start("127.0.0.1:0", src, Options{Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var body string
	for !strings.Contains(body, `data-group="g1"`) {
		if time.Now().After(deadline) {
			t.Fatalf("the page never showed the sample:\n%s", body)
		}
		resp, err := http.Get(s.URL())
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Close(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(s.URL()); err == nil {
		t.Error("the server still answers after Close")
	}
}
