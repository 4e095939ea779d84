package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

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
		{"verify", []string{"verify", "--profile", "all"}, "ok ", "results.json", func(t *testing.T, raw []byte) {
			var res struct {
				Passed  bool
				Stopped string
				Cases   []json.RawMessage
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				t.Fatal(err)
			}
			if res.Passed || !strings.Contains(res.Stopped, "interrupted") || len(res.Cases) == 0 {
				t.Errorf("results.json: passed %v, stopped %q, %d cases; want an interrupted run with the finished cases", res.Passed, res.Stopped, len(res.Cases))
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
			signaled := time.Now()
			_ = cmd.Process.Signal(syscall.SIGINT)
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
