// Package clientrt runs Sluice's sans-I/O client core (package client) on the production
// runtime and gives it a blocking, goroutine-safe API, for tools, benchmarks and end-to-end
// tests. Each call is posted to the client's event loop and waits for its callback.
package clientrt

import (
	"fmt"
	"log/slog"

	"github.com/sluicemq/sluice/broker/client"
	"github.com/sluicemq/sluice/broker/node"
	"github.com/sluicemq/sluice/broker/runtime"
)

// Client is a running client core.
type Client struct {
	rt   *runtime.Runtime
	core *client.Client
}

// Start starts a client core with cfg on its own event loop.
func Start(cfg client.Config, logger *slog.Logger) (*Client, error) {
	c := &Client{}
	c.rt = runtime.New(runtime.Config{Logger: logger}, nil, func(env node.Env) (node.Handler, error) {
		c.core = client.New(env, cfg)
		return c.core, nil
	})
	if err := c.rt.Start(); err != nil {
		return nil, fmt.Errorf("start client: %w", err)
	}
	return c, nil
}

// Close stops the client and closes its connections.
func (c *Client) Close() { c.rt.Stop() }

// call runs start on the loop and waits for the callback it arranges to fire.
func call[T any](c *Client, start func(core *client.Client, done func(T, error))) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	if err := c.rt.Do(func() {
		start(c.core, func(v T, err error) { ch <- result{v, err} })
	}); err != nil {
		var zero T
		return zero, err
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-c.rt.Done():
		var zero T
		return zero, runtime.ErrStopped
	}
}

// SendAsync sends m and calls done from the client's loop; it returns at once. done must not
// block.
func (c *Client) SendAsync(m client.Message, done func(client.SendResult, error)) {
	c.rt.Post(func() { c.core.Send(m, done) })
}

// Send sends m and waits for the outcome.
func (c *Client) Send(m client.Message) (client.SendResult, error) {
	return call(c, func(core *client.Client, done func(client.SendResult, error)) { core.Send(m, done) })
}

// Pull pulls once.
func (c *Client) Pull(p client.PullRequest) (client.PullResult, error) {
	return call(c, func(core *client.Client, done func(client.PullResult, error)) { core.Pull(p, done) })
}

// Queues lists a topic's readable queues.
func (c *Client) Queues(topic string) ([]client.MessageQueue, error) {
	return call(c, func(core *client.Client, done func([]client.MessageQueue, error)) { core.Queues(topic, done) })
}

// QueryOffset returns a group's committed offset on a queue (found is false if none).
func (c *Client) QueryOffset(group string, q client.MessageQueue) (offset int64, found bool, err error) {
	type of struct {
		off   int64
		found bool
	}
	r, err := call(c, func(core *client.Client, done func(of, error)) {
		core.QueryOffset(group, q, func(off int64, found bool, err error) { done(of{off, found}, err) })
	})
	return r.off, r.found, err
}

// CommitOffset commits a group's next offset on a queue without waiting.
func (c *Client) CommitOffset(group string, q client.MessageQueue, offset int64) {
	c.rt.Post(func() { c.core.CommitOffset(group, q, offset) })
}
