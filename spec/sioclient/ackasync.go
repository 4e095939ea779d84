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
