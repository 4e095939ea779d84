package explore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatspec/chatspec/spec/lag"
	"github.com/chatspec/chatspec/spec/sioclient"
	"github.com/chatspec/chatspec/spec/target"
)

// This file is longer than most (about 750 lines) because one scenario's
// run is one state machine: the sockets, their recorders, the waits derived
// from the handshake, and the fail-fast checks share its state. Generating
// scenarios (generate.go) and shrinking them (explore.go) are separate.

var debug = os.Getenv("CHATSPEC_EXPLORE_DEBUG") != ""

// Runner performs scenarios against one server and records their traces.
type Runner struct {
	// Target is the server (cluster) under test.
	Target *target.Options
	// StepTimeout is the base wait for an event the contract says must
	// come (the suite's --timeout). Waits are extended while the harness
	// is still receiving events: a slow harness is not a slow server.
	StepTimeout time.Duration
	// Pace is the least time between two writes of one socket, so that a
	// correct server's rate limit (SEC-5 allows any limit above a burst of
	// 10) rarely refuses; a refusal is legal anyway.
	Pace time.Duration
}

// Heartbeat is the server's pingInterval + pingTimeout from its handshake.
type Heartbeat struct {
	PingInterval, PingTimeout time.Duration
}

// Sum is how long a silent session may live at most.
func (h Heartbeat) Sum() time.Duration { return h.PingInterval + h.PingTimeout }

// Probe dials one socket to read the server's heartbeat.
func (r *Runner) Probe(ctx context.Context) (Heartbeat, error) {
	if err := r.Target.Init(ctx, 0); err != nil {
		return Heartbeat{}, err
	}
	opts := r.Target.DialOptions(0)
	opts.Transport = sioclient.WebSocket
	conn, err := sioclient.Dial(ctx, opts)
	if err != nil {
		opts.Transport = sioclient.Polling
		if conn, err = sioclient.Dial(ctx, opts); err != nil {
			return Heartbeat{}, err
		}
	}
	defer conn.Close()
	hs := conn.Handshake()
	return Heartbeat{hs.PingInterval, hs.PingTimeout}, nil
}

// run is one scenario's execution.
type run struct {
	r      *Runner
	hb     Heartbeat
	ctx    context.Context
	window atomic.Int64

	mu      sync.Mutex
	trace   *Trace
	notify  chan struct{}
	frozen  bool
	intern  map[string]string
	conns   []*sioclient.Conn
	local   []atomic.Bool // the run ended the connection itself
	writers []*writer
	lastEv  time.Time
	zombies map[int]time.Time // user -> when its replaced session has surely timed out
	nextID  int
	wg      sync.WaitGroup
}

type writer struct {
	q       chan writeReq
	pending atomic.Int64
}

type writeReq struct {
	op    int
	text  string
	claim string
	forge bool
}

