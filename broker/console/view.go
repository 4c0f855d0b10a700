package console

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// queueKey names one queue of a topic on one broker group.
type queueKey struct {
	broker, topic string
	queue         int32
}

// point is what the console keeps of one sample for its charts and rates: each queue's max
// offset and each consumer group's total lag.
type point struct {
	at  time.Time
	max map[queueKey]int64
	lag map[string]int64 // over the queues whose lag is known; a group without any is absent
}

// pointOf extracts a sample's point.
func pointOf(at time.Time, s Snapshot) point {
	p := point{at: at, max: make(map[queueKey]int64, len(s.Queues)), lag: map[string]int64{}}
	for _, q := range s.Queues {
		p.max[queueKey{q.Broker, q.Topic, q.QueueID}] = q.Max
	}
	for _, o := range s.Offsets {
		if m, ok := p.max[queueKey{o.Broker, o.Topic, o.QueueID}]; ok {
			p.lag[o.Group] += lag(m, o.Offset)
		}
	}
	return p
}

// lag is how many messages a group has yet to consume on a queue: the queue's max offset less
// the group's committed offset, never below 0 (an offset past the end, as after a reset or a
// lost tail, leaves nothing to consume).
func lag(maxOffset, committed int64) int64 {
	return max(0, maxOffset-committed)
}

// queueRates is messages per second on each queue of the newest point: its max offset there
// less its max offset at the oldest point of history within window before it that has the
// queue, over the time between. A queue with no such earlier point, or whose max offset went
// down (the topic was deleted and created again), has no rate.
func queueRates(history []point, window time.Duration) map[queueKey]float64 {
	out := map[queueKey]float64{}
	if len(history) < 2 {
		return out
	}
	last := history[len(history)-1]
	for k, now := range last.max {
		for _, p := range history[:len(history)-1] {
			if last.at.Sub(p.at) > window {
				continue
			}
			then, ok := p.max[k]
			if !ok {
				continue
			}
			secs := last.at.Sub(p.at).Seconds()
			if now >= then && secs > 0 {
				out[k] = float64(now-then) / secs
			}
			break
		}
	}
	return out
}

// Page is the console's main page.
type Page struct {
	NameServers    string
	SampledAt      string // "" before the first sample
	RefreshSeconds int
	Problems       []string
	Clusters       []ClusterView
	Topics         []TopicView
	SystemTopics   []TopicView
	Groups         []GroupView
	Lookup         LookupView
}

// ClusterView is one cluster's broker groups.
type ClusterView struct {
	Name   string
	Groups []BrokerGroupView
}

// BrokerGroupView is one broker group: its replicas and what the controller says of it.
type BrokerGroupView struct {
	Name           string
	Epoch          string
	ControllerSays string // master as the controller names it
	InSync         string
	Brokers        []BrokerView
}

// BrokerView is one broker of a group.
type BrokerView struct {
	ID    int64
	Role  string
	Addr  string
	Epoch string
	Disk  string
}

// TopicView is one topic with its queues.
type TopicView struct {
	Name     string
	Messages int64 // held now: the sum of max less min over its queues
	Rate     string
	Queues   []QueueView
}

// QueueView is one queue of a topic.
type QueueView struct {
	Broker   string
	QueueID  int32
	Min, Max int64
	Rate     string
}

// GroupView is one consumer group.
type GroupView struct {
	Name      string
	Consumers int
	Lag       string // total over the queues whose lag is known; "–" with none
	Queues    []LagView
	Chart     Chart
}

// LagView is a consumer group's progress on one queue.
type LagView struct {
	Topic          string
	Broker         string
	QueueID        int32
	BrokerOffset   string
	ConsumerOffset int64
	Lag            string
}

// Chart is a group's total lag over the samples kept, drawn as an SVG polyline.
type Chart struct {
	Width, Height int
	Points        string // "x,y x,y ..." in the SVG's coordinates; "" with no sample
	Area          string // the polygon under the line
	DotX, DotY    string // the newest point, "" with none
	MaxLabel      string // the lag at the top of the chart
	Span          string // how long the chart covers
}

// unknown is shown where the source gave no value.
const unknown = "–"

// viewInput is what a page is built from.
type viewInput struct {
	nameServers []string
	refresh     time.Duration
	rateWindow  time.Duration
	latest      *Snapshot // nil before the first sample
	latestAt    time.Time
	err         error // the latest sample's, if it failed
	history     []point
}

