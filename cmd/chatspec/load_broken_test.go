package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chatspec/chatspec/loadgen/faultychat"
)

// Issue 11: with default flags (the correctness gate), a server broken in
// each of these ways fails the run (exit 1), and the console names the
// crossed gate.
func TestLoadDefaultGateFailsBrokenServers(t *testing.T) {
	tests := []struct {
		name   string
		faults faultychat.Faults
		args   []string
		cause  string // the crossed gate the console must name
	}{
		{"ends every session", faultychat.Faults{EndSessionsAfter: 200 * time.Millisecond}, nil, "sessions.dropped==0"},
		{"ends polling sessions", faultychat.Faults{EndPollingAfter: time.Second}, []string{"--transport", "polling", "--duration", "2500ms"}, "sessions.dropped==0"},
		{"echoes the sender twice", faultychat.Faults{EchoSenderTwice: true}, nil, "delivery.duplicated==0"},
		{"refuses some writes", faultychat.Faults{RefuseEvery: 4}, nil, "messages.refused==0"},
		{"receivers see different orders", faultychat.Faults{SplitOrder: true}, nil, "delivery.order_conflicts==0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := faultychat.Start(tt.faults)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			args := []string{"load", "--target", srv.URL(), "--users", "6", "--ramp", "300ms", "--duration", "1500ms",
				"--message-interval", "200ms", "--delivery-window", "1s", "--progress", "off"}
			code, stdout, stderr := runLoadCmd(context.Background(), t, append(args, tt.args...)...)
			if code != ExitFailed {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitFailed, stdout, stderr)
			}
			verdict := stdout[strings.LastIndex(stdout, "verdict:"):]
			if !strings.Contains(verdict, tt.cause) {
				t.Errorf("verdict line %q does not name %s\nstdout:\n%s", verdict, tt.cause, stdout)
			}
		})
	}
}

// The same gate passes the reference, with 0 in every new figure.
func TestLoadDefaultGatePassesTheReference(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runLoadCmd(context.Background(), t, append(quickLoad, "--transport-mix", "websocket=2,polling=1,upgrade=1", "--report-dir", dir)...)
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	doc := readSummary(t, dir)
	msgs, ss, ev := doc["messages"].(map[string]any), doc["sessions"].(map[string]any), doc["events"].(map[string]any)
	for name, v := range map[string]any{
		"messages.refused": msgs["refused"], "messages.order_conflicts": msgs["order_conflicts"], "messages.unmeasured": msgs["unmeasured"],
		"sessions.ended_by_server": ss["ended_by_server"], "events.repeated": ev["repeated"], "events.out_of_contract": ev["out_of_contract"],
		"events.foreign": ev["foreign"], "events.forged": ev["forged"],
	} {
		if v != 0.0 && v != false {
			t.Errorf("%s = %v, want 0", name, v)
		}
	}
}
