package framework

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// Received is one event a client received, with its position in that
// client's stream and its decoded payload.
type Received struct {
	sioclient.Event
	// Index is the event's position in the client's stream (0 = first).
	Index int
	// Payload is the decoded first argument; DecodeErr says why not.
	Payload   Payload
	DecodeErr error
}

type record struct {
	Received
	used bool // consumed by an Await
}

// Client is one Socket.IO connection owned by a spec, with an ordered
// record of everything it received. Its methods fail the spec (with the
// events of every client of the spec) instead of returning errors.
type Client struct {
	// Role names the client in failure messages ("alice", "observer").
	Role string
	// User is the username the client joins with.
	User string

	f       *Framework
	run     *run
	conn    *sioclient.Conn
	dialIdx int
	started time.Time
	// caseID and judgeShapes are fixed at creation: the reader goroutine
	// reads them, and the Framework is reused by the next spec.
	caseID      string
	judgeShapes bool
	budget      *caseBudget // the case's recording budget (recorder.go)

	mu      sync.Mutex
	records []record
	changed chan struct{} // closed and replaced whenever records, idle or ended change
	// idle is true while the reader waits on an empty queue: it has
	// processed everything the connection received before idleAt.
	idle     bool
	idleAt   time.Time
	ended    bool
	endErr   error
	stop     context.CancelFunc
	readDone chan struct{}
}

func newClient(f *Framework, role, user string, conn *sioclient.Conn, idx int) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		Role: role, User: user, f: f, run: f.run, conn: conn, dialIdx: idx, started: f.started,
		caseID: f.CaseID, judgeShapes: f.grade != GradeRobust && f.grade != GradeSecurity, budget: f.budget,
		changed: make(chan struct{}), stop: cancel, readDone: make(chan struct{}),
	}
	go c.read(ctx)
	return c
}

// read records every event in receive order until the connection ends.
// Decoding happens outside the lock, so that waits keep looking while a
// large event is decoded, and the reader marks itself idle whenever it has
// processed everything queued (see catchUp).
func (c *Client) read(ctx context.Context) {
	defer close(c.readDone)
	// An already-cancelled context makes Next return only what is queued.
	queued, cancelQueued := context.WithCancel(ctx)
	cancelQueued()
	for n := 0; ; {
		ev, err := c.conn.Next(queued)
		if err != nil && err == queued.Err() && ctx.Err() == nil {
			// Nothing queued: caught up. Say so, then wait for more.
			c.mu.Lock()
			c.idle, c.idleAt = true, time.Now()
			c.notifyLocked()
			c.mu.Unlock()
			ev, err = c.conn.Next(ctx)
			// Busy again (or ending): a wait must not take the reader for
			// caught up while it processes this event.
			c.mu.Lock()
			c.idle = false
			c.mu.Unlock()
		}
		if err == nil {
			if err = c.admit(ev, n); err != nil {
				_ = c.conn.Abort() // stop reading what the server sends (recorder.go)
			}
		}
		if err != nil {
			c.mu.Lock()
			c.idle = false
			c.ended, c.endErr = true, err
			c.notifyLocked()
			c.mu.Unlock()
			return
		}
		if readerDelay != nil {
			readerDelay()
		}
		r := record{Received: Received{Event: ev, Index: n}}
		var suspect bool
		r.Payload, suspect, r.DecodeErr = decodeEvent(ev.Name, ev.Args)
		if suspect && c.judgeShapes {
			c.run.noteShapes(c.caseID, c.Role, r.Index, ev.Name, ev.Args)
		}
		n++
		c.mu.Lock()
		c.idle = false
		c.records = append(c.records, r)
		c.notifyLocked()
		c.mu.Unlock()
	}
}

// readerDelay, when set (by tests only, before any client exists), runs
// before each event is processed: it stands in for a harness starved of
// CPU, whose readers fall behind their sockets.
var readerDelay func()

