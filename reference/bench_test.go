package reference

import (
	"context"
	"fmt"
	"testing"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// BenchmarkWriteMessage measures one writeMessage round trip over
// WebSocket (emit until the sender's messageWritten arrives) while the
// message fans out to 10 sockets, with a 50-message history in every
// broadcast.
func BenchmarkWriteMessage(b *testing.B) {
	cfg := testConfig()
	cfg.Rate = 0
	cfg.HistoryLimit = 50
	r, err := Start(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Stop(context.Background())
	ctx := context.Background()
	dialB := func(name string) *sioclient.Conn {
		c, err := sioclient.Dial(ctx, sioclient.Options{URL: r.URL(), Transport: sioclient.WebSocket, OnEvent: func(sioclient.Event) {}})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Emit(ctx, EventConnecting, map[string]any{"username": name}); err != nil {
			b.Fatal(err)
		}
		return c
	}
	for i := range 9 {
		defer dialB(fmt.Sprintf("listener%d", i)).Close()
	}
	got := make(chan struct{}, 1)
	writer, err := sioclient.Dial(ctx, sioclient.Options{URL: r.URL(), Transport: sioclient.WebSocket, OnEvent: func(ev sioclient.Event) {
		if ev.Name == EventMessageWritten {
			got <- struct{}{}
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer writer.Close()
	if _, err := writer.EmitWithAck(ctx, EventConnecting, map[string]any{"username": "writer"}); err != nil {
		b.Fatal(err)
	}
	msg := map[string]any{"message": "a message of a typical length, about sixty bytes long", "username": "writer"}
	b.ReportAllocs()
	for b.Loop() {
		if err := writer.Emit(ctx, EventWriteMessage, msg); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}
