package loadgen

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// TransportShare is one entry of the transport mix: the fraction Weight of
// users connects with Transport.
type TransportShare struct {
	Transport sioclient.Transport
	Weight    float64
}

// Config configures an Engine.
type Config struct {
	// RunID tags every message text (see Stamp); ValidRunID must hold.
	RunID string
	// Arrivals is the users' schedule (Plan.Arrivals).
	Arrivals []Arrival
	// Pacer spaces each user's messages.
	Pacer Pacer
	// MessageSize pads message texts to this many bytes (0: no padding).
	MessageSize int
	// Window is the delivery window: how long a message has to reach every
	// joined user before a user who leaves is no longer expected to see it.
	Window time.Duration
	// JoinTimeout bounds the wait for `connected` after `connecting`.
	JoinTimeout time.Duration
	// Churn is the fraction of users that drop once (abruptly, as a lost
	// network does) at a random moment of their sending phase and
	// reconnect ChurnPause later as a new session with the same username.
	// A session the server drops also reconnects after ChurnPause, as a
	// Socket.IO client does, while its user is still in its sending phase.
	Churn      float64
	ChurnPause time.Duration
	// Transports is the transport mix; empty means all WebSocket.
	Transports []TransportShare
	// Seed makes transport choice, churn and pacing reproducible.
	Seed uint64
	// Dial returns the connection options of a user (URL, path, headers…);
	// the engine sets Transport, OnEvent and SkipArgsValidation.
	Dial func(user int) sioclient.Options
	// Init, when set, makes the init request before each connection.
	Init func(ctx context.Context, user int) error
	// StopTimeout is the grace given to connections to close after the run
	// ends or is stopped; after it they are aborted. Default 5s.
	StopTimeout time.Duration
	// TickInterval is the period of the generator's clock probe; default
	// 100ms.
	TickInterval time.Duration
	// MaxOutage is how long a target may stay down (refuse TCP
	// connections) before the run ends as target_down. 0, the default,
	// ends the run at the first confirmed outage: right for a CI gate.
	// A positive value lets a run go through a restart or a rolling
	// deploy: the outage is recorded (Engine.Outages), the engine keeps
	// probing the target, users reconnect with a capped backoff while
	// they are in their sending phase, and users whose target is known to
	// be down wait for it to come back instead of dialing it.
	MaxOutage time.Duration
	// SeedStyle makes every user behave like the seed's useSocket hook:
	// two connections per session, joining on one and writing on the
	// other, which never joins (seedstyle.go).
	SeedStyle bool
}

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

	sealMu sync.RWMutex
	sealed bool

	schedMu sync.Mutex
	queue   eventHeap
	wake    chan struct{}

	wg         sync.WaitGroup
	sessionSeq atomic.Int32
	stopOnce   sync.Once
	stopCh     chan struct{}
	hardCtx    context.Context
	hardCancel context.CancelFunc

	outMu   sync.Mutex
	outcome Outcome
	outages []Outage // guarded by outMu

	targets []*target
	stopCtx context.Context // cancelled by stop: ends probes in flight
	stopCtl context.CancelFunc
}

// Outage is one period during which a target refused TCP connections:
// from the first of two failed probes in a row to the first probe that
// succeeded again.
type Outage struct {
	// Target is the target's URL, as Dial gave it.
	Target string
	// Start is the first failed probe, since the run's start.
	Start time.Duration
	// End is the first successful probe after it; valid when Ended.
	End time.Duration
	// Ended is false when the target was still down when the run ended.
	Ended bool
}

// Probe timing: two failed TCP connects probeConfirm apart confirm an
// outage; a target known to be down is probed every probeEvery (bounded:
// one dial in flight per target), which is also the resolution of an
// outage's end.
const (
	probeConfirm = 200 * time.Millisecond
	probeEvery   = 100 * time.Millisecond
	probeTimeout = time.Second
	// maxBackoff caps the reconnect backoff (MaxOutage > 0) unless
	// ChurnPause is longer, like a Socket.IO client's
	// reconnectionDelayMax.
	maxBackoff = 5 * time.Second
)

