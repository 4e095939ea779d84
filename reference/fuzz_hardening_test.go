package reference

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// FuzzEventPacket sends one arbitrary Socket.IO packet (the text after the
// Engine.IO "4") on a fresh WebSocket to a running reference server, then
// proves the server is intact: the fuzzed connection either answers a
// barrier event or is closed (never hangs), and a joined client on another
// connection still writes and receives its own message as the newest in
// history. This exercises the library's parser and the server's handlers
// together; FuzzHandlePayload fuzzes the validators alone.
//
//	go test -run '^$' -fuzz FuzzEventPacket -fuzztime 60s ./reference/
//
// Seeds live in testdata/fuzz/FuzzEventPacket.
func FuzzEventPacket(f *testing.F) {
	for _, seed := range []string{
		`2["writeMessage",{"message":"hi","username":"fz"}]`,
		`2["connecting",{"username":"fz"}]`,
		`2["connect"]`, `2["disconnect"]`, `2["error",{}]`, `2["newListener","x"]`,
		`2[null]`, `2[]`, `2{}`, `2`, `0`, `1`, `3[]`, `4{"message":"x"}`, `6`,
		`2/other,["writeMessage",{}]`, `21["writeMessage",{}]`, `299999999999999999999["x"]`,
		`51-["writeMessage",{"_placeholder":true,"num":0}]`, `5999-["x"]`,
		`2["writeMessage",{"__proto__":{"username":"ann"},"message":"x","username":"fz"}]`,
		`2["writeMessage",` + nested(500) + `]`,
	} {
		f.Add(seed)
	}
	cfg := testConfig()
	cfg.Rate = 0
	cfg.MaxHTTPBufferSize = 100_000
	r, err := Start(context.Background(), cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.Stop(context.Background()) })
	ctx := context.Background()
	ann, err := sioclient.Dial(ctx, sioclient.Options{URL: r.URL(), Transport: sioclient.WebSocket})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ann.Close() })
	if _, err := ann.EmitWithAck(ctx, EventConnecting, map[string]any{"username": "ann"}); err != nil {
		f.Fatal(err)
	}
	n := 0

	f.Fuzz(func(t *testing.T, raw string) {
		if len(raw) > 50_000 {
			return
		}
		w := dialRaw(t, r)
		_ = w.write(websocket.MessageText, []byte("4"+raw))
		_ = w.write(websocket.MessageText, []byte(`42["chatspecBarrier"]`))
		for answered := false; !answered; {
			p, err := w.readEngine()
			if err != nil {
				if strings.Contains(err.Error(), "deadline") {
					t.Fatalf("packet %q: the connection neither answered nor closed", clip(raw, 200))
				}
				break // closed: the library refused the packet
			}
			if p == "2" {
				_ = w.write(websocket.MessageText, []byte("3"))
			}
			answered = strings.HasPrefix(p, `42["chatError",`) && strings.Contains(p, `"event":"chatspecBarrier"`)
		}
		w.c.CloseNow()

		// The server still serves everyone else.
		n++
		text := fmt.Sprintf("health %d", n)
		cctx, cancel := context.WithTimeout(ctx, waitFor)
		defer cancel()
		if err := ann.Emit(cctx, EventWriteMessage, map[string]any{"message": text, "username": "ann"}); err != nil {
			t.Fatalf("after %q: ann cannot write: %v", clip(raw, 200), err)
		}
		for {
			ev, err := ann.NextNamed(cctx, EventMessageWritten)
			if err != nil {
				t.Fatalf("after %q: ann got no messageWritten: %v", clip(raw, 200), err)
			}
			var m messagesPayload
			if err := ev.Decode(0, &m); err != nil {
				t.Fatal(err)
			}
			if last := m.MessagesList[len(m.MessagesList)-1]; last.Username == "ann" && last.Message == text {
				break
			}
		}
	})
}
