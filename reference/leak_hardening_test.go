package reference

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// churnHTTP carries the churned clients' HTTP, so that a test can close
// its idle keep-alive connections: those are the client's, not a leak.
var churnHTTP = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}

// churn opens n sockets over tr with `workers` at a time, joins every
// other one, and closes them all; it returns when every client is closed.
func churn(tb testing.TB, r *Running, tr sioclient.Transport, n, workers int) {
	tb.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	jobs := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				if err := openAndClose(r, tr, i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	churnHTTP.CloseIdleConnections()
	if len(errs) > 0 {
		tb.Fatalf("%d of %d connections failed; first: %v", len(errs), n, errs[0])
	}
}

func openAndClose(r *Running, tr sioclient.Transport, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := sioclient.Dial(ctx, sioclient.Options{URL: r.URL(), Transport: tr, HTTPClient: churnHTTP, OnEvent: func(sioclient.Event) {}})
	if err != nil {
		return err
	}
	defer c.Close()
	if i%2 == 0 {
		if _, err := c.EmitWithAck(ctx, EventConnecting, map[string]any{"username": fmt.Sprintf("churn%d", i)}); err != nil {
			return fmt.Errorf("join: %w", err)
		}
	}
	return nil
}

// settledGoroutines waits until the goroutine count is at most want, and
// returns the last count seen.
func settledGoroutines(want int, within time.Duration) int {
	deadline := time.Now().Add(within)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// No goroutine leaks: after 600 sockets (a third per transport, half of
// them joined) have connected and closed, the server's goroutines are
// back to where they were with one idle client, and after Stop nothing of
// the server is left at all.
func TestNoGoroutineLeakAfterChurn(t *testing.T) {
	opts := goleak.IgnoreCurrent()
	r, err := Start(context.Background(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv := r.Server()
	watcher, _ := join(t, r, sioclient.WebSocket, "watcher")
	churn(t, r, sioclient.WebSocket, 10, 2) // warm up lazily started goroutines
	waitUntil(t, "warm-up sockets to go", func() bool { return metricValue(srv.m.connections) == 1 })
	base := settledGoroutines(0, 200*time.Millisecond)
	t.Logf("goroutines with one idle client: %d", base)

	for _, tr := range allTransports {
		churn(t, r, tr, 200, 8)
	}
	waitUntil(t, "every churned socket to be gone", func() bool { return metricValue(srv.m.connections) == 1 })
	// A polling socket's last GET may finish a moment after its close.
	n := settledGoroutines(base+10, 5*time.Second)
	t.Logf("goroutines after 600 sockets came and went: %d", n)
	if n > base+10 { // a leak per socket would be hundreds
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before the churn, %d after (leak)\n%s", base, n, buf[:runtime.Stack(buf, true)])
	}
	watcher.write("still here")
	if _, err := watcher.NextNamed(t.Context(), EventMessageWritten); err != nil {
		t.Fatalf("watcher after the churn: %v", err)
	}
	watcher.Close()

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := goleak.Find(opts,
		// The server library's timers (ping, ping timeout, a polling
		// transport's 30 s close timeout) each end by themselves after their
		// duration and hold nothing of ours; the library leaves some running
		// past a close. A goroutine of ours or a connection left open is still
		// caught.
		goleak.IgnoreTopFunction("github.com/zishang520/socket.io/v3/pkg/utils.SetTimeout.func1")); err != nil {
		t.Fatalf("after Stop: %v", err)
	}
}
