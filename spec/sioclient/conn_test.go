package sioclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(serverEnv) == "1" {
		serveForBenchmark()
		return
	}
	code := m.Run()
	// Idle keep-alive connections of the shared client are not leaks.
	defaultHTTPClient.CloseIdleConnections()
	if code == 0 {
		if err := findClientGoroutines(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// findClientGoroutines reports goroutines of this package that outlive
// the tests. The server library keeps goroutines of its own after Close, so
// the process-wide check looks only at this package's functions; the
// client-only section in TestNoGoroutineLeak uses goleak.IgnoreCurrent.
func findClientGoroutines() error {
	var left []string
	for range 50 {
		left = left[:0]
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "chatspec/sioclient.(*") && !strings.Contains(g, "testing.") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond) // goroutines finish asynchronously; poll for a bounded time
	}
	return fmt.Errorf("sioclient goroutines leaked:\n%s", strings.Join(left, "\n\n"))
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var allTransports = []Transport{Polling, WebSocket, Upgrade}

// dial connects and registers Abort as cleanup. Callers that emit right
// away must wait for the server's "connection" first (ts.dial, or
// ts.nextSocket): see testServer.dial.
func dial(t testing.TB, opts Options) *Conn {
	t.Helper()
	c, err := Dial(ctxT(t, 10*time.Second), opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Abort() })
	return c
}

