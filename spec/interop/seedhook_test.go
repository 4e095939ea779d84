package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chatspec/chatspec/reference"
)

// hookResult is seedhook.js's one-line report.
type hookResult struct {
	Outcome     string `json:"outcome"`
	Code        string `json:"code"`
	Message     string `json:"message"`
	Username    string `json:"username"`
	Connections int    `json:"connections"`
}

// runSeedHook runs the seed's useSocket hook (jsclient/seedhook.js, the
// official socket.io-client) against url and returns its report.
func runSeedHook(t *testing.T, url string, args ...string) hookResult {
	t.Helper()
	// seedhook.js caps itself at --timeout (10 s); the rest is slack for
	// starting Node on a loaded machine.
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "node", append([]string{"seedhook.js", "--url", url}, args...)...)
	cmd.Dir = clientDir
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = stopGrace
	err := cmd.Run()
	var r hookResult
	if jerr := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &r); jerr != nil {
		t.Fatalf("seedhook.js --url %s: no report (%v, run: %v); stdout %q, stderr %q", url, jerr, err, stdout.String(), stderr.String())
	}
	if (err == nil) != (r.Outcome == "delivered") {
		t.Fatalf("seedhook.js exit status %v disagrees with its outcome %q", err, r.Outcome)
	}
	if r.Connections != 2 {
		t.Errorf("the seed's hook held %d connections, want 2 (two io() calls)", r.Connections)
	}
	return r
}

func startSeedReference(t *testing.T, seedClients bool) string {
	t.Helper()
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.SeedClients = seedClients
	run, err := reference.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("reference.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := run.Stop(ctx); err != nil {
			t.Errorf("reference Stop: %v", err)
		}
	})
	return run.URL()
}

// TestSeedHook runs the seed's own client logic against every server:
// it chats with the seed's server and with the reference in --seed-clients
// mode, and is refused, with a refusal that names both fixes, by the
// reference in its default mode; the Node server refuses it too (SEC-2).
func TestSeedHook(t *testing.T) {
	requireNode(t)
	t.Run("reference --seed-clients chats", func(t *testing.T) {
		r := runSeedHook(t, startSeedReference(t, true))
		if r.Outcome != "delivered" {
			t.Fatalf("outcome %+v, want delivered", r)
		}
	})
	t.Run("reference --seed-clients, write racing the join", func(t *testing.T) {
		// Writing the instant the page loads races the other socket's join:
		// either outcome is legal, silence is not, and a refusal says why.
		url := startSeedReference(t, true)
		for range 3 {
			r := runSeedHook(t, url, "--no-wait")
			switch {
			case r.Outcome == "delivered":
			case r.Outcome == "refused" && r.Code == reference.CodeNotJoined && strings.Contains(r.Message, "wait for connected"):
			default:
				t.Errorf("outcome %+v, want delivered, or refused with not_joined telling the client to wait for connected", r)
			}
			t.Logf("racing write: %s", r.Outcome)
		}
	})
	t.Run("reference refuses and says why", func(t *testing.T) {
		r := runSeedHook(t, startSeedReference(t, false))
		if r.Outcome != "refused" || r.Code != reference.CodeNotJoined {
			t.Fatalf("outcome %+v, want refused with not_joined", r)
		}
		for _, want := range []string{"never emitted connecting", "io() twice", "call it once", "--seed-clients"} {
			if !strings.Contains(r.Message, want) {
				t.Errorf("refusal %q does not say %q", r.Message, want)
			}
		}
	})
	t.Run("seed.js chats", func(t *testing.T) {
		srv := startNode(t, "seed.js", "--port", "0")
		if r := runSeedHook(t, srv.URL()); r.Outcome != "delivered" {
			t.Fatalf("outcome %+v, want delivered", r)
		}
	})
	t.Run("server.js refuses", func(t *testing.T) {
		srv := startNode(t, "server.js", "--port", "0")
		if r := runSeedHook(t, srv.URL(), "--init-path", ""); r.Outcome != "refused" || r.Code != "not_joined" {
			t.Fatalf("outcome %+v, want refused with not_joined", r)
		}
	})
}
