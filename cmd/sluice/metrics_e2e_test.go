package main

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/clientrt"
)

// scrape is one read of a /metrics endpoint, parsed.
type scrape map[string]*dto.MetricFamily

// scrapeMetrics reads and parses base/metrics.
func scrapeMetrics(t *testing.T, base string) scrape {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the value of the series of metric name whose labels include every name=value
// pair of labels (summed over the series that match); a histogram's is its sample count.
func (s scrape) value(name string, labels ...string) float64 {
	fam := s[name]
	if fam == nil {
		return 0
	}
	var total float64
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			total += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			total += m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

func hasLabels(m *dto.Metric, want []string) bool {
	for _, w := range want {
		name, value, _ := strings.Cut(w, "=")
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == name && l.GetValue() == value {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// getStatus GETs url and returns its status code and body (0 if the request failed).
func getStatus(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A real 'sluice dev' serves Prometheus metrics: after sends and pulls from the project's
// client, the per-topic counters moved by exactly what was sent and read, the send and pull
// latency histograms and the fsyncs counted them, the consumer lag is what the group left
// unread, and /healthz and /readyz answer 200 once the broker has recovered and registered.
func TestMetricsEndpointCountsSendsAndPulls(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	metricsAddr := freePort(t)
	c := startCompat(t, "--metrics-addr", metricsAddr)
	base := "http://" + metricsAddr
	waitFor(t, 20*time.Second, "/readyz 200", func() bool {
		code, _ := getStatus(base + "/readyz")
		return code == http.StatusOK
	})
	if code, body := getStatus(base + "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d %s", code, body)
	}

	topic := uniqueName(t, "topic")
	before := scrapeMetrics(t, base)
	cli, err := clientrt.Start(client.DefaultConfig(c.NameServer), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	const sent, bodyBytes = 120, 300
	for i := range sent {
		body := []byte(fmt.Sprintf("%0*d", bodyBytes, i))
		if _, err := cli.Send(client.Message{Topic: topic, Body: body}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	queues, err := cli.Queues(topic)
	if err != nil {
		t.Fatal(err)
	}
	readGroup, perQueue, read := uniqueName(t, "cg"), map[int32]int64{}, 0
	for _, q := range queues {
		n := len(readQueue(t, cli, q, readGroup))
		perQueue[q.QueueID] = int64(n)
		read += n
	}
	if read != sent {
		t.Fatalf("read %d messages back, sent %d", read, sent)
	}
	// A group that commits its offset on one queue halfway leaves the rest as lag.
	lagGroup := uniqueName(t, "lag")
	q := queues[0]
	queueLen := perQueue[q.QueueID]
	cli.CommitOffset(lagGroup, q, queueLen/2)
	queueLabel := fmt.Sprintf("queue=%d", q.QueueID)

	var after scrape
	waitFor(t, 10*time.Second, "the consumer lag of the committing group", func() bool {
		after = scrapeMetrics(t, base)
		return after[`sluice_broker_consumer_lag_messages`] != nil &&
			after.value("sluice_broker_consumer_offset", "group="+lagGroup, "topic="+topic, queueLabel) == float64(queueLen/2)
	})
	delta := func(name string, labels ...string) float64 {
		return after.value(name, labels...) - before.value(name, labels...)
	}
	if got := delta("sluice_broker_messages_in_total", "topic="+topic); got != sent {
		t.Errorf("messages in for %s moved by %v, want %d", topic, got, sent)
	}
	if got := delta("sluice_broker_bytes_in_total", "topic="+topic); got != sent*bodyBytes {
		t.Errorf("bytes in for %s moved by %v, want %d", topic, got, sent*bodyBytes)
	}
	if got := delta("sluice_broker_messages_out_total", "topic="+topic); got != sent {
		t.Errorf("messages out for %s moved by %v, want %d (each read once)", topic, got, sent)
	}
	if got := delta("sluice_broker_bytes_out_total", "topic="+topic); got < sent*bodyBytes {
		t.Errorf("bytes out for %s moved by %v, want at least the bodies' %d", topic, got, sent*bodyBytes)
	}
	if got := delta("sluice_request_duration_seconds", "request=send"); got < sent {
		t.Errorf("send latency observations moved by %v, want at least %d", got, sent)
	}
	if got := delta("sluice_request_duration_seconds", "request=pull"); got < 1 {
		t.Errorf("pull latency observations moved by %v, want some", got)
	}
	if got := delta("sluice_fsync_duration_seconds", "log=commitlog"); got < 1 {
		t.Errorf("commit-log fsyncs moved by %v, want some (sync flush)", got)
	}
	if got := delta("sluice_fsync_batch_entries"); got < 1 {
		t.Errorf("fsync batch observations moved by %v, want some", got)
	}
	if got := after.value("sluice_broker_commitlog_max_index"); got < sent {
		t.Errorf("commit log max index %v, want at least %d", got, sent)
	}
	if got := after.value("sluice_broker_commitlog_bytes"); got < sent*bodyBytes {
		t.Errorf("commit log bytes %v, want at least %d", got, sent*bodyBytes)
	}
	if got := after.value("sluice_broker_consumer_lag_messages", "group="+lagGroup, "topic="+topic, queueLabel); got != float64(queueLen-queueLen/2) {
		t.Errorf("lag of %s on %s queue %d: %v, want %d", lagGroup, topic, q.QueueID, got, queueLen-queueLen/2)
	}
	if got := after.value("sluice_broker_queue_max_offset", "topic="+topic, queueLabel); got != float64(queueLen) {
		t.Errorf("max offset of %s queue %d: %v, want %d", topic, q.QueueID, got, queueLen)
	}
	for _, g := range []string{"sluice_connections", "sluice_disk_used_bytes", "sluice_namesrv_brokers"} {
		if after.value(g) <= 0 {
			t.Errorf("%s = %v, want > 0", g, after.value(g))
		}
	}
	if got := after.value("sluice_namesrv_registrations_total", "result=ok"); got < 1 {
		t.Errorf("name-server registrations %v, want at least 1", got)
	}
	if got := after.value("sluice_broker_ready", "node=broker-a"); got != 1 {
		t.Errorf("sluice_broker_ready = %v, want 1", got)
	}
}

// In 'sluice dev --replicas 3' the metrics follow a failover: after the master is killed,
// /readyz answers 503 while the surviving replicas have no master to follow, then 200 once one
// of them is master; the controller's election count and the group's epoch went up, and the
// new master counted itself becoming master.
func TestMetricsFollowFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	ns, br := freePortBlock(t, 2, devControllerPort), freePortBlock(t, 3, devReplicaPortStep)
	metricsAddr := freePort(t)
	base := "http://" + metricsAddr
	cmd := exec.Command(sluiceBinary(t), "dev", "--replicas", "3", "--data", t.TempDir(), "--namesrv-addr", ns,
		"--broker-addr", br, "--log-level", "warn", "--metrics-addr", metricsAddr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	lines := startLines(t, cmd)
	waitLine(t, lines, `metrics at (http://\S+)/metrics`, 30*time.Second)
	var master string
	for master == "" {
		m := waitLines(t, lines, `broker-a master is replica (\d) \(.*\), in sync: \[(.*)\]`, 60*time.Second)
		if len(strings.Fields(m[2])) == 3 {
			master = m[1]
		}
	}
	waitFor(t, 30*time.Second, "/readyz 200 with a master and two caught-up slaves", func() bool {
		code, _ := getStatus(base + "/readyz")
		return code == http.StatusOK
	})
	before := scrapeMetrics(t, base)
	if got := before.value("sluice_broker_master", "node=broker-a-"+master); got != 1 {
		t.Fatalf("sluice_broker_master of replica %s = %v, want 1", master, got)
	}
	if got := before.value("sluice_broker_insync_replicas", "node=broker-a-"+master); got != 3 {
		t.Errorf("in-sync set size on the master = %v, want 3", got)
	}

	// Watch /readyz from the kill on: it must answer 503 (no master to follow) and then 200.
	type answer struct {
		code int
		body string
	}
	answers := make(chan answer, 4096)
	stop := make(chan struct{})
	go func() {
		defer close(answers)
		for {
			select {
			case <-stop:
				return
			default:
			}
			code, body := getStatus(base + "/readyz")
			select {
			case answers <- answer{code, body}:
			default:
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	if _, err := fmt.Fprintf(stdin, "kill %s\n", master); err != nil {
		t.Fatal(err)
	}
	var next string
	for next == "" || next == master {
		next = waitLine(t, lines, `broker-a master is replica (\d)`, 30*time.Second)
	}
	var sawNotReady, readyAgain bool
	var notReadyBody string
	deadline := time.After(30 * time.Second)
	for !readyAgain {
		select {
		case a := <-answers:
			switch {
			case a.code == http.StatusServiceUnavailable && !sawNotReady:
				sawNotReady, notReadyBody = true, a.body
			case a.code == http.StatusOK && sawNotReady:
				readyAgain = true
			}
		case <-deadline:
			close(stop)
			t.Fatalf("/readyz after the kill: saw 503 %v, 200 after it %v", sawNotReady, readyAgain)
		}
	}
	close(stop)
	t.Logf("master moved from replica %s to %s; /readyz said meanwhile: %q", master, next, notReadyBody)
	after := scrapeMetrics(t, base)
	if got := after.value("sluice_controller_elections_total", "outcome=elected") - before.value("sluice_controller_elections_total", "outcome=elected"); got < 1 {
		t.Errorf("controller elections moved by %v, want at least 1", got)
	}
	if got, was := after.value("sluice_controller_group_epoch", "group=broker-a"), before.value("sluice_controller_group_epoch", "group=broker-a"); got <= was {
		t.Errorf("group epoch %v after the failover, %v before", got, was)
	}
	if got := after.value("sluice_broker_role_changes_total", "node=broker-a-"+next, "role=master"); got < 1 {
		t.Errorf("the new master (replica %s) counted %v changes to master", next, got)
	}
	if got := after.value("sluice_broker_master", "node=broker-a-"+next); got != 1 {
		t.Errorf("sluice_broker_master of the new master (replica %s) = %v", next, got)
	}
	if got := after.value("sluice_broker_epoch", "node=broker-a-"+next); got != after.value("sluice_controller_group_epoch", "group=broker-a") {
		t.Errorf("the new master's epoch %v, the controller's %v", got, after.value("sluice_controller_group_epoch", "group=broker-a"))
	}
	if got := after.value("sluice_broker_master", "node=broker-a-"+master); got != 0 {
		t.Errorf("the killed replica %s still shows sluice_broker_master %v", master, got)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, `sluice: stopped`, 15*time.Second)
	_ = cmd.Wait()
}
