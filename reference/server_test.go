package reference

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chatspec/chatspec/reference/store"
	"github.com/chatspec/chatspec/spec/sioclient"
)

func get(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, string(body)
}

// CONN-2: the init route answers 2xx, and repeating it resets nothing.
func TestInitRoute_CONN2(t *testing.T) {
	r := startServer(t, nil)
	resp, body := get(t, r.URL()+"/api/socket", nil)
	if resp.StatusCode != http.StatusOK || body == "" {
		t.Fatalf("CONN-2: GET /api/socket = %d %q, want 200 and a short text", resp.StatusCode, body)
	}
	ann, _ := join(t, r, sioclient.Polling, "ann")
	ann.write("kept")
	ann.expect(EventMessageWritten, nil)
	for range 3 {
		if resp, _ := get(t, r.URL()+"/api/socket", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("CONN-2: repeated GET /api/socket = %d", resp.StatusCode)
		}
	}
	_, got := join(t, r, sioclient.Polling, "bob")
	want := connectedPayload{
		ConnectedUserList: []store.User{{Username: "ann"}, {Username: "bob"}},
		MessagesList:      []store.Message{{Username: "ann", Message: "kept"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("CONN-2: state after repeated init requests (-want +got):\n%s", diff)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, r.URL()+"/api/socket", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/socket = %d, want 405", resp.StatusCode)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	r := startServer(t, nil)
	ann, _ := join(t, r, sioclient.WebSocket, "ann")
	ann.write("hi")
	ann.expect(EventMessageWritten, nil)
	ann.emit("bogus")
	ann.expectError("bogus", CodeUnknownEvent)

	resp, body := get(t, r.URL()+"/healthz", nil)
	var h health
	if err := json.Unmarshal([]byte(body), &h); err != nil || resp.StatusCode != http.StatusOK || h != (health{Status: "ok", Store: "ok"}) {
		t.Fatalf("/healthz = %d %s (err %v)", resp.StatusCode, body, err)
	}
	resp, body = get(t, r.URL()+"/metrics", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics = %d", resp.StatusCode)
	}
	for _, line := range []string{
		"chatspec_reference_connections 1",
		"chatspec_reference_users 1",
		"chatspec_reference_messages_total 1",
		"chatspec_reference_deliveries_total 1",
		`chatspec_reference_rejected_events_total{code="unknown_event"} 1`,
		`chatspec_reference_rejected_events_total{code="rate_limited"} 0`,
		"go_goroutines ",
	} {
		if !strings.Contains(body, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}

// failingStore is a memory store whose calls can be made to fail or panic.
type failingStore struct {
	*store.Memory
	fail, panic atomic.Bool
}

var errDown = errors.New("store is down")

func (f *failingStore) Users(ctx context.Context) ([]store.User, error) {
	if f.fail.Load() {
		return nil, errDown
	}
	return f.Memory.Users(ctx)
}

func (f *failingStore) Append(ctx context.Context, m store.Message) ([]store.Message, error) {
	if f.panic.Load() {
		panic("append exploded")
	}
	if f.fail.Load() {
		return nil, errDown
	}
	return f.Memory.Append(ctx, m)
}

// A store failure is reported as internal_error and /healthz turns 503; a
// panic in a handler is recovered and the server keeps serving (ROB-1).
func TestStoreFailureAndPanic(t *testing.T) {
	fs := &failingStore{Memory: store.NewMemory(10)}
	r := startServer(t, nil, WithStore(fs))
	ann, _ := join(t, r, sioclient.WebSocket, "ann")

	fs.fail.Store(true)
	if resp, body := get(t, r.URL()+"/healthz", nil); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, errDown.Error()) {
		t.Errorf("/healthz with a failing store = %d %s, want 503 naming the error", resp.StatusCode, body)
	}
	ann.write("lost")
	ann.expectError(EventWriteMessage, CodeInternal)
	fs.fail.Store(false)

	fs.panic.Store(true)
	if got := ann.ack(EventWriteMessage, map[string]any{"message": "boom", "username": "ann"}); got.OK || got.Code != CodeInternal {
		t.Errorf("ack after a handler panic = %+v", got)
	}
	ann.expectError(EventWriteMessage, CodeInternal)
	fs.panic.Store(false)

	ann.write("fine")
	var m messagesPayload
	ann.expect(EventMessageWritten, &m)
	if diff := cmp.Diff([]store.Message{{Username: "ann", Message: "fine"}}, m.MessagesList); diff != "" {
		t.Fatalf("history after failures (-want +got):\n%s", diff)
	}
	if resp, _ := get(t, r.URL()+"/healthz", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz after recovery = %d", resp.StatusCode)
	}
}

// MaxConnections and MaxConnectionsPerIP refuse with CONNECT_ERROR naming
// the cap, and free the slot when a socket leaves.
func TestConnectionCaps(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"per ip", func(c *Config) { c.MaxConnectionsPerIP = 2 }, "too many connections from 127.0.0.1"},
		{"total", func(c *Config) { c.MaxConnections = 2 }, "server full"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startServer(t, tc.mutate)
			first := dial(t, r, sioclient.WebSocket)
			dial(t, r, sioclient.Polling)
			_, err := dialErr(r, sioclient.WebSocket)
			ce, ok := isConnectError(err)
			if !ok || !strings.Contains(ce.Message, tc.want) {
				t.Fatalf("third dial: %v, want CONNECT_ERROR containing %q", err, tc.want)
			}
			first.Close()
			waitUntil(t, "the slot to be released", func() bool { total, _ := r.Server().conns.count("127.0.0.1"); return total == 1 })
			c, err := dialErr(r, sioclient.WebSocket)
			if err != nil {
				t.Fatalf("dial after a slot was freed: %v", err)
			}
			c.Close()
		})
	}
}

// Transports limits what the server accepts.
func TestTransportsConfig(t *testing.T) {
	r := startServer(t, func(c *Config) { c.Transports = []string{TransportWebSocket} })
	if _, err := dialErr(r, sioclient.Polling); err == nil {
		t.Fatal("polling dial succeeded on a websocket-only server")
	}
	c, err := dialErr(r, sioclient.WebSocket)
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	c.Close()
}

// HTTPCompressionThreshold: polling responses at or over it are compressed
// for a client that accepts gzip (Go's transport asks for it); 0 turns
// compression off, where the library's own default would compress.
func TestHTTPCompression(t *testing.T) {
	big := strings.Repeat("x", 2000) // a messageWritten over the library's 1024
	for _, tc := range []struct {
		name      string
		threshold int
		want      bool
	}{
		{"default", DefaultConfig().HTTPCompressionThreshold, true},
		{"off", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startServer(t, func(c *Config) { c.HTTPCompressionThreshold = tc.threshold })
			rec := &compressionRecorder{base: http.DefaultTransport.(*http.Transport).Clone()}
			t.Cleanup(rec.base.CloseIdleConnections)
			ctx, cancel := context.WithTimeout(t.Context(), waitFor)
			defer cancel()
			conn, err := sioclient.Dial(ctx, sioclient.Options{URL: r.URL(), Path: r.Server().cfg.Path, Transport: sioclient.Polling, HTTPClient: &http.Client{Transport: rec}})
			if err != nil {
				t.Fatal(err)
			}
			c := &client{t: t, name: "zip", Conn: conn}
			t.Cleanup(func() { c.Close() })
			c.emit(EventConnecting, map[string]any{"username": c.name})
			c.expect(EventConnected, nil)
			c.write(big)
			c.expect(EventMessageWritten, nil)
			if got := rec.compressed.Load() > 0; got != tc.want {
				t.Errorf("threshold %d: a compressed polling response: %v, want %v", tc.threshold, got, tc.want)
			}
		})
	}
}