// target is the probe state of one distinct target URL.
type target struct {
	url  string
	addr string // host:port to probe; "" when the URL cannot be parsed

	mu      sync.Mutex
	probing bool    // a probe goroutine runs (while down, until it is up)
	down    bool    // an outage is confirmed and open
	outage  int     // index of the open outage in Engine.outages
	waiters []*user // users waiting for the target to come back
}

type user struct {
	idx       int
	arr       Arrival
	name      string
	transport sioclient.Transport
	target    int // index in Engine.targets

	mu       sync.Mutex
	rng      *rand.Rand
	sess     *session
	emitMu   sync.Mutex // serialises a user's writeMessage emits, so seq order is wire order
	seq      uint32     // guarded by emitMu
	leaving  bool
	sending  bool // the send chain was started
	failures int  // connection attempts failed in a row (the backoff's exponent)
}

type session struct {
	e         *Engine
	id        int32
	u         *user
	conn      atomic.Pointer[sioclient.Conn]
	tail      *Tail
	joinStart atomic.Int64 // offset of the `connecting` emit
	joined    chan struct{}
	isJoined  atomic.Bool
	planned   atomic.Bool
	aborted   atomic.Bool // the generator dropped it abruptly (churn, hard stop)
	side      *seedSide   // the writing connection of a seed-style session; nil otherwise
}

type evKind uint8

const (
	evArrive evKind = iota
	evSend
	evChurn
	evLeave
)

type event struct {
	at   time.Duration
	kind evKind
	u    *user
}

type eventHeap []event

func (h eventHeap) Len() int           { return len(h) }
func (h eventHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h eventHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)        { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// ErrConfig wraps every configuration error of New.
var ErrConfig = errors.New("invalid load configuration")

// New checks cfg and prepares an Engine.
func New(cfg Config) (*Engine, error) {
	switch {
	case !ValidRunID(cfg.RunID):
		return nil, fmt.Errorf("%w: run ID %q: want 1-16 characters of [a-z0-9]", ErrConfig, cfg.RunID)
	case len(cfg.Arrivals) == 0:
		return nil, fmt.Errorf("%w: no users planned", ErrConfig)
	case cfg.Pacer == nil:
		return nil, fmt.Errorf("%w: no pacer", ErrConfig)
	case cfg.Dial == nil:
		return nil, fmt.Errorf("%w: no Dial function", ErrConfig)
	case cfg.Window <= 0:
		return nil, fmt.Errorf("%w: delivery window %v must be positive", ErrConfig, cfg.Window)
	case cfg.Churn < 0 || cfg.Churn > 1:
		return nil, fmt.Errorf("%w: churn %v: want a fraction in [0,1]", ErrConfig, cfg.Churn)
	case cfg.MessageSize < 0 || cfg.MessageSize > 1<<20:
		return nil, fmt.Errorf("%w: message size %d: want 0 to 1 MiB", ErrConfig, cfg.MessageSize)
	case cfg.MaxOutage < 0:
		return nil, fmt.Errorf("%w: max outage %v must not be negative", ErrConfig, cfg.MaxOutage)
	}
	if cfg.JoinTimeout <= 0 {
		cfg.JoinTimeout = 10 * time.Second
	}
	if cfg.ChurnPause <= 0 {
		cfg.ChurnPause = time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 5 * time.Second
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 100 * time.Millisecond
	}
	var total float64
	for _, t := range cfg.Transports {
		switch t.Transport {
		case sioclient.WebSocket, sioclient.Polling, sioclient.Upgrade:
		default:
			return nil, fmt.Errorf("%w: unknown transport %q (want websocket, polling or upgrade)", ErrConfig, t.Transport)
		}
		if t.Weight < 0 {
			return nil, fmt.Errorf("%w: negative weight for %s", ErrConfig, t.Transport)
		}
		total += t.Weight
	}
	if len(cfg.Transports) == 0 {
		cfg.Transports, total = []TransportShare{{sioclient.WebSocket, 1}}, 1
	}
	if total <= 0 {
		return nil, fmt.Errorf("%w: transport weights add up to 0", ErrConfig)
	}
	e := &Engine{cfg: cfg, out: make(chan Result, 1<<14), wake: make(chan struct{}, 1), stopCh: make(chan struct{})}
	pick := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	byURL := map[string]int{}
	for i, a := range cfg.Arrivals {
		if a.User != i {
			return nil, fmt.Errorf("%w: arrival %d is for user %d: arrivals must be in user order", ErrConfig, i, a.User)
		}
		u := &user{idx: i, arr: a, name: fmt.Sprintf("cs-%s-%d", cfg.RunID, i), rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1))}
		x := pick.Float64() * total
		for _, t := range cfg.Transports {
			if u.transport = t.Transport; x < t.Weight {
				break
			}
			x -= t.Weight
		}
		url := cfg.Dial(i).URL
		ti, ok := byURL[url]
		if !ok {
			ti = len(e.targets)
			byURL[url] = ti
			t := &target{url: url}
			if hp, err := hostPort(url); err == nil {
				t.addr = hp
			}
			e.targets = append(e.targets, t)
		}
		u.target = ti
		e.users = append(e.users, u)
	}
	return e, nil
}

