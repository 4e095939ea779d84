package sioclient

import (
	"context"
	"encoding/json"
)

// EmitWithAckFunc sends an event asking for an acknowledgement and returns
// once the packet is sent, without waiting for the ack: done is called
// later, once, with the ack's arguments (a raw JSON array) or with the
// connection's end error. Unlike concurrent EmitWithAck calls, successive
// EmitWithAckFunc calls from one goroutine keep their send order, so a
// caller can pipeline writes and still know each one's answer. An ack that
// never comes leaves done uncalled until the connection ends.
func (c *Conn) EmitWithAckFunc(ctx context.Context, done func(json.RawMessage, error), event string, args ...any) error {
	ch, forget, err := c.sendWithAck(ctx, event, args)
	if err != nil {
		return err
	}
	go func() {
		defer forget()
		select {
		case args := <-ch:
			done(args, nil)
		case <-c.done:
			done(nil, c.endErr())
		}
	}()
	return nil
}

// EmitWithAckCallback sends an event asking for an acknowledgement and
// returns once the packet is sent. onAck runs on the reader goroutine
// when the ack arrives, in receive order with the events around it (as
// OnEvent does), at most once; if the connection ends first it is never
// called and nothing of it stays. No goroutine waits for the ack, so a
// caller can ask for one on every write of a long run: a server that
// never answers costs one map entry per unanswered write until the
// connection ends, which the caller bounds by how many it leaves
// unanswered.
func (c *Conn) EmitWithAckCallback(ctx context.Context, onAck func(json.RawMessage), event string, args ...any) error {
	c.ackMu.Lock()
	id := c.nextAck
	c.nextAck++
	if c.ackFns == nil {
		c.ackFns = make(map[uint64]func(json.RawMessage))
	}
	c.ackFns[id] = onAck
	c.ackMu.Unlock()

	err := c.sendEventWithID(ctx, id, event, args)
	if err != nil {
		c.ackMu.Lock()
		delete(c.ackFns, id)
		c.ackMu.Unlock()
	}
	return err
}
