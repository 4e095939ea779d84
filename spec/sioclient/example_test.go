package sioclient_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// Dial a chat server, send a message and read the ordered event stream.
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sioclient.Dial(ctx, sioclient.Options{
		URL:       "http://127.0.0.1:3000",
		Transport: sioclient.Upgrade, // polling first, then websocket
		Auth:      map[string]any{"username": "alice"},
	})
	if err != nil {
		log.Fatal(err) // e.g. "connection refused by 127.0.0.1:3000: is the server running ...?"
	}
	defer c.Close()

	if err := c.Emit(ctx, "writeMessage", map[string]any{"username": "alice", "message": "hi"}); err != nil {
		log.Fatal(err)
	}
	ev, err := c.NextNamed(ctx, "messageWritten") // skips (discards) other events
	if err != nil {
		log.Fatal(err)
	}
	var payload struct {
		MessagesList []struct{ Username, Message string }
	}
	if err := ev.Decode(0, &payload); err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(payload.MessagesList), "messages; latency measured from", ev.Received)
}
