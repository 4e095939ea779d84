package reference

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// BenchmarkMemoryNonReaderFlood is issue 13's attack at full size: 150 raw
// WebSocket clients join, send writeMessage as fast as the rate limit
// lets through (1,000-byte messages) and never read; when the server
// drops one, it reconnects and starts again. Four normal users chat
// meanwhile (one message each every 500 ms) and measure the fan-out of
// each other's messages. After floodFor the attackers stop; the benchmark
// samples RSS until it is back within 32 MiB of the baseline.
//
//	go test -run '^$' -bench 'MemoryNonReaderFlood' -benchtime 1x ./reference/
//
// Sub-benchmarks: the defaults; the defaults without the shared budget and
// the reclaim (only the 8 MiB per-connection bound: the server before
// issue 13).
func BenchmarkMemoryNonReaderFlood(b *testing.B) {
	for _, bc := range []struct {
		name   string
		budget bool
	}{
		{"defaults", true},
		{"per_connection_bound_only", false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for range b.N {
				var opts []Option
				mutate := func(c *Config) {
					d := DefaultConfig()
					c.Rate, c.RateBurst, c.HistoryLimit = d.Rate, d.RateBurst, d.HistoryLimit
					c.PingInterval, c.PingTimeout = d.PingInterval, d.PingTimeout
					c.SlowReaderLimit, c.SlowReaderTimeout = d.SlowReaderLimit, d.SlowReaderTimeout
					if !bc.budget {
						c.OutputBudget = 0
					}
				}
				if !bc.budget {
					opts = append(opts, withoutReclaim())
				}
				floodNonReaders(b, mutate, opts...)
			}
		})
	}
}

const (
	floodClients = 150
	floodFor     = 20 * time.Second
	recoverBound = 32 // MiB above the baseline RSS that counts as recovered
	recoverLimit = 3 * time.Minute
)

