package interop

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// These tests hold chatspec to its first law from the other side: correct
// servers it has never been tuned to pass, every run (issue 9), and what
// earlier runs left in a server never fails a later one (CONTRACT.md §9).

// pyServerDir is the Python fixture: a correct server on python-socketio,
// written from CONTRACT.md alone.
const pyServerDir = "../testdata/pyserver"

// repeats is how many verify runs in a row each "every run" test makes
// (CHATSPEC_INTEROP_REPEAT, default 3): flakiness shows only in repetition.
// The README's measured counts come from 20.
func repeats() int {
	if n, err := strconv.Atoi(os.Getenv("CHATSPEC_INTEROP_REPEAT")); err == nil && n > 0 {
		return n
	}
	return 3
}

// requirePython fails the test when the Python fixture cannot run, saying
// how to install it: a missing stack must not read as a pass. The only way
// around it is the explicit CHATSPEC_SKIP_PYTHON=1.
func requirePython(t *testing.T) {
	t.Helper()
	if os.Getenv("CHATSPEC_SKIP_PYTHON") == "1" {
		t.Skip("CHATSPEC_SKIP_PYTHON=1: skipping the tests against the Python server")
	}
	if err := CheckPythonSetup(t.Context()); err != nil {
		t.Fatalf("%v\n(or set CHATSPEC_SKIP_PYTHON=1 to skip the tests against the Python server)", err)
	}
}

// pyPings are the Python server's heartbeat in the tests: pingInterval +
// pingTimeout of 5 s keeps RECON-2/3 short, and leaves room on a loaded
// machine, where a 3 s total once let a starved server miss its own pings.
var pyPings = []string{"--ping-interval", "1000", "--ping-timeout", "4000"}

func startPython(t *testing.T, args ...string) *NodeServer {
	t.Helper()
	srv, err := StartPythonServer(t.Context(), pyServerDir, append(append([]string{"--port", "0"}, pyPings...), args...)...)
	if err != nil {
		t.Fatalf("start the Python server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop the Python server: %v", err)
		}
		if t.Failed() {
			t.Logf("Python server output:\n%s", srv.Output())
		}
	})
	return srv
}

// passEveryRun runs `verify --profile all` repeats() times against one
// long-lived server (so each run also meets what the earlier ones left)
// and fails on any case that neither passed nor was info, or skipped
// without being in skips (case ID → a phrase its message must contain).
func passEveryRun(t *testing.T, bin, url string, verify []string, skips map[string]string) []verifyResult {
	t.Helper()
	var all []verifyResult
	for i := range repeats() {
		// The fixed cases only (issue 9's proof). Exploration has its own
		// proofs with their own budgets: the reference in spec/explore, the
		// Node server, its variants and the broken servers in
		// spec/selftest/explore_test.go. Here it would add a minute a run.
		res, out := runVerify(t, bin, url, append([]string{"--profile", "all", "--explore", "0"}, verify...))
		all = append(all, res)
		bad := 0
		for _, c := range res.Cases {
			want, skip := skips[c.ID]
			switch {
			case c.Outcome == "passed" || c.Outcome == "info":
			case c.Outcome == "skipped" && skip && strings.Contains(c.Message, want):
			default:
				bad++
				t.Errorf("run %d: %s %s: %s", i+1, c.ID, c.Outcome, c.Message)
			}
		}
		if len(res.Cases) < 30 || !res.Passed || bad > 0 {
			t.Fatalf("run %d of %d: %d cases, passed=%v; output:\n%s", i+1, repeats(), len(res.Cases), res.Passed, out)
		}
	}
	return all
}

// stockClientLimit is the one skip a correct server may get: the stock Go
// client sometimes sends a duplicate CONNECT (a known defect of the
// client, README "What the cases check"); a server
// that ends that session is within the contract, and the client then
// stays down. STOCK-1 skips with a finding saying so, and TRANS-2 and
// RECON-1 judge the server. Seen once in CI against the Python server
// (python-socketio ends the session), 1 run in 3.
var stockClientLimit = map[string]string{"STOCK-1": "a limit of the client"}

func findingOf(res verifyResult, id, phrase string) (string, bool) {
	for _, c := range res.Cases {
		if c.ID != id {
			continue
		}
		for _, f := range c.Findings {
			if strings.Contains(f, phrase) {
				return f, true
			}
		}
	}
	return "", false
}

// TestPythonServerPassesEveryRun: the Python server passes --profile all
// run after run. It makes every legal choice that once failed it: no
// maxPayload in the handshake (TRANS-4 must say "not announced", SEC-3 that
// it skipped its probe), aiohttp's permessage-deflate answer without
// client_no_context_takeover (the stock client no longer offers deflate),
// lazily noticed ping timeouts, refusals as a "notice" event.
func TestPythonServerPassesEveryRun(t *testing.T) {
	requirePython(t)
	bin := chatspecBinary(t)
	srv := startPython(t)
	runs := passEveryRun(t, bin, srv.URL(), []string{"--init-path", "/api/socket", "--max-wait", "30s"}, stockClientLimit)
	for phrase, id := range map[string]string{
		"maxPayload not announced":           "TRANS-4",
		"packet-size probe was skipped":      "SEC-3",
		`refusal reported as event "notice"`: "ERR-1",
	} {
		if _, ok := findingOf(runs[0], id, phrase); !ok {
			t.Errorf("%s has no finding saying %q", id, phrase)
		}
	}
}

