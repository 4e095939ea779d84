package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatspec/chatspec/reference/store/redisstore/redistest"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// serveOutput is a goroutine-safe stdout that reports the URL line.
type serveOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
	url chan string
}

func (o *serveOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	for line := range strings.SplitSeq(o.buf.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "chatspec serve: listening on "); ok {
			select {
			case o.url <- rest:
			default:
			}
		}
	}
	return len(p), nil
}

func (o *serveOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

func TestServeFlagErrorsExitUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nope"}, "flag provided but not defined: -nope"},
		{[]string{"--rate", "fast"}, `invalid value "fast" for flag -rate`},
		{[]string{"--rate", "-1"}, "Rate must not be negative"},
		{[]string{"--ping-interval", "5"}, `invalid value "5" for flag -ping-interval`},
		{[]string{"--transports", "polling,carrier-pigeon"}, `unknown transport "carrier-pigeon"`},
		{[]string{"--transports", ""}, "Transports is empty"},
		{[]string{"--path", "socket.io"}, `Path "socket.io" must start with /`},
		{[]string{"--history-limit", "0"}, "HistoryLimit must be at least 1"},
		{[]string{"--max-message", "2000000"}, "MaxHTTPBufferSize 1000000 is too small"},
		{[]string{"--addr", "localhost"}, `Addr "localhost" is not host:port`},
		{[]string{"--cors-origin", "evil"}, `CORS origin "evil" is not scheme://host[:port] or *`},
		{[]string{"--log-level", "loud"}, `--log-level "loud"`},
		{[]string{"--log-format", "xml"}, `--log-format "xml"`},
		{[]string{"--redis", "http://x"}, `--redis "http://x"`},
		{[]string{"--redis", "redis://127.0.0.1:6379/x"}, `--redis "redis://127.0.0.1:6379/x"`},
		{[]string{"--redis-adapter", "pubsub"}, `--redis-adapter "pubsub": want sharded, streams or none`},
		{[]string{"--node-ttl", "1ms"}, "--node-ttl 1ms: want at least 30ms"},
		{[]string{"--redis-prefix", ""}, "--redis-prefix is empty"},
		{[]string{"--node-id", ""}, "--node-id is empty"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), append([]string{"serve"}, tc.args...), &stdout, &stderr)
			if code != ExitUsage {
				t.Errorf("exit code %d, want %d (ExitUsage)", code, ExitUsage)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 2 || !strings.Contains(lines[0], tc.want) || lines[1] != usageHint("serve") {
				t.Errorf("stderr = %q, want one line containing %q and the hint", stderr.String(), tc.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}

func TestServeHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"serve", "--help"}, &stdout, &stderr); code != ExitOK {
		t.Fatalf("exit code %d, want 0", code)
	}
	for _, want := range []string{"Examples:", "chatspec serve --addr 127.0.0.1:0", "-max-conns-per-ip", "-cors-origin"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

// serve prints its URL, serves, and exits 0 when its context ends,
// leaving the CPU profile it was asked for.
func TestServeRunsAndStopsCleanly(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &serveOutput{url: make(chan string, 1)}
	var stderr bytes.Buffer
	done := make(chan int, 1)
	profile := filepath.Join(t.TempDir(), "cpu.pprof")
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--log-level", "error", "--cpu-profile", profile}, out, &stderr)
	}()

	var url string
	select {
	case url = <-out.url:
	case code := <-done:
		t.Fatalf("serve exited %d before listening; stderr %q", code, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("no URL printed; stdout %q", out.String())
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("URL %q", url)
	}
	for _, path := range []string{"/healthz", "/api/socket", "/metrics"} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d", path, resp.StatusCode)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("exit code %d after cancel, want 0; stderr %q", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after its context ended")
	}
	// A pprof profile is gzipped protobuf.
	if b, err := os.ReadFile(profile); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("--cpu-profile %s: %d bytes, %v; want a gzipped profile", profile, len(b), err)
	}
}

// A profile that cannot be written stops serve before it listens.
func TestServeCPUProfileUnwritable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"serve", "--addr", "127.0.0.1:0", "--cpu-profile", filepath.Join(t.TempDir(), "missing", "cpu.pprof")}, &stdout, &stderr)
	if code != ExitError || !strings.Contains(stderr.String(), "--cpu-profile") || strings.Contains(stdout.String(), "listening") {
		t.Errorf("exit %d, stdout %q, stderr %q: want %d and a --cpu-profile error before listening", code, stdout.String(), stderr.String(), ExitError)
	}
}

func TestServeAddressInUseExitsError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"serve", "--addr", ln.Addr().String()}, &stdout, &stderr)
	if code != ExitError {
		t.Errorf("exit code %d, want %d (ExitError)", code, ExitError)
	}
	if !strings.Contains(stderr.String(), "address already in use") {
		t.Errorf("stderr = %q, want it to say the address is in use", stderr.String())
	}
}