func TestTransportsEmitReceiveClose(t *testing.T) {
	for _, tr := range allTransports {
		t.Run(string(tr), func(t *testing.T) {
			ts := newTestServer(t, serverConfig{onConnect: func(s *socket.Socket) {
				_ = s.Emit("welcome", map[string]any{"hello": "there"})
			}})
			c := dial(t, Options{URL: ts.URL, Transport: tr})
			s := ts.nextSocket(t)
			if got, want := c.ID(), string(s.Id()); got != want {
				t.Errorf("ID() = %q, server socket id %q", got, want)
			}
			want := WebSocket
			if tr == Polling {
				want = Polling
			}
			if got := c.Transport(); got != want {
				t.Errorf("Transport() = %q, want %q", got, want)
			}
			if hs := c.Handshake(); hs.SID == "" || hs.PingInterval <= 0 {
				t.Errorf("Handshake() = %+v", hs)
			}
			ctx := ctxT(t, 5*time.Second)
			ev, err := c.Next(ctx)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if ev.Name != "welcome" || string(ev.Args) != `[{"hello":"there"}]` || ev.Seq != 1 || ev.Received.IsZero() {
				t.Errorf("first event = %+v %s", ev, ev.Args)
			}
			if err := c.Emit(ctx, "echo", map[string]any{"n": 1}, "two"); err != nil {
				t.Fatalf("Emit: %v", err)
			}
			ev, err = c.Next(ctx)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if ev.Name != "echoed" || ev.Seq != 2 {
				t.Errorf("echo event = %+v", ev)
			}
			var arg struct{ N int }
			var two string
			if err := ev.Decode(0, &arg); err != nil || arg.N != 1 {
				t.Errorf("Decode(0) = %+v, %v", arg, err)
			}
			if err := ev.Decode(1, &two); err != nil || two != "two" {
				t.Errorf("Decode(1) = %q, %v", two, err)
			}
			if err := ev.Decode(2, &two); err == nil {
				t.Error("Decode(2) of a 2-argument event succeeded")
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if got := ts.nextDisconnect(t, 5*time.Second); got != "client namespace disconnect" {
				t.Errorf("server disconnect reason = %q, want client namespace disconnect", got)
			}
			<-c.Done()
			if err := c.Err(); err != nil {
				t.Errorf("Err after Close = %v, want nil", err)
			}
			if err := c.Emit(ctx, "echo"); !errors.Is(err, ErrClosed) {
				t.Errorf("Emit after Close = %v, want ErrClosed", err)
			}
			if _, err := c.Next(ctx); !errors.Is(err, ErrClosed) {
				t.Errorf("Next after Close = %v, want ErrClosed", err)
			}
			if err := c.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

// With a 25s ping interval, a half-duplex polling client would wait for
// the next ping before its emit goes out; here the echo must come back
// long before that.
func TestPollingIsFullDuplex(t *testing.T) {
	ts := newTestServer(t, serverConfig{pingInterval: 25 * time.Second, pingTimeout: 20 * time.Second})
	c := ts.dial(t, Options{URL: ts.URL, Transport: Polling})
	ctx := ctxT(t, 5*time.Second)
	for i := range 3 {
		if err := c.Emit(ctx, "echo", i); err != nil {
			t.Fatalf("Emit %d: %v", i, err)
		}
		ev, err := c.NextNamed(ctx, "echoed")
		if err != nil {
			t.Fatalf("echo %d: %v (an emit waited for the server to send?)", i, err)
		}
		if string(ev.Args) != fmt.Sprintf("[%d]", i) {
			t.Errorf("echo %d args = %s", i, ev.Args)
		}
	}
}

func TestOrderedDelivery(t *testing.T) {
	for _, tr := range allTransports {
		t.Run(string(tr), func(t *testing.T) {
			// 100 events sent from the connection handler travel over
			// polling while the upgrade is under way; 300 more follow.
			const early = 100
			ts := newTestServer(t, serverConfig{onConnect: func(s *socket.Socket) {
				for i := 1; i <= early; i++ {
					_ = s.Emit("seq", i)
				}
			}})
			var got []Event
			done := make(chan struct{})
			const n = early + 300
			c := ts.dial(t, Options{URL: ts.URL, Transport: tr, OnEvent: func(ev Event) {
				got = append(got, ev)
				if len(got) == n {
					close(done)
				}
			}})
			if err := c.Emit(ctxT(t, 5*time.Second), "burst", map[string]any{"n": n - early}); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("got %d of %d events", len(got), n)
			}
			for i, ev := range got {
				want := i + 1
				if i >= early {
					want = i + 1 - early
				}
				if ev.Seq != uint64(i+1) || string(ev.Args) != fmt.Sprintf("[%d]", want) {
					t.Fatalf("event %d: seq %d args %s", i, ev.Seq, ev.Args)
				}
			}
			if _, err := c.Next(context.Background()); !errors.Is(err, ErrNoQueue) {
				t.Errorf("Next with OnEvent = %v, want ErrNoQueue", err)
			}
		})
	}
}

func TestAcks(t *testing.T) {
	for _, tr := range allTransports {
		t.Run(string(tr), func(t *testing.T) {
			got := make(chan []any, 1)
			ts := newTestServer(t, serverConfig{onConnect: func(s *socket.Socket) {
				s.On("askme", func(...any) {
					_ = s.Emit("question", "q?", socket.Ack(func(args []any, err error) { got <- args }))
				})
			}})
			c := ts.dial(t, Options{URL: ts.URL, Transport: tr})
			ctx := ctxT(t, 5*time.Second)
			res, err := c.EmitWithAck(ctx, "ackme", "a", map[string]any{"b": 2})
			if err != nil {
				t.Fatalf("EmitWithAck: %v", err)
			}
			if string(res) != `["a",{"b":2}]` {
				t.Errorf("ack args = %s", res)
			}
			if err := c.Emit(ctx, "askme"); err != nil {
				t.Fatal(err)
			}
			ev, err := c.NextNamed(ctx, "question")
			if err != nil {
				t.Fatal(err)
			}
			if ev.AckID == nil {
				t.Fatalf("question has no AckID: %+v", ev)
			}
			if err := c.Ack(ctx, *ev.AckID, "answer", 42); err != nil {
				t.Fatal(err)
			}
			select {
			case args := <-got:
				if fmt.Sprint(args) != "[answer 42]" {
					t.Errorf("server got ack %v", args)
				}
			case <-ctx.Done():
				t.Fatal("server got no ack")
			}
		})
	}
}

func TestConnectErrorFromMiddleware(t *testing.T) {
	for _, tr := range allTransports {
		t.Run(string(tr), func(t *testing.T) {
			ts := newTestServer(t, serverConfig{middleware: func(s *socket.Socket, next func(*socket.ExtendedError)) {
				next(socket.NewExtendedError("username taken", map[string]any{"code": 7}))
			}})
			_, err := Dial(ctxT(t, 5*time.Second), Options{URL: ts.URL, Transport: tr})
			var ce *ConnectError
			if !errors.As(err, &ce) {
				t.Fatalf("Dial error = %v, want a *ConnectError", err)
			}
			if ce.Message != "username taken" || string(ce.Data) != `{"code":7}` {
				t.Errorf("ConnectError = %+v", ce)
			}
			if !strings.Contains(err.Error(), "username taken") || !strings.Contains(err.Error(), "namespace CONNECT") {
				t.Errorf("error text %q lacks the message or the step", err)
			}
		})
	}
}

func TestPathNamespaceQueryHeaderAuth(t *testing.T) {
	for _, tr := range allTransports {
		t.Run(string(tr), func(t *testing.T) {
			ts := newTestServer(t, serverConfig{path: "/custom/", namespace: "/chat"})
			c := dial(t, Options{
				URL: ts.URL, Path: "/custom/", Namespace: "/chat", Transport: tr,
				Query:  url.Values{"room": {"lobby"}},
				Header: http.Header{"X-Chatspec": {"yes"}},
				Auth:   map[string]any{"token": "t0k"},
			})
			s := ts.nextSocket(t)
			hs := s.Handshake()
			if q := fmt.Sprint(hs.Query["room"]); q != "[lobby]" {
				t.Errorf("query room = %s", q)
			}
			if h := fmt.Sprint(hs.Headers["X-Chatspec"]); h != "[yes]" {
				t.Errorf("header x-chatspec = %s (headers %v)", h, hs.Headers)
			}
			if a := fmt.Sprint(hs.Auth["token"]); a != "t0k" {
				t.Errorf("auth token = %s", a)
			}
			if got := string(s.Nsp().Name()); got != "/chat" {
				t.Errorf("namespace = %q", got)
			}
			ctx := ctxT(t, 5*time.Second)
			if err := c.Emit(ctx, "echo", "x"); err != nil {
				t.Fatal(err)
			}
			if ev, err := c.Next(ctx); err != nil || ev.Name != "echoed" {
				t.Fatalf("Next = %+v, %v", ev, err)
			}
			if err := c.Close(); err != nil {
				t.Error(err)
			}
			if got := ts.nextDisconnect(t, 5*time.Second); got != "client namespace disconnect" {
				t.Errorf("reason %q", got)
			}
		})
	}
}

func TestAbortIsTransportClose(t *testing.T) {
	for _, tr := range allTransports {
		t.Run(string(tr), func(t *testing.T) {
			// Over polling, zishang520 reports a GET dropped mid-poll as
			// "transport error", and notices a drop between polls only at
			// its ping timeout (short here).
			ts := newTestServer(t, serverConfig{pingInterval: 300 * time.Millisecond, pingTimeout: 300 * time.Millisecond})
			c := dial(t, Options{URL: ts.URL, Transport: tr})
			ts.nextSocket(t)
			if err := c.Abort(); err != nil {
				t.Fatal(err)
			}
			got := ts.nextDisconnect(t, 5*time.Second)
			if tr == Polling && (got == "transport error" || got == "ping timeout") {
				got = "transport close"
			}
			if got != "transport close" {
				t.Errorf("server disconnect reason = %q, want transport close", got)
			}
			if err := c.Err(); err != nil {
				t.Errorf("Err after Abort = %v", err)
			}
		})
	}
}

func TestServerDisconnect(t *testing.T) {
	for _, tr := range allTransports {
		t.Run(string(tr), func(t *testing.T) {
			ts := newTestServer(t, serverConfig{})
			c := dial(t, Options{URL: ts.URL, Transport: tr})
			s := ts.nextSocket(t)
			// Disconnect(false): zishang520's Disconnect(true) over
			// websocket closes TCP without flushing the DISCONNECT packet
			// (checked with a raw websocket), so the client can only
			// report a transport loss there; TestServerDropsTransport
			// covers that case.
			s.Disconnect(false)
			select {
			case <-c.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("Done not closed after server disconnect")
			}
			if err := c.Err(); !errors.Is(err, ErrServerDisconnect) {
				t.Errorf("Err = %v, want ErrServerDisconnect", err)
			}
			if err := c.Emit(context.Background(), "x"); !errors.Is(err, ErrServerDisconnect) {
				t.Errorf("Emit after = %v", err)
			}
		})
	}
}

func TestServerDropsTransport(t *testing.T) {
	ts := newTestServer(t, serverConfig{})
	c := dial(t, Options{URL: ts.URL, Transport: WebSocket})
	s := ts.nextSocket(t)
	s.Conn().Close(true)
	<-c.Done()
	var te *TransportError
	if err := c.Err(); !errors.As(err, &te) {
		t.Errorf("Err = %v, want a *TransportError", err)
	}
}

func TestSilenceSeenAsPingTimeout(t *testing.T) {
	for _, tr := range []Transport{Polling, WebSocket} {
		t.Run(string(tr), func(t *testing.T) {
			ts := newTestServer(t, serverConfig{pingInterval: 200 * time.Millisecond, pingTimeout: 200 * time.Millisecond})
			c := dial(t, Options{URL: ts.URL, Transport: tr})
			ts.nextSocket(t)
			c.Silence()
			if err := c.Emit(context.Background(), "echo"); !errors.Is(err, ErrSilenced) {
				t.Errorf("Emit after Silence = %v", err)
			}
			if got := ts.nextDisconnect(t, 5*time.Second); got != "ping timeout" {
				t.Errorf("server reason = %q, want ping timeout", got)
			}
		})
	}
}

func TestRefusedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, tr := range allTransports {
		start := time.Now()
		_, err := Dial(ctxT(t, 5*time.Second), Options{URL: "http://" + addr, Transport: tr})
		if err == nil || !strings.Contains(err.Error(), "connection refused by "+addr) {
			t.Errorf("%s: Dial error = %v, want connection refused by %s", tr, err, addr)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: refused port took %v to report", tr, d)
		}
	}
}

func TestBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"url path":   {URL: "http://127.0.0.1:1/chat"},
		"scheme":     {URL: "ftp://127.0.0.1:1"},
		"no host":    {URL: "http://"},
		"namespace":  {URL: "http://127.0.0.1:1", Namespace: "chat"},
		"transport":  {URL: "http://127.0.0.1:1", Transport: "carrier-pigeon"},
		"bad url":    {URL: "http://[::1"},
		"comma nsp":  {URL: "http://127.0.0.1:1", Namespace: "/a,b"},
		"empty url":  {},
		"auth types": {URL: "http://127.0.0.1:1", Auth: func() {}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Dial(ctxT(t, 2*time.Second), o); err == nil {
				t.Error("Dial succeeded")
			}
		})
	}
}