// compressionRecorder counts responses the transport decompressed.
type compressionRecorder struct {
	base       *http.Transport
	compressed atomic.Int32
}

func (c *compressionRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err == nil && resp.Uncompressed {
		c.compressed.Add(1)
	}
	return resp, err
}

// CORS: none by default; listed origins are allowed and echoed.
func TestCORS(t *testing.T) {
	handshake := "/socket.io/?EIO=4&transport=polling"
	evil := http.Header{"Origin": {"http://evil.example"}}

	r := startServer(t, nil)
	if resp, _ := get(t, r.URL()+handshake, evil); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("default config sent Access-Control-Allow-Origin %q", resp.Header.Get("Access-Control-Allow-Origin"))
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	if c, err := sioclient.Dial(ctx, sioclient.Options{URL: r.URL(), Transport: sioclient.WebSocket, Header: evil}); err == nil {
		c.Close()
		t.Errorf("default config accepted a cross-origin websocket")
	}

	r = startServer(t, func(c *Config) { c.CORSOrigins = []string{"http://chat.example"} })
	resp, _ := get(t, r.URL()+handshake, http.Header{"Origin": {"http://chat.example"}})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "http://chat.example" {
		t.Errorf("allowed origin: Access-Control-Allow-Origin = %q", got)
	}
	if resp, _ := get(t, r.URL()+handshake, evil); resp.Header.Get("Access-Control-Allow-Origin") == "http://evil.example" {
		t.Errorf("unlisted origin was allowed")
	}
}