// Start returns when the run started (zero before Run).
func (e *Engine) Start() time.Time { return e.start }

// Outages lists the targets' outages in the order they were confirmed;
// complete once Run's channel is closed.
func (e *Engine) Outages() []Outage {
	e.outMu.Lock()
	defer e.outMu.Unlock()
	return slices.Clone(e.outages)
}

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
// then the connections are aborted, so Run never hangs.
func (e *Engine) Run(ctx context.Context) <-chan Result {
	e.start = time.Now()
	e.startUnix = e.start.UnixNano()
	e.hardCtx, e.hardCancel = context.WithCancel(context.Background())
	e.stopCtx, e.stopCtl = context.WithCancel(context.Background())
	for _, u := range e.users {
		e.queue = append(e.queue, event{u.arr.At, evArrive, u}, event{u.arr.Leave, evLeave, u})
		if e.cfg.Churn > 0 && u.rng.Float64() < e.cfg.Churn && u.arr.SendUntil > u.arr.At {
			span := u.arr.SendUntil - u.arr.At
			at := u.arr.At + span/5 + time.Duration(u.rng.Int64N(int64(span*3/5)+1))
			e.queue = append(e.queue, event{at, evChurn, u})
		}
	}
	heap.Init(&e.queue)
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

func (e *Engine) push(ev event) {
	e.schedMu.Lock()
	heap.Push(&e.queue, ev)
	e.schedMu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
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
		e.schedMu.Lock()
		if len(e.queue) == 0 {
			e.schedMu.Unlock()
			e.stop(EndedCompleted, "")
			return
		}
		next := e.queue[0]
		wait := next.at - e.now()
		if wait <= 0 {
			heap.Pop(&e.queue)
			e.schedMu.Unlock()
			e.dispatch(next)
			continue
		}
		e.schedMu.Unlock()
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-e.wake:
			timer.Stop()
		case <-ctx.Done():
		case <-e.stopCh:
		}
	}
}

// stop ends dispatching; the first reason wins.
func (e *Engine) stop(ended, detail string) {
	e.stopOnce.Do(func() {
		e.outMu.Lock()
		e.outcome = Outcome{Ended: ended, Detail: detail, End: e.now()}
		e.outMu.Unlock()
		close(e.stopCh)
		e.stopCtl()
		select {
		case e.wake <- struct{}{}:
		default:
		}
	})
}