// fakeServer answers every request with handler.
func fakeServer(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	return srv.URL
}

// pollingScript serves a long-polling connection from a script: the n-th
// GET gets gets[n-1] (an Engine.IO payload), later GETs hang until the
// client gives up; every POST is accepted.
func pollingScript(t *testing.T, gets ...string) string {
	t.Helper()
	var n atomic.Int32
	return fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			fmt.Fprint(w, "ok")
			return
		}
		if i := int(n.Add(1)); i <= len(gets) {
			fmt.Fprint(w, gets[i-1])
			return
		}
		<-r.Context().Done()
	})
}

func TestHostileHTTPServers(t *testing.T) {
	big := strings.Repeat("x", 64<<10)
	cases := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, "HTTP 404"},
		{"html", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>hello</html>") }, "not an Engine.IO v4 server"},
		{"eio3", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `96:0{"sid":"a","upgrades":[],"pingInterval":25000,"pingTimeout":5000}`)
		}, "Engine.IO v3"},
		{"bad open json", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `0{"sid":`) }, "bad open packet JSON"},
		{"open without ping", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `0{"sid":"a"}`) }, "lacks sid, pingInterval"},
		{"oversized", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, big) }, "exceeds MaxPacketBytes"},
		{"oversized chunked", func(w http.ResponseWriter, r *http.Request) {
			for range 64 {
				fmt.Fprint(w, big[:1024])
				w.(http.Flusher).Flush()
			}
		}, "exceeds MaxPacketBytes"},
		{"hang", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, "timed out after"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := fakeServer(t, tc.handler)
			for _, tr := range []Transport{Polling, WebSocket} {
				_, err := Dial(ctxT(t, 5*time.Second), Options{URL: u, Transport: tr, MaxPacketBytes: 16 << 10, ConnectTimeout: 500 * time.Millisecond})
				if err == nil {
					t.Fatalf("%s: Dial succeeded", tr)
				}
				want := tc.want
				if tr == WebSocket && tc.name != "404" && tc.name != "hang" {
					want = "HTTP 200" // not a websocket endpoint at all
				}
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s: error %q lacks %q", tr, err, want)
				}
			}
		})
	}
}

