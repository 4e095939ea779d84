package framework

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chatspec/chatspec/spec/lag"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// eventServer is the least Socket.IO server over WebSocket that a Client
// can connect to: it accepts one connection and then sends every frame
// given to send, as is.
type eventServer struct {
	*httptest.Server
	send chan string
}

func startEventServer(t *testing.T) *eventServer {
	t.Helper()
	s := &eventServer{send: make(chan string, 16)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		if c.Write(ctx, websocket.MessageText, []byte(`0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`)) != nil {
			return
		}
		if _, msg, err := c.Read(ctx); err != nil || string(msg) != "40" {
			return
		}
		if c.Write(ctx, websocket.MessageText, []byte(`40{"sid":"n1"}`)) != nil {
			return
		}
		go func() { // the client's own frames (its close) end the handler
			for {
				if _, _, err := c.Read(ctx); err != nil {
					c.CloseNow()
					return
				}
			}
		}()
		for {
			select {
			case f := <-s.send:
				if c.Write(ctx, websocket.MessageText, []byte(f)) != nil {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// testClient connects a Client to srv outside any Ginkgo spec; findings
// go to the returned function.
func testClient(t *testing.T, srv *eventServer) (*Client, func() []string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r := &run{cfg: Config{StepTimeout: time.Second, RunID: "t1"}, ctx: ctx, lag: lag.Start(ctx)}
	var mu sync.Mutex
	var findings []string
	f := &Framework{run: r, started: time.Now(), CaseID: "TEST-1", budget: newCaseBudget(), onFinding: func(s string) {
		mu.Lock()
		defer mu.Unlock()
		findings = append(findings, s)
	}}
	conn, err := sioclient.Dial(ctx, sioclient.Options{URL: srv.URL, Transport: sioclient.WebSocket, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(f, "observer", "u", conn, 0)
	t.Cleanup(c.shutdown)
	return c, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), findings...)
	}
}

// TestAwaitNoticesItsOwnReaderIsBehind is issue 9's HIST-2 false failure
// in miniature: the event reaches the socket at once, but the harness's
// reader (slowed here, starved on a busy machine) processes it only after
// the wait's timeout. The wait must find it, and say the harness was late.
func TestAwaitNoticesItsOwnReaderIsBehind(t *testing.T) {
	srv := startEventServer(t)
	readerDelay = func() { time.Sleep(400 * time.Millisecond) }
	t.Cleanup(func() { readerDelay = nil })
	c, findings := testClient(t, srv)
	big := `{"messagesList":[` + strings.Repeat(`{"username":"x","message":"y"},`, 3000) + `{"username":"u","message":"late"}]}`
	srv.send <- `42["messageWritten",` + big + `]`
	// Start waiting once the reader has taken the event off the socket
	// (it is then busy, slowed, for 400 ms): the socket received it before
	// the wait began, whatever the load on the machine.
	for busy := false; !busy; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		busy = !c.idle && len(c.records) == 0 && !c.idleAt.IsZero()
		c.mu.Unlock()
	}
	const timeout = 150 * time.Millisecond
	start := time.Now()
	r, err := c.awaitFunc(t.Context(), timeout, "the big event", func(r Received) bool { return r.Name == "messageWritten" })
	if err != nil {
		t.Fatalf("await: %v, want the event the socket received in time", err)
	}
	if took := time.Since(start); took < timeout {
		t.Errorf("the event came after %s, before the %s timeout: the reader was not slowed, the test proves nothing", took, timeout)
	}
	if r.Payload.MessageIndex("late") < 0 {
		t.Errorf("the event's payload was not decoded: %+v", r.Payload)
	}
	got := findings()
	if len(got) != 1 || !strings.Contains(got[0], "harness behind, not the server") {
		t.Errorf("findings %q, want one saying the harness, not the server, was behind", got)
	}
}

// TestAwaitStillFailsWhenNothingCame: catching up never invents an event:
// with the reader slowed and nothing sent, the wait fails, within a bound.
func TestAwaitStillFailsWhenNothingCame(t *testing.T) {
	srv := startEventServer(t)
	readerDelay = func() { time.Sleep(400 * time.Millisecond) }
	t.Cleanup(func() { readerDelay = nil })
	c, findings := testClient(t, srv)
	srv.send <- `42["joined",{"connectedUserList":[]}]`
	const timeout = 150 * time.Millisecond
	start := time.Now()
	_, err := c.awaitFunc(t.Context(), timeout, "a messageWritten", func(r Received) bool { return r.Name == "messageWritten" })
	if err == nil || !strings.Contains(err.Error(), "none arrived within 150ms") {
		t.Errorf("await: %v, want 'none arrived within 150ms'", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the failing wait took %s, want it bounded (timeout + catch-up)", took)
	}
	if got := findings(); len(got) != 0 {
		t.Errorf("findings %q, want none for a wait that failed", got)
	}
}
