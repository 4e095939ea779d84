package sioclient

import (
	"context"
	"encoding/json"
	"fmt"

	sioparser "github.com/zishang520/socket.io/parsers/socket/v3/parser"
)

// EmitWithAckFunc sends an event asking for an acknowledgement and returns
// once the packet is sent, without waiting for the ack: done is called
// later, once, with the ack's arguments (a raw JSON array) or with the
// connection's end error. Unlike concurrent EmitWithAck calls, successive
// EmitWithAckFunc calls from one goroutine keep their send order, so a
// caller can pipeline writes and still know each one's answer. An ack that
// never comes leaves done uncalled until the connection ends.
func (c *Conn) EmitWithAckFunc(ctx context.Context, done func(json.RawMessage, error), event string, args ...any) error {
	ch := make(chan json.RawMessage, 1)
	c.ackMu.Lock()
	id := c.nextAck
	c.nextAck++
	if c.acks == nil {
		c.acks = make(map[uint64]chan json.RawMessage)
	}
	c.acks[id] = ch
	c.ackMu.Unlock()
	forget := func() {
		c.ackMu.Lock()
		delete(c.acks, id)
		c.ackMu.Unlock()
	}

	e := getEncBuf()
	e.header(sioparser.EVENT, c.nsp, id, true)
	err := e.array(&event, args)
	if err == nil {
		err = c.send(ctx, e.b.Bytes())
	} else {
		err = fmt.Errorf("sioclient: encoding %q arguments: %w", event, err)
	}
	putEncBuf(e)
	if err != nil {
		forget()
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