// A polling server that opens a session, acknowledges CONNECT, then sends
// whatever the test wants on the next GET.
func TestHostilePollingPayloads(t *testing.T) {
	cases := map[string]string{
		"garbage engine type":     "x",
		"binary":                  "bAAEC",
		"unknown sio type":        "49",
		"event not array":         `42{"a":1}`,
		"event bad json":          `42["x",{]`,
		"event no name":           `42[]`,
		"other namespace":         `42/other,["x"]`,
		"empty packet":            "2\x1e\x1e2",
		"trailing separator":      "6\x1e",
		"ack never requested":     `439[1]`,
		"second open":             `0{"sid":"b"}`,
		"binary event":            `451-["x",{"_placeholder":true,"num":0}]`,
		"ping with payload":       `2probe`,
		"unterminated string":     `42["abc`,
		"id too long":             `42123456789012345678901["x"]`,
		"namespace connect twice": `40{"sid":"again"}`,
	}
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			u := pollingScript(t, `0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`, `40{"sid":"x1"}`, payload)
			c, err := Dial(ctxT(t, 5*time.Second), Options{URL: u, Transport: Polling})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Abort()
			select {
			case <-c.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("connection did not end on a malformed payload")
			}
			var pe *ProtocolError
			if err := c.Err(); !errors.As(err, &pe) {
				t.Fatalf("Err = %v, want a *ProtocolError", err)
			}
			t.Log(c.Err())
		})
	}
}

