package interop

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// variantRun is one `chatspec verify` run against variants.js: a correct
// server that differs from server.js only in what CONTRACT.md leaves open,
// so every case the run selects must pass.
type variantRun struct {
	name     string   // subtest name
	variants string   // variants.js --variant
	why      string   // what the run proves the suite tolerates
	server   []string // extra variants.js flags
	verify   []string // extra verify flags (profile, focus, transport...)
	// noInit leaves out verify's --init-path /api/socket.
	noInit bool
	// skipped maps a case ID that must be skipped to a phrase its reason
	// must contain: a documented skip, not a silent one.
	skipped map[string]string
}

// variantRuns groups independent variants into few runs to keep the test
// short; each run's why says which contract freedoms it exercises. The
// whole list, one variant per run and --profile all, is what the
// nodeserver README's "variants" table reports.
var variantRuns = []variantRun{
	{
		name: "shape", variants: "extra-fields,field-order,whitespace,system-messages,extra-events",
		why: "PAY-2: extra fields and lists, other key order, indented JSON; history entries and events the suite did not cause",
		// Its extra events make it the busiest run: with the 300 ms pong
		// window a loaded machine delayed a pong past it and the server
		// dropped a healthy client ("ping timeout"). 2 s covers the
		// scheduling delays measured under a CPU burner on both cores;
		// verify derives its own waits from this handshake.
		server: []string{"--ping-interval", "1000", "--ping-timeout", "2000"},
	},
	{
		name: "delivery-polling", variants: "rooms,separate-emits,acks",
		why:    "JOIN-4/MSG-1: events only to joined sockets, messageWritten as two sends, acks with their own payloads; over long-polling",
		verify: []string{"--transport", "polling"},
	},
	{
		name: "order", variants: "broadcast-first,chatty-disconnect",
		why: "others hear first; every disconnect broadcasts the (possibly unchanged) list, as the seed does (USER-4, USER-5)",
	},
	{
		name: "store", variants: "slow-store,rate-10",
		why: "every join and message waits 20 ms on a serial store; writes limited to a burst of 10 and 10/s (SEC-5)",
	},
	{
		name: "namespace", variants: "namespace,deflate",
		why:    "the chat on namespace /chat (CONN-1 --namespace), permessage-deflate on every frame",
		verify: []string{"--namespace", "/chat"},
	},
	{
		name: "cap-50", variants: "cap-50",
		why:    "HIST-4: the smallest cap the contract accepts",
		verify: []string{"--focus", "HIST|JOIN-2"},
	},
	{
		name: "no-cap", variants: "no-cap",
		why:    "HIST-4 is a SHOULD the suite cannot see above 250 messages",
		verify: []string{"--focus", "HIST|JOIN-2"},
	},
	{
		name: "lazy-engine-upgrade", variants: "lazy-204,engine-options,small-limits",
		why:    "attach on the first init GET, answered 204 (CONN-2); cookie, EIO3, gzip polling; 32/280 limits; clients start on polling and upgrade",
		verify: []string{"--transport", "upgrade"},
	},
	{
		// A server built unlike the seed: its own path and no init route,
		// verified without --init-path as CONTRACT.md CONN-2 says.
		name: "path", variants: "plain",
		why:     "Socket.IO on /chat-io/ and no init route",
		server:  []string{"--path", "/chat-io/", "--init-path", ""},
		verify:  []string{"--path", "/chat-io/"},
		noInit:  true,
		skipped: map[string]string{"CONN-2": "no --init-path given"},
	},
	{
		// STOCK-2's stock client resumes its session on reconnect; the
		// variant must then treat the socket as unjoined.
		name: "recovery", variants: "recovery",
		why: "socket.io's connectionStateRecovery: every event carries the library's offset after the payload (PAY-1)",
	},
	{
		name: "rewrite-username", variants: "rewrite-username",
		why:    "SEC-1's other choice: a write under another name is stored under the sender's own",
		verify: []string{"--profile", "all", "--focus", "SEC-1|ROB-2|MSG-2"},
	},
	// ERR-1's format is open: each way of reporting a refusal, and no acks
	// at all, must pass the cases that rely on refusals.
	{
		name: "no-acks", variants: "no-acks",
		why:    "acknowledgements never called; refusals as a chatError event",
		verify: []string{"--profile", "all", "--focus", "ERR-1|ROB-2|SEC-[1-4]"},
	},
	{
		name: "error-event", variants: "error-event",
		why:    "refusals as exception {status, message}, no acks",
		verify: []string{"--profile", "all", "--focus", "ERR-1|ROB-2|SEC-[1-4]"},
	},
	{
		// ERR-1 once took the userCount broadcast of the offender's own join
		// for the refusal's report (and failed the server for sending it to
		// the observer too); it now looks only after both sockets' barriers.
		name: "extra-events-err", variants: "extra-events",
		why:    "events the contract does not name, broadcast on every join, around a refusal",
		verify: []string{"--profile", "all", "--focus", "ERR-1"},
	},
	{
		name: "ack-errors", variants: "ack-errors",
		why:    "refusals only through the acknowledgement, never an event",
		verify: []string{"--profile", "all", "--focus", "ERR-1|ROB-2|SEC-[1-4]"},
	},
	{
		// socket.io's default heartbeat: RECON-2 waits for the ping
		// timeout, so it is skipped as the README documents, never failed.
		name: "defaults", variants: "defaults",
		why:     "the library's 25 s + 20 s heartbeat",
		verify:  []string{"--focus", "RECON|STOCK-2|TRANS"},
		skipped: map[string]string{"RECON-2": "--max-wait"},
	},
}

