package reference

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// The memory measurements of HARDENING.md. They are benchmarks,
// not tests: run them once each, without -race:
//
//	go test -run '^$' -bench 'Memory' -benchtime 1x ./reference/
//
// Server and clients share the process, so the figures are measured
// after the clients have gone and a GC: heap_MB is the live heap, rss_MB
// the process's resident set (which also holds what the clients used and
// the Go runtime has not returned to the OS), goroutines the live count.

// memSnapshot is the process's live heap, RSS and goroutines after a GC.
type memSnapshot struct {
	heapMB, rssMB float64
	goroutines    int
}

func snapshot() memSnapshot {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSnapshot{heapMB: float64(ms.HeapAlloc) / (1 << 20), rssMB: rssMB(), goroutines: runtime.NumGoroutine()}
}

// rssMB reads VmRSS from /proc/self/status (Linux); 0 elsewhere.
func rssMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func report(b *testing.B, prefix string, s memSnapshot) {
	b.ReportMetric(s.heapMB, prefix+"heap_MB")
	b.ReportMetric(s.rssMB, prefix+"rss_MB")
	b.ReportMetric(float64(s.goroutines), prefix+"goroutines")
}

// benchServer starts a server for a memory benchmark.
func benchServer(b *testing.B, mutate func(*Config)) *Running {
	cfg := testConfig()
	cfg.PingInterval = 5 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	r, err := Start(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Stop(context.Background()) })
	return r
}

