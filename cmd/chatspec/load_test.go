package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chatspec/chatspec/reference"
)

// quickLoad is a short embedded run: 6 users for about 3 seconds.
var quickLoad = []string{"load", "--users", "6", "--ramp", "300ms", "--duration", "1500ms", "--message-interval", "200ms", "--delivery-window", "1s", "--progress", "off"}

func runLoadCmd(ctx context.Context, t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestLoadUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad threshold", []string{"--threshold", "fanout.p98<1s"}, `threshold "fanout.p98<1s": unknown metric`},
		{"threshold syntax", []string{"--threshold", "fanout.p99 1s"}, "syntax error"},
		{"stages and users", []string{"--stages", "1s:5", "--users", "5"}, "--stages replaces"},
		{"bad stages", []string{"--stages", "1s"}, "stage 1"},
		{"bad pacing", []string{"--pacing", "burst"}, "--pacing"},
		{"jitter with poisson", []string{"--jitter", "1s"}, "--jitter applies"},
		{"bad mix", []string{"--transport-mix", "carrier-pigeon=1"}, "unknown transport"},
		{"bad churn", []string{"--churn", "2"}, "--churn"},
		{"bad run id", []string{"--run-id", "Has:Colon"}, "--run-id"},
		{"bad target", []string{"--target", "ftp://x"}, "--target"},
		{"zero users", []string{"--users", "0"}, "--users 0"},
		{"stray argument", []string{"now"}, "unexpected argument"},
		{"negative max outage", []string{"--max-outage", "-1s"}, "--max-outage -1s: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runLoadCmd(context.Background(), t, append([]string{"load"}, tt.args...)...)
			if code != ExitUsage {
				t.Errorf("exit = %d, want %d (stderr %q)", code, ExitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not mention %q", stderr, tt.want)
			}
		})
	}
}

func TestLoadHelp(t *testing.T) {
	code, stdout, _ := runLoadCmd(context.Background(), t, "load", "--help")
	if code != ExitOK || !strings.Contains(stdout, "delivery.loss_ratio") || !strings.Contains(stdout, "--threshold") {
		t.Errorf("help: exit %d, text %q", code, stdout)
	}
}

func TestLoadUnreachableTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a port nobody listens on
	dir := t.TempDir()
	code, _, stderr := runLoadCmd(context.Background(), t, "load", "--target", "http://"+addr, "--connect-timeout", "1s", "--report-dir", dir)
	if code != ExitUsage || !strings.Contains(stderr, "unreachable") {
		t.Errorf("exit %d stderr %q, want %d and 'unreachable'", code, stderr, ExitUsage)
	}
	// Nothing ran, and the report directory says why: CI keeps it.
	doc := readSummary(t, dir)
	if doc["ended"] != "not_started" || doc["verdict"] != "fail" || !strings.Contains(doc["ended_detail"].(string), addr) {
		t.Errorf("summary.json ended %v (%v), verdict %v; want not_started naming %s, fail", doc["ended"], doc["ended_detail"], doc["verdict"], addr)
	}
	junit, _ := os.ReadFile(filepath.Join(dir, "junit.xml"))
	if !strings.Contains(string(junit), "run ended early: not_started") || !strings.Contains(string(junit), addr) {
		t.Errorf("junit.xml does not say why nothing ran:\n%s", junit)
	}
}

func readSummary(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"junit.xml", "report.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	return doc
}

func TestLoadEmbeddedPasses(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runLoadCmd(context.Background(), t, append(quickLoad,
		"--threshold", "delivery.lost==0", "--threshold", "connect.errors==0", "--threshold", "fanout.p99<5s", "--report-dir", dir)...)
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	doc := readSummary(t, dir)
	msgs := doc["messages"].(map[string]any)
	if doc["verdict"] != "pass" || msgs["lost"].(float64) != 0 || msgs["delivered"] != msgs["expected_deliveries"] || msgs["sent"].(float64) == 0 {
		t.Errorf("summary: verdict %v messages %v", doc["verdict"], msgs)
	}
	if !strings.Contains(stdout, "verdict: PASS") {
		t.Errorf("stdout lacks the verdict:\n%s", stdout)
	}
}

