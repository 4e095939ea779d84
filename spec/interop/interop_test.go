package interop

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatspec/chatspec/reference"
)

// The fixture directories, relative to this package.
const (
	serverDir = "../testdata/nodeserver"
	clientDir = "../testdata/jsclient"
)

var transports = []string{"websocket", "polling", "upgrade"}

// requireNode fails the test when the Node fixtures cannot run, saying how
// to install them. A missing toolchain must not read as a pass; the only way
// around it is the explicit CHATSPEC_SKIP_NODE=1.
func requireNode(t *testing.T) {
	t.Helper()
	if os.Getenv("CHATSPEC_SKIP_NODE") == "1" {
		t.Skip("CHATSPEC_SKIP_NODE=1: skipping the Node interop tests (official socket.io-client and the Node server)")
	}
	if err := CheckNodeSetup(serverDir, clientDir); err != nil {
		t.Fatalf("%v\n(or set CHATSPEC_SKIP_NODE=1 to skip the Node interop tests)", err)
	}
}

// startNode starts a Node script from the nodeserver fixture and stops it
// when the test ends, logging its output if the test failed.
func startNode(t *testing.T, script string, args ...string) *NodeServer {
	t.Helper()
	srv, err := StartNodeScript(t.Context(), serverDir, script, args...)
	if err != nil {
		t.Fatalf("start node %s: %v", script, err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop node %s: %v", script, err)
		}
		if t.Failed() {
			t.Logf("node %s output:\n%s", script, srv.Output())
		}
	})
	return srv
}

// runCheck runs check.js against url on one transport and returns its report,
// failing the test if no report came out.
func runCheck(t *testing.T, url, transport string, extra ...string) *CheckReport {
	t.Helper()
	args := append([]string{"--transport", transport}, extra...)
	rep, err := RunCheck(t.Context(), clientDir, url, args...)
	if err != nil {
		t.Fatalf("check.js --url %s %s: %v", url, strings.Join(args, " "), err)
	}
	return rep
}

// requirePass fails with check.js's exact FAIL lines, then its whole output.
func requirePass(t *testing.T, rep *CheckReport) {
	t.Helper()
	if rep.OK() {
		t.Logf("check.js: %d passed, %d failed", rep.Passed, rep.Failed)
		return
	}
	t.Errorf("check.js: %d passed, %d failed:\n%s", rep.Passed, rep.Failed, strings.Join(rep.Failures, "\n"))
	t.Logf("check.js full output:\n%s\nstderr:\n%s", strings.Join(rep.Lines, "\n"), rep.Stderr)
}

// TestCheckAgreesWithNodeServer proves check.js and the independent Node
// server agree on every transport. The server attaches lazily, as the
// seed's does, so check.js's init GET is what brings Socket.IO up; all three
// runs share it, so check.js also shows it stays honest on a server that
// already has users and history (CONTRACT.md section 9).
func TestCheckAgreesWithNodeServer(t *testing.T) {
	requireNode(t)
	srv := startNode(t, "server.js", "--port", "0", "--lazy", "--init-path", "/api/socket")
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			requirePass(t, runCheck(t, srv.URL(), tr, "--init-path", "/api/socket"))
		})
	}
	for _, tr := range transports {
		t.Run("extended/"+tr, func(t *testing.T) {
			requirePass(t, runCheck(t, srv.URL(), tr, "--init-path", "/api/socket", "--extended"))
		})
	}
}

// TestCheckAgreesWithNodeServerOnOtherPaths covers a server built unlike the
// seed: Socket.IO on another path and no init route, so check.js makes no
// init GET (CONN-1, CONN-2's "verified without --init-path").
func TestCheckAgreesWithNodeServerOnOtherPaths(t *testing.T) {
	requireNode(t)
	srv := startNode(t, "server.js", "--port", "0", "--path", "/chat-io/", "--init-path", "")
	requirePass(t, runCheck(t, srv.URL(), "polling", "--path", "/chat-io/"))
}

