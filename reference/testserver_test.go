package reference

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/chatspec/chatspec/reference/store"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// waitFor bounds every wait in these tests; a test that hits it has failed.
const waitFor = 10 * time.Second

// allTransports are the client strategies every chat test runs over
// (TRANS-1 polling, TRANS-2 websocket, TRANS-3 polling then upgrade).
var allTransports = []sioclient.Transport{sioclient.Polling, sioclient.WebSocket, sioclient.Upgrade}

// forEachTransport runs fn as a subtest per transport.
func forEachTransport(t *testing.T, fn func(t *testing.T, tr sioclient.Transport)) {
	t.Helper()
	for _, tr := range allTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			fn(t, tr)
		})
	}
}

// testConfig is DefaultConfig on a free loopback port with a fast
// heartbeat, so polling clients and dropped sockets are noticed quickly.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.PingInterval = 300 * time.Millisecond
	cfg.PingTimeout = 2 * time.Second
	cfg.ShutdownTimeout = 5 * time.Second
	return cfg
}

// startServer starts a reference server for one test and stops it at the
// end, failing the test if the shutdown is not clean.
func startServer(t *testing.T, mutate func(*Config), opts ...Option) *Running {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	r, err := Start(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return r
}

// client is one test socket with helpers that fail the test on error.
type client struct {
	t    *testing.T
	name string
	*sioclient.Conn
}

func dial(t *testing.T, r *Running, tr sioclient.Transport) *client {
	t.Helper()
	c, err := dialErr(r, tr)
	if err != nil {
		t.Fatalf("dial %s: %v", tr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, Conn: c}
}

// dialIdle dials a socket that stays unjoined (JOIN-4, MSG-1). The server
// adds a socket to its broadcasts just after it acknowledged the CONNECT,
// so the barrier makes sure that happened before the test goes on.
func dialIdle(t *testing.T, r *Running, tr sioclient.Transport) *client {
	t.Helper()
	c := dial(t, r, tr)
	c.name = "idle"
	c.barrier()
	return c
}

func dialErr(r *Running, tr sioclient.Transport) (*sioclient.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	return sioclient.Dial(ctx, sioclient.Options{URL: r.URL(), Path: r.Server().cfg.Path, Transport: tr})
}

// join dials and joins as username, returning the connected payload.
func join(t *testing.T, r *Running, tr sioclient.Transport, username string) (*client, connectedPayload) {
	t.Helper()
	c := dial(t, r, tr)
	c.name = username
	c.emit(EventConnecting, map[string]any{"username": username})
	var p connectedPayload
	c.expect(EventConnected, &p)
	return c, p
}

func (c *client) emit(event string, args ...any) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.Emit(ctx, event, args...); err != nil {
		c.t.Fatalf("%s: emit %s: %v", c.name, event, err)
	}
}

func (c *client) write(text string) {
	c.t.Helper()
	c.emit(EventWriteMessage, map[string]any{"message": text, "username": c.name})
}

// ack emits with an acknowledgement and decodes the ack's first argument.
func (c *client) ack(event string, args ...any) ackPayload {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	raw, err := c.EmitWithAck(ctx, event, args...)
	if err != nil {
		c.t.Fatalf("%s: emit %s with ack: %v", c.name, event, err)
	}
	var got []ackPayload
	if err := json.Unmarshal(raw, &got); err != nil || len(got) != 1 {
		c.t.Fatalf("%s: ack of %s is %s, want one object (err %v)", c.name, event, raw, err)
	}
	return got[0]
}

// next returns the next event, whatever its name.
func (c *client) next() sioclient.Event {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ev, err := c.Next(ctx)
	if err != nil {
		c.t.Fatalf("%s: waiting for an event: %v", c.name, err)
	}
	return ev
}

// expect requires the very next event to be name, checks PAY-1 (one
// object argument, lists never null) and decodes it into v.
func (c *client) expect(name string, v any) sioclient.Event {
	c.t.Helper()
	ev := c.next()
	if ev.Name != name {
		c.t.Fatalf("%s: got event %s %s, want %s", c.name, ev.Name, clip(string(ev.Args), 300), name)
	}
	checkPAY1(c.t, ev)
	if v != nil {
		if err := ev.Decode(0, v); err != nil {
			c.t.Fatalf("%s: %v", c.name, err)
		}
	}
	return ev
}

// expectError requires the next event to be chatError for event with code.
func (c *client) expectError(event, code string) chatErrorPayload {
	c.t.Helper()
	var p chatErrorPayload
	c.expect(EventChatError, &p)
	if p.Event != event || p.Code != code || p.Message == "" {
		c.t.Fatalf("%s: chatError %+v, want event %q code %q and a message", c.name, p, event, code)
	}
	return p
}

// barrier proves that nothing was queued for c before now: it sends an
// unknown event, whose chatError the server queues after everything it
// already queued for c, and requires that chatError to be the next event.
// A later event on the same ordered stream shows the earlier one never came.
func (c *client) barrier() {
	c.t.Helper()
	c.emit("chatspecBarrier")
	c.expectError("chatspecBarrier", CodeUnknownEvent)
}

// checkPAY1 asserts PAY-1 on a server event: exactly one argument, a JSON
// object whose list fields are arrays, never null.
func checkPAY1(t *testing.T, ev sioclient.Event) {
	t.Helper()
	var args []map[string]json.RawMessage
	if err := json.Unmarshal(ev.Args, &args); err != nil || len(args) != 1 {
		t.Fatalf("PAY-1: %s args %s: want exactly one object (err %v)", ev.Name, clip(string(ev.Args), 300), err)
	}
	for _, field := range []string{"connectedUserList", "messagesList"} {
		if raw, ok := args[0][field]; ok && !strings.HasPrefix(string(raw), "[") {
			t.Fatalf("PAY-1: %s.%s is %s, want a JSON array", ev.Name, field, clip(string(raw), 100))
		}
	}
}

type connectedPayload struct {
	ConnectedUserList []store.User    `json:"connectedUserList"`
	MessagesList      []store.Message `json:"messagesList"`
}

type usersPayload struct {
	ConnectedUserList []store.User `json:"connectedUserList"`
}

type messagesPayload struct {
	MessagesList []store.Message `json:"messagesList"`
}

type chatErrorPayload struct {
	Event   string `json:"event"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type ackPayload struct {
	OK      bool   `json:"ok"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func names(users []store.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.Username
	}
	return out
}

// waitUntil polls cond until it holds; for server-side state that no event
// reports (a counter, a slot released).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metricValue reads a gauge or counter.
func metricValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	return -1
}

// isConnectError reports whether err is the server's CONNECT_ERROR.
func isConnectError(err error) (*sioclient.ConnectError, bool) {
	var ce *sioclient.ConnectError
	ok := errors.As(err, &ce)
	return ce, ok
}