// Run performs s and returns its trace (nil with an error only when the
// run could not start or ctx ended).
func (r *Runner) Run(ctx context.Context, s Scenario, hb Heartbeat) (*Trace, error) {
	s = Normalize(s)
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	t := &Trace{Scenario: s, Nonce: nonce, Skipped: make([]bool, len(s.Ops))}
	n := s.Clients()
	t.Clients = make([]Client, n)
	for i := range t.Clients {
		t.Clients[i] = Client{User: -1, JoinOp: -1, LeftOp: -1}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ru := &run{r: r, hb: hb, ctx: ctx, trace: t, notify: make(chan struct{}), intern: map[string]string{},
		conns: make([]*sioclient.Conn, n), local: make([]atomic.Bool, n), writers: make([]*writer, n), zombies: map[int]time.Time{}}
	ru.window.Store(-1)
	defer ru.teardown()
	t0 := time.Now()
	stalls := lag.Start(ctx)
	for i, op := range s.Ops {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if debug && op.Kind != OpWrite {
			fmt.Printf("%6.2fs op %d %s\n", time.Since(t0).Seconds(), i, s.Describe(op))
		}
		if !ru.do(i, op) {
			// An event the contract requires never came: the verdict is
			// certain, and every later wait would only repeat it. Fail
			// fast: skip the rest.
			for k := i + 1; k < len(s.Ops); k++ {
				t.Skipped[k] = true
			}
			break
		}
	}
	if debug {
		fmt.Printf("%6.2fs settle\n", time.Since(t0).Seconds())
	}
	ru.settle()
	if debug {
		fmt.Printf("%6.2fs settled\n", time.Since(t0).Seconds())
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.Stall = stalls.Longest(t0, time.Now())
	ru.mu.Lock()
	for _, c := range ru.conns {
		if c != nil {
			t.Stall = max(t.Stall, c.HeartbeatLag())
		}
	}
	ru.mu.Unlock()
	ru.teardown()
	cancel()
	ru.wg.Wait()
	return t, nil
}

func newNonce() (string, error) {
	v, err := rand.Int(rand.Reader, big.NewInt(9_000_000))
	if err != nil {
		return "", fmt.Errorf("explore: nonce: %w", err)
	}
	return fmt.Sprint(1_000_000 + v.Int64()), nil
}

// wait waits until cond holds (checked under mu) or the bound passes with
// no event arriving; while events keep arriving the bound is extended (up
// to four times), since a harness still busy delivering is behind, not the
// server. It reports whether cond held.
func (ru *run) wait(bound time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(bound)
	extensions := 0
	for {
		ru.mu.Lock()
		ok := cond()
		ch := ru.notify
		last := ru.lastEv
		ru.mu.Unlock()
		if ok {
			return true
		}
		now := time.Now()
		if now.After(deadline) {
			if extensions < 4 && now.Sub(last) < bound/2 {
				extensions++
				deadline = now.Add(bound)
				continue
			}
			return false
		}
		t := time.NewTimer(min(time.Until(deadline), 100*time.Millisecond))
		select {
		case <-ch:
			// Conditions scan the trace: evaluate them at most every
			// 5 ms however fast events come, or a burst of events costs
			// quadratic time.
			sleep(ru.ctx, 5*time.Millisecond-time.Since(now))
		case <-t.C:
		case <-ru.ctx.Done():
			t.Stop()
			return false
		}
		t.Stop()
	}
}

// bound is the base wait for an event that must come: twice the step
// timeout (at least 5 s), since a wait that ends too early on a loaded
// machine would blame the server for the harness.
func (ru *run) bound() time.Duration { return max(2*ru.r.StepTimeout, 5*time.Second) }

// do performs operation i; it reports false when an event the operation
// owes never came.
func (ru *run) do(i int, op Op) bool {
	t := ru.trace
	if op.Kind != OpPause && op.Kind != OpConnect && (op.C >= len(ru.conns) || ru.conns[op.C] == nil) {
		t.Skipped[i] = true
		return true
	}
	switch op.Kind {
	case OpPause:
		ru.window.Store(int64(i))
		sleep(ru.ctx, time.Duration(op.Ms)*time.Millisecond)
	case OpConnect:
		ru.window.Store(int64(i))
		ru.connect(i, op)
	case OpJoin:
		return ru.join(i, op)
	case OpWrite, OpForge:
		ru.window.Store(int64(i))
		ru.mu.Lock()
		c := &t.Clients[op.C]
		claim := t.Scenario.Username(c.User, t.Nonce)
		ru.mu.Unlock()
		req := writeReq{op: i, text: op.Text}
		if op.Kind == OpForge {
			claim = variantOf(t.Scenario.Username(op.User, t.Nonce), op.Variant)
			if claim == t.Scenario.Username(c.User, t.Nonce) {
				t.Skipped[i] = true // the variant is its own name: not a forgery
				return true
			}
			req.forge = true
		}
		req.claim = claim
		ru.enqueue(op.C, req)
	case OpClose, OpDrop, OpSilence:
		return ru.leave(i, op)
	case OpBad:
		ru.window.Store(int64(i))
		ru.bad(i, op)
	}
	return true
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (ru *run) connect(i int, op Op) {
	t := ru.trace
	ci := op.C
	t.Clients[ci].Transport = string(op.Transport)
	opts := ru.r.Target.DialOptions(ci)
	opts.Transport = op.Transport
	opts.OnEvent = func(ev sioclient.Event) { ru.record(ci, ev) }
	opts.SkipArgsValidation = true // decode validates what it reads
	if err := ru.r.Target.Init(ru.ctx, ci); err != nil {
		ru.mu.Lock()
		t.Clients[ci].DialErr = err.Error()
		ru.mu.Unlock()
		t.Skipped[i] = true
		return
	}
	conn, err := sioclient.Dial(ru.ctx, opts)
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if err != nil {
		t.Clients[ci].DialErr = err.Error()
		t.Skipped[i] = true
		return
	}
	ru.conns[ci] = conn
	ru.wg.Add(1)
	go func() {
		defer ru.wg.Done()
		<-conn.Done()
		if ru.local[ci].Load() {
			return
		}
		ru.mu.Lock()
		defer ru.mu.Unlock()
		if !ru.frozen {
			t.Clients[ci].Ended = fmt.Sprint(conn.Err())
			t.Clients[ci].EndedWindow = int(ru.window.Load())
			ru.wake()
		}
	}()
}

// record decodes and stores one event (called on the client's reader
// goroutine, in receive order).
func (ru *run) record(ci int, sev sioclient.Event) {
	ev := Event{Name: sev.Name, Window: int(ru.window.Load()), At: sev.Received}
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if ru.frozen {
		return
	}
	if isChatEvent(sev.Name) {
		ru.decode(&ev, sev)
	} else {
		ev.About = aboutEvent(sev.Args)
	}
	ru.trace.Clients[ci].Events = append(ru.trace.Clients[ci].Events, ev)
	ru.lastEv = time.Now()
	ru.wake()
}

func (ru *run) wake() {
	close(ru.notify)
	ru.notify = make(chan struct{})
}

func (ru *run) in(s string) string {
	if v, ok := ru.intern[s]; ok {
		return v
	}
	ru.intern[s] = s
	return s
}

// aboutEvent returns the "event" field of a report's first argument (the
// reference's chatError and the Python server's notice name the event
// they refuse), "" when it has none.
func aboutEvent(args json.RawMessage) string {
	if len(args) > 4<<10 {
		return ""
	}
	var v []struct {
		Event any `json:"event"`
	}
	if json.Unmarshal(args, &v) != nil || len(v) == 0 {
		return ""
	}
	s, _ := v[0].Event.(string)
	return clipS(s)
}

// decode fills ev from a chat event's payload, or says why the payload
// breaks PAY-1. Extra fields are ignored (PAY-2).
func (ru *run) decode(ev *Event, sev sioclient.Event) {
	var args []json.RawMessage
	if err := json.Unmarshal(sev.Args, &args); err != nil || len(args) != 1 {
		ev.Malformed = fmt.Sprintf("want exactly one argument, got %s", clipS(string(sev.Args)))
		return
	}
	type user struct {
		Username *string `json:"username"`
	}
	type msg struct {
		Username *string `json:"username"`
		Message  *string `json:"message"`
	}
	var obj *struct {
		Users *[]user `json:"connectedUserList"`
		Msgs  *[]msg  `json:"messagesList"`
	}
	if err := json.Unmarshal(args[0], &obj); err != nil || obj == nil {
		ev.Malformed = fmt.Sprintf("the argument is not an object with the listed fields and types: %s", clipS(string(args[0])))
		return
	}
	if sev.Name != "messageWritten" {
		if obj.Users == nil {
			ev.Malformed = "connectedUserList is missing or null"
			return
		}
		ev.Users = make([]string, 0, len(*obj.Users))
		for _, u := range *obj.Users {
			if u.Username == nil {
				ev.Malformed = "a connectedUserList entry has no string username"
				return
			}
			ev.Users = append(ev.Users, ru.in(*u.Username))
		}
	}
	if sev.Name == "connected" || sev.Name == "messageWritten" {
		if obj.Msgs == nil {
			ev.Malformed = "messagesList is missing or null"
			return
		}
		ev.Msgs = make([]Msg, 0, len(*obj.Msgs))
		for _, m := range *obj.Msgs {
			if m.Username == nil || m.Message == nil {
				ev.Malformed = "a messagesList entry lacks a string username or message"
				return
			}
			ev.Msgs = append(ev.Msgs, Msg{Username: ru.in(*m.Username), Message: ru.in(*m.Message)})
		}
	}
}

func (ru *run) join(i int, op Op) bool {
	t := ru.trace
	ci := op.C
	name := t.Scenario.Username(op.User, t.Nonce)
	ru.mu.Lock()
	c := &t.Clients[ci]
	c.User, c.JoinOp, c.JoinSent = op.User, i, time.Now()
	from := len(c.Events)
	ru.mu.Unlock()
	ru.window.Store(int64(i))
	if err := ru.conns[ci].Emit(ru.ctx, "connecting", map[string]string{"username": name}); err != nil {
		return true // the connection ended: recorded as Ended
	}
	// A refusal (any event but the chat events) is an answer, but a
	// connected may still follow an unrelated extra event: after one the
	// wait goes on for half its bound, not the whole of it (a crowd of
	// refused usernames would otherwise cost the full bound each); a
	// report naming the event ("event": "connecting") ends it at once.
	refusedAt := -1
	var refusedSeen time.Time
	grace := ru.bound() / 2
	accepted := false
	ru.wait(ru.bound(), func() bool {
		for k, ev := range c.Events[from:] {
			if ev.Name == "connected" {
				accepted = true
				return true
			}
			if !isChatEvent(ev.Name) && refusedAt < 0 {
				refusedAt, refusedSeen = from+k, time.Now()
			}
			if !isChatEvent(ev.Name) && ev.About == "connecting" {
				refusedAt = from + k
				return true // a report that names the join: the answer
			}
		}
		return refusedAt >= 0 && time.Since(refusedSeen) >= grace
	})
	ok := accepted
	ru.mu.Lock()
	switch {
	case ok:
		c.Join = JoinAccepted
	case refusedAt >= 0:
		c.Join = JoinRefused
	}
	ended := c.Ended != ""
	ru.mu.Unlock()
	if !ok && refusedAt < 0 && !ended {
		return false // JOIN-1: neither connected nor a refusal
	}
	return ru.awaitOwed(i, ru.bound())
}

// awaitOwed waits for the events operation i owes.
func (ru *run) awaitOwed(i int, bound time.Duration) bool {
	ru.mu.Lock()
	owed := OwedBy(ru.trace, i)
	ru.mu.Unlock()
	if len(owed) == 0 {
		return true
	}
	m := newModelQuiet(ru.trace)
	return ru.wait(bound, func() bool {
		for _, o := range owed {
			c := &ru.trace.Clients[o.Client]
			if c.Ended != "" {
				continue
			}
			found := false
			for k := len(c.Events) - 1; k >= 0 && c.Events[k].Window >= i; k-- {
				ev := c.Events[k]
				if ev.Name == o.Name && ev.Window == i && equalStrings(m.oursQuiet(ev.Users), o.Users) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	})
}

func newModelQuiet(t *Trace) *model {
	m := &model{t: t, names: map[string]int{}}
	for u := range t.Scenario.Users {
		m.names[t.Scenario.Username(u, t.Nonce)] = u
	}
	return m
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (ru *run) enqueue(ci int, req writeReq) {
	w := ru.writers[ci]
	if w == nil {
		w = &writer{q: make(chan writeReq, 1<<14)}
		ru.writers[ci] = w
		ru.wg.Add(1)
		go ru.writeLoop(ci, w)
	}
	w.pending.Add(1)
	w.q <- req
}

// writeLoop emits one socket's writes in order, one at a time, paced.
func (ru *run) writeLoop(ci int, w *writer) {
	defer ru.wg.Done()
	t := ru.trace
	for {
		var req writeReq
		select {
		case req = <-w.q:
		case <-ru.ctx.Done():
			return
		}
		ru.mu.Lock()
		id := ru.nextID
		ru.nextID++
		text := fmt.Sprintf("~%s-w%d~ %s", t.Nonce, id, req.text)
		c := &t.Clients[ci]
		c.Writes = append(c.Writes, Write{Op: req.op, ID: id, Text: text, Claim: req.claim, Forge: req.forge, Sent: time.Now()})
		wi := len(c.Writes) - 1
		ru.mu.Unlock()
		payload := map[string]string{"message": text, "username": req.claim}
		err := ru.conns[ci].EmitWithAckFunc(ru.ctx, func(raw json.RawMessage, err error) {
			ru.mu.Lock()
			defer ru.mu.Unlock()
			if err == nil && !ru.frozen {
				c.Writes[wi].Ack = classifyAck(raw)
				ru.wake()
			}
		}, "writeMessage", payload)
		_ = err // a failed send shows as a write never delivered, judged only on a live socket
		w.pending.Add(-1)
		ru.mu.Lock()
		ru.wake()
		ru.mu.Unlock()
		sleep(ru.ctx, ru.r.Pace)
	}
}

// classifyAck: {"ok": true} accepts; any other answer is a report of a
// refusal, in whatever format (ERR-1 leaves it open).
func classifyAck(raw json.RawMessage) Ack {
	var args []map[string]json.RawMessage
	if json.Unmarshal(raw, &args) == nil && len(args) > 0 && string(bytes.TrimSpace(args[0]["ok"])) == "true" {
		return AckOK
	}
	return AckRefused
}

// drain waits until socket ci's writes were all emitted and each was
// delivered back to it or refused.
func (ru *run) drain(ci int) {
	w := ru.writers[ci]
	if w == nil {
		return
	}
	c := &ru.trace.Clients[ci]
	ru.wait(ru.bound()+time.Duration(w.pending.Load())*ru.r.Pace, func() bool {
		if w.pending.Load() > 0 {
			return false
		}
		return unresolved(ru.trace, ci) == 0 || c.Ended != ""
	})
}

// unresolved counts socket ci's writes neither listed back to it nor
// refused by ack.
func unresolved(t *Trace, ci int) int {
	c := &t.Clients[ci]
	seen := map[int]bool{}
	for _, ev := range c.Events {
		for _, e := range ev.Msgs {
			if id, ok := tagID(t.Nonce, e.Message); ok {
				seen[id] = true
			}
		}
	}
	n := 0
	for _, w := range c.Writes {
		if !seen[w.ID] && w.Ack != AckRefused && !w.Forge && !w.Bad {
			n++
		}
	}
	errs := 0
	for _, ev := range c.Events {
		if !isChatEvent(ev.Name) {
			errs++
		}
	}
	return max(0, n-errs)
}

// tagID extracts a message tag's number ("~nonce-w12~").
func tagID(nonce, text string) (int, bool) {
	p := "~" + nonce + "-w"
	if len(text) < len(p) || text[:len(p)] != p {
		return 0, false
	}
	n := 0
	k := len(p)
	for ; k < len(text) && text[k] >= '0' && text[k] <= '9'; k++ {
		n = n*10 + int(text[k]-'0')
	}
	if k == len(p) || k >= len(text) || text[k] != '~' {
		return 0, false
	}
	return n, true
}

func (ru *run) leave(i int, op Op) bool {
	t := ru.trace
	ci := op.C
	ru.drain(ci)
	ru.mu.Lock()
	c := &t.Clients[ci]
	user := c.User
	joined := c.Join == JoinAccepted
	holders := 0
	for k := range t.Clients {
		o := &t.Clients[k]
		if o.Join == JoinAccepted && o.User == user && o.LeftOp < 0 {
			holders++
		}
	}
	deadline, zombie := ru.zombies[user]
	ru.mu.Unlock()
	if joined && holders == 1 && zombie {
		// A replaced session of this username must have timed out before
		// its last socket leaves, or the model could not know the list.
		sleep(ru.ctx, time.Until(deadline))
		delete(ru.zombies, user)
	}
	ru.window.Store(int64(i))
	ru.local[ci].Store(true)
	conn := ru.conns[ci]
	bound := ru.bound()
	switch op.Kind {
	case OpClose:
		_ = conn.Close()
	case OpDrop:
		_ = conn.Abort()
		bound += ru.hb.Sum() // over polling the server notices at its ping timeout
	case OpSilence:
		conn.Silence()
		bound += 2 * ru.hb.Sum()
	}
	ru.mu.Lock()
	c.LeftOp = i
	ru.mu.Unlock()
	if op.Kind == OpSilence {
		switch {
		case op.NoWait && joined:
			// Generous: if the replaced session were still alive when
			// the username's last socket leaves, the list would differ
			// from the model's for a correct server.
			ru.zombies[user] = time.Now().Add(2*ru.hb.Sum() + 2*time.Second)
		case joined && holders > 1:
			// Nothing is owed; let the server's timeout pass so that a
			// server that wrongly removes the username shows it (a
			// shorter wait could only miss a defect, never invent one).
			sleep(ru.ctx, ru.hb.Sum()+500*time.Millisecond)
		}
	}
	return ru.awaitOwed(i, bound)
}

// bad sends one kind of bad input on an unjoined socket (ROB-2: no state
// change may follow).
func (ru *run) bad(i int, op Op) {
	t := ru.trace
	conn := ru.conns[op.C]
	switch op.Variant {
	case "null-connecting":
		_ = conn.Emit(ru.ctx, "connecting", nil)
	case "number-username":
		_ = conn.Emit(ru.ctx, "connecting", map[string]any{"username": 42})
	case "unjoined-write", "number-claim":
		ru.mu.Lock()
		id := ru.nextID
		ru.nextID++
		text := fmt.Sprintf("~%s-w%d~ bad input", t.Nonce, id)
		c := &t.Clients[op.C]
		c.Writes = append(c.Writes, Write{Op: i, ID: id, Text: text, Bad: true, Sent: time.Now()})
		ru.mu.Unlock()
		var claim any = "nobody~" + t.Nonce
		if op.Variant == "number-claim" {
			claim = 42
		}
		_ = conn.Emit(ru.ctx, "writeMessage", map[string]any{"message": text, "username": claim})
	default:
		_ = conn.SendRaw(ru.ctx, `2["writeMessage",{"message":{"__proto__":{"x":1}}}]`)
	}
}

// settle waits, after the last operation, until every write was emitted and
// delivered to every live joined socket or refused.
func (ru *run) settle() {
	for ci, w := range ru.writers {
		if w != nil && ru.conns[ci] != nil {
			ru.drain(ci)
		}
	}
	ru.wait(ru.bound(), func() bool { return undelivered(ru.trace) == 0 })
}

// undelivered counts (socket, message) pairs still owed: messages some
// socket received, not yet listed to a live joined socket that joined
// before they were written.
func undelivered(t *Trace) int {
	accepted := map[int]time.Time{}
	for ci := range t.Clients {
		for _, w := range t.Clients[ci].Writes {
			if !w.Forge && !w.Bad {
				accepted[w.ID] = w.Sent
			}
		}
	}
	listed := map[int]bool{}
	for ci := range t.Clients {
		for _, ev := range t.Clients[ci].Events {
			for _, e := range ev.Msgs {
				if id, ok := tagID(t.Nonce, e.Message); ok {
					listed[id] = true
				}
			}
		}
	}
	n := 0
	for ci := range t.Clients {
		c := &t.Clients[ci]
		if c.Join != JoinAccepted || c.LeftOp >= 0 || c.Ended != "" {
			continue
		}
		var joinedAt time.Time
		mine := map[int]bool{}
		for _, ev := range c.Events {
			if ev.Name == "connected" && joinedAt.IsZero() {
				joinedAt = ev.At
			}
			for _, e := range ev.Msgs {
				if id, ok := tagID(t.Nonce, e.Message); ok {
					mine[id] = true
				}
			}
		}
		for id, sent := range accepted {
			if listed[id] && !mine[id] && sent.After(joinedAt) {
				n++
			}
		}
	}
	return n
}

func (ru *run) teardown() {
	ru.mu.Lock()
	if ru.frozen {
		ru.mu.Unlock()
		return
	}
	ru.frozen = true
	conns := ru.conns
	ru.mu.Unlock()
	var wg sync.WaitGroup
	for ci, c := range conns {
		if c == nil {
			continue
		}
		ru.local[ci].Store(true)
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Close() }()
	}
	wg.Wait()
}