func TestLoadThresholdCrossedExitsOne(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runLoadCmd(context.Background(), t, append(quickLoad, "--threshold", "fanout.p50<1us", "--report-dir", dir)...)
	if code != ExitFailed {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitFailed, stdout, stderr)
	}
	doc := readSummary(t, dir)
	th := doc["thresholds"].([]any)[0].(map[string]any)
	if doc["verdict"] != "fail" || th["ok"] != false || th["expr"] != "fanout.p50<1us" {
		t.Errorf("verdict %v threshold %v", doc["verdict"], th)
	}
}

func TestLoadInterruptedWritesPartialReport(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(2*time.Second, cancel)
	args := []string{"load", "--users", "5", "--ramp", "100ms", "--duration", "1m", "--message-interval", "200ms", "--progress", "off", "--report-dir", dir}
	began := time.Now()
	code, stdout, stderr := runLoadCmd(ctx, t, args...)
	if code != ExitInterrupted {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitInterrupted, stdout, stderr)
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Errorf("interrupted run took %v", took)
	}
	doc := readSummary(t, dir)
	if doc["ended"] != "interrupted" || doc["verdict"] != "fail" {
		t.Errorf("ended %v verdict %v", doc["ended"], doc["verdict"])
	}
	if doc["messages"].(map[string]any)["sent"].(float64) == 0 {
		t.Errorf("partial report has no messages")
	}
	if !strings.Contains(stderr, "ended early (interrupted)") {
		t.Errorf("stderr does not say why the run ended: %q", stderr)
	}
}

func TestLoadProgressBarsRender(t *testing.T) {
	args := append([]string{}, quickLoad...)
	args[len(args)-1] = "on" // --progress on, although stderr is not a terminal
	code, stdout, stderr := runLoadCmd(context.Background(), t, args...)
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"users", "messages  sent", "fan-out p99"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("progress output lacks %q:\n%s", want, stderr)
		}
	}
}

// signalWriter collects output and closes seen once it contains marker:
// the test's cue that the run has started.
type signalWriter struct {
	mu     sync.Mutex
	b      bytes.Buffer
	marker string
	seen   chan struct{}
}

