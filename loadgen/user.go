package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// user is one simulated chat user; it has at most one session at a time.
type user struct {
	idx       int
	arr       Arrival
	name      string
	transport sioclient.Transport
	target    int // index in the target monitor

	mu       sync.Mutex
	rng      *rand.Rand
	sess     *session
	emitMu   sync.Mutex // serialises a user's writeMessage emits, so seq order is wire order
	seq      uint32     // guarded by emitMu
	leaving  bool
	sending  bool // the send chain was started
	failures int  // connection attempts failed in a row (the backoff's exponent)
}

// session is one connection of a user, from dial to its end.
type session struct {
	e         *Engine
	id        int32
	u         *user
	conn      atomic.Pointer[Conn]
	tail      *Tail
	joinStart atomic.Int64 // offset of the `connecting` emit
	joined    chan struct{}
	isJoined  atomic.Bool
	planned   atomic.Bool
	aborted   atomic.Bool // the generator dropped it abruptly (churn, hard stop)
	side      *seedSide   // the writing connection of a seed-style session (seedstyle.go)

	// outstanding are the session's writes not yet echoed back to it, in
	// emit order: a refusal (chatError) answers the oldest of them, since
	// one connection's writes are handled in order.
	outMu       sync.Mutex
	outstanding []uint32
	pendingAcks atomic.Int32 // writes whose ack was asked for and has not come
}

// maxOutstanding bounds the writes a session remembers while waiting for
// their echo; a server that never echoes cannot grow it further.
const maxOutstanding = 1024

func (s *session) wrote(seq uint32) {
	s.outMu.Lock()
	if len(s.outstanding) >= maxOutstanding {
		s.outstanding = s.outstanding[1:]
	}
	s.outstanding = append(s.outstanding, seq)
	s.outMu.Unlock()
}

// echoed forgets the writes up to seq: the server accepted seq, and the
// ones before it were answered (or dropped) before it.
func (s *session) echoed(seq uint32) {
	s.outMu.Lock()
	i := 0
	for i < len(s.outstanding) && s.outstanding[i] <= seq {
		i++
	}
	s.outstanding = s.outstanding[i:]
	s.outMu.Unlock()
}

// refusedWrite returns the oldest write waiting for an answer, 0 if none.
func (s *session) refusedWrite() uint32 {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if len(s.outstanding) == 0 {
		return 0
	}
	seq := s.outstanding[0]
	s.outstanding = s.outstanding[1:]
	return seq
}

// liveConn returns the session's connection, nil before the dial ended.
func (s *session) liveConn() Conn {
	if p := s.conn.Load(); p != nil {
		return *p
	}
	return nil
}

// current returns the user's session, nil when offline.
func (u *user) current() *session {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sess
}

type writeMessage struct {
	Message  string `json:"message"`
	Username string `json:"username"`
}

type connecting struct {
	Username string `json:"username"`
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
	if c := s.liveConn(); c != nil {
		s.planned.Store(true)
		e.wg.Add(1)
		go func() { defer e.wg.Done(); _ = c.Close() }()
	}
}

// churn drops the user's joined session abruptly, as a lost network
// does, and schedules its return after ChurnPause.
func (e *Engine) churn(u *user, at time.Duration) {
	s := u.current()
	var c Conn
	if s != nil && s.isJoined.Load() {
		c = s.liveConn()
	}
	if c == nil {
		return // not joined (yet, or any more): nothing to drop
	}
	s.planned.Store(true)
	s.aborted.Store(true)
	e.wg.Add(1)
	go func() { defer e.wg.Done(); _ = c.Abort() }()
	if back := at + e.cfg.ChurnPause; back < u.arr.SendUntil {
		e.sched.push(event{back, evArrive, u})
	}
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
		e.sched.push(event{next, evSend, u})
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
		text := Stamp{Sender: uint32(u.idx), Seq: seq, Intended: e.startUnix + int64(at)}.Text(e.key, e.cfg.MessageSize)
		started := e.now()
		s.wrote(seq)
		ctx, cancel := context.WithTimeout(e.hardCtx, e.cfg.Window+e.cfg.StopTimeout)
		err := s.emitWrite(ctx, conn, seq, writeMessage{Message: text, Username: u.name})
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
	s := &session{e: e, id: e.sessionSeq.Add(1) - 1, u: u, tail: NewTail(e.key), joined: make(chan struct{})}
	base := Result{User: int32(u.idx), Session: s.id}
	fail := func(kind Kind, err error) {
		r := base
		r.Kind, r.Err, r.At = kind, err, e.now()
		e.emit(r)
	}
	if e.cfg.Init != nil {
		if err := e.cfg.Init(e.hardCtx, u.idx); err != nil {
			if e.stopAtLocalLimit(err) {
				return
			}
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
		if !e.stopping() && !e.stopAtLocalLimit(err) {
			fail(ConnectFailed, err)
			e.suspect(u)
			e.retry(u)
		}
		return
	}
	s.conn.Store(&conn)
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
	if err := e.join(s, conn); err != nil {
		e.joinFailed(s, conn, err)
	} else {
		e.startSending(u)
	}
	<-conn.Done()
	e.emitLeft(s, conn, conn.Err())
}

// join emits `connecting` and waits for `connected`; a `connected` that
// came however late counts (the error is then ignored).
func (e *Engine) join(s *session, conn Conn) error {
	s.joinStart.Store(int64(e.now()))
	ctx, cancel := context.WithTimeout(e.hardCtx, e.cfg.JoinTimeout)
	defer cancel()
	err := conn.Emit(ctx, "connecting", connecting{Username: s.u.name})
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
	if err != nil && s.isJoined.Load() {
		return nil
	}
	return err
}

// joinFailed reports a join that never completed, schedules the retry a
// Socket.IO client would make, and closes the connection.
func (e *Engine) joinFailed(s *session, conn Conn, err error) {
	u := s.u
	dropped := false
	select {
	case <-conn.Done():
		dropped = true // the server closed it, rather than staying silent
	default:
	}
	if !e.stopping() && !s.planned.Load() {
		e.emit(Result{Kind: JoinFailed, User: int32(u.idx), Session: s.id, Err: err, At: e.now()})
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
				e.sched.push(event{back, evArrive, u})
			}
		}
	}
	s.planned.Store(true)
	_ = conn.Close()
}

