package brokenserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// These tests speak raw Engine.IO v4 / Socket.IO v5 text packets, so that
// they depend on neither the suite's client nor a stock client: the point is
// to show that each server starts, accepts a socket and carries its defect,
// independently of the suite that the self-test then checks.

// event is one decoded Socket.IO EVENT packet.
type event struct {
	name    string
	payload json.RawMessage
}

// wsConn is a minimal Socket.IO client over the WebSocket transport.
type wsConn struct {
	t    *testing.T
	c    *websocket.Conn
	rx   chan event
	done chan struct{} // closed when readLoop has returned
}

func dialWS(ctx context.Context, t *testing.T, base string) *wsConn {
	t.Helper()
	u := strings.Replace(base, "http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	c.SetReadLimit(4 << 20)
	w := &wsConn{t: t, c: c, rx: make(chan event, 256), done: make(chan struct{})}
	t.Cleanup(func() {
		_ = c.CloseNow()
		<-w.done // the read loop must not outlive the test
	})

	if _, data, err := c.Read(ctx); err != nil || !strings.HasPrefix(string(data), "0{") {
		t.Fatalf("engine.io open: %q, %v", data, err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("40")); err != nil {
		t.Fatalf("connect namespace: %v", err)
	}
	if _, data, err := c.Read(ctx); err != nil || !strings.HasPrefix(string(data), "40") {
		t.Fatalf("namespace connect reply: %q, %v", data, err)
	}
	go func() {
		defer close(w.done)
		w.readLoop(ctx)
	}()
	return w
}

func (w *wsConn) readLoop(ctx context.Context) {
	defer close(w.rx)
	for {
		_, data, err := w.c.Read(ctx)
		if err != nil {
			return
		}
		switch {
		case string(data) == "2":
			_ = w.c.Write(ctx, websocket.MessageText, []byte("3"))
		case strings.HasPrefix(string(data), "42"):
			if ev, err := decodeEvent(string(data[2:])); err == nil {
				w.rx <- ev
			}
		}
	}
}

func (w *wsConn) emit(ctx context.Context, name string, payload any) {
	w.t.Helper()
	data, err := json.Marshal([]any{name, payload})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.c.Write(ctx, websocket.MessageText, append([]byte("42"), data...)); err != nil {
		w.t.Fatalf("emit %s: %v", name, err)
	}
}

// next returns the next event, failing the test if none arrives before ctx ends.
func (w *wsConn) next(ctx context.Context) event {
	w.t.Helper()
	select {
	case ev, ok := <-w.rx:
		if !ok {
			w.t.Fatal("connection closed while waiting for an event")
		}
		return ev
	case <-ctx.Done():
		w.t.Fatal("no event before the deadline")
	}
	return event{}
}

func decodeEvent(body string) (event, error) {
	var parts []json.RawMessage
	if err := json.Unmarshal([]byte(body), &parts); err != nil || len(parts) == 0 {
		return event{}, fmt.Errorf("bad event %q: %v", body, err)
	}
	var ev event
	if err := json.Unmarshal(parts[0], &ev.name); err != nil {
		return event{}, err
	}
	if len(parts) > 1 {
		ev.payload = parts[1]
	}
	return ev, nil
}

// pollJoin joins over HTTP long-polling only and returns the connected event.
func pollJoin(ctx context.Context, t *testing.T, base, username string) event {
	t.Helper()
	get := func(q string) string {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/socket.io/?EIO=4&transport=polling"+q, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("poll: %s: %s", resp.Status, body)
		}
		return string(body)
	}
	post := func(q, body string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/socket.io/?EIO=4&transport=polling"+q, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("post: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("post: %s", resp.Status)
		}
	}
	open := get("")
	var hs struct {
		SID string `json:"sid"`
	}
	if !strings.HasPrefix(open, "0") || json.Unmarshal([]byte(open[1:]), &hs) != nil {
		t.Fatalf("polling handshake: %q", open)
	}
	q := "&sid=" + hs.SID
	post(q, "40")
	if got := get(q); !strings.HasPrefix(got, "40") {
		t.Fatalf("namespace connect reply: %q", got)
	}
	post(q, `42["connecting",{"username":"`+username+`"}]`)
	for {
		for _, pkt := range strings.Split(get(q), "\x1e") {
			if strings.HasPrefix(pkt, "42") {
				if ev, err := decodeEvent(pkt[2:]); err == nil && ev.name == "connected" {
					return ev
				}
			}
		}
		if ctx.Err() != nil {
			t.Fatal("no connected event before the deadline")
		}
	}
}

func start(t *testing.T, d Defect) string {
	t.Helper()
	url, stop, err := Start(t.Context(), d)
	if err != nil {
		t.Fatalf("Start(%s): %v", d, err)
	}
	t.Cleanup(stop)
	return url
}

func deadline(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestEveryDefectServesAJoin starts every server and joins one socket.
func TestEveryDefectServesAJoin(t *testing.T) {
	for _, d := range Defects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			base := start(t, d)
			ctx := deadline(t)
			var ev event
			if d == NoWebSocket {
				ev = pollJoin(ctx, t, base, "ann")
			} else {
				c := dialWS(ctx, t, base)
				c.emit(ctx, "connecting", map[string]any{"username": "ann"})
				ev = c.next(ctx)
			}
			if ev.name != "connected" {
				t.Fatalf("first event %q %s, want connected", ev.name, ev.payload)
			}
			var p struct {
				Users []user `json:"connectedUserList"`
			}
			if err := json.Unmarshal(ev.payload, &p); err != nil {
				t.Fatalf("connected payload %s: %v", ev.payload, err)
			}
			want := []string{"ann"}
			if d == FirstUserUnlisted {
				want = nil // its defect: the first user of an empty server is left out
			}
			if got := usernames(p.Users); !slices.Equal(got, want) {
				t.Fatalf("connectedUserList = %q, want %q", got, want)
			}
		})
	}
}

