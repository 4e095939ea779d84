package reference

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// Issue 13: sockets that each write within SEC-4's per-socket rate can
// still ask, together, for more output than the server can send. Six
// flooders write 500-byte messages every 5 ms (the per-socket limit off,
// as if each were under it) while two users chat every 250 ms. The
// chat-wide rate holds what is broadcast to the rate (plus what the
// buckets start with), the flooders are refused server_busy, and the two
// users, each writing within a fair share, have every write accepted.
// Without the rate (the control) the same flood is broadcast unchecked.
func TestBroadcastRateHoldsAFlood(t *testing.T) {
	const (
		rate     = 4 << 20 // bytes per second, all sockets
		flooders = 6
		floodFor = 3 * time.Second
	)
	run := func(t *testing.T, broadcastRate int64) (broadcast float64, elapsed time.Duration, busy float64, normalOK, normalTries int) {
		r := startServer(t, func(c *Config) {
			c.Rate = 0
			c.HistoryLimit = 20
			c.BroadcastRate = broadcastRate
		})
		text := strings.Repeat("f", 500)
		var floodClients, userClients []*client
		for i := range flooders {
			c, _ := join(t, r, sioclient.WebSocket, fmt.Sprintf("flood%d", i))
			floodClients = append(floodClients, c)
		}
		for i := range 2 {
			c, _ := join(t, r, sioclient.WebSocket, fmt.Sprintf("user%d", i))
			userClients = append(userClients, c)
		}
		ctx, cancel := context.WithTimeout(context.Background(), floodFor)
		defer cancel()
		var wg sync.WaitGroup
		var floodErr atomic.Value
		start := time.Now()
		for _, c := range floodClients {
			wg.Go(func() {
				for ctx.Err() == nil {
					if err := c.Emit(ctx, EventWriteMessage, map[string]any{"message": text, "username": c.name}); err != nil && ctx.Err() == nil {
						floodErr.Store(err)
						return
					}
					time.Sleep(5 * time.Millisecond) // the flood's own pace
				}
			})
			// Read and discard, so that only the rate, not a slow reader,
			// limits what the server sends.
			wg.Go(func() {
				for {
					if _, err := c.Next(ctx); err != nil {
						return
					}
				}
			})
		}
		var mu sync.Mutex
		for _, c := range userClients {
			wg.Go(func() {
				for ctx.Err() == nil {
					actx, acancel := context.WithTimeout(context.Background(), waitFor)
					raw, err := c.EmitWithAck(actx, EventWriteMessage, map[string]any{"message": "hello", "username": c.name})
					acancel()
					mu.Lock()
					normalTries++
					if err == nil && strings.Contains(string(raw), `"ok":true`) {
						normalOK++
					} else {
						t.Logf("%s: write answered %s (%v)", c.name, raw, err)
					}
					mu.Unlock()
					select {
					case <-ctx.Done():
					case <-time.After(250 * time.Millisecond):
					}
				}
			})
			wg.Go(func() {
				for {
					if _, err := c.Next(ctx); err != nil {
						return
					}
				}
			})
		}
		wg.Wait()
		elapsed = time.Since(start)
		if err := floodErr.Load(); err != nil {
			t.Fatalf("a flooder's emit failed: %v", err)
		}
		srv := r.Server()
		return metricValue(srv.m.broadcastBytes), elapsed, metricValue(srv.m.rejected.WithLabelValues(CodeServerBusy)), normalOK, normalTries
	}

	t.Run("bounded", func(t *testing.T) {
		broadcast, elapsed, busy, ok, tries := run(t, rate)
		// The chat's bucket (one second) and the shares' first windows
		// (two seconds of the rate in all) come on top of the rate.
		bound := float64(rate) * (elapsed.Seconds() + 3)
		t.Logf("broadcast %.1f MB in %v (bound %.1f MB); %g writes refused server_busy; the users' writes accepted %d of %d", broadcast/1e6, elapsed.Round(time.Millisecond), bound/1e6, busy, ok, tries)
		if broadcast > bound {
			t.Errorf("broadcast %.0f bytes in %v, more than the rate allows (%.0f)", broadcast, elapsed, bound)
		}
		if busy == 0 {
			t.Errorf("no write refused server_busy under a flood")
		}
		if tries < 4 || ok != tries {
			t.Errorf("the users within their share had %d of %d writes accepted", ok, tries)
		}
	})
	t.Run("control without the rate", func(t *testing.T) {
		broadcast, elapsed, busy, _, _ := run(t, 0)
		bound := float64(rate) * (elapsed.Seconds() + 3)
		t.Logf("broadcast %.1f MB in %v (the bounded run's bound %.1f MB)", broadcast/1e6, elapsed.Round(time.Millisecond), bound/1e6)
		if broadcast <= bound {
			t.Errorf("the flood without the rate broadcast only %.0f bytes (bound %.0f): this test cannot tell the rate at work", broadcast, bound)
		}
		if busy != 0 {
			t.Errorf("%g writes refused server_busy with the rate off", busy)
		}
	})
}
