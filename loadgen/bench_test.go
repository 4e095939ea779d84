package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatspec/chatspec/loadgen/faultychat"
	"github.com/chatspec/chatspec/reference"
	"github.com/chatspec/chatspec/spec/sioclient"
	"github.com/chatspec/chatspec/spec/target"
)

// benchServerEnv, when set, turns the test binary into a chat server
// process for BenchmarkUsers: "reference" (the reference server, history
// cap 20) or "quiet" (a contract server without presence broadcasts). It
// prints its URL and serves until its stdin closes (the benchmark ended).
const benchServerEnv = "CHATSPEC_BENCH_SERVER"

func TestMain(m *testing.M) {
	if kind := os.Getenv(benchServerEnv); kind != "" {
		os.Exit(benchServer(kind))
	}
	if target := os.Getenv(fewFilesEnv); target != "" {
		os.Exit(runWithFewFiles(target))
	}
	os.Exit(m.Run())
}

func benchServer(kind string) int {
	var url string
	var stop func()
	switch kind {
	case "reference":
		cfg := reference.DefaultConfig()
		cfg.Addr, cfg.HistoryLimit, cfg.Rate = "127.0.0.1:0", 20, 0
		r, err := reference.Start(context.Background(), cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		url, stop = r.URL(), func() { _ = r.Stop(context.Background()) }
	case "quiet":
		s, err := faultychat.Start(faultychat.Faults{QuietPresence: true, HistoryLimit: 20, PingInterval: 25 * time.Second, PingTimeout: 20 * time.Second})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		url, stop = s.URL(), func() { _ = s.Close() }
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: want reference or quiet\n", benchServerEnv, kind)
		return 2
	}
	fmt.Println(url)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
	stop()
	return 0
}

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkUsers drives many users from this process against a chat
// server in a child process and reports what one generator needs: users
// per GB of its peak RSS and CPU per delivered message. One iteration is
// one whole run; use -benchtime 1x. Sizes come from the environment:
//
//	CHATSPEC_BENCH_USERS=10000 CHATSPEC_BENCH_RAMP=30s CHATSPEC_BENCH_DURATION=30s
//	CHATSPEC_BENCH_INTERVAL=2000s (per-user mean gap) CHATSPEC_BENCH_SERVER_KIND=quiet|reference
//	CHATSPEC_BENCH_SOURCE_ADDRS=127.0.0.2-127.0.0.4 (optional, syntax of --source-addr)
//
//	go test -run '^$' -bench BenchmarkUsers -benchtime 1x -timeout 10m ./loadgen/
func BenchmarkUsers(b *testing.B) {
	users := envInt("CHATSPEC_BENCH_USERS", 10000)
	ramp := envDuration("CHATSPEC_BENCH_RAMP", 30*time.Second)
	dur := envDuration("CHATSPEC_BENCH_DURATION", 30*time.Second)
	interval := envDuration("CHATSPEC_BENCH_INTERVAL", 2000*time.Second)
	kind := os.Getenv("CHATSPEC_BENCH_SERVER_KIND")
	if kind == "" {
		kind = "quiet"
	}
	// One source address holds only ~28,000 connections to the server's one
	// port (ip_local_port_range), so more users need several: user i then
	// connects from address i mod n, parsed and bound as `chatspec load
	// --source-addr` does. Unset, src has no sources and every user gets the
	// client's default HTTP client, as before.
	var src target.Options
	if v := os.Getenv("CHATSPEC_BENCH_SOURCE_ADDRS"); v != "" {
		src.ConnectTimeout = 20 * time.Second
		fs := flag.NewFlagSet("bench", flag.ContinueOnError)
		src.RegisterFlags(fs)
		if err := fs.Parse([]string{"-source-addr", v}); err != nil {
			b.Fatal(err)
		}
		if err := src.Validate(); err != nil {
			b.Fatal(err)
		}
		b.Logf("%d source addresses: %s", len(src.SourceAddrs), v)
	}
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), benchServerEnv+"="+kind, "GOMAXPROCS="+strconv.Itoa(runtime.NumCPU()))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			b.Fatalf("bench server: %v", err)
		}
		url := strings.TrimSpace(line)
		window := 5 * time.Second
		arr, err := Plan{Users: users, Ramp: ramp, Duration: dur, Linger: window}.Arrivals()
		if err != nil {
			b.Fatal(err)
		}
		e, err := New(Config{
			RunID: "bench", Arrivals: arr, Pacer: PoissonPacer{Mean: interval}, Window: window, Seed: 7,
			JoinTimeout: 20 * time.Second, StopTimeout: 10 * time.Second,
			Dial: func(i int) sioclient.Options {
				return sioclient.Options{URL: url, ConnectTimeout: 20 * time.Second, HTTPClient: src.DialOptions(i).HTTPClient}
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		m := NewMetrics(MetricsConfig{Users: users, Window: window})
		// Sample the Go memory split at the peak: heap vs goroutine stacks.
		var peakHeap, peakStack uint64
		sampled := make(chan struct{})
		stopSampling := make(chan struct{})
		go func() {
			defer close(sampled)
			t := time.NewTicker(time.Second)
			defer t.Stop()
			profiled := false
			for {
				select {
				case <-t.C:
				case <-stopSampling:
					return
				}
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peakHeap, peakStack = max(peakHeap, ms.HeapInuse), max(peakStack, ms.StackInuse)
				if p := os.Getenv("CHATSPEC_BENCH_HEAPPROFILE"); p != "" && !profiled && m.Live().Connected >= int64(users*9/10) {
					profiled = true
					writeHeapProfile(b, p)
				}
			}
		}()
		b.ResetTimer()
		s := Measure(context.Background(), e, m, false)
		b.StopTimer()
		close(stopSampling)
		<-sampled
		b.Logf("peak Go heap in use %d MiB, goroutine stacks %d MiB", peakHeap>>20, peakStack>>20)
		stdin.Close()
		_ = cmd.Wait()
		g := s.Generator
		delivered := s.Messages.Delivered + s.Messages.Unexpected
		b.ReportMetric(float64(s.Users.PeakConnected), "peak-users")
		b.ReportMetric(float64(s.Users.PeakConnected)/(float64(g.MaxRSSBytes)/(1<<30)), "users/GB")
		b.ReportMetric(g.CPUPerDeliveryUS, "cpu-µs/delivery")
		b.ReportMetric(float64(delivered)/s.DurationSeconds, "deliveries/s")
		b.ReportMetric(s.LatencyMS.Fanout.P99, "fanout-p99-ms")
		b.ReportMetric(float64(s.Messages.Lost), "lost")
		// A run cut short (target_down, e.g. when this process runs out of
		// file descriptors) would otherwise look like a smaller good one.
		b.Logf("ended %s %s\nusers %+v\nmessages %+v\nlatency %+v\ngenerator %+v\nerrors %+v", s.Ended, s.EndedDetail, s.Users, s.Messages, s.LatencyMS, g, s.Errors)
	}
}

// BenchmarkReceivePath measures the generator's own work per delivery,
// after the frame is read: finding the new message in a 20-message
// history (raw JSON, 100-byte texts), then accounting and histograms.
// ns/op is per delivery.
func BenchmarkReceivePath(b *testing.B) {
	const sessions, hist = 1000, 20
	texts := make([]string, 0, 4000)
	for i := range cap(texts) {
		texts = append(texts, Stamp{Sender: uint32(i % sessions), Seq: uint32(i/sessions + 1), Intended: int64(i) * int64(time.Millisecond)}.Text(testKey("bench"), 100))
	}
	raws := make([][]byte, len(texts))
	for i := range texts {
		lo := max(0, i+1-hist)
		list := make([]map[string]string, 0, hist)
		for _, t := range texts[lo : i+1] {
			list = append(list, map[string]string{"username": "cs-bench-1", "message": t})
		}
		raws[i], _ = json.Marshal([]any{map[string]any{"messagesList": list}})
	}
	m := NewMetrics(MetricsConfig{Users: sessions, Window: time.Second})
	tails := make([]*Tail, sessions)
	for s := range sessions {
		tails[s] = NewTail(testKey("bench"))
		m.Add(Result{Kind: Joined, User: int32(s), Session: int32(s), At: -time.Second})
	}
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	b.ResetTimer()
	for i := range b.N {
		msg, s := (i/sessions)%len(raws), i%sessions
		if msg == 0 && s == 0 && i > 0 {
			b.StopTimer() // wrapped around: start a fresh accounting
			m = NewMetrics(MetricsConfig{Users: sessions, Window: time.Second})
			for s := range sessions {
				tails[s] = NewTail(testKey("bench"))
				m.Add(Result{Kind: Joined, User: int32(s), Session: int32(s), At: -time.Second})
			}
			b.StartTimer()
		}
		for _, st := range tails[s].New(raws[msg]) {
			m.Add(Result{Kind: Delivered, User: int32(s), Session: int32(s), Sender: st.Sender, Seq: st.Seq,
				Intended: time.Duration(st.Intended), At: time.Duration(st.Intended) + 5*time.Millisecond, Pred: st.Pred})
		}
	}
	b.StopTimer()
	// CPU time per delivery of the benchmark's own thread (Linux): the
	// figure to compare across runs on a shared machine.
	b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}