// startSending starts the user's send chain after its first join.
func (e *Engine) startSending(u *user) {
	u.mu.Lock()
	start := !u.sending && !u.leaving
	u.sending = true
	u.failures = 0
	u.mu.Unlock()
	if !start {
		return
	}
	// A random phase within the first gap, so users that arrive
	// together do not speak together.
	u.mu.Lock()
	first := e.now() + time.Duration(u.rng.Float64()*float64(e.cfg.Pacer.Next(u.rng)))
	u.mu.Unlock()
	if first < u.arr.SendUntil {
		e.sched.push(event{first, evSend, u})
	}
}

// emitLeft reports the end of s once its reader has stopped, so the Left
// record follows every Delivered record of the session.
func (e *Engine) emitLeft(s *session, conn Conn, cause error) {
	s.closeSide()
	_ = conn.Close() // idempotent; waits for the reader goroutine
	u := s.u
	u.mu.Lock()
	if u.sess == s {
		u.sess = nil
	}
	u.mu.Unlock()
	if !s.planned.Load() && !e.stopping() && e.stopAtLocalLimit(cause) {
		s.planned.Store(true) // ended by the generator's own limit
	}
	planned := s.planned.Load() || e.stopping()
	r := Result{Kind: Left, User: int32(u.idx), Session: s.id, At: e.now(), Planned: planned, Abrupt: s.aborted.Load() || !planned}
	if !planned {
		if cause == nil {
			cause = errors.New("connection ended")
		}
		r.Err = fmt.Errorf("connection dropped: %w", cause)
		e.suspect(u)
		e.reconnectAfterDrop(u, r.At)
	}
	e.emit(r)
}

// onEvent runs on the session's reader goroutine.
func (s *session) onEvent(ev sioclient.Event) {
	e := s.e
	switch ev.Name {
	case "connected":
		if s.isJoined.Load() {
			e.emit(Result{Kind: Noted, Note: NoteConnectedTwice, User: int32(s.u.idx), Session: s.id, At: ev.Received.Sub(e.start)})
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
		seen := s.tail.New(ev.Args)
		for _, st := range seen {
			if st.Sender == uint32(s.u.idx) {
				s.echoed(st.Seq)
			}
			e.emit(Result{Kind: Delivered, User: int32(s.u.idx), Session: s.id, Sender: st.Sender, Seq: st.Seq, Intended: time.Duration(st.Intended - e.startUnix), At: at, Pred: st.Pred})
		}
		if len(seen) == 0 {
			if note, newest := s.tail.Note(); note != NoteStale {
				e.emit(Result{Kind: Noted, Note: note, User: int32(s.u.idx), Session: s.id, Sender: newest.Sender, Seq: newest.Seq, At: at})
			}
		}
	case "joined", "disconnected":
		// Presence: not what a load run measures.
	default:
		// Before its join a session has sent only connecting, after it
		// nothing but writeMessage: a report that names no event is
		// about the one or the other.
		about := "connecting"
		if s.isJoined.Load() {
			about = "writeMessage"
		}
		s.onReport(ev, about)
	}
}