// notifyLocked wakes every wait on the client; c.mu is held.
func (c *Client) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Conn returns the underlying protocol client, for what the helpers here
// do not cover (raw packets, abrupt drops).
func (c *Client) Conn() *sioclient.Conn { return c.conn }

// Handshake returns the Engine.IO handshake of the connection.
func (c *Client) Handshake() sioclient.Handshake { return c.conn.Handshake() }

// String names the client in messages: role, username and socket id.
func (c *Client) String() string {
	return fmt.Sprintf("%s (user %q, sid %s)", c.Role, c.User, c.conn.ID())
}

// Emit sends an event, failing the spec if it cannot be sent.
func (c *Client) Emit(ctx context.Context, event string, args ...any) {
	ginkgo.GinkgoHelper()
	ctx, cancel := context.WithTimeout(ctx, c.f.run.cfg.StepTimeout)
	defer cancel()
	if err := c.conn.Emit(ctx, event, args...); err != nil {
		c.f.Failf("%s could not send %q: %v", c, event, err)
	}
}

// SendRaw sends one raw Socket.IO packet (bad-input cases). An error is
// returned, not failed: a server may rightly close on a malformed packet.
func (c *Client) SendRaw(ctx context.Context, packet string) error {
	ctx, cancel := context.WithTimeout(ctx, c.f.run.cfg.StepTimeout)
	defer cancel()
	return c.conn.SendRaw(ctx, packet)
}

// Join emits connecting {username} and waits for the socket's connected.
func (c *Client) Join(ctx context.Context) Received {
	ginkgo.GinkgoHelper()
	c.Emit(ctx, "connecting", map[string]any{"username": c.User})
	return c.Await(ctx, "connected")
}

// Write emits writeMessage {message: text, username: own username}.
func (c *Client) Write(ctx context.Context, text string) {
	ginkgo.GinkgoHelper()
	c.Emit(ctx, "writeMessage", map[string]any{"message": text, "username": c.User})
}

// AwaitMessage waits for the next messageWritten whose list contains text.
func (c *Client) AwaitMessage(ctx context.Context, text string) Received {
	ginkgo.GinkgoHelper()
	return c.Await(ctx, "messageWritten", HasMessage(text))
}

// Barrier writes a fresh message and waits for this client's own
// messageWritten of it. The server sends that after everything it sent this
// client before processing the write, so any event that was going to come
// as a result of earlier actions has arrived by then (the connection is
// ordered). It relies on MSG-1; when the server does not echo the sender
// (another joined client received the message, the sender did not), a join
// by a fresh client is the later event instead, and the MSG-1 violation is
// recorded as tolerated (see AwaitWritten).
func (c *Client) Barrier(ctx context.Context) Received {
	ginkgo.GinkgoHelper()
	r, err := c.barrier(ctx)
	if err != nil {
		c.f.Failf("%v", err)
	}
	return r
}

// Await waits up to the step timeout for the first event named name that
// no earlier Await consumed and that matches every filter, consumes it and
// returns it. Events skipped over stay available to later Awaits.
func (c *Client) Await(ctx context.Context, name string, filters ...Filter) Received {
	ginkgo.GinkgoHelper()
	r, err := c.await(ctx, c.f.run.cfg.StepTimeout, name, filters)
	if err != nil {
		c.f.Failf("%v", err)
	}
	return r
}

// TryAwait is Await that returns whether the event came instead of failing.
func (c *Client) TryAwait(ctx context.Context, timeout time.Duration, name string, filters ...Filter) (Received, bool) {
	r, err := c.await(ctx, timeout, name, filters)
	return r, err == nil
}

func describe(name string, filters []Filter) string {
	parts := []string{fmt.Sprintf("%q", name)}
	for _, f := range filters {
		parts = append(parts, f.Desc)
	}
	return strings.Join(parts, " ")
}

func matches(r Received, name string, filters []Filter) bool {
	if r.Name != name {
		return false
	}
	for _, f := range filters {
		if r.DecodeErr != nil || !f.Match(r.Payload) {
			return false
		}
	}
	return true
}

