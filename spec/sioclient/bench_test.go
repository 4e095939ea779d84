package sioclient

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	engineparser "github.com/zishang520/socket.io/parsers/engine/v3/parser"
	sioparser "github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// messageWrittenFrame is a websocket frame as the seed chat app sends it:
// the whole history (100 messages) on every new message.
func messageWrittenFrame() []byte {
	var b strings.Builder
	b.WriteString(`42["messageWritten",{"messagesList":[`)
	for i := range 100 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"username":"user%03d","message":"message number %d: the quick brown fox jumps over the lazy dog","time":"2026-11-26T06:%02d:00Z"}`, i%37, i, i%60)
	}
	b.WriteString(`]}]`)
	return []byte(b.String())
}

// BenchmarkDecodeEvent measures decoding one messageWritten frame (about
// 13 KB) into an Event. The per-iteration copy stands for the frame read,
// which the real path also pays once. "zishang520-parsers" decodes the same
// frame with the library's parsers, for the comparison in packet.go.
func BenchmarkDecodeEvent(b *testing.B) {
	frame := messageWrittenFrame()
	run := func(b *testing.B, validate bool) {
		c := fuzzConn()
		c.silenced.Store(false)
		c.opts.SkipArgsValidation = !validate
		c.opts.OnEvent = func(Event) {}
		b.SetBytes(int64(len(frame)))
		b.ReportAllocs()
		for b.Loop() {
			buf := make([]byte, len(frame))
			copy(buf, frame)
			if err := c.handleEngine(buf, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("sioclient", func(b *testing.B) { run(b, true) })
	b.Run("sioclient-skip-validation", func(b *testing.B) { run(b, false) })
	b.Run("zishang520-parsers", func(b *testing.B) {
		dec := sioparser.NewDecoder()
		var got int
		_ = dec.On("decoded", func(a ...any) { got++ })
		b.SetBytes(int64(len(frame)))
		b.ReportAllocs()
		for b.Loop() {
			p, err := engineparser.Parserv4().DecodePacket(types.NewStringBufferString(string(frame)))
			if err != nil {
				b.Fatal(err)
			}
			if err := dec.Add(p.Data); err != nil {
				b.Fatal(err)
			}
		}
		if got == 0 {
			b.Fatal("library decoder produced nothing")
		}
	})
}

// BenchmarkIdleWebSocketConn opens 1,000 websocket connections to a server
// in a child process (so only client memory is counted) and reports the
// heap bytes and goroutines each idle connection holds. b.N is ignored: the
// figure is per connection, not per operation.
func BenchmarkIdleWebSocketConn(b *testing.B) {
	for _, tr := range []Transport{WebSocket, Polling} {
		b.Run(string(tr), func(b *testing.B) {
			url := serverProcess(b)
			const n = 1000
			for b.Loop() {
				conns := make([]*Conn, 0, n)
				runtime.GC()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				g0 := runtime.NumGoroutine()
				for range n {
					c, err := Dial(context.Background(), Options{URL: url, Transport: tr})
					if err != nil {
						b.Fatal(err)
					}
					conns = append(conns, c)
				}
				runtime.GC()
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/conn")
				b.ReportMetric(float64(after.StackInuse-before.StackInuse)/n, "stack-bytes/conn")
				b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/conn")
				for _, c := range conns {
					_ = c.Abort()
				}
				runtime.KeepAlive(conns)
			}
		})
	}
}

const serverEnv = "SIOCLIENT_BENCH_SERVER"

// serveForBenchmark runs in the child process: a plain server on
// 127.0.0.1 that prints its URL and exits when stdin closes.
func serveForBenchmark() {
	opts := socket.DefaultServerOptions()
	opts.SetMaxHttpBufferSize(1 << 20)
	io := socket.NewServer(nil, opts)
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", io.ServeHandler(nil))
	srv := newLoopbackServer(mux)
	fmt.Println(srv)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

// serverProcess starts this test binary as a server child process.
func serverProcess(b *testing.B) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serverEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("server process: %v", err)
	}
	return strings.TrimSpace(line)
}
