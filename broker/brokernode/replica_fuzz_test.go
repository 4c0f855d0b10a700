package brokernode

import (
	"testing"

	"github.com/sluicemq/sluice/broker/codec"
)

// FuzzSlaveAnswers feeds a slave a fuzzed handshake answer and a fuzzed fetch answer (what a
// master, or anything at its address, may send): the slave never panics, and whatever it
// appended continues its log (every entry a whole record at its own index, queue offsets
// dense), so it can always truncate and go on.
func FuzzSlaveAnswers(f *testing.F) {
	rec := append(record(nil, "m1", 1, 0), record(nil, "m2", 2, 1)...)
	f.Add([]byte(`{"epochs":[{"epoch":1,"startIndex":1}]}`), "2", "1", "1", "2", rec)
	f.Add([]byte(`{"epochs":[{"epoch":1,"startIndex":1},{"epoch":3,"startIndex":2}]}`), "2", "3", "2", "1", rec[len(rec)/2:])
	f.Add([]byte(`{"epochs":[]}`), "0", "0", "0", "0", []byte{0, 0, 0, 3})
	f.Add([]byte(`{"epochs":[{"epoch":2,"startIndex":1},{"epoch":1,"startIndex":5}]}`), "-1", "x", "", "9", rec[:7])
	f.Fuzz(func(t *testing.T, epochs []byte, lastIndex, epoch, start, confirmed string, body []byte) {
		h := startBroker(t, replicaConfig(), nil)
		h.controllerSays(1, testMaster, 1, "1,2", 2)
		c, hs := h.lastRequest(testMaster, codec.ReqReplicaHandshake)
		h.reply(c, hs, codec.Success, map[string]string{"lastIndex": lastIndex, "epoch": "1"}, epochs)
		if s := h.b.slave(); s != nil && s.link != nil && s.link.handshaken {
			c, f := h.lastRequest(testMaster, codec.ReqReplicaFetch)
			h.reply(c, f, codec.Success, map[string]string{"epoch": epoch, "epochStart": start, "confirmed": confirmed}, body)
		}
		h.syncAll()
		last := h.b.store.CommitLog().LastIndex()
		next := map[queueKey]int64{}
		for i := uint64(1); i <= last; i++ {
			rec, err := h.b.store.CommitLog().Read(i)
			if err != nil {
				t.Fatalf("entry %d: %v", i, err)
			}
			m, n, err := codec.DecodeRecord(rec)
			if err != nil || n != len(rec) || m.PhysicalOffset != int64(i) {
				t.Fatalf("entry %d is not a whole record for its index: %v", i, err)
			}
			k := queueKey{m.Topic, m.QueueID}
			if m.QueueOffset != next[k] {
				t.Fatalf("entry %d: queue offset %d, want %d", i, m.QueueOffset, next[k])
			}
			next[k]++
		}
		if e, ok := h.b.repl.table.Last(); ok && e.Start > last+1 {
			t.Fatalf("epoch table %v runs past the log's end %d", h.b.repl.table.Entries(), last)
		}
		if c := h.b.store.Confirmed(); c > last || c > h.b.acks.durable {
			t.Fatalf("confirmed %d beyond the log (%d) or the synced index (%d)", c, last, h.b.acks.durable)
		}
	})
}

// FuzzMasterFetch sends a master fuzzed handshakes and fetches: it never panics, answers each
// (or parks a fetch) with the request's opaque, and never serves an entry it has not synced.
func FuzzMasterFetch(f *testing.F) {
	f.Add("2", "1", "1", "0", "2", "1", "2", "1")
	f.Add("2", "1", "9", "3", "3", "1", "1", "0")
	f.Add("0", "2", "-1", "x", "2", "", "1", "1")
	f.Fuzz(func(t *testing.T, id1, epoch1, from1, synced1, id2, epoch2, from2, synced2 string) {
		h, slave := masterHarness(t, 2)
		cli := h.env.accept(h.b, "127.0.0.50:1")
		h.send(cli, "T", 0, "m1", nil)
		h.syncAll()
		h.send(cli, "T", 0, "m2", nil) // appended, not synced
		h.request(slave, codec.ReqReplicaHandshake, map[string]string{"brokerId": id1, "masterEpoch": epoch1}, nil)
		for _, ext := range []map[string]string{
			{"brokerId": id1, "masterEpoch": epoch1, "from": from1, "synced": synced1},
			{"brokerId": id2, "masterEpoch": epoch2, "from": from2, "synced": synced2},
		} {
			op := h.request(slave, codec.ReqReplicaFetch, ext, nil)
			r := h.answer(slave, op)
			if r == nil {
				continue // parked
			}
			if r.Code == codec.Success {
				for _, m := range decodeBody(t, r.Body) {
					if uint64(m.PhysicalOffset) > h.b.acks.durable {
						t.Fatalf("served entry %d, synced only up to %d", m.PhysicalOffset, h.b.acks.durable)
					}
				}
			}
		}
	})
}