func newSignalWriter(marker string) *signalWriter {
	return &signalWriter{marker: marker, seen: make(chan struct{})}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := strings.Contains(w.b.String(), w.marker)
	n, err := w.b.Write(p)
	if !had && strings.Contains(w.b.String(), w.marker) {
		close(w.seen)
	}
	return n, err
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func startReferenceAt(t *testing.T, addr string) (*reference.Running, error) {
	cfg := reference.DefaultConfig()
	cfg.Addr = addr
	cfg.Rate = 0
	deadline := time.Now().Add(5 * time.Second)
	for {
		srv, err := reference.Start(context.Background(), cfg)
		// The old port may briefly be some reconnect's ephemeral port.
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return srv, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outageRun runs `chatspec load` against a reference server that is
// stopped 1.5s into the run and, when back > 0, started again on the same
// port that much later. It returns the exit code, the outputs and the
// server to stop at the end (nil if none runs).
func outageRun(t *testing.T, back time.Duration, args ...string) (int, string, string, *reference.Running) {
	t.Helper()
	srv, err := startReferenceAt(t, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(srv.URL(), "http://")
	stdout, stderr := newSignalWriter("chatspec load: run "), newSignalWriter("")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	restarted := make(chan *reference.Running, 1)
	go func() {
		var next *reference.Running
		defer func() { restarted <- next }()
		select {
		case <-stdout.seen:
		case <-ctx.Done():
			return
		}
		// The scenario's timing: users join and chat, the server goes
		// away, and comes back after `back`.
		select {
		case <-time.After(1500 * time.Millisecond):
		case <-ctx.Done():
			return
		}
		if srv.Stop(ctx) != nil || back <= 0 {
			return
		}
		select {
		case <-time.After(back):
		case <-ctx.Done():
			return
		}
		next, _ = startReferenceAt(t, addr)
	}()
	code := run(ctx, append([]string{"load", "--target", srv.URL(), "--progress", "off"}, args...), stdout, stderr)
	cancel()
	return code, stdout.String(), stderr.String(), <-restarted
}

func TestLoadRidesOutARestartWithMaxOutage(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr, srv := outageRun(t, time.Second, "--users", "6", "--ramp", "200ms", "--duration", "4s",
		"--message-interval", "200ms", "--delivery-window", "1s", "--churn-pause", "300ms", "--max-outage", "10s",
		"--threshold", "outage.count==1", "--threshold", "outage.max<3s", "--threshold", "delivery.lost==0", "--report-dir", dir)
	if srv != nil {
		defer srv.Stop(context.Background())
	}
	if code != ExitOK {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitOK, stdout, stderr)
	}
	doc := readSummary(t, dir)
	outages, _ := doc["outages"].([]any)
	if len(outages) != 1 || outages[0].(map[string]any)["end_s"] == nil {
		t.Errorf("outages = %v, want one that ended", doc["outages"])
	}
	if doc["config"].(map[string]any)["max_outage_seconds"] != 10.0 {
		t.Errorf("config = %v, want max_outage_seconds 10", doc["config"])
	}
	if !strings.Contains(stdout, "outages   http://") {
		t.Errorf("the console does not list the outage:\n%s", stdout)
	}
}

func TestLoadOutageLongerThanMaxOutageExitsThree(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr, _ := outageRun(t, 0, "--users", "6", "--ramp", "200ms", "--duration", "1m",
		"--message-interval", "200ms", "--max-outage", "500ms", "--report-dir", dir)
	if code != ExitInterrupted {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitInterrupted, stdout, stderr)
	}
	if !strings.Contains(stderr, "ended early (target_down)") || !strings.Contains(stderr, "longer than the allowed outage (max outage 500ms)") {
		t.Errorf("stderr does not say why the run ended: %q", stderr)
	}
	doc := readSummary(t, dir)
	outages, _ := doc["outages"].([]any)
	if doc["ended"] != "target_down" || len(outages) != 1 || outages[0].(map[string]any)["end_s"] != nil {
		t.Errorf("ended %v outages %v, want target_down with one open outage", doc["ended"], doc["outages"])
	}
}

// TestLoadSeedStyleEmbedded: --seed-style users against the embedded
// reference (which then runs with --seed-clients) deliver everything, and
// the summary records the mode.
func TestLoadSeedStyleEmbedded(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runLoadCmd(context.Background(), t, append(quickLoad, "--seed-style", "--report-dir", dir)...)
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	doc := readSummary(t, dir)
	msgs := doc["messages"].(map[string]any)
	if msgs["lost"].(float64) != 0 || msgs["delivered"] != msgs["expected_deliveries"] || msgs["sent"].(float64) == 0 {
		t.Errorf("summary messages %v: want everything owed delivered", msgs)
	}
	if cfg := doc["config"].(map[string]any); cfg["seed_style"] != true {
		t.Errorf("summary config %v: want seed_style true", cfg)
	}
	if !strings.Contains(stdout, "seed-style users: two connections each") {
		t.Errorf("stdout does not say the users are seed-style:\n%s", stdout)
	}
}

// --source-addr spreads the users over local addresses: against a server
// that admits 4 connections per client IP, 9 users connect from three
// loopback addresses, and from one they cannot.
func TestLoadSourceAddrsSpreadUsers(t *testing.T) {
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Rate = 0
	cfg.MaxConnectionsPerIP = 4
	srv, err := reference.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(context.Background())
	users := []string{"load", "--target", srv.URL(), "--users", "9", "--ramp", "300ms", "--duration", "1s", "--message-interval", "300ms",
		"--delivery-window", "1s", "--progress", "off"}
	dir := t.TempDir()
	code, stdout, stderr := runLoadCmd(context.Background(), t, append(users, "--source-addr", "127.0.0.2-127.0.0.4", "--report-dir", dir)...)
	if code != ExitOK {
		t.Fatalf("from three addresses: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if u := readSummary(t, dir)["users"].(map[string]any); u["connected"].(float64) != 9 || u["connect_errors"].(float64) != 0 {
		t.Errorf("from three addresses: users %v, want 9 connected", u)
	}
	dir = t.TempDir()
	code, _, _ = runLoadCmd(context.Background(), t, append(users, "--source-addr", "127.0.0.5", "--report-dir", dir)...)
	if u := readSummary(t, dir)["users"].(map[string]any); code != ExitFailed || u["connect_errors"].(float64) == 0 {
		t.Errorf("from one address: exit %d, users %v; want connect errors past the per-IP cap", code, u)
	}
	code, _, stderr = runLoadCmd(context.Background(), t, append(users, "--source-addr", "192.0.2.1")...)
	if code != ExitUsage || !strings.Contains(stderr, "not an address of this machine") {
		t.Errorf("a foreign address: exit %d, stderr %q; want %d and why", code, stderr, ExitUsage)
	}
}
