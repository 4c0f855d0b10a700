package main

// The operations endpoint of a sluice process (--metrics-addr): Prometheus metrics at
// /metrics, /healthz and /readyz, for every node the process runs (package opsserver).

import (
	"flag"
	"fmt"
	"log/slog"

	"github.com/sluicemq/sluice/broker/codec"
	"github.com/sluicemq/sluice/broker/config"
	"github.com/sluicemq/sluice/broker/diskfile"
	"github.com/sluicemq/sluice/broker/metrics"
	"github.com/sluicemq/sluice/broker/opsserver"
	"github.com/sluicemq/sluice/broker/runtime"
)

// devMetricsAddr is where 'sluice dev' serves metrics unless told otherwise; the other roles
// serve none unless given an address.
const devMetricsAddr = "127.0.0.1:5557"

// metricsFlagUsage is --metrics-addr's help.
const metricsFlagUsage = "serve Prometheus metrics at /metrics, and /healthz and /readyz, on this address (empty: off)"

// metricsFlag declares --metrics-addr with default def.
func metricsFlag(fs *flag.FlagSet, def string) *string {
	return fs.String("metrics-addr", def, metricsFlagUsage)
}

// Metrics of what only the process sees: the data disk's use and the commit log's files.
var (
	mDiskUsed      = metrics.New("sluice_disk_used_bytes", "Bytes used on the file system holding the node's data directory.", metrics.KindGauge)
	mDiskCapacity  = metrics.New("sluice_disk_capacity_bytes", "Size of the file system holding the node's data directory.", metrics.KindGauge)
	mCommitLogSize = metrics.New("sluice_broker_commitlog_bytes", "Bytes of the commit log's files on disk.", metrics.KindGauge)
)

// opsEndpoint is a process's operations endpoint; a nil one serves nothing and records
// nothing.
type opsEndpoint struct {
	srv *opsserver.Server
}

// startOps starts the endpoint on addr; "" starts none (nil, nil).
func startOps(addr string, logger *slog.Logger) (*opsEndpoint, error) {
	if addr == "" {
		return nil, nil
	}
	srv := opsserver.New(logger)
	if err := srv.Listen(addr); err != nil {
		return nil, err
	}
	return &opsEndpoint{srv: srv}, nil
}

// recorder is the recorder of the node named name (nil without an endpoint).
func (o *opsEndpoint) recorder(name string) metrics.Recorder {
	if o == nil {
		return nil
	}
	return o.srv.Recorder(name)
}

// commitLogName is the broker store's commit log (package store).
const commitLogName = "commitlog"

// add serves node name's metrics and readiness from rt; disk, if not nil, is its data disk,
// whose use is reported (and, for a broker, the commit log's size). The disk is read from the
// scraping goroutine, never on the node's loop.
func (o *opsEndpoint) add(name string, rt *runtime.Runtime, rec metrics.Recorder, disk *diskfile.Disk, broker bool) {
	if o == nil {
		return
	}
	o.srv.Add(opsserver.Source{
		Name: name,
		Refresh: func() error {
			if disk != nil {
				if used, capacity, err := disk.Space(); err == nil {
					rec.Gauge(mDiskUsed).Set(float64(used))
					rec.Gauge(mDiskCapacity).Set(float64(capacity))
				}
				if broker {
					rec.Gauge(mCommitLogSize).Set(float64(disk.LogBytes(commitLogName)))
				}
			}
			return rt.ReportMetrics()
		},
		Ready: rt.Health,
	})
}

// remove stops serving node name (a replica 'sluice dev' stopped).
func (o *opsEndpoint) remove(name string) {
	if o != nil {
		o.srv.Remove(name)
	}
}

// url is the endpoint's base URL ("" without one).
func (o *opsEndpoint) url() string {
	if o == nil {
		return ""
	}
	return fmt.Sprintf("http://%s", o.srv.Addr())
}

// close stops the endpoint.
func (o *opsEndpoint) close() {
	if o != nil {
		o.srv.Close()
	}
}

// brokerRequestKind names the broker requests whose latency is recorded
// (sluice_request_duration_seconds).
func brokerRequestKind(code int16) string {
	switch code {
	case codec.ReqSendMessage, codec.ReqSendMessageV2, codec.ReqSendBatchMessage:
		return "send"
	case codec.ReqPullMessage:
		return "pull"
	case codec.ReqReplicaFetch:
		return "replica_fetch"
	case codec.ReqHeartBeat:
		return "heartbeat"
	case codec.ReqUpdateConsumerOffset, codec.ReqQueryConsumerOffset:
		return "offset"
	}
	return ""
}

// namesrvRequestKind names the name server requests whose latency is recorded.
func namesrvRequestKind(code int16) string {
	switch code {
	case codec.ReqRegisterBroker:
		return "register"
	case codec.ReqGetRouteInfoByTopic:
		return "route"
	}
	return ""
}

// metricsAddrOf is a config file's metricsAddr ("" without one).
func metricsAddrOf(f *config.File) string {
	if f == nil || !f.Has(config.KeyMetricsAddr) {
		return ""
	}
	return f.String(config.KeyMetricsAddr)
}

// printOps prints where the endpoint serves, if anywhere.
func printOps(o *opsEndpoint) {
	if o == nil {
		return
	}
	u := o.url()
	fmt.Printf("sluice: metrics at %s/metrics, health at %s/healthz and %s/readyz\n", u, u, u)
}
