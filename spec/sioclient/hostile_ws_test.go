package sioclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeWSServer opens an Engine.IO session over websocket, acknowledges the
// CONNECT, then calls after with the connection.
func fakeWSServer(t *testing.T, after func(ctx context.Context, ws *websocket.Conn)) string {
	t.Helper()
	return fakeWSServerEarly(t, 0, after)
}

// fakeWSServerEarly is fakeWSServer that first sends early EVENTs before
// the CONNECT ack, as zishang520's server can when a broadcast overtakes it.
func fakeWSServerEarly(t *testing.T, early int, after func(ctx context.Context, ws *websocket.Conn)) string {
	t.Helper()
	return fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx := r.Context()
		if ws.Write(ctx, websocket.MessageText, []byte(`0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`)) != nil {
			return
		}
		if _, _, err := ws.Read(ctx); err != nil { // CONNECT
			return
		}
		for i := 0; i < early; i++ {
			if ws.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `42["early",%d]`, i)) != nil {
				return
			}
		}
		if ws.Write(ctx, websocket.MessageText, []byte(`40{"sid":"x"}`)) != nil {
			return
		}
		after(ctx, ws)
	})
}

func TestHostileWebSocketFrames(t *testing.T) {
	cases := map[string]struct {
		send func(ctx context.Context, ws *websocket.Conn)
		want string
	}{
		"binary frame": {func(ctx context.Context, ws *websocket.Conn) {
			_ = ws.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
		}, "binary websocket frame"},
		"oversized frame": {func(ctx context.Context, ws *websocket.Conn) {
			_ = ws.Write(ctx, websocket.MessageText, []byte(`42["x","`+strings.Repeat("a", 8<<10)+`"]`))
		}, "larger than MaxPacketBytes"},
		"garbage text": {func(ctx context.Context, ws *websocket.Conn) {
			_ = ws.Write(ctx, websocket.MessageText, []byte("\x00\xff"))
		}, "unknown Engine.IO packet type"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			u := fakeWSServer(t, func(ctx context.Context, ws *websocket.Conn) {
				tc.send(ctx, ws)
				_, _, _ = ws.Read(ctx) // until the client goes away
			})
			c, err := Dial(ctxT(t, 5*time.Second), Options{URL: u, MaxPacketBytes: 4 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Abort()
			select {
			case <-c.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("connection did not end")
			}
			var pe *ProtocolError
			if err := c.Err(); !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Err = %v, want a ProtocolError with %q", err, tc.want)
			}
		})
	}
}

// Concurrent emits over polling are batched into POSTs that respect the
// server's maxPayload, split at packet boundaries.
func TestPollingBatchesRespectMaxPayload(t *testing.T) {
	const maxPayload = 40
	var (
		mu     sync.Mutex
		bodies [][]byte
		gets   int
	)
	u := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if r.Method == http.MethodPost {
			var b bytes.Buffer
			_, _ = b.ReadFrom(r.Body)
			bodies = append(bodies, b.Bytes())
			mu.Unlock()
			fmt.Fprint(w, "ok")
			return
		}
		gets++
		n := gets
		mu.Unlock()
		switch n {
		case 1:
			fmt.Fprintf(w, `0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":%d}`, maxPayload)
		case 2:
			fmt.Fprint(w, `40{"sid":"x"}`)
		default:
			<-r.Context().Done()
		}
	})
	c, err := Dial(ctxT(t, 5*time.Second), Options{URL: u, Transport: Polling})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Abort()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if err := c.Emit(ctxT(t, 5*time.Second), "m", i); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	packets := 0
	for _, b := range bodies[1:] { // bodies[0] is the CONNECT
		if len(b) > maxPayload {
			t.Errorf("POST of %d bytes > maxPayload %d: %q", len(b), maxPayload, b)
		}
		packets += bytes.Count(b, []byte{separator}) + 1
	}
	if packets != 20 {
		t.Errorf("%d packets POSTed, want 20", packets)
	}
}

// fakeEarlyServer sends n EVENTs before the CONNECT ack and one after.
func fakeEarlyServer(t *testing.T, n int) string {
	t.Helper()
	return fakeWSServerEarly(t, n, func(ctx context.Context, ws *websocket.Conn) {
		_ = ws.Write(ctx, websocket.MessageText, []byte(`42["late"]`))
		_, _, _ = ws.Read(ctx) // until the client goes away
	})
}

func TestEventsBeforeConnectAckAreBuffered(t *testing.T) {
	c, err := Dial(ctxT(t, 5*time.Second), Options{URL: fakeEarlyServer(t, 3)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Abort()
	for i, want := range []string{`early:0`, `early:1`, `early:2`, `late:`} {
		ev, err := c.Next(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		var n []int
		_ = json.Unmarshal(ev.Args, &n)
		got := ev.Name + ":"
		if len(n) == 1 {
			got += fmt.Sprint(n[0])
		}
		if got != want || ev.Seq != uint64(i+1) {
			t.Errorf("event %d = %s (seq %d), want %s (seq %d)", i, got, ev.Seq, want, i+1)
		}
	}
}

func TestEndlessEventsBeforeConnectAckAreAProtocolError(t *testing.T) {
	_, err := Dial(ctxT(t, 5*time.Second), Options{URL: fakeEarlyServer(t, earlyEventLimit+1)})
	var pe *ProtocolError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "before the namespace CONNECT") {
		t.Fatalf("Dial: err = %v, want a ProtocolError about EVENTs before the CONNECT ack", err)
	}
}