// buildPage turns the newest sample and the history into the page.
func buildPage(in viewInput) Page {
	p := Page{NameServers: strings.Join(in.nameServers, ";"), RefreshSeconds: max(1, int(math.Round(in.refresh.Seconds())))}
	if in.err != nil {
		p.Problems = append(p.Problems, "the cluster could not be read: "+in.err.Error())
	}
	if in.latest == nil {
		return p
	}
	s := *in.latest
	p.SampledAt = in.latestAt.UTC().Format("2006-01-02 15:04:05 UTC")
	p.Problems = append(p.Problems, s.Problems...)
	p.Clusters = clusterViews(s)
	rates := queueRates(in.history, in.rateWindow)
	p.Topics, p.SystemTopics = topicViews(s, rates)
	p.Groups = groupViews(s, in.history)
	return p
}

func clusterViews(s Snapshot) []ClusterView {
	sync := map[string]SyncState{}
	for _, st := range s.SyncStates {
		sync[st.Group] = st
	}
	var out []ClusterView
	for _, b := range s.Brokers {
		if len(out) == 0 || out[len(out)-1].Name != b.Cluster {
			out = append(out, ClusterView{Name: b.Cluster})
		}
		c := &out[len(out)-1]
		if len(c.Groups) == 0 || c.Groups[len(c.Groups)-1].Name != b.Group {
			g := BrokerGroupView{Name: b.Group, Epoch: unknown, ControllerSays: unknown, InSync: unknown}
			if st, ok := sync[b.Group]; ok {
				g.Epoch = strconv.FormatInt(st.Epoch, 10)
				g.ControllerSays = orUnknown(st.Master)
				g.InSync = "{" + strings.Join(st.InSync, ", ") + "}"
			}
			c.Groups = append(c.Groups, g)
		}
		g := &c.Groups[len(c.Groups)-1]
		role := "slave"
		if b.ID == 0 {
			role = "master"
		}
		bv := BrokerView{ID: b.ID, Role: role, Addr: b.Addr, Epoch: unknown, Disk: disk(b.DiskUsedBytes, b.DiskTotalBytes)}
		if b.Epoch != nil {
			bv.Epoch = strconv.FormatInt(*b.Epoch, 10)
		}
		g.Brokers = append(g.Brokers, bv)
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}

// disk shows a disk's use: "1.5 GiB of 20.0 GiB (7%)", the use alone without a capacity.
func disk(used, total *int64) string {
	switch {
	case used == nil:
		return unknown
	case total == nil || *total <= 0:
		return bytesText(*used)
	}
	return fmt.Sprintf("%s of %s (%d%%)", bytesText(*used), bytesText(*total), int(math.Round(100*float64(*used)/float64(*total))))
}

// bytesText is a byte count in binary units, one decimal.
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), -1
	for f >= unit && i < 5 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTPE"[i])
}

// rateText shows a rate in messages per second.
func rateText(r float64, ok bool) string {
	switch {
	case !ok:
		return unknown
	case r == 0:
		return "0/s"
	case r < 10:
		return fmt.Sprintf("%.1f/s", r)
	}
	return fmt.Sprintf("%.0f/s", r)
}

// systemTopic reports whether a topic is one the brokers keep for themselves or per group
// (retries, dead letters, delays, transactions, traces, the auto-create template) or is
// named after a cluster or broker group (each broker registers those).
func systemTopic(name string, own map[string]bool) bool {
	for _, prefix := range []string{"%RETRY%", "%DLQ%", "RMQ_SYS_", "rmq_sys_", "SCHEDULE_TOPIC_", "TBW102", "TRANS_CHECK_MAX_TIME_TOPIC", "OFFSET_MOVED_EVENT", "SELF_TEST_TOPIC", "BenchmarkTest"} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return own[name] || strings.HasSuffix(name, "_REPLY_TOPIC") // a cluster's reply topic
}