func TestClientPingTimeout(t *testing.T) {
	u := pollingScript(t, `0{"sid":"s1","upgrades":[],"pingInterval":100,"pingTimeout":100,"maxPayload":1000000}`, `40{"sid":"x1"}`)
	c, err := Dial(ctxT(t, 5*time.Second), Options{URL: u, Transport: Polling})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Abort()
	<-c.Done()
	var pt *PingTimeoutError
	if err := c.Err(); !errors.As(err, &pt) || pt.Waited != 200*time.Millisecond {
		t.Errorf("Err = %v, want a 200ms *PingTimeoutError", err)
	}
}

func TestQueueOverflow(t *testing.T) {
	ts := newTestServer(t, serverConfig{})
	c := ts.dial(t, Options{URL: ts.URL, Transport: WebSocket, MaxQueuedEvents: 5})
	if err := c.Emit(ctxT(t, 5*time.Second), "burst", map[string]any{"n": 10}); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	if err := c.Err(); !errors.Is(err, ErrQueueOverflow) {
		t.Fatalf("Err = %v, want ErrQueueOverflow", err)
	}
	for i := 1; i <= 5; i++ {
		ev, err := c.Next(context.Background())
		if err != nil || string(ev.Args) != fmt.Sprintf("[%d]", i) {
			t.Fatalf("queued event %d = %s, %v", i, ev.Args, err)
		}
	}
	if _, err := c.Next(context.Background()); !errors.Is(err, ErrQueueOverflow) {
		t.Errorf("Next after the queue drained = %v", err)
	}
}