// shutdown closes every session (the graceful deadline), aborts what is
// left (the hard deadline), and closes the results channel.
func (e *Engine) shutdown() {
	for _, u := range e.users {
		e.leave(u)
	}
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(e.cfg.StopTimeout):
		e.hardCancel()
		for _, u := range e.users {
			u.mu.Lock()
			s := u.sess
			u.mu.Unlock()
			if s != nil {
				if c := s.conn.Load(); c != nil {
					s.aborted.Store(true)
					go c.Abort()
				}
			}
		}
		select {
		case <-done:
		case <-time.After(e.cfg.StopTimeout):
			// Something ignores even an abort: give up on it rather than hang.
			e.outMu.Lock()
			e.outcome.Detail = joinDetail(e.outcome.Detail, "some connections did not close within the stop timeout")
			e.outMu.Unlock()
		}
	}
	e.hardCancel()
	e.outMu.Lock()
	if e.outcome.Ended == EndedCompleted {
		e.outcome.End = e.now()
	}
	e.outMu.Unlock()
	e.sealMu.Lock()
	e.sealed = true
	close(e.out)
	e.sealMu.Unlock()
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func (e *Engine) stopping() bool {
	select {
	case <-e.stopCh:
		return true
	default:
		return false
	}
}

// ticks emits the clock probe: how late a timer fires is the generator's
// own scheduling lag.
func (e *Engine) ticks() {
	iv := e.cfg.TickInterval
	next := iv
	t := time.NewTimer(iv)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-e.stopCh:
			return
		}
		now := e.now()
		e.emit(Result{Kind: Tick, Intended: next, At: now})
		for next <= now {
			next += iv
		}
		t.Reset(next - e.now())
	}
}

func (e *Engine) dispatch(ev event) {
	u := ev.u
	switch ev.kind {
	case evArrive:
		if e.cfg.MaxOutage > 0 && e.park(u) {
			return // the target is down: connect when it is back
		}
		e.wg.Add(1)
		go e.connect(u, ev.at)
	case evSend:
		e.send(u, ev.at)
	case evChurn:
		u.mu.Lock()
		s := u.sess
		u.mu.Unlock()
		c := (*sioclient.Conn)(nil)
		if s != nil && s.isJoined.Load() {
			c = s.conn.Load()
		}
		if c == nil {
			return // not joined (yet, or any more): nothing to drop
		}
		s.planned.Store(true)
		s.aborted.Store(true)
		e.wg.Add(1)
		go func() { defer e.wg.Done(); _ = c.Abort() }()
		if back := ev.at + e.cfg.ChurnPause; back < u.arr.SendUntil {
			e.push(event{back, evArrive, u})
		}
	case evLeave:
		e.leave(u)
	}
}

// leave closes the user's session gracefully; a connection still dialing
// notices leaving when it completes.
func (e *Engine) leave(u *user) {
	u.mu.Lock()
	u.leaving = true
	s := u.sess
	u.mu.Unlock()
	if s == nil {
		return
	}
	if c := s.conn.Load(); c != nil {
		s.planned.Store(true)
		e.wg.Add(1)
		go func() { defer e.wg.Done(); _ = c.Close() }()
	}
}

type writeMessage struct {
	Message  string `json:"message"`
	Username string `json:"username"`
}

type connecting struct {
	Username string `json:"username"`
}

