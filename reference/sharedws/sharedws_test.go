package sharedws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chatspec/chatspec/spec/sioclient"
	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// startServer runs a Socket.IO server on b (and the library's polling, for
// upgrades) that answers "shout" with a broadcast of its text to everyone
// and "whisper" with an emit to the sender alone.
func startServer(t *testing.T, b *Builder) string {
	t.Helper()
	opts := socket.DefaultServerOptions()
	opts.SetTransports(types.NewSet[socket.TransportCtor](&transports.PollingBuilder{}, b))
	opts.SetPingInterval(20 * time.Second)
	opts.SetPingTimeout(20 * time.Second)
	io := socket.NewServer(nil, opts)
	_ = io.On("connection", func(a ...any) {
		s := a[0].(*socket.Socket)
		_ = s.On("shout", func(args ...any) { _ = io.Emit("heard", args[0]) })
		_ = s.On("whisper", func(args ...any) { _ = s.Emit("heard", args[0]) })
	})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", io.ServeHandler(nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() {
		io.Close(nil)
		hs.Close()
	})
	return "http://" + ln.Addr().String()
}

// listener is a client that records what it hears.
type listener struct {
	conn  *sioclient.Conn
	heard chan string
}

func dial(t *testing.T, url string, tr sioclient.Transport) *listener {
	t.Helper()
	l := &listener{heard: make(chan string, 64)}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := sioclient.Dial(ctx, sioclient.Options{URL: url, Transport: tr, OnEvent: func(ev sioclient.Event) {
		if ev.Name == "heard" {
			var args []string
			if err := json.Unmarshal(ev.Args, &args); err != nil || len(args) != 1 {
				t.Errorf("heard %s: want one string", ev.Args)
				return
			}
			l.heard <- args[0]
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	l.conn = c
	return l
}

func (l *listener) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-l.heard:
		if got != want {
			t.Fatalf("heard %.40q, want %.40q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("heard nothing in 10 s, want %.40q", want)
	}
}

// Every receiver of a broadcast, on WebSocket from the start or upgraded
// from polling, gets it whole and in order, and the broadcasts were framed
// once each, not once per receiver; a message to one socket takes the
// library's own path.
func TestBroadcastFramedOnceForAll(t *testing.T) {
	b := New()
	url := startServer(t, b)
	var all []*listener
	for _, tr := range []sioclient.Transport{sioclient.WebSocket, sioclient.WebSocket, sioclient.WebSocket, sioclient.Upgrade} {
		all = append(all, dial(t, url, tr))
	}
	ctx := t.Context()
	const broadcasts = 5
	for i := range broadcasts {
		// Large enough to take several TCP segments.
		text := fmt.Sprintf("%d:%s", i, strings.Repeat("é", 20000))
		if err := all[0].conn.Emit(ctx, "shout", text); err != nil {
			t.Fatal(err)
		}
		for _, l := range all {
			l.expect(t, text)
		}
	}
	b.frames.mu.Lock()
	framed := len(b.frames.byBuf)
	b.frames.mu.Unlock()
	if framed != broadcasts {
		t.Errorf("%d frames prepared for %d broadcasts to %d sockets, want one per broadcast", framed, broadcasts, len(all))
	}
	if err := all[1].conn.Emit(ctx, "whisper", "just you"); err != nil {
		t.Fatal(err)
	}
	all[1].expect(t, "just you")
}

// The cache keeps the newest broadcasts only: it never grows past its size
// and an evicted frame is framed again, correctly, on a late receiver.
func TestFrameCacheBounded(t *testing.T) {
	c := newFrameCache(4)
	var bufs []types.BufferInterface
	for i := range 10 {
		b := types.NewStringBufferString(fmt.Sprintf("4frame %d", i))
		bufs = append(bufs, b)
		if _, err := c.prepared(b); err != nil {
			t.Fatal(err)
		}
		if n := len(c.byBuf); n > 4 {
			t.Fatalf("%d entries after %d frames, want at most 4", n, i+1)
		}
	}
	newest, _ := c.prepared(bufs[9])
	again, _ := c.prepared(bufs[9])
	if newest != again {
		t.Errorf("the newest frame was prepared twice")
	}
	old, err := c.prepared(bufs[0])
	if err != nil || old == nil {
		t.Fatalf("an evicted frame: %v, %v", old, err)
	}
	if len(c.byBuf) > 4 {
		t.Errorf("%d entries, want at most 4", len(c.byBuf))
	}
}

// A session opened on a WebSocket writes nothing while the upgrade
// request's handler still runs: the library's handler may write a close
// message on the same connection itself when it abandons the handshake
// (abortUpgrade), and two writers at once are a data race in
// gorilla/websocket. Here the handler queues the open packet, writes the
// close as abortUpgrade does, and returns: the client must see the close
// first, and the race detector nothing.
func TestNoWriteBeforeTheHandlerReturns(t *testing.T) {
	b := New()
	upgrader := ws.Upgrader{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		ctx := types.NewHttpContext(w, r)
		ctx.Websocket = &types.WebSocketConn{EventEmitter: types.NewEventEmitter(), Conn: conn}
		tr := b.New(ctx)
		tr.Send([]*packet.Packet{{Type: packet.OPEN, Data: strings.NewReader(`{"sid":"x"}`)}})
		// Give a transport that does not wait every chance to write first.
		time.Sleep(50 * time.Millisecond)
		_ = conn.WriteMessage(ws.CloseMessage, ws.FormatCloseMessage(ws.CloseNormalClosure, "handshake abandoned"))
	}))
	defer hs.Close()
	c, _, err := ws.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	mt, data, err := c.ReadMessage()
	var ce *ws.CloseError
	switch {
	case errors.As(err, &ce):
		if ce.Text != "handshake abandoned" {
			t.Errorf("closed with %q, want the handler's close", ce.Text)
		}
	case err != nil:
		t.Fatalf("read: %v", err)
	default:
		t.Errorf("got message type %d %q before the handler's close: the transport wrote while the handler ran", mt, data)
	}
}