func (c *Client) await(ctx context.Context, timeout time.Duration, name string, filters []Filter) (Received, error) {
	r, err := c.awaitFunc(ctx, timeout, describe(name, filters), func(r Received) bool { return matches(r, name, filters) })
	if err == nil {
		c.applyTolerated(r, filters)
	}
	return r, err
}

// TryAwaitFunc waits up to timeout for the first unconsumed event for
// which match is true, consumes it and returns it; false when none came.
func (c *Client) TryAwaitFunc(ctx context.Context, timeout time.Duration, match func(Received) bool) (Received, bool) {
	r, err := c.awaitFunc(ctx, timeout, "", match)
	return r, err == nil
}

// awaitFunc waits up to timeout (the step timeout for Await, the caller's
// own for TryAwait, which may be longer) for a matching event.
//
// When the wait times out, the harness first makes sure it is not itself
// the one that is late (see lag.go): it lets the reader process what the
// connection had received by the deadline and looks again, and when the
// process was starved of CPU during the wait, it waits that much longer.
// Either is reported as a finding when it found the event.
func (c *Client) awaitFunc(ctx context.Context, timeout time.Duration, what string, match func(Received) bool) (Received, error) {
	start := time.Now()
	r, err := c.awaitUntil(ctx, start.Add(timeout), what, match)
	if !errors.Is(err, errWaitTimedOut) {
		return r, err
	}
	deadline := start.Add(timeout)
	stall, limit := catchUpBounds(timeout)
	waited, behind := catchUp(c.run.ctx, []*Client{c}, deadline, stall, limit)
	lag := c.run.lag.During(start, time.Now())
	note := lateNote(waited, behind, lag, timeout)
	if r, ok := c.find(0, match, true); ok {
		c.f.harnessFinding(what, note, r)
		return r, nil
	}
	if lag*starvedShare > timeout {
		extra := min(lag, timeout)
		if r, err := c.awaitUntil(ctx, time.Now().Add(extra), what, match); err == nil {
			c.f.harnessFinding(what, note+fmt.Sprintf("; waited %s more", extra), r)
			return r, nil
		}
	}
	if note != "" {
		note = " (" + note + ")"
	}
	return Received{}, fmt.Errorf("%s: expected %s, but none arrived within %s%s", c, what, timeout, note)
}

// errWaitTimedOut is awaitUntil's error when the deadline passed.
var errWaitTimedOut = errors.New("wait timed out")

// awaitUntil waits until deadline for the first unconsumed matching event
// and consumes it.
func (c *Client) awaitUntil(ctx context.Context, deadline time.Time, what string, match func(Received) bool) (Received, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	next := 0 // records before next were already checked by this call
	for {
		c.mu.Lock()
		for i := next; i < len(c.records); i++ {
			if !c.records[i].used && match(c.records[i].Received) {
				c.records[i].used = true
				r := c.records[i].Received
				c.mu.Unlock()
				return r, nil
			}
		}
		next = len(c.records)
		changed, ended, endErr := c.changed, c.ended, c.endErr
		c.mu.Unlock()
		if ended {
			return Received{}, fmt.Errorf("%s: expected %s, but the connection ended first (%w)", c, what, endErr)
		}
		select {
		case <-changed:
		case <-c.f.run.ctx.Done():
			return Received{}, fmt.Errorf("%s: expected %s, but the run was stopped first", c, what)
		case <-ctx.Done():
			return Received{}, errWaitTimedOut
		}
	}
}

// AwaitAfter waits up to the step timeout for the first unconsumed event
// named name at a position at or after mark, whatever its payload: for
// cases that need the event to arrive (a transport carries it, its shape is
// checked) but judge its content elsewhere.
func (c *Client) AwaitAfter(ctx context.Context, mark int, name string) Received {
	ginkgo.GinkgoHelper()
	r, err := c.awaitFunc(ctx, c.f.run.cfg.StepTimeout, fmt.Sprintf("%q (any payload)", name), func(r Received) bool {
		return r.Index >= mark && r.Name == name
	})
	if err != nil {
		c.f.Failf("%v", err)
	}
	return r
}

