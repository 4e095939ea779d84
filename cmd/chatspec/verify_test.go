package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chatspec/chatspec/reference"
	"github.com/chatspec/chatspec/reports"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// runVerifyInProcess runs `chatspec verify` in this process. Only paths
// that stop before the specs run may use it: Ginkgo runs a suite once per
// process, so full runs go through buildChatspec.
func runVerifyInProcess(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"verify"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVerifyUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // a line stderr must contain
	}{
		{"unknown profile", []string{"--profile", "gold"}, `--profile "gold": want core, strict or all`},
		{"bad focus", []string{"--focus", "JOIN-("}, `--focus "JOIN-(": error parsing regexp`},
		{"negative timeout", []string{"--timeout", "-1s"}, "--timeout -1s: must be positive"},
		{"bad transport", []string{"--transport", "pigeon"}, `--transport "pigeon": want auto, websocket, polling or upgrade`},
		{"stray argument", []string{"http://127.0.0.1:3000"}, `unexpected argument "http://127.0.0.1:3000" (targets go in --target URL)`},
		{"target with a path", []string{"--target", "http://127.0.0.1:3000/socket.io/"}, "give the server's base URL"},
		{"target without scheme", []string{"--target", "ftp://x"}, "want an http://, https://, ws:// or wss:// URL"},
		{"auth not JSON", []string{"--auth", "token=abc"}, "want a JSON object"},
		{"unknown flag", []string{"--colour"}, "flag provided but not defined: -colour"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runVerifyInProcess(t, tc.args...)
			if code != ExitUsage {
				t.Errorf("exit code %d, want %d (usage); stderr:\n%s", code, ExitUsage, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, stderr)
			}
			if n := strings.Count(stderr, "\n"); n > 2 {
				t.Errorf("a usage error should take one line (plus a hint), got %d:\n%s", n, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout should be empty on a usage error, got:\n%s", stdout)
			}
		})
	}
}

func TestVerifyHelpExitsZero(t *testing.T) {
	code, stdout, _ := runVerifyInProcess(t, "--help")
	if code != ExitOK {
		t.Errorf("--help: exit code %d, want 0", code)
	}
	for _, want := range []string{"-profile", "-report-dir", "-init-path", "Exit codes"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--help does not mention %s:\n%s", want, stdout)
		}
	}
}

func TestVerifyUnreachableTargetExitsBeforeAnyCase(t *testing.T) {
	addr := closedPort(t)
	start := time.Now()
	code, stdout, stderr := runVerifyInProcess(t, "--target", "http://"+addr, "--connect-timeout", "2s")
	if code != ExitUsage {
		t.Fatalf("exit code %d, want %d; stdout:\n%s\nstderr:\n%s", code, ExitUsage, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "target unreachable") || !strings.Contains(lines[0], addr) {
		t.Errorf("want one line naming the unreachable target %s, got:\n%s", addr, stderr)
	}
	if strings.Contains(stdout, "JOIN-1") || strings.Contains(stdout, "CONN-1") {
		t.Errorf("no case may run against an unreachable target, stdout:\n%s", stdout)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the unreachable target took %s to report", d)
	}
}

// Exit 2 runs still leave their report directory, saying why nothing ran:
// an unreachable target, and a target that answers with a web page.
func TestVerifyNothingRanStillWritesTheReport(t *testing.T) {
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html><body>Welcome</body></html>")
	}))
	defer page.Close()
	for _, tc := range []struct{ name, target, want string }{
		{"unreachable", "http://" + closedPort(t), "target unreachable"},
		{"an HTML page", page.URL, "target unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			code, stdout, stderr := runVerifyInProcess(t, "--target", tc.target, "--connect-timeout", "2s", "--report-dir", dir)
			if code != ExitUsage {
				t.Fatalf("exit code %d, want %d; stdout:\n%s\nstderr:\n%s", code, ExitUsage, stdout, stderr)
			}
			raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
			if err != nil {
				t.Fatal(err)
			}
			var res reports.VerifyReport
			if err := json.Unmarshal(raw, &res); err != nil {
				t.Fatal(err)
			}
			if res.Passed || len(res.Cases) != 0 || !strings.HasPrefix(res.Stopped, "nothing ran: ") || !strings.Contains(res.Stopped, tc.want) {
				t.Errorf("results.json: passed %v, %d cases, stopped %q; want not passed, no case, \"nothing ran: ...%s...\"", res.Passed, len(res.Cases), res.Stopped, tc.want)
			}
			for _, f := range []string{"junit.xml", "report.html"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("%s not written: %v", f, err)
				}
			}
		})
	}
}

