// Package framework is what the conformance specs in package spec are built
// from: the run configuration, per-spec client fixtures that clean up after
// themselves, an ordered event recorder per connection, unique names and
// message texts per run, barrier-backed negative assertions, and failure
// messages that show what every client received. It never imports the specs
// (the Kubernetes e2e shape): the specs import it.
package framework

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatspec/chatspec/spec/lag"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// Target is how the specs reach the server under test. *target.Options
// implements it; tests may pass anything else that does.
type Target interface {
	// DialOptions returns the client options for client number i; several
	// targets (one cluster) are spread over round-robin by i.
	DialOptions(i int) sioclient.Options
	// Init makes the init request (CONTRACT.md CONN-2) for client i, or
	// nothing when no init path is configured.
	Init(ctx context.Context, i int) error
	// Probe checks that the target answers at all.
	Probe(ctx context.Context) error
}

// Config is the run configuration the specs read. Set it with Configure
// before RunSpecs; the specs never change it.
type Config struct {
	// Target is the server under test.
	Target Target
	// InitPath is the configured init path ("" when none); CONN-2 is
	// skipped without one.
	InitPath string
	// Transport is the transport of every client that does not ask for a
	// specific one (the TRANS cases do). Empty or TransportAuto: WebSocket
	// when a direct WebSocket connection to the target works, else
	// long-polling (see TransportAuto).
	Transport sioclient.Transport
	// StepTimeout bounds every wait for one event.
	StepTimeout time.Duration
	// QuietWindow is how long a negative assertion keeps watching after its
	// barrier event arrived (the Consistently window).
	QuietWindow time.Duration
	// MaxWait caps waits that depend on the server's ping settings
	// (RECON-2, RECON-3); a server whose pingInterval+pingTimeout exceeds it
	// gets those cases skipped with a message saying so.
	MaxWait time.Duration
	// RunID makes usernames and message texts unique to this run, so that
	// several runs can share one live server. Empty means a random one.
	RunID string
}

// TransportAuto is the default Config.Transport: the first connection of a
// run tries WebSocket directly and, when that fails, every client that does
// not ask for a transport uses long-polling instead. CONTRACT.md requires
// long-polling (TRANS-1, core) and only recommends WebSocket (TRANS-2,
// strict), so a server without WebSocket must get a core verdict on its
// chat behaviour, not 31 failed connections; TRANS-2 and TRANS-3 still
// judge its WebSocket. The choice is reported as a finding.
const TransportAuto sioclient.Transport = "auto"

// DefaultStepTimeout is the default per-event wait.
const DefaultStepTimeout = 3 * time.Second

// DefaultQuietWindow is the default Consistently window behind a barrier.
const DefaultQuietWindow = 75 * time.Millisecond

// DefaultMaxWait is the default cap on ping-dependent waits.
const DefaultMaxWait = 15 * time.Second

// Validate fills defaults and checks the configuration.
func (c *Config) Validate() error {
	if c.Target == nil {
		return errors.New("framework: no target configured")
	}
	if c.StepTimeout == 0 {
		c.StepTimeout = DefaultStepTimeout
	}
	if c.StepTimeout < 0 {
		return fmt.Errorf("step timeout %s: must be positive", c.StepTimeout)
	}
	if c.QuietWindow == 0 {
		c.QuietWindow = DefaultQuietWindow
	}
	if c.QuietWindow < 0 {
		return fmt.Errorf("quiet window %s: must be positive", c.QuietWindow)
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	switch c.Transport {
	case "":
		c.Transport = TransportAuto
	case TransportAuto, sioclient.WebSocket, sioclient.Polling, sioclient.Upgrade:
	default:
		return fmt.Errorf("transport %q: want auto, websocket, polling or upgrade", c.Transport)
	}
	if c.RunID == "" {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("framework: run id: %w", err)
		}
		c.RunID = hex.EncodeToString(b[:])
	}
	if len(c.RunID) > 8 {
		return fmt.Errorf("run id %q: at most 8 characters, so usernames stay within 32", c.RunID)
	}
	return nil
}

// run is the state shared by every spec of one run.
type run struct {
	cfg Config
	ctx context.Context

	dials atomic.Int64 // round-robin index over the targets
	specs atomic.Int64 // spec sequence numbers, for unique names

	mu   sync.Mutex
	dead error // set once the target was found unreachable mid-run
	// cases and outage say which case the target died in or after (outage.go).
	cases  caseTrack
	outage Outage

	autoMu sync.Mutex
	// auto is what TransportAuto resolved to ("" until the first
	// connection that needs it), and autoWhy says why.
	auto    sioclient.Transport
	autoWhy string

	// lag measures the time the harness was starved of CPU (lag.go).
	lag *lag.Monitor

	shapeMu sync.Mutex
	shapes  []string // PAY-1 problems seen by the chat cases' clients
	// foreign holds the first malformed list entries the chat cases'
	// clients received that this run did not cause; foreignCount all.
	foreign     []string
	foreignSeen map[string]bool // distinct foreign entries, at most maxForeignKept
	// entries caches list-entry checks across events (checkShape).
	entries entryCache
	// tolerated holds, per requirement, the violations that steps of other
	// cases accepted (Framework.Tolerate), as "CASE: note".
	tolerated map[string][]string
}

// maxShapeProblems bounds what a run keeps of PAY-1 problems: the first
// few say enough, and a server that breaks every event would fill memory.
const maxShapeProblems = 20