// TestOfficialClientFindsReferenceCorrect is the interop "done means": the
// official socket.io-client 4.8 finds the Go reference correct over
// websocket, long-polling, and polling-then-upgrade.
func TestOfficialClientFindsReferenceCorrect(t *testing.T) {
	requireNode(t)
	run, cfg, logs := startReference(t)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			requirePass(t, runCheck(t, run.URL(), tr, "--init-path", cfg.InitPath))
		})
	}
	// A run of well-behaved clients is the server's normal day: nothing in
	// it may be logged as an error, or real errors drown in the noise.
	var errs []string
	for _, line := range lines(logs.String()) {
		if strings.Contains(line, "level=ERROR") {
			errs = append(errs, line)
		}
	}
	if len(errs) > 0 {
		t.Errorf("reference logged %d errors during a clean run; the first:\n%s", len(errs), errs[0])
	}
}

// TestOfficialClientChecksReferenceLimits runs check.js --extended against
// the reference: bad payloads, identity and size limits and the rate limit
// (ROB, SEC, ERR-1), in the reference's own chatError/ack format.
func TestOfficialClientChecksReferenceLimits(t *testing.T) {
	requireNode(t)
	run, cfg, _ := startReference(t)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			requirePass(t, runCheck(t, run.URL(), tr, "--init-path", cfg.InitPath, "--extended"))
		})
	}
}

// startReference starts the Go reference with its defaults on a free port
// and stops it when the test ends, logging its log if the test failed. The
// returned buffer holds the server's log.
func startReference(t *testing.T) (*reference.Running, reference.Config, *syncBuffer) {
	t.Helper()
	logs := new(syncBuffer)
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	run, err := reference.Start(ctx, cfg, reference.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatalf("reference.Start: %v", err)
	}
	t.Cleanup(func() {
		stopCtx, stop := context.WithTimeout(context.Background(), 15*time.Second)
		defer stop()
		if err := run.Stop(stopCtx); err != nil {
			t.Errorf("reference Stop: %v", err)
		}
		if t.Failed() {
			t.Logf("reference log:\n%s", logs.String())
		}
	})
	return run, cfg, logs
}

// TestCheckFindsSeedFlaws proves check.js can fail, and fails for the right
// reasons: the seed's own server (seed.js) drops a username when any one of
// its sockets leaves (USER-4) and stores `writeMessage 42` as a message with
// neither field (ROB-2, PAY-1). Nothing else about it is wrong by the
// contract, so nothing else may be reported.
func TestCheckFindsSeedFlaws(t *testing.T) {
	requireNode(t)
	srv := startNode(t, "seed.js", "--port", "0")
	rep := runCheck(t, srv.URL(), "websocket", "--init-path", "/api/socket")
	if rep.OK() {
		t.Fatalf("check.js passed the seed's server (%d passed); want USER-4, ROB-2 and PAY-1 failures", rep.Passed)
	}
	var ids []string
	for _, line := range rep.Failures {
		if f := strings.Fields(line); len(f) > 1 && !slices.Contains(ids, f[1]) {
			ids = append(ids, f[1])
		}
	}
	slices.Sort(ids)
	if want := []string{"PAY-1", "ROB-2", "USER-4"}; !slices.Equal(ids, want) {
		t.Errorf("failed requirement IDs = %v, want %v; failures:\n%s", ids, want, strings.Join(rep.Failures, "\n"))
	}
}

