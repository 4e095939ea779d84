package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// silentServer acknowledges the Engine.IO handshake and the namespace
// CONNECT over WebSocket, then stays silent and reads nothing more.
func silentServer(t *testing.T) string {
	t.Helper()
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("transport") != "websocket" {
			http.Error(w, "websocket only", http.StatusBadRequest)
			return
		}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx := r.Context()
		if ws.Write(ctx, websocket.MessageText, []byte(`0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`)) != nil {
			return
		}
		if _, _, err := ws.Read(ctx); err != nil {
			return
		}
		_ = ws.Write(ctx, websocket.MessageText, []byte(`40{"sid":"x"}`))
		select {
		case <-ctx.Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); ts.CloseClientConnections(); ts.Close() })
	return ts.URL
}

// Two signals in quick succession (the second while the run is still
// stopping) exit 3 at once, and still leave the report directory with what
// was measured: the second signal writes it before exiting.
func TestSecondSignalStillWritesTheReport(t *testing.T) {
	bin := buildChatspec(t)
	for _, tc := range []struct {
		name   string
		args   []string
		cue    string // a stdout line prefix that says the run has started
		report string
		check  func(t *testing.T, raw []byte)
	}{
		// A server that acknowledges the namespace and then neither
		// answers nor reads: stopping is slow (each connection's close
		// handshake waits for an answer that never comes).
		{"verify", []string{"verify", "--target", silentServer(t), "--timeout", "20s"}, "chatspec verify: profile", "results.json", func(t *testing.T, raw []byte) {
			var res struct {
				Passed  bool
				Stopped string
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				t.Fatal(err)
			}
			if res.Passed || !strings.Contains(res.Stopped, "interrupted") {
				t.Errorf("results.json: passed %v, stopped %q; want an interrupted run", res.Passed, res.Stopped)
			}
		}},
		{"load", []string{"load", "--users", "5", "--ramp", "100ms", "--duration", "1m", "--message-interval", "200ms", "--progress", "off"},
			"chatspec load: run ", "summary.json", func(t *testing.T, raw []byte) {
				var s struct{ Ended, Verdict string }
				if err := json.Unmarshal(raw, &s); err != nil {
					t.Fatal(err)
				}
				if s.Ended != "interrupted" || s.Verdict != "fail" {
					t.Errorf("summary.json: ended %q verdict %q; want interrupted, fail", s.Ended, s.Verdict)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(bin, append(tc.args, "--report-dir", dir)...)
			pipe, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(pipe)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), tc.cue) {
					break
				}
			}
			// Inside the first case's wait; two signals sent together would
			// be delivered as one.
			time.Sleep(time.Second)
			signaled := time.Now()
			_ = cmd.Process.Signal(syscall.SIGINT)
			time.Sleep(300 * time.Millisecond)
			_ = cmd.Process.Signal(syscall.SIGINT)
			go func() {
				for sc.Scan() {
				}
			}()
			code := exitCode(t, cmd.Wait())
			if code != ExitInterrupted {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, ExitInterrupted, stderr.String())
			}
			// The last words are bounded by lastWordsTimeout.
			if d := time.Since(signaled); d > lastWordsTimeout+5*time.Second {
				t.Errorf("the process took %s to exit after the second signal", d)
			}
			raw, err := os.ReadFile(filepath.Join(dir, tc.report))
			if err != nil {
				t.Fatalf("no %s after a second signal: %v; stderr:\n%s", tc.report, err, stderr.String())
			}
			tc.check(t, raw)
		})
	}
}