// Mark returns the position the next received event will have; pass it to
// ExpectNone as the start of the window.
func (c *Client) Mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.records)
}

// Events returns a copy of everything received so far, in order.
func (c *Client) Events() []Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Received, len(c.records))
	for i, r := range c.records {
		out[i] = r.Received
	}
	return out
}

// Matching returns the events at positions [from, to) named name that match
// every filter; to < 0 means "up to now".
func (c *Client) Matching(from, to int, name string, filters ...Filter) []Received {
	var out []Received
	for _, r := range c.Events() {
		if r.Index < from || (to >= 0 && r.Index >= to) {
			continue
		}
		if matches(r, name, filters) {
			out = append(out, r)
		}
	}
	return out
}

// ExpectNone proves that this client did not receive an event named name
// matching filters: none arrived between position from and the barrier
// event (which the server must have sent after it), and none arrives
// during the quiet window after the barrier either (a Consistently backstop).
// what says, for the failure message, what the event would have meant.
func (c *Client) ExpectNone(from int, barrier Received, what string, name string, filters ...Filter) {
	ginkgo.GinkgoHelper()
	if got := c.Matching(from, barrier.Index, name, filters...); len(got) > 0 {
		c.f.Failf("%s: %s\nexpected: no %s before the barrier event #%d (%s)\nseen: event #%d %s %s",
			c, what, describe(name, filters), barrier.Index, barrier.Name, got[0].Index, got[0].Name, summarize(got[0].Name, got[0].Args))
	}
	gomega.Consistently(func() []int {
		var idx []int
		for _, r := range c.Matching(barrier.Index+1, -1, name, filters...) {
			idx = append(idx, r.Index)
		}
		return idx
	}).WithTimeout(c.f.run.cfg.QuietWindow).WithPolling(5*time.Millisecond).Should(gomega.BeEmpty(), func() string {
		return fmt.Sprintf("%s: %s\nexpected: no %s, also not in the %s after the barrier\n%s",
			c, what, describe(name, filters), c.f.run.cfg.QuietWindow, c.f.EventLog())
	})
}

// Close disconnects gracefully (a Socket.IO DISCONNECT packet).
func (c *Client) Close() {
	_ = c.conn.Close()
}

// Abort drops the transport abruptly: the TCP connection closes without a
// disconnect packet, so the server notices at once.
func (c *Client) Abort() {
	_ = c.conn.Abort()
}

// Silence stops answering the server's pings while keeping TCP open: the
// server notices only when its ping timeout expires.
func (c *Client) Silence() {
	c.conn.Silence()
}

// Ended reports whether the connection has ended, and why.
func (c *Client) Ended() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended, c.endErr
}

// shutdown closes the connection and waits briefly for the reader.
func (c *Client) shutdown() {
	_ = c.conn.Close()
	c.stop()
	select {
	case <-c.readDone:
	case <-time.After(2 * time.Second):
	}
}

// log renders the client's events for failure messages (the last 20).
func (c *Client) log() string {
	evs := c.Events()
	var b strings.Builder
	fmt.Fprintf(&b, "  %s, transport %s, %d events:\n", c, c.conn.Transport(), len(evs))
	from := 0
	if len(evs) > 20 {
		from = len(evs) - 20
		fmt.Fprintf(&b, "    … %d earlier events not shown\n", from)
	}
	for _, r := range evs[from:] {
		fmt.Fprintf(&b, "    #%d +%dms %s %s\n", r.Index, r.Event.Received.Sub(c.started).Milliseconds(), r.Name, summarize(r.Name, r.Args))
	}
	if ended, err := c.Ended(); ended {
		fmt.Fprintf(&b, "    (connection ended: %v)\n", err)
	}
	return b.String()
}
