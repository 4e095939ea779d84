package sharedadapter

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatspec/chatspec/spec/sioclient"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// startServer runs a Socket.IO server on the adapter. A socket's "enter"
// puts it in a room and says so; "send" {to, except, text} broadcasts text as "heard"
// to the room `to` (everyone when empty) minus the room `except`.
func startServer(t *testing.T) string {
	t.Helper()
	opts := socket.DefaultServerOptions()
	opts.SetAdapter(Builder{})
	opts.SetPingInterval(20 * time.Second)
	opts.SetPingTimeout(20 * time.Second)
	io := socket.NewServer(nil, opts)
	_ = io.On("connection", func(a ...any) {
		s := a[0].(*socket.Socket)
		_ = s.On("enter", func(args ...any) {
			s.Join(socket.Room(args[0].(string)))
			_ = s.Emit("heard", "entered "+args[0].(string))
		})
		_ = s.On("send", func(args ...any) {
			m := args[0].(map[string]any)
			var op *socket.BroadcastOperator
			if to := m["to"].(string); to != "" {
				op = io.To(socket.Room(to))
			} else {
				op = io.Local()
			}
			if ex := m["except"].(string); ex != "" {
				op = op.Except(socket.Room(ex))
			}
			_ = op.Emit("heard", m["text"])
		})
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

type listener struct {
	name  string
	conn  *sioclient.Conn
	heard chan json.RawMessage
}

func dial(t *testing.T, url, name string, tr sioclient.Transport) *listener {
	t.Helper()
	l := &listener{name: name, heard: make(chan json.RawMessage, 64)}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := sioclient.Dial(ctx, sioclient.Options{URL: url, Transport: tr, OnEvent: func(ev sioclient.Event) {
		if ev.Name == "heard" {
			l.heard <- append(json.RawMessage(nil), ev.Args...)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	l.conn = c
	return l
}

// expect waits for one "heard" whose first argument is the string want.
func (l *listener) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case raw := <-l.heard:
		var args []string
		if err := json.Unmarshal(raw, &args); err != nil || len(args) != 1 || args[0] != want {
			t.Fatalf("%s heard %.60s, want [%.40q]", l.name, raw, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s heard nothing in 10 s, want %.40q", l.name, want)
	}
}

// quiet: nothing more arrived for l (checked after a later broadcast that
// l did receive, so "nothing" is not just "not yet").
func (l *listener) quiet(t *testing.T) {
	t.Helper()
	select {
	case raw := <-l.heard:
		t.Fatalf("%s heard %.60s, want nothing", l.name, raw)
	default:
	}
}

// Every receiver, whatever its transport, reads the whole broadcast from
// the one shared encoding, and rooms and exceptions select as the
// library's adapter does.
func TestBroadcastSharesOneEncoding(t *testing.T) {
	url := startServer(t)
	ann := dial(t, url, "ann (polling)", sioclient.Polling)
	bob := dial(t, url, "bob (websocket)", sioclient.WebSocket)
	cat := dial(t, url, "cat (upgrade)", sioclient.Upgrade)
	ctx := t.Context()
	for _, e := range []struct {
		l     *listener
		rooms []string
	}{{ann, []string{"a"}}, {bob, []string{"a", "b"}}, {cat, []string{"b"}}} {
		for _, r := range e.rooms {
			if err := e.l.conn.Emit(ctx, "enter", r); err != nil {
				t.Fatal(err)
			}
			e.l.expect(t, "entered "+r)
		}
	}
	send := func(to, except, text string) {
		t.Helper()
		if err := ann.conn.Emit(ctx, "send", map[string]any{"to": to, "except": except, "text": text}); err != nil {
			t.Fatal(err)
		}
	}
	big := strings.Repeat("ü", 15000)
	for i := range 3 {
		text := fmt.Sprintf("%d %s", i, big)
		send("", "", text)
		for _, l := range []*listener{ann, bob, cat} {
			l.expect(t, text)
		}
	}
	send("a", "", "to a")
	ann.expect(t, "to a")
	bob.expect(t, "to a")
	send("a", "b", "to a, not b")
	ann.expect(t, "to a, not b")
	send("b", "", "to b")
	bob.expect(t, "to b")
	cat.expect(t, "to b")
	cat.quiet(t) // missed "to a" and "to a, not b"
	bob.quiet(t) // missed "to a, not b"
	send("", "a", "not a")
	cat.expect(t, "not a")
	send("", "", "all")
	for _, l := range []*listener{ann, bob, cat} {
		l.expect(t, "all")
		l.quiet(t)
	}
}