func floodNonReaders(b *testing.B, mutate func(*Config), opts ...Option) {
	runtime.GC()
	base := rssMB()
	cfg := testConfig()
	mutate(&cfg)
	r, err := Start(context.Background(), cfg, opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), waitFor)
		defer scancel()
		if err := r.Stop(sctx); err != nil {
			b.Errorf("Stop: %v", err)
		}
	}()
	srv := r.Server()

	// Normal users: read everything, measure the fan-out of each other's
	// messages (the newest entry of each messageWritten).
	var (
		mu    sync.Mutex
		sent  = map[string]time.Time{}
		lat   []time.Duration
		users []*sioclient.Conn
		names []string
	)
	for i := range 4 {
		jctx, jcancel := context.WithTimeout(context.Background(), waitFor)
		c, err := sioclient.Dial(jctx, sioclient.Options{URL: r.URL(), Path: cfg.Path, Transport: sioclient.WebSocket})
		if err == nil {
			name := fmt.Sprintf("user%d", i)
			err = c.Emit(jctx, EventConnecting, map[string]any{"username": name})
			if err == nil {
				_, err = c.NextNamed(jctx, EventConnected)
			}
			names = append(names, name)
		}
		jcancel()
		if err != nil {
			b.Fatalf("normal user %d: %v", i, err)
		}
		users = append(users, c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, c := range users {
		wg.Go(func() {
			for {
				ev, err := c.Next(ctx)
				if err != nil {
					return
				}
				if ev.Name != EventMessageWritten {
					continue
				}
				var m messagesPayload
				if ev.Decode(0, &m) != nil || len(m.MessagesList) == 0 {
					continue
				}
				last := m.MessagesList[len(m.MessagesList)-1]
				mu.Lock()
				if t0, ok := sent[last.Message]; ok && last.Username != names[i] {
					lat = append(lat, time.Since(t0))
				}
				mu.Unlock()
			}
		})
		wg.Go(func() {
			tick := time.NewTicker(500 * time.Millisecond)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				text := fmt.Sprintf("normal %d-%d", i, n)
				mu.Lock()
				sent[text] = time.Now()
				mu.Unlock()
				ectx, ecancel := context.WithTimeout(ctx, waitFor)
				_ = c.Emit(ectx, EventWriteMessage, map[string]any{"message": text, "username": names[i]})
				ecancel()
			}
		})
	}

	// The attackers.
	attack, stopAttack := context.WithCancel(context.Background())
	var reconnects atomic.Int64
	var awg sync.WaitGroup
	url := "ws" + strings.TrimPrefix(r.URL(), "http") + srv.cfg.Path + "?EIO=4&transport=websocket"
	for i := range floodClients {
		awg.Go(func() {
			for attack.Err() == nil {
				floodOnce(attack, url, "flood"+strconv.Itoa(i))
				reconnects.Add(1)
			}
		})
	}

	// Sample RSS during the flood and the recovery.
	var peakRSS, peakHeap float64
	var peakUnwritten int64
	sample := func() float64 {
		rss := rssMB()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peakRSS = max(peakRSS, rss)
		peakHeap = max(peakHeap, float64(ms.HeapInuse)/(1<<20))
		var sum int64
		srv.writers.Range(func(_, v any) bool { sum += v.(*slowReader).pending(); return true })
		peakUnwritten = max(peakUnwritten, sum)
		return rss
	}
	start := time.Now()
	for time.Since(start) < floodFor {
		sample()
		time.Sleep(250 * time.Millisecond)
	}
	stopAttack()
	awg.Wait()
	ended := time.Now()
	rssAtEnd := sample()
	recovered := time.Duration(-1)
	for time.Since(ended) < recoverLimit {
		if sample() <= base+recoverBound {
			recovered = time.Since(ended)
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	cancel()
	for _, c := range users {
		c.Close()
	}
	wg.Wait()

	mu.Lock()
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	p50, p99, n := pct(0.5), pct(0.99), len(lat)
	mu.Unlock()
	budgetDrops := int64(0)
	if srv.budget != nil {
		budgetDrops = srv.budget.drops.Load()
	}
	b.ReportMetric(base, "base_rss_MB")
	b.ReportMetric(peakRSS, "peak_rss_MB")
	b.ReportMetric(peakHeap, "peak_heap_MB")
	b.ReportMetric(float64(peakUnwritten)/(1<<20), "peak_unwritten_MB")
	b.ReportMetric(rssAtEnd, "rss_at_end_MB")
	b.ReportMetric(recovered.Seconds(), "recover_s")
	b.ReportMetric(float64(p50.Milliseconds()), "fanout_p50_ms")
	b.ReportMetric(float64(p99.Milliseconds()), "fanout_p99_ms")
	b.Logf("%d non-readers for %s: %d (re)connections, %d dropped (%d by the budget), %d reclaims; normal users' fan-out over %d deliveries p50 %s p99 %s; RSS base %.0f MB, peak %.0f MB (heap in use %.0f MB, unwritten %.0f MB), at the end of the attack %.0f MB, back within %d MB of the base after %s",
		floodClients, floodFor, reconnects.Load(), srv.slowDrops.Load(), budgetDrops, srv.reclaim.runs.Load(), n, p50, p99,
		base, peakRSS, peakHeap, float64(peakUnwritten)/(1<<20), rssAtEnd, recoverBound, recoveredString(recovered))
}

func recoveredString(d time.Duration) string {
	if d < 0 {
		return "more than " + recoverLimit.String()
	}
	return d.Round(250 * time.Millisecond).String()
}

// floodOnce is one attacking connection: it joins, then sends 1,000-byte
// messages every 10 ms and a blind pong every 5 s, never reading, until
// the server closes it or the attack ends.
func floodOnce(ctx context.Context, url, name string) {
	dctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	c, _, err := websocket.Dial(dctx, url, nil)
	if err != nil {
		time.Sleep(100 * time.Millisecond)
		return
	}
	defer c.CloseNow()
	if _, _, err := c.Read(dctx); err != nil { // the Engine.IO open
		return
	}
	text := strings.Repeat("x", 1000)
	send := func(p string) error {
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		defer wcancel()
		return c.Write(wctx, websocket.MessageText, []byte(p))
	}
	if send("40") != nil || send(`42["connecting",{"username":"`+name+`"}]`) != nil {
		return
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	lastPong := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(lastPong) > 5*time.Second {
			if send("3") != nil {
				return
			}
			lastPong = time.Now()
		}
		if send(`42["writeMessage",{"message":"`+text+`","username":"`+name+`"}]`) != nil {
			return
		}
	}
}