// noteShapes records the PAY-1 problems of one event a chat case's client
// received (CheckShapeOwned), and the foreign entries it tolerated.
func (r *run) noteShapes(caseID, role string, index int, name string, args json.RawMessage) {
	problems, foreign := checkShape(name, args, r.owns, &r.entries)
	if len(problems) == 0 && len(foreign) == 0 {
		return
	}
	r.shapeMu.Lock()
	defer r.shapeMu.Unlock()
	for _, p := range problems {
		if len(r.shapes) < maxShapeProblems {
			r.shapes = append(r.shapes, fmt.Sprintf("%s: %s's event #%d %s", caseID, role, index, p))
		}
	}
	for _, p := range foreign {
		if r.foreignSeen == nil {
			r.foreignSeen = map[string]bool{}
		}
		if r.foreignSeen[p] || len(r.foreignSeen) >= maxForeignKept {
			continue
		}
		r.foreignSeen[p] = true
		if len(r.foreign) < maxShapeProblems {
			r.foreign = append(r.foreign, p)
		}
	}
}

// owns reports whether a list entry (its JSON text) is this run's: it
// carries the run's nonce, as every username and message text of the run
// does (Username, Text). An entry without it was put in the server's state
// by someone else: an earlier run, another user.
func (r *run) owns(entry []byte) bool {
	return bytes.Contains(entry, []byte("cs"+r.cfg.RunID+"-"))
}

// ForeignEntries returns how many distinct malformed list entries that this
// run did not cause the chat cases' clients have received so far, and the
// first of them (see CheckShapeOwned).
func ForeignEntries() (int, []string) {
	r := currentRun()
	if r == nil {
		return 0, nil
	}
	r.shapeMu.Lock()
	defer r.shapeMu.Unlock()
	return len(r.foreignSeen), append([]string(nil), r.foreign...)
}

// maxForeignKept bounds the distinct foreign entries a run counts.
const maxForeignKept = 10000

// CheckShape is CheckShapeOwned with this run's entries as the owned ones.
func (f *Framework) CheckShape(event string, args json.RawMessage) (problems, foreign []string) {
	return checkShape(event, args, f.run.owns, &f.run.entries)
}

// ShapeProblems returns the PAY-1 problems (CheckShape) found in the events
// that clients of the chat cases received so far in this run, each with the
// case and client that received it. Events received in robustness and
// security cases are left out: what a server echoes of deliberately bad
// input is judged by those cases.
func ShapeProblems() []string {
	r := currentRun()
	if r == nil {
		return nil
	}
	r.shapeMu.Lock()
	defer r.shapeMu.Unlock()
	return append([]string(nil), r.shapes...)
}

var (
	currentMu sync.Mutex
	current   *run
)

// Configure sets the configuration for the specs that run next. ctx bounds
// the whole run: once it is done, the remaining specs fail at once instead
// of waiting out their timeouts.
func Configure(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	currentMu.Lock()
	defer currentMu.Unlock()
	current = &run{cfg: cfg, ctx: ctx, lag: lag.Start(ctx)}
	return nil
}

// CurrentConfig returns the configuration set with Configure, and false
// when none was set.
func CurrentConfig() (Config, bool) {
	r := currentRun()
	if r == nil {
		return Config{}, false
	}
	return r.cfg, true
}

func currentRun() *run {
	currentMu.Lock()
	defer currentMu.Unlock()
	return current
}

// TargetDown reports the error that marked the target unreachable
// mid-run, or nil while it is reachable.
func TargetDown() error {
	r := currentRun()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dead
}

// RunStopped reports whether the run's context is done (interrupted or
// past its deadline), so that a case can tell "nothing came" from "the
// run was stopped".
func RunStopped() bool {
	r := currentRun()
	return r != nil && r.ctx.Err() != nil
}

// Reachable checks that the target answers (target.Options.Probe: over
// long-polling and WebSocket at once, since a server that serves only one
// of them deserves a verdict, not "unreachable").
func Reachable(ctx context.Context, t Target) error {
	return t.Probe(ctx)
}

// resolveAuto returns the transport TransportAuto stands for in this run,
// deciding it on the first call: a direct WebSocket connection to target i
// (closed at once) decides for WebSocket, a failed one for long-polling.
// fresh is true for the call that decided, so that its case reports it.
func (r *run) resolveAuto(ctx context.Context, i int) (t sioclient.Transport, why string, fresh bool) {
	r.autoMu.Lock()
	defer r.autoMu.Unlock()
	if r.auto != "" {
		return r.auto, r.autoWhy, false
	}
	dial := r.cfg.Target.DialOptions(i)
	dial.Transport = sioclient.WebSocket
	c, err := sioclient.Dial(ctx, dial)
	if err != nil {
		if ctx.Err() != nil {
			// Interrupted, not decided: the next connection tries again.
			return sioclient.Polling, "the run was stopped", false
		}
		r.auto = sioclient.Polling
		r.autoWhy = fmt.Sprintf("a direct WebSocket connection failed (%v), so the clients of the cases that are not about transports use long-polling (TRANS-1, core); TRANS-2 and TRANS-3 judge WebSocket", err)
		return r.auto, r.autoWhy, true
	}
	_ = c.Abort()
	r.auto = sioclient.WebSocket
	r.autoWhy = "a direct WebSocket connection worked, so the clients of the cases that are not about transports use WebSocket"
	return r.auto, r.autoWhy, true
}

// AutoTransport says what the run's TransportAuto resolved to and why, or
// ("", "") when it has not been needed (or the run has a fixed transport).
func AutoTransport() (sioclient.Transport, string) {
	r := currentRun()
	if r == nil {
		return "", ""
	}
	r.autoMu.Lock()
	defer r.autoMu.Unlock()
	return r.auto, r.autoWhy
}
