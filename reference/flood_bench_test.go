package reference

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// BenchmarkMemoryNonReaderFlood is issue 13's attack at full size: 150 raw
// WebSocket clients join, send writeMessage every 10 ms (the rate limit
// lets 20/s through) with 1,000-byte messages and never read; when the
// server drops one, it reconnects and starts again. Four normal users chat
// meanwhile (one message each every 500 ms) and measure the fan-out of
// each other's messages. After floodFor the attackers stop, and the
// benchmark samples RSS until it is back within recoverBound of the
// baseline.
//
// The server runs as its own process (`chatspec serve`, built from this
// tree, or $CHATSPEC_FLOOD_BIN to measure another build), so its RSS is
// not mixed with the clients' ($CHATSPEC_FLOOD_FLAGS adds serve flags to
// the defaults case):
//
//	go test -run '^$' -bench 'MemoryNonReaderFlood' -benchtime 1x ./reference/
//	CHATSPEC_FLOOD_BIN=/tmp/chatspec-before go test -run '^$' -bench 'MemoryNonReaderFlood/defaults' -benchtime 1x ./reference/
func BenchmarkMemoryNonReaderFlood(b *testing.B) {
	bin := os.Getenv("CHATSPEC_FLOOD_BIN")
	if bin == "" {
		bin = filepath.Join(b.TempDir(), "chatspec")
		build := exec.Command("go", "build", "-o", bin, "github.com/chatspec/chatspec/cmd/chatspec")
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("building chatspec: %v\n%s", err, out)
		}
	}
	for _, bc := range []struct {
		name  string
		flags []string
	}{
		{"defaults", strings.Fields(os.Getenv("CHATSPEC_FLOOD_FLAGS"))},
		{"no_budget_no_cap", []string{"--output-budget", "0", "--max-conns", "0"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for range b.N {
				floodNonReaders(b, bin, bc.flags)
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

// startServeProcess runs `chatspec serve` on a free port and returns its
// URL and process; it is stopped (SIGTERM) when the benchmark ends.
func startServeProcess(b *testing.B, bin string, flags []string) (string, *os.Process) {
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-level", "warn"}, flags...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); strings.Contains(sc.Text(), "listening on") && len(f) > 0 {
			go io.Copy(io.Discard, stdout)
			return f[len(f)-1], cmd.Process
		}
	}
	b.Fatalf("chatspec serve printed no URL")
	return "", nil
}

// procRSSMB reads a process's VmRSS (Linux).
func procRSSMB(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// scrape returns the server's metric values by name (untyped, no labels).
func scrape(url string) map[string]float64 {
	out := map[string]float64{}
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && !strings.HasPrefix(f[0], "#") {
			v, _ := strconv.ParseFloat(f[1], 64)
			out[f[0]] = v
		}
	}
	return out
}

func floodNonReaders(b *testing.B, bin string, flags []string) {
	url, proc := startServeProcess(b, bin, flags)
	path := "/socket.io/"
	time.Sleep(time.Second)
	base := procRSSMB(proc.Pid)

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
		c, err := sioclient.Dial(jctx, sioclient.Options{URL: url, Path: path, Transport: sioclient.WebSocket})
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
				// The newest entry is the last "message" of the list;
				// finding it without decoding the whole history keeps
				// the clients cheap.
				raw := ev.Args
				k := bytes.LastIndex(raw, []byte(`"message":"`))
				if k < 0 {
					continue
				}
				text, _, _ := strings.Cut(string(raw[k+len(`"message":"`):]), `"`)
				u := bytes.LastIndex(raw, []byte(`"username":"`))
				if u < 0 {
					continue
				}
				from, _, _ := strings.Cut(string(raw[u+len(`"username":"`):]), `"`)
				mu.Lock()
				if t0, ok := sent[text]; ok && from != names[i] {
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
	wsURL := "ws" + strings.TrimPrefix(url, "http") + path + "?EIO=4&transport=websocket"
	for i := range floodClients {
		awg.Go(func() {
			for attack.Err() == nil {
				floodOnce(attack, wsURL, "flood"+strconv.Itoa(i))
				reconnects.Add(1)
			}
		})
	}

	// Sample the server's RSS and unwritten bytes during the flood and
	// the recovery.
	var peakRSS, peakUnwritten, peakHeap, peakGoroutines float64
	sample := func() float64 {
		rss := procRSSMB(proc.Pid)
		peakRSS = max(peakRSS, rss)
		m := scrape(url)
		peakUnwritten = max(peakUnwritten, m["chatspec_reference_unwritten_bytes"]/(1<<20))
		peakHeap = max(peakHeap, m["go_memstats_heap_inuse_bytes"]/(1<<20))
		peakGoroutines = max(peakGoroutines, m["go_goroutines"])
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
	rssFinal := procRSSMB(proc.Pid)
	var usersDropped []string
	for i, c := range users {
		select {
		case <-c.Done():
			usersDropped = append(usersDropped, fmt.Sprintf("%s: %v", names[i], c.Err()))
		default:
		}
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
	m := scrape(url)
	b.ReportMetric(peakHeap, "peak_heap_inuse_MB")
	b.ReportMetric(m["go_memstats_heap_inuse_bytes"]/(1<<20), "heap_inuse_after_MB")
	b.ReportMetric((m["go_memstats_heap_idle_bytes"]-m["go_memstats_heap_released_bytes"])/(1<<20), "heap_free_unreleased_after_MB")
	b.ReportMetric(m["go_memstats_sys_bytes"]/(1<<20), "go_sys_after_MB")
	b.ReportMetric(peakGoroutines, "peak_goroutines")
	b.ReportMetric(m["go_goroutines"], "goroutines_after")
	b.ReportMetric(float64(len(usersDropped)), "normal_users_dropped")
	if len(usersDropped) > 0 {
		b.Logf("normal users whose connection ended: %s", strings.Join(usersDropped, "; "))
	}
	b.ReportMetric(base, "base_rss_MB")
	b.ReportMetric(peakRSS, "peak_rss_MB")
	b.ReportMetric(peakUnwritten, "peak_unwritten_MB")
	b.ReportMetric(rssAtEnd, "rss_at_end_MB")
	b.ReportMetric(rssFinal, "rss_final_MB")
	b.ReportMetric(recovered.Seconds(), "recover_s")
	b.ReportMetric(float64(p50.Milliseconds()), "fanout_p50_ms")
	b.ReportMetric(float64(p99.Milliseconds()), "fanout_p99_ms")
	b.Logf("%s %v: %d non-readers for %s: %d (re)connections; server dropped %g slow readers (%g by the budget); normal users' fan-out over %d deliveries p50 %s p99 %s; server RSS base %.0f MB, peak %.0f MB (unwritten peak %.0f MB), at the end of the attack %.0f MB, back within %d MB of the base after %s",
		filepath.Base(bin), flags, floodClients, floodFor, reconnects.Load(), m["chatspec_reference_slow_readers_dropped_total"], m["chatspec_reference_output_budget_drops_total"],
		n, p50, p99, base, peakRSS, peakUnwritten, rssAtEnd, recoverBound, recoveredString(recovered))
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
