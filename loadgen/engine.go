package loadgen

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatspec/chatspec/sioclient"
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

	probing atomic.Bool
}

type user struct {
	idx       int
	arr       Arrival
	name      string
	transport sioclient.Transport

	mu      sync.Mutex
	rng     *rand.Rand
	sess    *session
	emitMu  sync.Mutex // serialises a user's writeMessage emits, so seq order is wire order
	seq     uint32     // guarded by emitMu
	leaving bool
	sending bool // the send chain was started
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
		e.users = append(e.users, u)
	}
	return e, nil
}

// Start returns when the run started (zero before Run).
func (e *Engine) Start() time.Time { return e.start }

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
	conn := s.conn.Load()
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
			return
		}
	}
	opts := e.cfg.Dial(u.idx)
	opts.Transport = u.transport
	opts.SkipArgsValidation = true
	opts.OnEvent = s.onEvent
	conn, err := sioclient.Dial(e.hardCtx, opts)
	if err != nil {
		if !e.stopping() {
			fail(ConnectFailed, err)
			e.suspect(u)
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
			// A Socket.IO client reconnects when the server drops it; so
			// does a user whose join was cut off. (zishang520 servers do
			// this now and then: see README, "What the load generator found".)
			if back := e.now() + e.cfg.ChurnPause; dropped && back < u.arr.SendUntil {
				e.push(event{back, evArrive, u})
			}
		}
		s.planned.Store(true)
		_ = conn.Close()
	} else {
		u.mu.Lock()
		start := !u.sending && !u.leaving
		u.sending = true
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
		if back := r.At + e.cfg.ChurnPause; back < u.arr.SendUntil {
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

// suspect checks, once at a time, whether the user's target still accepts
// TCP connections; two failed checks in a row end the run as target_down.
func (e *Engine) suspect(u *user) {
	if e.stopping() || !e.probing.CompareAndSwap(false, true) {
		return
	}
	addr := e.cfg.Dial(u.idx).URL
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer e.probing.Store(false)
		host, err := hostPort(addr)
		if err != nil {
			return
		}
		var last error
		for i := range 2 {
			if i > 0 {
				select {
				case <-time.After(200 * time.Millisecond):
				case <-e.stopCh:
					return
				}
			}
			c, err := net.DialTimeout("tcp", host, time.Second)
			if err == nil {
				c.Close()
				return
			}
			last = err
		}
		e.stop(EndedTargetDown, fmt.Sprintf("target %s stopped accepting connections: %v", addr, last))
	}()
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