// SEC-3: a packet over MaxHTTPBufferSize ends that connection only.
func TestMaxPayload_SEC3(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr sioclient.Transport) {
		r := startServer(t, func(c *Config) { c.MaxHTTPBufferSize = 8 << 10 })
		ann, _ := join(t, r, tr, "ann")
		big, _ := join(t, r, tr, "big")
		ann.expect(EventJoined, nil)
		_ = big.SendRaw(t.Context(), `2["writeMessage",{"message":"`+strings.Repeat("x", 64<<10)+`","username":"big"}]`)
		select {
		case <-big.Done():
		case <-time.After(waitFor):
			t.Fatal("SEC-3: the server kept a connection that sent more than maxPayload")
		}
		var u usersPayload
		ann.expect(EventDisconnected, &u)
		ann.write("still here")
		var m messagesPayload
		ann.expect(EventMessageWritten, &m)
		if diff := cmp.Diff([]store.Message{{Username: "ann", Message: "still here"}}, m.MessagesList); diff != "" {
			t.Fatalf("SEC-3: history (-want +got):\n%s", diff)
		}
	})
}

// Stop disconnects clients and returns nil; the port is released.
func TestGracefulShutdown(t *testing.T) {
	cfg := testConfig()
	r, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ws, _ := join(t, r, sioclient.WebSocket, "ann")
	poll, _ := join(t, r, sioclient.Polling, "bob")
	ws.expect(EventJoined, nil)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	start := time.Now()
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	d := time.Since(start)
	t.Logf("Stop took %v with a websocket and a polling client", d)
	if d > cfg.ShutdownTimeout {
		t.Errorf("Stop took %v, longer than ShutdownTimeout %v", d, cfg.ShutdownTimeout)
	}
	for _, c := range []*client{ws, poll} {
		select {
		case <-c.Done():
		case <-time.After(waitFor):
			t.Errorf("%s still connected after Stop", c.name)
		}
	}
	if err := r.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := http.Get(r.URL() + "/healthz"); err == nil {
		t.Errorf("server still answers after Stop")
	}
}

func TestServeTwice(t *testing.T) {
	srv, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	waitUntil(t, "the first Serve to start", func() bool {
		resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ctx, ln2); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second Serve: %v, want an error saying it serves once", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func TestStartAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig()
	cfg.Addr = ln.Addr().String()
	if _, err := Start(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start on a busy port: %v, want an address-in-use error", err)
	}
}

// Several servers live in one process: each has its own registry.
func TestTwoServersOneProcess(t *testing.T) {
	a := startServer(t, nil)
	b := startServer(t, nil)
	if a.URL() == b.URL() {
		t.Fatal("two servers on one URL")
	}
}