// send emits one message due at `at` and schedules the next: sends follow
// the schedule whatever the server does.
func (e *Engine) send(u *user, at time.Duration) {
	u.mu.Lock()
	s := u.sess
	ok := s != nil && s.isJoined.Load() && !u.leaving
	next := at + e.cfg.Pacer.Next(u.rng)
	u.mu.Unlock()
	if next < u.arr.SendUntil {
		e.push(event{next, evSend, u})
	}
	if !ok {
		e.emit(Result{Kind: Skipped, User: int32(u.idx), Sender: uint32(u.idx), Intended: at, At: e.now()})
		return
	}
	conn := s.writeConn()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		// One emit at a time per user, numbered in the order they go out:
		// a reordering the receivers see is then the server's.
		u.emitMu.Lock()
		defer u.emitMu.Unlock()
		u.seq++
		seq := u.seq
		text := Stamp{Sender: uint32(u.idx), Seq: seq, Intended: e.startUnix + int64(at)}.Text(e.cfg.RunID, e.cfg.MessageSize)
		started := e.now()
		ctx, cancel := context.WithTimeout(e.hardCtx, e.cfg.Window+e.cfg.StopTimeout)
		err := conn.Emit(ctx, "writeMessage", writeMessage{Message: text, Username: u.name})
		cancel()
		r := Result{Kind: Sent, User: int32(u.idx), Session: s.id, Sender: uint32(u.idx), Seq: seq, Intended: at, At: started}
		if err != nil {
			// Planned: the generator itself closed the session (churn,
			// leave, stop) under this emit; not the server's fault.
			r.Kind, r.Err, r.Planned = SendFailed, err, s.planned.Load() || e.stopping()
		}
		e.emit(r)
	}()
}

// connect runs one session: init request, dial, join, then waits for the
// connection to end and reports it.
func (e *Engine) connect(u *user, intended time.Duration) {
	defer e.wg.Done()
	s := &session{e: e, id: e.sessionSeq.Add(1) - 1, u: u, tail: NewTail(e.cfg.RunID), joined: make(chan struct{})}
	base := Result{User: int32(u.idx), Session: s.id}
	fail := func(kind Kind, err error) {
		r := base
		r.Kind, r.Err, r.At = kind, err, e.now()
		e.emit(r)
	}
	if e.cfg.Init != nil {
		if err := e.cfg.Init(e.hardCtx, u.idx); err != nil {
			fail(ConnectFailed, fmt.Errorf("init request: %w", err))
			e.suspect(u)
			e.retry(u)
			return
		}
	}
	opts := e.cfg.Dial(u.idx)
	opts.Transport = u.transport
	opts.SkipArgsValidation = true
	opts.OnEvent = s.onEvent
	conn, err := e.dialSession(s, opts)
	if err != nil {
		if !e.stopping() {
			fail(ConnectFailed, err)
			e.suspect(u)
			e.retry(u)
		}
		return
	}
	s.conn.Store(conn)
	r := base
	r.Kind, r.At, r.Intended = Connected, e.now(), intended
	r.Latency = r.At - intended
	e.emit(r)

	u.mu.Lock()
	leaving := u.leaving
	if !leaving {
		u.sess = s
	}
	u.mu.Unlock()
	if leaving {
		s.planned.Store(true)
		_ = conn.Close()
		e.emitLeft(s, conn, nil)
		return
	}
	s.joinStart.Store(int64(e.now()))
	ctx, cancel := context.WithTimeout(e.hardCtx, e.cfg.JoinTimeout)
	err = conn.Emit(ctx, "connecting", connecting{Username: u.name})
	if err == nil {
		select {
		case <-s.joined:
		case <-ctx.Done():
			err = fmt.Errorf("no `connected` within %v of `connecting`", e.cfg.JoinTimeout)
		case <-conn.Done():
			err = fmt.Errorf("connection ended before `connected`: %v", conn.Err())
		}
	} else {
		err = fmt.Errorf("emit connecting: %w", err)
	}
	cancel()
	if err != nil && !s.isJoined.Load() {
		dropped := false
		select {
		case <-conn.Done():
			dropped = true // the server closed it, rather than staying silent
		default:
		}
		if !e.stopping() && !s.planned.Load() {
			fail(JoinFailed, err)
			switch {
			case e.cfg.MaxOutage > 0:
				// Riding out outages: every failed attempt is retried.
				if dropped {
					e.suspect(u)
				}
				e.retry(u)
			case dropped:
				// A Socket.IO client reconnects when the server drops it;
				// so does a user whose join was cut off. (zishang520
				// servers do this now and then: see README, "What the
				// load generator found".)
				if back := e.now() + e.cfg.ChurnPause; back < u.arr.SendUntil {
					e.push(event{back, evArrive, u})
				}
			}
		}
		s.planned.Store(true)
		_ = conn.Close()
	} else {
		u.mu.Lock()
		start := !u.sending && !u.leaving
		u.sending = true
		u.failures = 0
		u.mu.Unlock()
		if start {
			// A random phase within the first gap, so users that arrive
			// together do not speak together.
			u.mu.Lock()
			first := e.now() + time.Duration(u.rng.Float64()*float64(e.cfg.Pacer.Next(u.rng)))
			u.mu.Unlock()
			if first < u.arr.SendUntil {
				e.push(event{first, evSend, u})
			}
		}
	}
	<-conn.Done()
	e.emitLeft(s, conn, conn.Err())
}