func TestNextNamedSkipsOthers(t *testing.T) {
	ts := newTestServer(t, serverConfig{})
	c := ts.dial(t, Options{URL: ts.URL})
	ctx := ctxT(t, 5*time.Second)
	for _, m := range []string{"a", "b"} {
		if err := c.Emit(ctx, "echo", m); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Emit(ctx, "burst", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	ev, err := c.NextNamed(ctx, "seq")
	if err != nil {
		select {
		case r := <-ts.disconnects:
			t.Logf("server disconnect reason: %q", r)
		case <-time.After(time.Second):
			t.Log("server saw no disconnect")
		}
	}
	if err != nil || ev.Seq != 3 {
		t.Fatalf("NextNamed = %+v, %v (want seq 3 after skipping two echoes)", ev, err)
	}
}

func TestEmitJSONArgs(t *testing.T) {
	ts := newTestServer(t, serverConfig{})
	c := ts.dial(t, Options{URL: ts.URL})
	ctx := ctxT(t, 5*time.Second)
	if err := c.Emit(ctx, "echo", json.RawMessage(`{"raw":true}`), "<&>", nil); err != nil {
		t.Fatal(err)
	}
	ev, err := c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []any
	if err := json.Unmarshal(ev.Args, &got); err != nil || fmt.Sprint(got) != "[map[raw:true] <&> <nil>]" {
		t.Errorf("args = %s (%v)", ev.Args, err)
	}
	if n, err := ev.NumArgs(); n != 3 || err != nil {
		t.Errorf("NumArgs = %d, %v", n, err)
	}
	if err := c.Emit(ctx, "echo", func() {}); err == nil {
		t.Error("Emit of a func succeeded")
	}
	if err := c.SendRaw(ctx, `2["echo","raw"]`); err != nil {
		t.Fatal(err)
	}
	if ev, err := c.Next(ctx); err != nil || string(ev.Args) != `["raw"]` {
		t.Errorf("after SendRaw: %s, %v", ev.Args, err)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	ts := newTestServer(t, serverConfig{})
	warm := ts.dial(t, Options{URL: ts.URL, Transport: Upgrade})
	warm.Close()
	ignore := goleak.IgnoreCurrent()
	for _, tr := range allTransports {
		c := ts.dial(t, Options{URL: ts.URL, Transport: tr})
		if err := c.Emit(ctxT(t, 5*time.Second), "echo", 1); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Next(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	defaultHTTPClient.CloseIdleConnections()
	if err := goleak.Find(ignore); err != nil {
		t.Error(err)
	}
}

// Pings must be answered on every transport: across several ping cycles
// of a fast-pinging server the connection stays up (a short Consistently
// window: there is no event that proves a pong was accepted), then an echo
// still round-trips.
func TestAnswersPings(t *testing.T) {
	for _, tr := range allTransports {
		t.Run(string(tr), func(t *testing.T) {
			ts := newTestServer(t, serverConfig{pingInterval: 50 * time.Millisecond, pingTimeout: 100 * time.Millisecond})
			c := ts.dial(t, Options{URL: ts.URL, Transport: tr})
			select {
			case <-c.Done():
				t.Fatalf("connection ended: %v", c.Err())
			case r := <-ts.disconnects:
				t.Fatalf("server disconnected: %q", r)
			case <-time.After(600 * time.Millisecond): // 12 ping cycles
			}
			ctx := ctxT(t, 5*time.Second)
			if err := c.Emit(ctx, "echo", 1); err != nil {
				t.Fatal(err)
			}
			if _, err := c.NextNamed(ctx, "echoed"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