func TestVerifyListPrintsTheProfilesCases(t *testing.T) {
	code, stdout, stderr := runVerifyInProcess(t, "--list", "--profile", "core")
	if code != ExitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"CONN-1", "JOIN-1", "HIST-2", "RECON-1"} {
		if !strings.Contains(stdout, want+" ") {
			t.Errorf("core listing lacks %s:\n%s", want, stdout)
		}
	}
	for _, notWant := range []string{"TRANS-2", "USER-4", "ROB-1", "SEC-1", "TRANS-4"} {
		if strings.Contains(stdout, notWant+" ") {
			t.Errorf("core listing includes %s, which is not core:\n%s", notWant, stdout)
		}
	}
	if strings.Index(stdout, "CONN-1") > strings.Index(stdout, "RECON-1") {
		t.Errorf("cases are not listed in contract order:\n%s", stdout)
	}
}

// buildChatspec builds the binary, for tests that run the specs (once per
// process, so in a process of their own).
func buildChatspec(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the chatspec binary")
	}
	bin := filepath.Join(t.TempDir(), "chatspec")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("running chatspec: %v", err)
	}
	return 0
}

func TestVerifyEmbeddedReferencePassesCoreAndWritesReports(t *testing.T) {
	bin := buildChatspec(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "verify", "--profile", "core", "--report-dir", dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := exitCode(t, cmd.Run())
	if code != ExitOK {
		t.Fatalf("exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "verifying the embedded reference server") {
		t.Errorf("the run does not say it verified the embedded server:\n%s", stdout.String())
	}

	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res reports.VerifyReport
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	if !res.Passed || len(res.Cases) < 15 {
		t.Errorf("results.json: passed=%v with %d cases", res.Passed, len(res.Cases))
	}
	for _, c := range res.Cases {
		if c.ID == "" || c.Level != "core" || c.Outcome != reports.OutcomePassed || c.Title == "" {
			t.Errorf("results.json case %+v: want an ID, level core, outcome passed and a title", c)
		}
	}

	raw, err = os.ReadFile(filepath.Join(dir, "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var junit struct {
		Cases []struct {
			Name string `xml:"name,attr"`
		} `xml:"testsuite>testcase"`
	}
	if err := xml.Unmarshal(raw, &junit); err != nil {
		t.Fatalf("junit.xml: %v", err)
	}
	if len(junit.Cases) != len(res.Cases) {
		t.Errorf("junit.xml has %d testcases, results.json %d", len(junit.Cases), len(res.Cases))
	}
	for i, c := range junit.Cases {
		if i < len(res.Cases) && !strings.HasPrefix(c.Name, res.Cases[i].ID+" ") {
			t.Errorf("junit testcase %q does not start with its case ID %s", c.Name, res.Cases[i].ID)
		}
	}

	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(html, []byte("JOIN-1")) || bytes.Contains(html, []byte("http://cdn")) || bytes.Contains(html, []byte("<script")) {
		t.Errorf("report.html should list the cases and load nothing from the network")
	}
}

func TestVerifyFailingCaseExitsOneWithDetails(t *testing.T) {
	bin := buildChatspec(t)
	ctx := context.Background()
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Rate = 0 // no rate limit: SEC-4 must fail
	srv, err := reference.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(ctx)
	cmd := exec.Command(bin, "verify", "--target", srv.URL(), "--profile", "all", "--focus", "SEC-4|MSG-2")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if code := exitCode(t, cmd.Run()); code != ExitFailed {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitFailed, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"--- FAIL SEC-4 (security)",
		"contract: SEC-4 (security, SHOULD): a socket flooding `writeMessage` is rate-limited",
		"expected: some of 200 writeMessage sent back to back are refused",
		"seen: all 200 were accepted",
		"events received",
		"FAIL: profile all",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !regexpMatch(`MSG-2\s+core\s+PASSED`, out) {
		t.Errorf("MSG-2 should pass in the same run:\n%s", out)
	}
}

func TestVerifyTargetDyingMidRunFailsFast(t *testing.T) {
	bin := buildChatspec(t)
	ctx := context.Background()
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.PingInterval, cfg.PingTimeout = 300*time.Millisecond, 300*time.Millisecond
	srv, err := reference.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(ctx)
	cmd := exec.Command(bin, "verify", "--target", srv.URL(), "--profile", "all")
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(pipe)
	cases := 0
	stopped := time.Time{}
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if strings.HasPrefix(line, "ok ") {
			cases++
			if cases == 3 && stopped.IsZero() {
				if err := srv.Stop(ctx); err != nil {
					t.Errorf("stopping the server: %v", err)
				}
				stopped = time.Now()
			}
		}
	}
	code := exitCode(t, cmd.Wait())
	if code != ExitInterrupted {
		t.Errorf("exit code %d, want %d (the target died mid-run)", code, ExitInterrupted)
	}
	if !strings.Contains(out.String(), "target unreachable since") {
		t.Errorf("the output does not say the target went down:\n%s", out.String())
	}
	// Every remaining case fails at once instead of waiting out its
	// timeouts one by one (35 cases x 3 s).
	if d := time.Since(stopped); d > 15*time.Second {
		t.Errorf("after the target died the run took another %s", d)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func regexpMatch(pattern, s string) bool {
	return regexp.MustCompile(pattern).MatchString(s)
}

// A server without long-polling is reachable: it must get its verdict
// (TRANS-1 fails) rather than "unreachable".
func TestVerifyWebSocketOnlyServerIsVerifiedNotUnreachable(t *testing.T) {
	bin := buildChatspec(t)
	ctx := context.Background()
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Transports = []string{reference.TransportWebSocket}
	srv, err := reference.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(ctx)
	cmd := exec.Command(bin, "verify", "--target", srv.URL(), "--focus", "TRANS-1|TRANS-2")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if code := exitCode(t, cmd.Run()); code != ExitFailed {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitFailed, stdout.String(), stderr.String())
	}
	if !regexpMatch(`TRANS-1\s+core\s+FAILED`, stdout.String()) {
		t.Errorf("TRANS-1 should fail against a WebSocket-only server:\n%s", stdout.String())
	}
}

// hangingPollingTarget is the reference server with long-polling requests
// that hang (WebSocket works): a broken transport, not a dead target.
func hangingPollingTarget(t *testing.T) string {
	t.Helper()
	cfg := reference.DefaultConfig()
	cfg.PingInterval, cfg.PingTimeout = 500*time.Millisecond, 1500*time.Millisecond
	srv, err := reference.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("transport") == "polling" {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { close(release); ts.CloseClientConnections(); ts.Close() })
	return ts.URL
}

// Issue 13: against a server whose long polls hang, the polling cases
// fail and the run goes on (exit 1); the mid-run re-probe tries WebSocket
// too and does not call the target dead (it used to: exit 3, "target
// unreachable since TRANS-1", 11 failures).
func TestVerifyBrokenPollingFailsItsCasesNotTheRun(t *testing.T) {
	bin := buildChatspec(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "verify", "--target", hangingPollingTarget(t), "--focus", `\b(TRANS-1|JOIN-1|MSG-1|USER-1)\b`,
		"--timeout", "1s", "--connect-timeout", "1s", "--report-dir", dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if code := exitCode(t, cmd.Run()); code != ExitFailed {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitFailed, stdout.String(), stderr.String())
	}
	out := stdout.String()
	if strings.Contains(out, "target unreachable since") {
		t.Errorf("the target was called dead although it serves WebSocket:\n%s", out)
	}
	if !regexpMatch(`TRANS-1\S*\s+core\s+FAILED`, out) {
		t.Errorf("TRANS-1 should fail (its long polls hang):\n%s", out)
	}
	for _, id := range []string{"JOIN-1", "MSG-1", "USER-1"} {
		if !regexpMatch(id+`\s+core\s+PASSED`, out) {
			t.Errorf("%s should pass over WebSocket:\n%s", id, out)
		}
	}
}

// Issue 18: an unattached Next.js server (308 from /socket.io/ to
// /socket.io, then 404; WebSocket upgrades never answered) is named as
// such, with --init-path suggested, without waiting out --connect-timeout;
// the report says why nothing ran.
func TestVerifyUnattachedNextJSServerIsDiagnosed(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
			select {
			case <-r.Context().Done():
			case <-release:
			}
		case r.URL.Path == "/socket.io/":
			http.Redirect(w, r, "/socket.io?"+r.URL.RawQuery, http.StatusPermanentRedirect)
		default:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "<!DOCTYPE html><html><body>404: This page could not be found.</body></html>")
		}
	}))
	t.Cleanup(func() { close(release); ts.CloseClientConnections(); ts.Close() })
	dir := t.TempDir()
	start := time.Now()
	code, _, stderr := runVerifyInProcess(t, "--target", ts.URL, "--report-dir", dir)
	took := time.Since(start)
	if code != ExitUsage {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", code, ExitUsage, stderr)
	}
	for _, want := range []string{"redirected (308 to " + ts.URL + "/socket.io), which answered HTTP 404", "Next.js", "--init-path /api/socket"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	// The default --connect-timeout is 5s: none of it may go on the
	// WebSocket upgrade that Next never answers.
	if took > 2500*time.Millisecond {
		t.Errorf("the diagnosis took %s", took)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil || !bytes.Contains(raw, []byte("--init-path /api/socket")) {
		t.Errorf("results.json does not say why nothing ran (%v):\n%s", err, raw)
	}
}

// TestVerifyLongUncappedHistoryIsNotAFailure: a conforming server whose
// history is uncapped and already long (the seed after a few runs) sends
// a busy case more than chatspec records (framework.MaxBytesPerCase).
// That case is not verified, and says so; it is not failed, and the run
// passes. It once failed HIST-2 on the seed's server from its 12th run on.
func TestVerifyLongUncappedHistoryIsNotAFailure(t *testing.T) {
	bin := buildChatspec(t)
	srv, cfg := startReference(t, func(c *reference.Config) {
		c.HistoryLimit = 10_000      // uncapped, for what the case can tell
		c.SlowReaderLimit = 64 << 20 // room for one full messageWritten of that history
		c.Rate = 0
	})
	// 400 messages of 1,000 characters: every later event carries ~400 KB,
	// so HIST-2's ~600 events are far beyond the 32 MiB it records.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := sioclient.Dial(ctx, sioclient.Options{URL: srv.URL(), Path: cfg.Path, Transport: sioclient.WebSocket})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Emit(ctx, "connecting", map[string]any{"username": "history-filler"}); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.NextNamed(ctx, "connected"); err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat("h", 1000)
	for i := range 400 {
		if err := conn.Emit(ctx, "writeMessage", map[string]any{"username": "history-filler", "message": fmt.Sprint(i, text)}); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.NextNamed(ctx, "messageWritten"); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}

	cmd := exec.Command(bin, "verify", "--target", srv.URL(), "--profile", "core", "--focus", `\bHIST-2\b`, "--report-dir", t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if code := exitCode(t, cmd.Run()); code != ExitOK {
		t.Fatalf("exit code %d, want %d: a long uncapped history is no contract violation\nstdout:\n%s\nstderr:\n%s", code, ExitOK, stdout.String(), stderr.String())
	}
	out := stdout.String()
	if !regexpMatch(`HIST-2\s+core\s+SKIPPED`, out) || !strings.Contains(out, "not verified: the server sent this case's clients more than chatspec records") {
		t.Errorf("HIST-2 should be skipped as not verified, naming the bound:\n%s", out)
	}
}
