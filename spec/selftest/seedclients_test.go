package selftest

import (
	"bufio"
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireFinding fails unless case id reported a finding containing want
// (SEED-1 is info: it never fails, so its finding is what is checked).
func requireFinding(t *testing.T, r run, id, want string) {
	t.Helper()
	for _, c := range r.results.Cases {
		if c.ID == id {
			if !strings.Contains(c.Message, want) {
				t.Errorf("%s reported %q, want a finding containing %q", id, c.Message, want)
			}
			return
		}
	}
	t.Errorf("no %s case in the run; want a finding containing %q", id, want)
}

// TestReferenceSeedClients runs `chatspec serve --seed-clients` through
// --profile all: it serves the seed's two-connection client (SEED-1 says
// "supported: yes") and therefore fails SEC-2, by design and nothing else.
func TestReferenceSeedClients(t *testing.T) {
	if testing.Short() {
		t.Skip("runs chatspec serve and verify; skipped with -short")
	}
	t.Parallel()
	slots <- struct{}{}
	defer func() { <-slots }()
	url := startServe(t, "--seed-clients", "--ping-interval", "500ms", "--ping-timeout", "1500ms")
	r := verify(t.Context(), t, "reference-seed-clients", url, "--init-path", "/api/socket")
	e := expectation{defect: "reference-seed-clients", fail: ids("SEC-2")}
	record("reference-seed-clients", e.fail, r)
	check(t, e, r)
	requireFinding(t, r, "SEED-1", "seed-style clients supported: yes")
}

// startServe runs `chatspec serve --addr 127.0.0.1:0 args...` until the
// test ends and returns its URL, read from its "listening on" line.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, chatspecBin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if _, url, ok := strings.Cut(sc.Text(), "listening on "); ok {
				select {
				case urls <- strings.TrimSpace(url):
				default:
				}
			}
		}
	}()
	select {
	case url := <-urls:
		return url
	case <-time.After(30 * time.Second):
		t.Fatal("chatspec serve printed no \"listening on\" line within 30s")
		return ""
	}
}