// TestNodeServerPassesEveryRun: the same for the Node server (socket.io
// 4.8), lazily attached behind its init route.
func TestNodeServerPassesEveryRun(t *testing.T) {
	requireNode(t)
	bin := chatspecBinary(t)
	srv := startNode(t, "server.js", "--port", "0", "--ping-interval", "1000", "--ping-timeout", "4000", "--lazy")
	passEveryRun(t, bin, srv.URL(), []string{"--init-path", "/api/socket", "--max-wait", "30s"}, stockClientLimit)
}

// TestPollingOnlyServer: a server without WebSocket meets every MUST
// (TRANS-1; WebSocket is TRANS-2, a SHOULD). The default --transport auto
// must give it a core pass with no extra flag, over long-polling, where
// its ping timeouts are noticed lazily (RECON-1 over polling); strict must
// fail it on TRANS-2 and TRANS-3, and on nothing else.
func TestPollingOnlyServer(t *testing.T) {
	requirePython(t)
	bin := chatspecBinary(t)
	srv := startPython(t, "--transports", "polling")

	core, out := runVerify(t, bin, srv.URL(), []string{"--profile", "core"})
	if !core.Passed {
		t.Errorf("core against a polling-only server: passed=false, want a pass with no extra flag; output:\n%s", out)
	}
	auto := false
	for _, c := range core.Cases {
		for _, f := range c.Findings {
			auto = auto || strings.Contains(f, "--transport auto: a direct WebSocket connection failed")
		}
	}
	if !auto {
		t.Errorf("core against a polling-only server: no finding says --transport auto chose long-polling; output:\n%s", out)
	}

	strict, out := runVerify(t, bin, srv.URL(), []string{"--profile", "strict"})
	var failed []string
	for _, c := range strict.Cases {
		if c.Outcome == "failed" {
			failed = append(failed, c.ID)
		}
	}
	if strict.Passed || !slices.Contains(failed, "TRANS-2") {
		t.Errorf("strict against a polling-only server: failed %v, want TRANS-2 among them; output:\n%s", failed, out)
	}
	for _, id := range failed {
		if id != "TRANS-2" && id != "TRANS-3" {
			t.Errorf("strict against a polling-only server: %s failed, but only TRANS-2 and TRANS-3 may; output:\n%s", id, out)
		}
	}
}

// TestEarlierRunsLeaveNoVerdict (issue 18): the seed's server accepts any
// username and keeps it, so a --profile all run leaves 42, null, arrays and
// a 5000-character name in its user list. A later core run against the
// same process must pass, and say which foreign entries it tolerated.
func TestEarlierRunsLeaveNoVerdict(t *testing.T) {
	requireNode(t)
	bin := chatspecBinary(t)
	srv := startNode(t, "seed.js", "--port", "0")
	verify := []string{"--init-path", "/api/socket"}
	// The seed fails strict, robust and security cases (USER-4, ROB-2,
	// ERR-1, SEC-1..4, as CONTRACT.md predicts); what matters is what its
	// bad-input cases leave behind.
	if res, out := runVerify(t, bin, srv.URL(), append([]string{"--profile", "all", "--explore", "0"}, verify...)); len(res.Cases) < 30 {
		t.Fatalf("the first run (--profile all) ran %d cases; output:\n%s", len(res.Cases), out)
	}
	for i := range 2 {
		res, out := runVerify(t, bin, srv.URL(), append([]string{"--profile", "core"}, verify...))
		if !res.Passed {
			t.Errorf("core run %d after a --profile all run: passed=false; output:\n%s", i+1, out)
			continue
		}
		f, ok := findingOf(res, "PAY-1", "foreign entries")
		if !ok {
			t.Errorf("core run %d: PAY-1 has no finding naming the tolerated foreign entries; output:\n%s", i+1, out)
			continue
		}
		if !strings.Contains(f, "connectedUserList entry") {
			t.Errorf("core run %d: the PAY-1 finding does not name the entries: %q", i+1, f)
		}
		t.Log(fmt.Sprintf("core run %d: %s", i+1, f))
	}
}

// TestCheckAgreesWithPythonServer: the official socket.io-client (check.js)
// finds the Python server correct on every transport. The server reports
// refusals as a "notice" event, not the reference's chatError: check.js
// must accept any report to the offending socket, as ERR-1 does.
func TestCheckAgreesWithPythonServer(t *testing.T) {
	requirePython(t)
	requireNode(t)
	srv := startPython(t)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			requirePass(t, runCheck(t, srv.URL(), tr, "--init-path", "/api/socket"))
		})
	}
}
