package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
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
		{[]string{"--redis", "redis://127.0.0.1:6379"}, "redis support: not yet wired"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), append([]string{"serve"}, tc.args...), &stdout, &stderr)
			if code != ExitUsage {
				t.Errorf("exit code %d, want %d (ExitUsage)", code, ExitUsage)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr = %q, want one line containing %q", stderr.String(), tc.want)
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

// serve prints its URL, serves, and exits 0 when its context ends.
func TestServeRunsAndStopsCleanly(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &serveOutput{url: make(chan string, 1)}
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--log-level", "error"}, out, &stderr)
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