// TestCheckCatchesFaults is mutation testing for check.js: faulty.js is
// server.js with one rule broken, and check.js must report the requirement
// that rule belongs to. A check that cannot fail would pass them all.
func TestCheckCatchesFaults(t *testing.T) {
	requireNode(t)
	for _, tc := range []struct {
		fault string
		want  string // a requirement ID check.js must report as failed
	}{
		{"dup-users", "USER-1"},
		{"reverse-users", "USER-2"},
		{"keep-users", "USER-3"},
		{"leave-early", "USER-4"},
		{"rewrite-text", "PAY-3"},
		{"swap-fields", "MSG-2"},
		{"no-history", "HIST-3"},
		{"reverse-history", "MSG-2"},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			// Most faults show as a timeout, so the runs mostly wait: in parallel.
			t.Parallel()
			srv := startNode(t, "faulty.js", "--fault", tc.fault, "--port", "0")
			// Short waits: a fault only needs to show.
			rep := runCheck(t, srv.URL(), "websocket", "--step-timeout", "2000")
			var ids []string
			for _, line := range rep.Failures {
				if f := strings.Fields(line); len(f) > 1 {
					ids = append(ids, f[1])
				}
			}
			if !slices.Contains(ids, tc.want) {
				t.Errorf("check.js against fault %s: failed %v, want %s among them; output:\n%s",
					tc.fault, ids, tc.want, strings.Join(rep.Lines, "\n"))
			}
		})
	}
}

// TestNodeServerAttachesLazily checks the seed-like lazy attach (CONN-2):
// with --lazy, the Socket.IO path is not served until the first GET of the
// init path, and then it is; without --lazy it is served from the start.
func TestNodeServerAttachesLazily(t *testing.T) {
	requireNode(t)
	const handshake = "/socket.io/?EIO=4&transport=polling"
	get := func(t *testing.T, url string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Timeout: 5 * time.Second}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(io.LimitReader(res.Body, 4096))
		if err != nil {
			t.Fatalf("GET %s: reading body: %v", url, err)
		}
		return res.StatusCode, string(body)
	}

	t.Run("lazy", func(t *testing.T) {
		srv := startNode(t, "server.js", "--port", "0", "--lazy")
		if code, _ := get(t, srv.URL()+handshake); code != http.StatusNotFound {
			t.Errorf("Socket.IO handshake before the init GET: status %d, want 404", code)
		}
		for i := range 2 {
			if code, _ := get(t, srv.URL()+"/api/socket"); code != http.StatusOK {
				t.Errorf("init GET #%d: status %d, want 200", i+1, code)
			}
		}
		if code, body := get(t, srv.URL()+handshake); code != http.StatusOK || !strings.HasPrefix(body, `0{"sid":`) {
			t.Errorf("Socket.IO handshake after the init GET: %d %q, want 200 and an Engine.IO open packet", code, body)
		}
	})
	t.Run("eager", func(t *testing.T) {
		srv := startNode(t, "server.js", "--port", "0")
		if code, body := get(t, srv.URL()+handshake); code != http.StatusOK || !strings.HasPrefix(body, `0{"sid":`) {
			t.Errorf("Socket.IO handshake without an init GET: %d %q, want 200 and an Engine.IO open packet", code, body)
		}
	})
}

// TestStartNodeServerReportsBadFlags checks that a server that refuses its
// flags surfaces as an error carrying its own explanation, not a hang.
func TestStartNodeServerReportsBadFlags(t *testing.T) {
	requireNode(t)
	_, err := StartNodeServer(t.Context(), serverDir, "--port", "not-a-port")
	if err == nil {
		t.Fatal("StartNodeServer with --port not-a-port: got a running server, want an error")
	}
	if !strings.Contains(err.Error(), `--port "not-a-port": want a whole number`) {
		t.Errorf("error = %v; want it to carry server.js's explanation of --port", err)
	}
}

// TestCheckNodeSetupNamesTheFix runs everywhere, Node or not: a fixture
// without node_modules is reported with the command that installs it.
func TestCheckNodeSetupNamesTheFix(t *testing.T) {
	err := CheckNodeSetup(t.TempDir())
	if !errors.Is(err, ErrNodeSetup) {
		t.Fatalf("CheckNodeSetup(empty dir) = %v, want an error wrapping ErrNodeSetup", err)
	}
	if !strings.Contains(err.Error(), InstallHint) {
		t.Errorf("CheckNodeSetup(empty dir) = %v, want it to name %q", err, InstallHint)
	}
}

// lines splits s into lines.
func lines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

// syncBuffer is a bytes.Buffer safe for the server's concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
