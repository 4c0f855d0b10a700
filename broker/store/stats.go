package store

import "math"

// StoreTime returns the store time (ms) of the confirmed message at a queue's offset: what
// RocketMQ's admin statistics call a queue's last update (its last message) and a consumer
// group's last consume time (the message before its offset). ok is false when the queue does
// not hold a confirmed message there, or the commit log no longer holds it (retention).
func (s *Store) StoreTime(topic string, queueID int32, offset int64) (ms int64, ok bool, err error) {
	if err := s.usable(); err != nil {
		return 0, false, err
	}
	q, known := s.queues[queueKey{topic, queueID}]
	if !known || offset < q.start() || offset >= q.confirmedEnd {
		return 0, false, nil
	}
	ts, err := s.storeTimestamp(q, offset)
	if err != nil || ts == math.MinInt64 {
		return 0, false, err
	}
	return ts, true, nil
}
