package framework

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// floodServer is a hostile Engine.IO server over WebSocket: after the
// namespace CONNECT it sends frame up to limit times without pause, and
// never reads what the client sends.
func floodServer(t *testing.T, frame []byte, limit int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ws.SetReadLimit(1 << 20)
		ctx := r.Context()
		if ws.Write(ctx, websocket.MessageText, []byte(`0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`)) != nil {
			return
		}
		if _, _, err := ws.Read(ctx); err != nil { // CONNECT
			return
		}
		if ws.Write(ctx, websocket.MessageText, []byte(`40{"sid":"x"}`)) != nil {
			return
		}
		for i := 0; i < limit; i++ {
			if ws.Write(ctx, websocket.MessageText, frame) != nil {
				return
			}
		}
	}))
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	return srv.URL
}

// floodedClient connects one recording client of a case with the given
// budget to the flood server.
func floodedClient(t *testing.T, u string, step time.Duration, budget *caseBudget) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := sioclient.Dial(ctx, sioclient.Options{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	r := &run{cfg: Config{StepTimeout: step, QuietWindow: DefaultQuietWindow}, ctx: context.Background()}
	f := &Framework{run: r, CaseID: "TEST-1", started: time.Now(), budget: budget}
	c := newClient(f, "alice", "alice", conn, 0)
	return c
}

// waitEnded waits until the client's recording ended and returns why.
func waitEnded(t *testing.T, c *Client, within time.Duration) error {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		ended, err, changed := c.ended, c.endErr, c.changed
		c.mu.Unlock()
		if ended {
			return err
		}
		select {
		case <-changed:
		case <-time.After(time.Until(deadline)):
		}
	}
	t.Fatalf("the client still records after %s (%d events, %d bytes)", within, c.Mark(), c.RecordedBytes())
	return nil
}

// A server that streams large events without pause: the case's clients
// stop recording at the case's byte budget, the connection is dropped and
// the heap stays near the budget (issue 13: 55 MB/s, 3.3 GB at 60 s).
func TestRecorderStopsAtTheCasesByteBudget(t *testing.T) {
	frame := fmt.Appendf(nil, `42["messageWritten",{"messagesList":[{"username":"m","message":"%s"}]}]`, strings.Repeat("x", 256<<10))
	u := floodServer(t, frame, 4096) // at most 1 GiB
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := make(chan struct{})
	peak := make(chan uint64, 1)
	go func() {
		var p uint64
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			p = max(p, ms.HeapInuse)
			select {
			case <-stop:
				peak <- p
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	const budget = 16 << 20
	c := floodedClient(t, u, time.Second, &caseBudget{maxBytes: budget, maxEvents: MaxEventsPerClient})
	err := waitEnded(t, c, 30*time.Second)
	close(stop)
	var limit *RecordLimitError
	if !errors.As(err, &limit) {
		t.Fatalf("the recording ended with %v, want a RecordLimitError", err)
	}
	if got := c.RecordedBytes(); got > budget+int64(len(frame)) {
		t.Errorf("the case's clients counted %d bytes, more than the budget %d plus one event", got, budget)
	}
	var kept int
	for _, r := range c.Events() {
		kept += len(r.Args)
	}
	if kept > budget {
		t.Errorf("the client kept %d bytes of events, budget %d", kept, budget)
	}
	// Raw events, their decoded payloads, and what is in flight: a few
	// times the budget, never the gigabyte the server would send.
	if grew := int64(<-peak) - int64(base.HeapInuse); grew > 8*budget {
		t.Errorf("heap in use grew by %d MiB for a budget of %d MiB", grew>>20, budget>>20)
	}
	// A wait on the stopped client fails at once, naming the bound.
	start := time.Now()
	_, aerr := c.await(context.Background(), time.Second, "joined", nil)
	if aerr == nil || !strings.Contains(aerr.Error(), "stopped recording") || time.Since(start) > 500*time.Millisecond {
		t.Errorf("await after the limit: %v after %s; want an immediate error naming the bound", aerr, time.Since(start))
	}
	start = time.Now()
	c.shutdown()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closing the flooded client took %s", d)
	}
}

// Against a server that streams small events without pause, a wait for an
// event that never comes still ends at its timeout (the case's deadline
// holds), and one client keeps at most MaxEventsPerClient events.
func TestRecorderDeadlinesHoldUnderAFlood(t *testing.T) {
	frame := []byte(`42["joined",{"connectedUserList":[{"username":"flood"}]}]`)
	u := floodServer(t, frame, 200_000)
	const step = 500 * time.Millisecond
	c := floodedClient(t, u, step, &caseBudget{maxBytes: MaxBytesPerCase, maxEvents: 20_000})
	defer c.shutdown()
	start := time.Now()
	_, err := c.await(context.Background(), step, "connected", nil)
	took := time.Since(start)
	if err == nil {
		t.Fatal("an event the server never sent was found")
	}
	// The bound comes from the wait's own timeout, with room for a loaded
	// machine; before the fix such waits took 10-20 s for a 3 s timeout.
	if took > 2*step+time.Second {
		t.Errorf("a %s wait took %s under the flood: %v", step, took, err)
	}
	var limit *RecordLimitError
	if err := waitEnded(t, c, 30*time.Second); !errors.As(err, &limit) {
		t.Fatalf("the recording ended with %v, want a RecordLimitError", err)
	}
	if n := len(c.Events()); n > 20_000 {
		t.Errorf("the client kept %d events, bound 20000", n)
	}
}

// The byte bound leaves a case not verified, the event bound fails it:
// byteBoundIn finds only the former, through the wait's wrapping.
func TestByteBoundIsFoundThroughAWait(t *testing.T) {
	bytesErr := fmt.Errorf("observer: expected x, but the connection ended first (%w)", &RecordLimitError{Limit: "32 MiB", Bytes: true})
	eventsErr := fmt.Errorf("observer: expected x, but the connection ended first (%w)", &RecordLimitError{Limit: "10000 events"})
	if byteBoundIn([]any{"observer", bytesErr}) == nil {
		t.Error("a wait ended by the byte bound was not recognised")
	}
	if byteBoundIn([]any{eventsErr}) != nil {
		t.Error("a wait ended by the event bound was taken for the byte bound: it must fail its case")
	}
	if byteBoundIn([]any{errors.New("none arrived within 3s")}) != nil {
		t.Error("a plain timeout was taken for the byte bound")
	}
}