// serveAsync runs `chatspec serve args...` until ctx ends; it returns the
// URL it prints and a channel with its exit code.
func serveAsync(t *testing.T, ctx context.Context, args ...string) (string, <-chan int, *lockedBuffer) {
	t.Helper()
	out := &serveOutput{url: make(chan string, 1)}
	stderr := &lockedBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), out, stderr) }()
	select {
	case url := <-out.url:
		return url, done, stderr
	case code := <-done:
		t.Fatalf("serve exited %d before listening; stderr %q", code, stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("no URL printed; stdout %q", out.String())
	}
	return "", nil, nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Two `serve --redis` nodes share one chat: a user joined on one is in the
// other's list, both report Redis in /healthz, and each stops cleanly (the
// first one's user leaves the shared list when it stops).
func TestServeRedisCluster(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ctxB, cancelB := context.WithCancel(t.Context())
	defer cancelB()
	args := []string{"--redis", srv.URL, "--redis-prefix", "servetest:", "--node-ttl", "1s", "--log-level", "error"}
	urlA, doneA, errA := serveAsync(t, ctx, append(args, "--node-id", "a")...)
	urlB, doneB, errB := serveAsync(t, ctxB, append(args, "--node-id", "b")...)

	for _, u := range []string{urlA, urlB} {
		resp, err := http.Get(u + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"backend":"redis"`) {
			t.Errorf("GET %s/healthz = %d %s, want 200 naming the redis backend", u, resp.StatusCode, body)
		}
	}

	dialCtx, dialCancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer dialCancel()
	a, err := sioclient.Dial(dialCtx, sioclient.Options{URL: urlA, Path: "/socket.io/", Transport: sioclient.WebSocket})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sioclient.Dial(dialCtx, sioclient.Options{URL: urlB, Path: "/socket.io/", Transport: sioclient.WebSocket})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Emit(dialCtx, "connecting", map[string]any{"username": "on-b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.NextNamed(dialCtx, "connected"); err != nil {
		t.Fatal(err)
	}
	if err := a.Emit(dialCtx, "connecting", map[string]any{"username": "on-a"}); err != nil {
		t.Fatal(err)
	}
	ev, err := a.NextNamed(dialCtx, "connected")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ev.Args), `"on-b"`) || !strings.Contains(string(ev.Args), `"on-a"`) {
		t.Errorf("connected on node a = %s, want both on-a and on-b listed", ev.Args)
	}

	// Node b stops cleanly: a's client hears that on-b left.
	cancelB()
	if code := <-doneB; code != ExitOK {
		t.Fatalf("node b exit code %d, want 0; stderr %q", code, errB.String())
	}
	ev, err = a.NextNamed(dialCtx, "disconnected")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(ev.Args), `"on-b"`) {
		t.Errorf("disconnected after node b stopped = %s, still lists on-b", ev.Args)
	}
	cancel()
	if code := <-doneA; code != ExitOK {
		t.Fatalf("node a exit code %d, want 0; stderr %q", code, errA.String())
	}
}

func TestServeRedisUnreachableExitsError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"serve", "--addr", "127.0.0.1:0", "--redis", "redis://" + addr + "/0"}, &stdout, &stderr)
	if code != ExitError {
		t.Errorf("exit code %d, want %d (ExitError)", code, ExitError)
	}
	if !strings.Contains(stderr.String(), "redisstore: registering node") || !strings.Contains(stderr.String(), addr) {
		t.Errorf("stderr = %q, want it to name the Redis address it could not reach", stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing (it never listened)", stdout.String())
	}
}

// TestServeSeedClientsFlag: --seed-clients turns the mode on, which the
// init route shows by setting the client cookie; without it, no cookie.
func TestServeSeedClientsFlag(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		cookie bool
	}{{nil, false}, {[]string{"--seed-clients"}, true}} {
		ctx, cancel := context.WithCancel(t.Context())
		out := &serveOutput{url: make(chan string, 1)}
		var stderr bytes.Buffer
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-level", "error"}, tc.args...), out, &stderr)
		}()
		var url string
		select {
		case url = <-out.url:
		case code := <-done:
			t.Fatalf("serve %v exited %d before listening; stderr %q", tc.args, code, stderr.String())
		case <-time.After(10 * time.Second):
			t.Fatalf("serve %v printed no URL; stdout %q", tc.args, out.String())
		}
		resp, err := http.Get(url + "/api/socket")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := false
		for _, c := range resp.Cookies() {
			got = got || c.Name == "chatspec_client"
		}
		if got != tc.cookie {
			t.Errorf("serve %v: init route set the chatspec_client cookie: %v, want %v", tc.args, got, tc.cookie)
		}
		cancel()
		if code := <-done; code != ExitOK {
			t.Errorf("serve %v exited %d after cancel", tc.args, code)
		}
	}
}