// flood sends total writeMessage events of msgLen bytes from `senders`
// WebSocket clients as fast as they can (no waiting for replies), then
// waits until the server has handled all of them (an acked event after the
// flood, which a socket handles in order) and closes the clients.
//
// It returns how many senders' connections failed: the slow-reader guard
// drops a flooder that does not read its own broadcasts fast enough.
func flood(b *testing.B, r *Running, senders, total, msgLen int) (failed int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	text := strings.Repeat("f", msgLen)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	for i := range senders {
		name := fmt.Sprintf("flooder%d", i)
		c, err := sioclient.Dial(ctx, sioclient.Options{URL: r.URL(), Transport: sioclient.WebSocket, OnEvent: func(sioclient.Event) {}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.EmitWithAck(ctx, EventConnecting, map[string]any{"username": name}); err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			defer c.Close()
			payload := map[string]any{"message": text, "username": name}
			for range total / senders {
				if err := c.Emit(ctx, EventWriteMessage, payload); err != nil {
					fail(err)
					return
				}
			}
			if _, err := c.EmitWithAck(ctx, "chatspecBarrier"); err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		b.Logf("%d flooders lost their connection; first: %v", len(errs), errs[0])
	}
	return len(errs)
}

// peakHeap samples the live heap every 100 ms until stop is closed and
// returns the highest figure, in MB.
func peakHeap(stop <-chan struct{}) <-chan float64 {
	out := make(chan float64, 1)
	go func() {
		var peak uint64
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-stop:
				out <- float64(peak) / (1 << 20)
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// BenchmarkMemoryFlood20k: 20,000 writeMessage events of 100 bytes from 4
// sockets, with the default rate limit (20/s, burst 40: almost all are
// refused with rate_limited), with none (each accepted message is
// broadcast with the default 200-message history, about 26 KB, to all
// four; a flooder that falls 8 MiB behind on reading is dropped by the
// slow-reader guard), and with neither limit nor guard.
func BenchmarkMemoryFlood20k(b *testing.B) {
	for _, tc := range []struct {
		name  string
		rate  float64
		guard int64
	}{
		{"rate_default", DefaultConfig().Rate, DefaultConfig().SlowReaderLimit},
		{"rate_off", 0, DefaultConfig().SlowReaderLimit},
		{"rate_off_guard_off", 0, 0},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				r := benchServer(b, func(c *Config) { c.Rate, c.SlowReaderLimit, c.SlowReaderTimeout = tc.rate, tc.guard, 0 })
				before := snapshot()
				start := time.Now()
				stop := make(chan struct{})
				peak := peakHeap(stop)
				failed := flood(b, r, 4, 20_000, 100)
				close(stop)
				b.ReportMetric(<-peak, "peak_heap_MB")
				b.ReportMetric(float64(failed), "flooders_dropped")
				elapsed := time.Since(start)
				srv := r.Server()
				waitGone(b, srv)
				after := snapshot()
				report(b, "before_", before)
				report(b, "after_", after)
				b.ReportMetric(metricValue(srv.m.messages), "stored")
				b.ReportMetric(metricValue(srv.m.rejected.WithLabelValues(CodeRateLimited)), "rate_limited")
				b.ReportMetric(elapsed.Seconds(), "flood_s")
			}
		})
	}
}

// BenchmarkMemoryChurn5k: 5,000 sockets (a third per transport, half of
// them joined) opened and closed, 16 at a time.
func BenchmarkMemoryChurn5k(b *testing.B) {
	for b.Loop() {
		r := benchServer(b, nil)
		srv := r.Server()
		churn(b, r, sioclient.WebSocket, 10, 2)
		waitGone(b, srv)
		before := snapshot()
		start := time.Now()
		for i, tr := range allTransports {
			n := 5000 / 3
			if i == 0 {
				n += 5000 % 3
			}
			churn(b, r, tr, n, 16)
		}
		elapsed := time.Since(start)
		waitGone(b, srv)
		settledGoroutines(before.goroutines, 5*time.Second)
		after := snapshot()
		report(b, "before_", before)
		report(b, "after_", after)
		b.ReportMetric(elapsed.Seconds(), "churn_s")
	}
}

// waitGone waits until the server has no sockets left.
func waitGone(b *testing.B, srv *Server) {
	deadline := time.Now().Add(time.Minute)
	for metricValue(srv.m.connections) != 0 {
		if time.Now().After(deadline) {
			b.Fatalf("%g sockets still connected", metricValue(srv.m.connections))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkMemoryStalledPoller: one polling client stops polling (but
// keeps the heartbeat alive) while another writes 300 messages of 4000
// bytes with the default 200-message history, so each broadcast is up to
// about 0.8 MB. With the default slow-reader guard the stalled client is
// dropped at 8 MiB; without it the server keeps a copy of every broadcast
// for it (until the ping timeout, if it stopped ponging as well).
func BenchmarkMemoryStalledPoller(b *testing.B) {
	for _, tc := range []struct {
		name  string
		guard int64
	}{{"guard_default", DefaultConfig().SlowReaderLimit}, {"guard_off", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				r := benchServer(b, func(c *Config) {
					c.Rate, c.SlowReaderLimit, c.SlowReaderTimeout, c.PingTimeout = 0, tc.guard, 0, 20*time.Second
				})
				srv := r.Server()
				before := snapshot()
				_, stop := stallPoller(b, r, "stalled")
				ctx := context.Background()
				got := make(chan struct{}, 1)
				w, err := sioclient.Dial(ctx, sioclient.Options{URL: r.URL(), Transport: sioclient.WebSocket, OnEvent: func(ev sioclient.Event) {
					if ev.Name == EventMessageWritten {
						got <- struct{}{}
					}
				}})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.EmitWithAck(ctx, EventConnecting, map[string]any{"username": "writer"}); err != nil {
					b.Fatal(err)
				}
				done := make(chan struct{})
				peak := peakHeap(done)
				text := strings.Repeat("w", 4000)
				for range 300 {
					if err := w.Emit(ctx, EventWriteMessage, map[string]any{"message": text, "username": "writer"}); err != nil {
						b.Fatal(err)
					}
					<-got
				}
				during := snapshot()
				close(done)
				b.ReportMetric(<-peak, "peak_heap_MB")
				report(b, "before_", before)
				report(b, "after300_", during)
				b.ReportMetric(float64(srv.slowDrops.Load()), "dropped")
				stop()
				w.Close()
			}
		})
	}
}