func topicViews(s Snapshot, rates map[queueKey]float64) (user, system []TopicView) {
	own := map[string]bool{}
	for _, b := range s.Brokers {
		own[b.Cluster], own[b.Group] = true, true
	}
	byTopic := map[string]*TopicView{}
	var names []string
	rateSum, rateKnown := map[string]float64{}, map[string]bool{}
	for _, q := range s.Queues {
		tv := byTopic[q.Topic]
		if tv == nil {
			tv = &TopicView{Name: q.Topic}
			byTopic[q.Topic] = tv
			names = append(names, q.Topic)
		}
		r, ok := rates[queueKey{q.Broker, q.Topic, q.QueueID}]
		if ok {
			rateSum[q.Topic] += r
			rateKnown[q.Topic] = true
		}
		tv.Messages += max(0, q.Max-q.Min)
		tv.Queues = append(tv.Queues, QueueView{Broker: q.Broker, QueueID: q.QueueID, Min: q.Min, Max: q.Max, Rate: rateText(r, ok)})
	}
	slices.Sort(names)
	for _, n := range names {
		tv := byTopic[n]
		tv.Rate = rateText(rateSum[n], rateKnown[n])
		slices.SortFunc(tv.Queues, func(a, b QueueView) int {
			return cmp.Or(strings.Compare(a.Broker, b.Broker), cmp.Compare(a.QueueID, b.QueueID))
		})
		if systemTopic(n, own) {
			system = append(system, *tv)
		} else {
			user = append(user, *tv)
		}
	}
	return user, system
}

func groupViews(s Snapshot, history []point) []GroupView {
	maxOf := map[queueKey]int64{}
	for _, q := range s.Queues {
		maxOf[queueKey{q.Broker, q.Topic, q.QueueID}] = q.Max
	}
	views := map[string]*GroupView{}
	get := func(name string) *GroupView {
		if v := views[name]; v != nil {
			return v
		}
		v := &GroupView{Name: name, Lag: unknown}
		views[name] = v
		return v
	}
	for _, g := range s.Groups {
		get(g.Name).Consumers = len(g.Consumers)
	}
	total, known := map[string]int64{}, map[string]bool{}
	for _, o := range s.Offsets {
		v := get(o.Group)
		lv := LagView{Topic: o.Topic, Broker: o.Broker, QueueID: o.QueueID, ConsumerOffset: o.Offset, BrokerOffset: unknown, Lag: unknown}
		if m, ok := maxOf[queueKey{o.Broker, o.Topic, o.QueueID}]; ok {
			l := lag(m, o.Offset)
			lv.BrokerOffset, lv.Lag = strconv.FormatInt(m, 10), strconv.FormatInt(l, 10)
			total[o.Group] += l
			known[o.Group] = true
		}
		v.Queues = append(v.Queues, lv)
	}
	names := make([]string, 0, len(views))
	for n := range views {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]GroupView, 0, len(names))
	for _, n := range names {
		v := views[n]
		if known[n] {
			v.Lag = strconv.FormatInt(total[n], 10)
		}
		slices.SortFunc(v.Queues, func(a, b LagView) int {
			return cmp.Or(strings.Compare(a.Topic, b.Topic), strings.Compare(a.Broker, b.Broker), cmp.Compare(a.QueueID, b.QueueID))
		})
		v.Chart = lagChart(history, n)
		out = append(out, *v)
	}
	return out
}

// Chart size in SVG units (the page scales it).
const (
	chartWidth  = 240
	chartHeight = 48
)

// lagChart draws group's total lag over history: time runs left to right across the samples
// kept, lag up from 0 to the most seen.
func lagChart(history []point, group string) Chart {
	c := Chart{Width: chartWidth, Height: chartHeight, MaxLabel: "0"}
	type xy struct {
		at  time.Time
		lag int64
	}
	var pts []xy
	for _, p := range history {
		if l, ok := p.lag[group]; ok {
			pts = append(pts, xy{p.at, l})
		}
	}
	if len(pts) == 0 {
		return c
	}
	first, last := pts[0].at, pts[len(pts)-1].at
	span := last.Sub(first)
	var top int64 = 1
	for _, p := range pts {
		top = max(top, p.lag)
	}
	c.MaxLabel = strconv.FormatInt(top, 10)
	c.Span = spanText(span)
	coords := make([]string, len(pts))
	var x, y float64
	for i, p := range pts {
		x = float64(chartWidth)
		if span > 0 {
			x = float64(chartWidth) * float64(p.at.Sub(first)) / float64(span)
		}
		y = float64(chartHeight) - float64(chartHeight-2)*float64(p.lag)/float64(top) - 1
		coords[i] = fmt.Sprintf("%.1f,%.1f", x, y)
	}
	c.Points = strings.Join(coords, " ")
	c.DotX, c.DotY, _ = strings.Cut(coords[len(coords)-1], ",")
	startX, _, _ := strings.Cut(coords[0], ",")
	c.Area = fmt.Sprintf("%s,%d %s %.1f,%d", startX, chartHeight, c.Points, x, chartHeight)
	return c
}

// spanText is a chart's time span, to the second.
func spanText(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Second:
		return "one sample"
	case d < time.Minute:
		return fmt.Sprintf("last %ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("last %dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("last %dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
