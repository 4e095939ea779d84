package reference

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// rawWS is a bare Engine.IO WebSocket connection for hostile-input and
// slow-reader tests: it sends exactly the frames a test gives it (text or
// binary), and reads only when asked, so it can also stop reading.
type rawWS struct {
	t *testing.T
	c *websocket.Conn
}

// dialRaw opens a WebSocket, reads the Engine.IO open packet and connects
// to the main namespace.
func dialRaw(t *testing.T, r *Running) *rawWS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	u := "ws" + strings.TrimPrefix(r.URL(), "http") + r.Server().cfg.Path + "?EIO=4&transport=websocket"
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("raw websocket dial: %v", err)
	}
	c.SetReadLimit(-1)
	w := &rawWS{t: t, c: c}
	t.Cleanup(func() { c.CloseNow() })
	if p := w.nextEngine(); !strings.HasPrefix(p, "0{") {
		t.Fatalf("raw websocket: first packet %q, want an Engine.IO open", clip(p, 100))
	}
	w.text("40")
	if p := w.next(); !strings.HasPrefix(p, "0{") {
		t.Fatalf("raw websocket: got %q, want a Socket.IO CONNECT", clip(p, 100))
	}
	return w
}

func (w *rawWS) write(typ websocket.MessageType, b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	return w.c.Write(ctx, typ, b)
}

// text sends one Engine.IO packet as a text frame ("42[...]" is a
// Socket.IO event).
func (w *rawWS) text(p string) {
	w.t.Helper()
	if err := w.write(websocket.MessageText, []byte(p)); err != nil {
		w.t.Fatalf("raw websocket: send %q: %v", clip(p, 60), err)
	}
}

// binary sends a binary frame (a Socket.IO attachment).
func (w *rawWS) binary(b []byte) {
	w.t.Helper()
	if err := w.write(websocket.MessageBinary, b); err != nil {
		w.t.Fatalf("raw websocket: send binary: %v", err)
	}
}

// readEngine returns the next Engine.IO packet, or an error once the
// connection is gone.
func (w *rawWS) readEngine() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, b, err := w.c.Read(ctx)
	return string(b), err
}

func (w *rawWS) nextEngine() string {
	w.t.Helper()
	p, err := w.readEngine()
	if err != nil {
		w.t.Fatalf("raw websocket: read: %v", err)
	}
	return p
}

// next returns the next Socket.IO packet (the Engine.IO "4" stripped),
// answering pings on the way.
func (w *rawWS) next() string {
	w.t.Helper()
	for {
		p := w.nextEngine()
		switch {
		case p == "2":
			w.text("3")
		case strings.HasPrefix(p, "4"):
			return p[1:]
		}
	}
}

// event reads the next Socket.IO event and returns its name and
// arguments.
func (w *rawWS) event() (string, []json.RawMessage) {
	w.t.Helper()
	for {
		p := w.next()
		if !strings.HasPrefix(p, "2") {
			continue
		}
		var arr []json.RawMessage
		if err := json.Unmarshal([]byte(p[1:]), &arr); err != nil || len(arr) == 0 {
			w.t.Fatalf("raw websocket: bad event %q", clip(p, 200))
		}
		var name string
		json.Unmarshal(arr[0], &name)
		return name, arr[1:]
	}
}

// expectError reads events up to the next chatError and checks its event
// and code.
func (w *rawWS) expectError(event, code string) chatErrorPayload {
	w.t.Helper()
	for {
		name, args := w.event()
		if name != EventChatError {
			continue
		}
		var p chatErrorPayload
		if len(args) != 1 || json.Unmarshal(args[0], &p) != nil {
			w.t.Fatalf("raw websocket: chatError args %s", args)
		}
		if p.Event != event || p.Code != code || p.Message == "" {
			w.t.Fatalf("raw websocket: chatError %+v, want event %q code %q and a message", p, event, code)
		}
		return p
	}
}

// expectClosed reads until the server closes the connection, answering
// pings, and fails if it stays open.
func (w *rawWS) expectClosed() {
	w.t.Helper()
	for {
		p, err := w.readEngine()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				w.t.Fatalf("raw websocket: still open after %s", waitFor)
			}
			return
		}
		if p == "2" {
			_ = w.write(websocket.MessageText, []byte("3"))
		}
	}
}

// join sends connecting and waits for connected.
func (w *rawWS) join(username string) {
	w.t.Helper()
	b, _ := json.Marshal(username)
	w.text(`42["connecting",{"username":` + string(b) + `}]`)
	for {
		if name, _ := w.event(); name == EventConnected {
			return
		}
	}
}

// pumpPongs answers the heartbeat blindly every interval without reading,
// like a client that keeps its connection alive but has stopped reading.
func (w *rawWS) pumpPongs(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if w.write(websocket.MessageText, []byte("3")) != nil {
				return
			}
		}
	}
}
