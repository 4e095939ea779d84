// Package framework is what the conformance specs in package spec are built
// from: the run configuration, per-spec client fixtures that clean up after
// themselves, an ordered event recorder per connection, unique names and
// message texts per run, barrier-backed negative assertions, and failure
// messages that show what every client received. It never imports the specs
// (the Kubernetes e2e shape): the specs import it.
package framework

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

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
	// specific one (the TRANS cases do).
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

	shapeMu sync.Mutex
	shapes  []string // PAY-1 problems seen by the chat cases' clients
	// tolerated holds, per requirement, the violations that steps of other
	// cases accepted (Framework.Tolerate), as "CASE: note".
	tolerated map[string][]string
}

// maxShapeProblems bounds what a run keeps of PAY-1 problems: the first
// few say enough, and a server that breaks every event would fill memory.
const maxShapeProblems = 20

func (r *run) noteShape(problem string) {
	r.shapeMu.Lock()
	defer r.shapeMu.Unlock()
	if len(r.shapes) < maxShapeProblems {
		r.shapes = append(r.shapes, problem)
	}
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
	current = &run{cfg: cfg, ctx: ctx}
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