// TestVariantsPassVerify proves `chatspec verify` gives no false failures:
// servers that differ from server.js only where the contract leaves them
// free pass every case their run selects (the strict profile unless the
// run narrows or widens it), and skip only what the README says is skipped.
func TestVariantsPassVerify(t *testing.T) {
	requireNode(t)
	bin := chatspecBinary(t)
	for _, run := range variantRuns {
		t.Run(run.name, func(t *testing.T) {
			t.Parallel()
			// Short pings keep RECON-2 quick; "defaults" overrides them.
			args := append([]string{"--variant", run.variants, "--port", "0", "--ping-interval", "300", "--ping-timeout", "300"}, run.server...)
			srv := startNode(t, "variants.js", args...)
			verify := run.verify
			if !run.noInit {
				verify = append([]string{"--init-path", "/api/socket"}, verify...)
			}
			res, out := runVerify(t, bin, srv.URL(), verify)
			if len(res.Cases) == 0 {
				t.Fatalf("%s: verify ran no case; output:\n%s", run.why, out)
			}
			for _, c := range res.Cases {
				want, skip := run.skipped[c.ID]
				switch {
				case skip && (c.Outcome != "skipped" || !strings.Contains(c.Message, want)):
					t.Errorf("%s: %s is %s (%q), want skipped for %q", run.why, c.ID, c.Outcome, c.Message, want)
				case !skip && c.Outcome != "passed" && c.Outcome != "info":
					t.Errorf("%s: %s %s (false verdict, or the variant broke the contract): %s", run.why, c.ID, c.Outcome, c.Message)
				}
			}
			if !res.Passed {
				t.Errorf("%s: results.json says passed=false", run.why)
			}
			// A refusal the variant could not classify, or a crash in a
			// handler, is logged as "bug:"; a clean run has none.
			if o := srv.Output(); strings.Contains(o, "variants.js: bug") || strings.Contains(o, "uncaught") {
				t.Errorf("variants.js logged a bug during the run:\n%s", o)
			}
			if t.Failed() {
				t.Logf("verify output:\n%s", out)
			} else {
				t.Logf("%s: %d cases in %v", run.variants, len(res.Cases), time.Duration(res.DurationMS)*time.Millisecond)
			}
		})
	}
}

// TestVariantsControlSilentRefusalFailsERR1 is the control for the ERR-1
// runs above: a server that acknowledges every event with nothing in it
// and sends no error event tells the offender nothing, and ERR-1 must say
// so (an empty ack once counted as a report).
func TestVariantsControlSilentRefusalFailsERR1(t *testing.T) {
	requireNode(t)
	bin := chatspecBinary(t)
	srv := startNode(t, "variants.js", "--variant", "silent-errors", "--port", "0")
	res, out := runVerify(t, bin, srv.URL(), []string{"--init-path", "/api/socket", "--profile", "all", "--focus", "ERR-1"})
	if len(res.Cases) != 1 || res.Cases[0].ID != "ERR-1" || res.Cases[0].Outcome != "failed" {
		t.Errorf("ERR-1 against silent-errors: %+v, want failed; output:\n%s", res.Cases, out)
	}
}

// TestVariantsRefusesUnknownVariant keeps variants.js honest about its
// flags: a misspelt variant must not run as server.js's behaviour.
func TestVariantsRefusesUnknownVariant(t *testing.T) {
	requireNode(t)
	_, err := StartNodeScript(t.Context(), serverDir, "variants.js", "--variant", "rooms,romos", "--port", "0")
	if err == nil || !strings.Contains(err.Error(), `--variant "romos": want one of`) {
		t.Errorf("variants.js --variant rooms,romos: err = %v, want it to name the unknown variant", err)
	}
}

// verifyResult is the part of `verify --report-dir`'s results.json the test
// reads.
type verifyResult struct {
	Passed     bool  `json:"passed"`
	DurationMS int64 `json:"duration_ms"`
	Cases      []struct {
		ID       string   `json:"id"`
		Outcome  string   `json:"outcome"`
		Message  string   `json:"message"`
		Findings []string `json:"findings"`
	} `json:"cases"`
}

// verifyTimeout bounds one verify run: a strict run takes 5-15 s on the
// shared 2-core machine; a run whose every case waits out its timeouts
// must still end.
const verifyTimeout = 3 * time.Minute

// runVerify runs `chatspec verify` against target with the strict profile
// (unless extra names another; a repeated flag's last value wins) and returns its results.json and output.
// Exit status 1 (a case failed) still yields results; anything else that
// produces none fails the test.
func runVerify(t *testing.T, bin, target string, extra []string) (verifyResult, string) {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"verify", "--target", target, "--profile", "strict", "--report-dir", dir}, extra...)
	ctx, cancel := context.WithTimeout(t.Context(), verifyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	outb, err := cmd.CombinedOutput()
	out := string(outb)
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		t.Fatalf("chatspec %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatalf("chatspec verify wrote no results.json: %v\n%s", err, out)
	}
	var res verifyResult
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	return res, out
}

// chatspecBinary builds cmd/chatspec into the test's temporary directory.
// Ginkgo runs the suite once per process, so each verify run needs a
// process of its own.
func chatspecBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chatspec")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/chatspec/chatspec/cmd/chatspec").CombinedOutput(); err != nil {
		t.Fatalf("building chatspec: %v\n%s", err, out)
	}
	return bin
}
