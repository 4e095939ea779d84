package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	code, _, stderr := runLoadCmd(context.Background(), t, "load", "--help")
	if code != ExitOK || !strings.Contains(stderr, "delivery.loss_ratio") || !strings.Contains(stderr, "--threshold") {
		t.Errorf("help: exit %d, text %q", code, stderr)
	}
}

func TestLoadUnreachableTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a port nobody listens on
	code, _, stderr := runLoadCmd(context.Background(), t, "load", "--target", "http://"+addr, "--connect-timeout", "1s")
	if code != ExitUsage || !strings.Contains(stderr, "unreachable") {
		t.Errorf("exit %d stderr %q, want %d and 'unreachable'", code, stderr, ExitUsage)
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