// emitLeft reports the end of s once its reader has stopped, so the Left
// record follows every Delivered record of the session.
func (e *Engine) emitLeft(s *session, conn *sioclient.Conn, cause error) {
	s.closeSide()
	_ = conn.Close() // idempotent; waits for the reader goroutine
	u := s.u
	u.mu.Lock()
	if u.sess == s {
		u.sess = nil
	}
	u.mu.Unlock()
	planned := s.planned.Load() || e.stopping()
	r := Result{Kind: Left, User: int32(u.idx), Session: s.id, At: e.now(), Planned: planned, Abrupt: s.aborted.Load() || !planned}
	if !planned {
		if cause == nil {
			cause = errors.New("connection ended")
		}
		r.Err = fmt.Errorf("connection dropped: %w", cause)
		e.suspect(u)
		// Reconnect as a Socket.IO client would (CONTRACT.md RECON-1); if
		// the target is gone, the failing reconnects confirm it.
		if e.cfg.MaxOutage > 0 {
			e.retry(u)
		} else if back := r.At + e.cfg.ChurnPause; back < u.arr.SendUntil {
			e.push(event{back, evArrive, u})
		}
	}
	e.emit(r)
}

// onEvent runs on the session's reader goroutine.
func (s *session) onEvent(ev sioclient.Event) {
	e := s.e
	switch ev.Name {
	case "connected":
		if s.isJoined.Load() {
			return
		}
		s.tail.Reset(ev.Args)
		at := ev.Received.Sub(e.start)
		e.emit(Result{Kind: Joined, User: int32(s.u.idx), Session: s.id, At: at, Latency: at - time.Duration(s.joinStart.Load())})
		s.isJoined.Store(true)
		close(s.joined)
	case "messageWritten":
		if !s.isJoined.Load() {
			return // unjoined sockets may receive it (CONTRACT.md MSG-1); it is owed to nobody
		}
		at := ev.Received.Sub(e.start)
		for _, st := range s.tail.New(ev.Args) {
			e.emit(Result{Kind: Delivered, User: int32(s.u.idx), Session: s.id, Sender: st.Sender, Seq: st.Seq, Intended: time.Duration(st.Intended - e.startUnix), At: at})
		}
	}
}

// suspect checks whether the user's target still accepts TCP
// connections, one probe goroutine per target at a time. Two failed
// probes in a row confirm an outage: with MaxOutage 0 it ends the run as
// target_down; otherwise it is recorded and the target is probed until it
// accepts connections again or has been down longer than MaxOutage.
func (e *Engine) suspect(u *user) {
	if e.stopping() {
		return
	}
	t := e.targets[u.target]
	t.mu.Lock()
	if t.probing || t.addr == "" {
		t.mu.Unlock()
		return
	}
	t.probing = true
	t.mu.Unlock()
	e.wg.Add(1)
	go e.probe(t)
}

