package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// The engine in files, one phase each: config.go (Config, defaults,
// the connection seam), schedule.go (the event queue and the initial
// plan), user.go (dial, join, send, events of one session),
// reconnect.go (the reconnect policy), outage.go (the target monitor),
// stop.go (two-deadline stop), clock.go (the clock probe); this file
// wires them: New, Run, and the dispatch of due events.

// Outcome says how a run ended.
type Outcome struct {
	// Ended is EndedCompleted, EndedInterrupted or EndedTargetDown.
	Ended  string
	Detail string
	// End is when the run stopped, since the start.
	End time.Duration
}

// Engine runs simulated users against a chat server and emits Results.
// One Engine runs once.
type Engine struct {
	cfg       Config
	start     time.Time
	startUnix int64
	users     []*user
	out       chan Result
	key       *RunKey // authenticates this run's stamps
	sched     *scheduler
	mon       *targetMonitor

	sealMu sync.RWMutex
	sealed bool

	wg         sync.WaitGroup
	sessionSeq atomic.Int32
	stopOnce   sync.Once
	stopCh     chan struct{}
	hardCtx    context.Context
	hardCancel context.CancelFunc
	stopCtx    context.Context // cancelled by stop: ends probes in flight
	stopCtl    context.CancelFunc

	outMu   sync.Mutex
	outcome Outcome
}

// New checks cfg and prepares an Engine.
func New(cfg Config) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var key *RunKey
	if cfg.Secret != nil {
		key, err = NewSharedRunKey(cfg.RunID, cfg.Secret)
	} else {
		key, err = NewRunKey(cfg.RunID)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	e := &Engine{cfg: cfg, key: key, out: make(chan Result, 1<<14), stopCh: make(chan struct{}), mon: newTargetMonitor()}
	pick := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	for i, a := range cfg.Arrivals {
		// Every user's transport is drawn, in user order, whichever shard
		// runs it: the same seed gives each user the same one.
		tr := cfg.pickTransport(pick.Float64())
		if !cfg.Shard.Runs(i) {
			continue
		}
		u := &user{idx: i, arr: a, name: fmt.Sprintf("cs-%s-%d", cfg.RunID, i), rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1))}
		u.transport = tr
		u.target = e.mon.add(cfg.Dial(i).URL)
		e.users = append(e.users, u)
	}
	return e, nil
}

// Started returns when the run started (zero before Run).
func (e *Engine) Started() time.Time { return e.start }

// RunID returns the run's tag (Config.RunID).
func (e *Engine) RunID() string { return e.cfg.RunID }

// MetricsConfig returns what Metrics needs to know about this engine's
// run: its users, its delivery window, and a timeline resolution of one
// second, or coarser so that the planned run fits about 600 points.
func (e *Engine) MetricsConfig() MetricsConfig {
	var length time.Duration
	for _, a := range e.cfg.Arrivals {
		length = max(length, a.Leave)
	}
	return MetricsConfig{Users: len(e.cfg.Arrivals), Window: e.cfg.Window, Interval: max(time.Second, (length / 600).Round(time.Second))}
}

// Outages lists the targets' outages in the order they were confirmed;
// complete once Run's channel is closed.
func (e *Engine) Outages() []Outage { return e.mon.list() }

// Outcome says how the run ended; valid once Run's channel is closed.
func (e *Engine) Outcome() Outcome {
	e.outMu.Lock()
	defer e.outMu.Unlock()
	return e.outcome
}

func (e *Engine) now() time.Duration { return time.Since(e.start) }

// Run starts the users and returns the channel of their results, closed
// when the run is over: every user left (completed), ctx was cancelled
// (interrupted), or the target stopped answering (target down). After
// any of these the users get Config.StopTimeout to disconnect cleanly;
// then the connections are aborted, so Run never hangs. With
// Config.Start in the future, Run first waits for it (a cancelled ctx
// ends the wait: the run then ends at once, interrupted).
func (e *Engine) Run(ctx context.Context) <-chan Result {
	if !e.cfg.Start.IsZero() {
		if wait := time.Until(e.cfg.Start); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		// The origin is Start itself, on this machine's wall clock, kept
		// with a monotonic reading from here on (now.Add keeps now's):
		// offsets agree with the other shards' as far as the clocks do.
		now := time.Now()
		e.start = now.Add(-now.Sub(e.cfg.Start))
		e.startUnix = e.cfg.Start.UnixNano()
	} else {
		e.start = time.Now()
		e.startUnix = e.start.UnixNano()
	}
	e.hardCtx, e.hardCancel = context.WithCancel(context.Background())
	e.stopCtx, e.stopCtl = context.WithCancel(context.Background())
	e.sched = newScheduler(initialEvents(e.users, e.cfg.Churn))
	go e.ticks()
	go e.loop(ctx)
	return e.out
}

func (e *Engine) emit(r Result) {
	e.sealMu.RLock()
	if !e.sealed {
		e.out <- r
	}
	e.sealMu.RUnlock()
}

// loop dispatches due events until the schedule is empty or the run stops.
func (e *Engine) loop(ctx context.Context) {
	defer e.shutdown()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			e.stop(EndedInterrupted, "stopped: "+context.Cause(ctx).Error())
			return
		case <-e.stopCh:
			return
		default:
		}
		ev, due, wait, empty := e.sched.next(e.now())
		switch {
		case empty:
			e.stop(EndedCompleted, "")
			return
		case due:
			e.dispatch(ev)
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-e.sched.wake:
			timer.Stop()
		case <-ctx.Done():
		case <-e.stopCh:
		}
	}
}

func (e *Engine) dispatch(ev event) {
	u := ev.u
	switch ev.kind {
	case evArrive:
		if e.cfg.MaxOutage > 0 && e.mon.park(u) {
			return // the target is down: connect when it is back
		}
		e.wg.Add(1)
		go e.connect(u, ev.at)
	case evSend:
		e.send(u, ev.at)
	case evChurn:
		e.churn(u, ev.at)
	case evLeave:
		e.leave(u)
	}
}
