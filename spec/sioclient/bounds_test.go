package sioclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// heapPeak samples HeapInuse until stop is closed and returns the peak.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// A server that streams large events to a client that does not read ends
// the connection at MaxQueuedBytes, not at MaxQueuedEvents events of up to
// MaxPacketBytes each: the queue's memory stays bounded.
func TestQueueIsBoundedInBytes(t *testing.T) {
	big := fmt.Appendf(nil, `42["flood","%s"]`, strings.Repeat("x", 1<<20)) // 1 MiB a frame
	var sent atomic.Int64
	u := fakeWSServer(t, func(ctx context.Context, ws *websocket.Conn) {
		for i := 0; i < 512; i++ { // at most 512 MiB, far past the bound
			if ws.Write(ctx, websocket.MessageText, big) != nil {
				return
			}
			sent.Add(1)
		}
		_, _, _ = ws.Read(ctx)
	})
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := make(chan struct{})
	peak := heapPeak(stop)
	const bound = 8 << 20
	c, err := Dial(ctxT(t, 5*time.Second), Options{URL: u, MaxQueuedBytes: bound})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Abort()
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("the connection did not end after %d MiB were queued", sent.Load())
	}
	close(stop)
	if !errors.Is(c.Err(), ErrQueueOverflow) {
		t.Errorf("Err() = %v, want ErrQueueOverflow", c.Err())
	}
	if n := sent.Load(); n > 64 {
		t.Errorf("the server could send %d MiB before the client gave up (bound %d MiB)", n, bound>>20)
	}
	// The queue holds at most 8 MiB; frames in flight and the fake
	// server's own buffers come on top. Without the byte bound the client
	// queues all 512 MiB.
	if grew := int64(<-peak) - int64(base.HeapInuse); grew > 64<<20 {
		t.Errorf("heap in use grew by %d MiB for a queue bounded at %d MiB", grew>>20, bound>>20)
	}
}

// Over long-polling, a server that answers GETs with pings but holds every
// POST (where the pongs go) ends the session once MaxPacketBytes wait to
// be sent, instead of growing the backlog without end.
func TestPollingSendBacklogIsBounded(t *testing.T) {
	pings := strings.Repeat("\x1e2", 4096)[1:] // 4096 pings, 8 KiB
	var gets, posts atomic.Int32
	release := make(chan struct{})
	u := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && posts.Add(1) == 1:
			io.WriteString(w, "ok") // the CONNECT
		case r.Method == http.MethodPost:
			select { // held until the test ends
			case <-r.Context().Done():
			case <-release:
			}
		case gets.Add(1) == 1:
			io.WriteString(w, `0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`)
		case gets.Load() == 2:
			io.WriteString(w, `40{"sid":"x"}`)
		default:
			io.WriteString(w, pings)
		}
	})
	t.Cleanup(func() { close(release) }) // before fakeServer's cleanup
	const max = 64 << 10
	c, err := Dial(ctxT(t, 5*time.Second), Options{URL: u, Transport: Polling, MaxPacketBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Abort()
	select {
	case <-c.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("the session did not end after %d GETs of pings", gets.Load())
	}
	if !errors.Is(c.Err(), ErrSendBacklog) {
		t.Errorf("Err() = %v, want ErrSendBacklog", c.Err())
	}
	// Each GET brings 4096 pongs (8 KiB); the bound is 64 KiB.
	if n := gets.Load(); n > 40 {
		t.Errorf("%d GETs were answered before the backlog bound ended the session", n)
	}
}