func (e *Engine) probe(t *target) {
	defer e.wg.Done()
	defer func() {
		t.mu.Lock()
		t.probing = false
		t.mu.Unlock()
	}()
	fails := 0
	var first time.Duration // the first failed probe of this series
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		at := e.now()
		d := net.Dialer{Timeout: probeTimeout}
		c, err := d.DialContext(e.stopCtx, "tcp", t.addr)
		if e.stopping() {
			if c != nil {
				c.Close()
			}
			return
		}
		if err == nil {
			c.Close()
			e.targetUp(t, at)
			return
		}
		if fails++; fails == 1 {
			first = at
		}
		if fails == 2 {
			e.targetDown(t, first)
			if e.cfg.MaxOutage == 0 {
				e.stop(EndedTargetDown, fmt.Sprintf("target %s stopped accepting connections: %v", t.url, err))
				return
			}
		}
		if down := e.now() - first; fails >= 2 && down > e.cfg.MaxOutage {
			e.stop(EndedTargetDown, fmt.Sprintf("target %s down for %v, longer than the allowed outage (max outage %v): %v",
				t.url, down.Round(time.Millisecond), e.cfg.MaxOutage, err))
			return
		}
		wait := probeEvery
		if fails < 2 {
			wait = probeConfirm
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-e.stopCh:
			return
		}
	}
}

// targetDown opens an outage of t that started at start.
func (e *Engine) targetDown(t *target, start time.Duration) {
	e.outMu.Lock()
	idx := len(e.outages)
	e.outages = append(e.outages, Outage{Target: t.url, Start: start})
	e.outMu.Unlock()
	t.mu.Lock()
	t.down, t.outage = true, idx
	t.mu.Unlock()
}

// targetUp closes t's open outage, if any, at `at` and lets the users who
// waited for t reconnect, spread over ChurnPause so they do not all
// arrive in the same instant.
func (e *Engine) targetUp(t *target, at time.Duration) {
	t.mu.Lock()
	if !t.down {
		t.mu.Unlock()
		return
	}
	t.down = false
	idx, waiters := t.outage, t.waiters
	t.waiters = nil
	t.mu.Unlock()
	e.outMu.Lock()
	e.outages[idx].End, e.outages[idx].Ended = at, true
	e.outMu.Unlock()
	now := e.now()
	for _, u := range waiters {
		u.mu.Lock()
		u.failures = 0
		back := now + time.Duration(u.rng.Float64()*float64(e.cfg.ChurnPause))
		ok := !u.leaving && back < u.arr.SendUntil
		u.mu.Unlock()
		if ok {
			e.push(event{back, evArrive, u})
		}
	}
}

// park holds back a connection attempt of u while its target is known to
// be down; targetUp schedules it again. It reports whether u was parked.
func (e *Engine) park(u *user) bool {
	t := e.targets[u.target]
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.down {
		return false
	}
	t.waiters = append(t.waiters, u)
	return true
}

// retry schedules u's next connection attempt after a failed one or a
// drop, when MaxOutage > 0: ChurnPause doubled per failure in a row up to
// maxBackoff (or ChurnPause if longer), each wait drawn from its upper
// half so a crowd that failed together does not retry together; only
// while u is in its sending phase. With MaxOutage 0 it does nothing: a
// failed connect is not retried.
func (e *Engine) retry(u *user) {
	if e.cfg.MaxOutage == 0 || e.stopping() {
		return
	}
	u.mu.Lock()
	d := backoff(e.cfg.ChurnPause, u.failures)
	u.failures++
	d = d/2 + time.Duration(u.rng.Int64N(int64(d/2)+1))
	at := e.now() + d
	ok := !u.leaving && at < u.arr.SendUntil
	u.mu.Unlock()
	if ok {
		e.push(event{at, evArrive, u})
	}
}

// backoff is pause doubled n times, capped at max(maxBackoff, pause).
func backoff(pause time.Duration, n int) time.Duration {
	ceiling := max(maxBackoff, pause)
	d := pause
	for range n {
		if d >= ceiling/2 {
			return ceiling
		}
		d *= 2
	}
	return min(d, ceiling)
}

func hostPort(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Port() != "" {
		return u.Host, nil
	}
	switch u.Scheme {
	case "https", "wss":
		return net.JoinHostPort(u.Hostname(), "443"), nil
	}
	return net.JoinHostPort(u.Hostname(), "80"), nil
}