// TestDefectsShowDirectly checks, without the suite, that some defects
// really change what the wire carries, so that a suite case that passes
// them is the suite's gap and not a defect that does nothing.
func TestDefectsShowDirectly(t *testing.T) {
	joinTwo := func(t *testing.T, d Defect) (ctx context.Context, ann, bob *wsConn) {
		base := start(t, d)
		ctx = deadline(t)
		ann = dialWS(ctx, t, base)
		ann.emit(ctx, "connecting", map[string]any{"username": "ann"})
		if ev := ann.next(ctx); ev.name != "connected" {
			t.Fatalf("ann: %q, want connected", ev.name)
		}
		// Barrier: ann's connected is emitted before the joined broadcast
		// of the same handler, so bob could connect in between and get
		// ann's joined (allowed, JOIN-4). An unknown event is answered
		// only after the socket's previous event has been handled.
		ann.emit(ctx, "barrier", nil)
		for ann.next(ctx).name != "chatError" {
			// JoinedEchoedToJoiner sends ann its own joined first.
		}
		bob = dialWS(ctx, t, base)
		bob.emit(ctx, "connecting", map[string]any{"username": "bob"})
		return ctx, ann, bob
	}
	t.Run("seed-correct", func(t *testing.T) {
		ctx, ann, bob := joinTwo(t, SeedCorrect)
		if ev := bob.next(ctx); ev.name != "connected" {
			t.Fatalf("bob: %q %s, want connected", ev.name, ev.payload)
		}
		if ev := ann.next(ctx); ev.name != "joined" || !strings.Contains(string(ev.payload), `"bob"`) {
			t.Fatalf("ann: %q %s, want joined with bob", ev.name, ev.payload)
		}
		bob.emit(ctx, "writeMessage", map[string]any{"username": "ann", "message": "hi"})
		if ev := bob.next(ctx); ev.name != "chatError" || !strings.Contains(string(ev.payload), codeUsernameMismatch) {
			t.Fatalf("bob: %q %s, want chatError %s", ev.name, ev.payload, codeUsernameMismatch)
		}
		bob.emit(ctx, "writeMessage", map[string]any{"username": "bob", "message": "<b>hi</b>"})
		for _, c := range []*wsConn{bob, ann} {
			ev := c.next(ctx)
			if want := `{"messagesList":[{"username":"bob","message":"\u003cb\u003ehi\u003c/b\u003e"}]}`; ev.name != "messageWritten" || string(ev.payload) != want {
				t.Fatalf("%q %s, want messageWritten %s", ev.name, ev.payload, want)
			}
		}
	})
	t.Run("joined-echoed-to-joiner", func(t *testing.T) {
		ctx, _, bob := joinTwo(t, JoinedEchoedToJoiner)
		bob.next(ctx) // connected
		if ev := bob.next(ctx); ev.name != "joined" {
			t.Fatalf("bob: %q %s, want its own joined", ev.name, ev.payload)
		}
	})
	t.Run("impersonation", func(t *testing.T) {
		ctx, ann, bob := joinTwo(t, Impersonation)
		bob.next(ctx) // connected
		ann.next(ctx) // joined
		bob.emit(ctx, "writeMessage", map[string]any{"username": "ann", "message": "hi"})
		if ev := ann.next(ctx); ev.name != "messageWritten" || !strings.Contains(string(ev.payload), `"username":"ann"`) {
			t.Fatalf("ann: %q %s, want a message attributed to ann", ev.name, ev.payload)
		}
	})
	t.Run("null-empty-lists", func(t *testing.T) {
		base := start(t, NullEmptyLists)
		ctx := deadline(t)
		c := dialWS(ctx, t, base)
		c.emit(ctx, "connecting", map[string]any{"username": "ann"})
		if ev := c.next(ctx); !strings.Contains(string(ev.payload), `"messagesList":null`) {
			t.Fatalf("%q %s, want messagesList null", ev.name, ev.payload)
		}
	})
}

// TestCrashOnBadInputStopsTheServer shows that the crash is real: after a
// connecting with no payload, the listener refuses new connections.
func TestCrashOnBadInputStopsTheServer(t *testing.T) {
	base := start(t, CrashOnBadInput)
	ctx := deadline(t)
	c := dialWS(ctx, t, base)
	if err := c.c.Write(ctx, websocket.MessageText, []byte(`42["connecting"]`)); err != nil {
		t.Fatal(err)
	}
	for range c.rx {
		// drain until the server closes the connection
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/socket.io/?EIO=4&transport=polling", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("server still answers after the crash: %s", resp.Status)
	}
}

func TestStartRejectsUnknownDefect(t *testing.T) {
	if _, _, err := Start(t.Context(), Defect("no-such-defect")); err == nil {
		t.Fatal("Start accepted an unknown defect")
	}
	if _, err := ParseDefect("no-such-defect"); err == nil {
		t.Fatal("ParseDefect accepted an unknown defect")
	}
}

func usernames(users []user) []string {
	var names []string
	for _, u := range users {
		names = append(names, u.Username)
	}
	return names
}
