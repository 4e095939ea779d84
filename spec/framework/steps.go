package framework

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
)

// The shared steps of the cases (a join was broadcast, a write was
// processed, a barrier) depend only on what they need, so that a server
// that breaks one requirement fails the case that owns it, not every case
// that takes the step. When a step accepts an event that violates a
// requirement, it says so (Tolerate): the case's report carries a finding,
// and the owning case's failure lists the cases that met the violation.

// Tolerate records that a step of this case accepted a violation of
// requirement req (for example "JOIN-3") so that the case could go on to
// judge its own requirement. The first note per requirement becomes a
// finding of the case; the run keeps them for the owning case's failure
// message.
func (f *Framework) Tolerate(req, note string) {
	if req == "" || note == "" {
		return
	}
	if f.tolerated == nil {
		f.tolerated = map[string]bool{}
	}
	if f.tolerated[req] {
		return
	}
	f.tolerated[req] = true
	f.Finding("tolerated a %s violation (%s judges it): %s", req, req, note)
	f.run.noteTolerated(req, fmt.Sprintf("%s: %s", f.CaseID, note))
}

// maxTolerated bounds the notes a run keeps per requirement.
const maxTolerated = 10

func (r *run) noteTolerated(req, note string) {
	r.shapeMu.Lock()
	defer r.shapeMu.Unlock()
	if r.tolerated == nil {
		r.tolerated = map[string][]string{}
	}
	if len(r.tolerated[req]) < maxTolerated {
		r.tolerated[req] = append(r.tolerated[req], note)
	}
}

// toleratedBy returns the notes other cases of the run recorded for the
// requirement this case owns.
func (f *Framework) toleratedBy() []string {
	base, _, _ := strings.Cut(f.CaseID, "/")
	f.run.shapeMu.Lock()
	defer f.run.shapeMu.Unlock()
	var out []string
	for _, n := range f.run.tolerated[base] {
		if !strings.HasPrefix(n, f.CaseID+":") {
			out = append(out, n)
		}
	}
	return out
}

// graceWindow bounds how long a step waits for the strict form of an event
// after a lenient sign that the server did its part (another client
// received the broadcast), before it concludes that the strict form is not
// coming. Only servers that violate a requirement pay it.
func (f *Framework) graceWindow() time.Duration {
	return max(4*f.run.cfg.QuietWindow, 250*time.Millisecond)
}

// find returns the first unconsumed event at or after from that matches,
// consuming it when consume is set.
func (c *Client) find(from int, match func(Received) bool, consume bool) (Received, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := max(from, 0); i < len(c.records); i++ {
		if !c.records[i].used && match(c.records[i].Received) {
			c.records[i].used = c.records[i].used || consume
			return c.records[i].Received, true
		}
	}
	return Received{}, false
}

// lastConnected returns the latest connected event the client received.
func (c *Client) lastConnected() (Received, bool) {
	evs := c.Events()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Name == "connected" {
			return evs[i], true
		}
	}
	return Received{}, false
}

// waitUntil calls check at once and again whenever one of clients receives
// an event or ends, until check returns true (nil), the timeout passes, or
// the run stops (an error saying which).
//
// Before it says that nothing came, it makes sure the harness was not the
// one behind (see Client.awaitFunc and lag.go): the readers catch up and
// check runs again; a starved wait is extended by the time it lost.
//
// finding, when not nil, reports that; WaitUntil passes nil, since it may
// run on a goroutine of its caller's, where a report entry cannot be added.
func waitUntil(ctx context.Context, r *run, timeout time.Duration, clients []*Client, check func() bool, finding func(string, ...any)) error {
	start := time.Now()
	err := waitUntilDeadline(ctx, r, start.Add(timeout), clients, check)
	if !errors.Is(err, errWaitTimedOut) {
		return err
	}
	stall, limit := catchUpBounds(timeout)
	waited, behind := catchUp(r.ctx, clients, start.Add(timeout), stall, limit)
	lag := r.lag.During(start, time.Now())
	note := lateNote(waited, behind, lag, timeout)
	if check() {
		if note != "" && finding != nil {
			finding("harness behind, not the server: what a wait of %s expected came in time; %s", timeout, note)
		}
		return nil
	}
	if lag*starvedShare > timeout {
		extra := min(lag, timeout)
		if waitUntilDeadline(ctx, r, time.Now().Add(extra), clients, check) == nil {
			if finding != nil {
				finding("harness behind, not the server: what a wait of %s expected came in time; %s; waited %s more", timeout, note, extra)
			}
			return nil
		}
	}
	if note != "" {
		note = " (" + note + ")"
	}
	return fmt.Errorf("none arrived within %s%s", timeout, note)
}

func waitUntilDeadline(ctx context.Context, r *run, deadline time.Time, clients []*Client, check func() bool) error {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for {
		// Take the channels before checking, so that an event arriving
		// during the check wakes the wait.
		cases := []reflect.SelectCase{
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(r.ctx.Done())},
		}
		for _, c := range clients {
			c.mu.Lock()
			ch := c.changed
			c.mu.Unlock()
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
		}
		if check() {
			return nil
		}
		switch chosen, _, _ := reflect.Select(cases); chosen {
		case 0:
			return errWaitTimedOut
		case 1:
			return fmt.Errorf("the run was stopped first")
		}
	}
}

// WaitUntil waits up to timeout until check, called with everything the
// client received so far (in order), returns true; it consumes nothing.
// It reports whether check succeeded.
func (c *Client) WaitUntil(ctx context.Context, timeout time.Duration, check func([]Received) bool) bool {
	return waitUntil(ctx, c.run, timeout, []*Client{c}, func() bool { return check(c.Events()) }, nil) == nil
}

// peers returns the spec's other clients that have joined (received
// connected) and are still connected: the sockets a broadcast reaches.
func (c *Client) peers() []*Client {
	var out []*Client
	for _, p := range c.f.clients {
		if p == c {
			continue
		}
		if ended, _ := p.Ended(); ended {
			continue
		}
		if _, ok := p.lastConnected(); ok {
			out = append(out, p)
		}
	}
	return out
}

// applyTolerated records what the filters tolerated in an accepted event.
func (c *Client) applyTolerated(r Received, filters []Filter) {
	for _, ft := range filters {
		if ft.Tolerated == nil || r.DecodeErr != nil {
			continue
		}
		if req, note := ft.Tolerated(r.Payload); note != "" {
			c.f.Tolerate(req, fmt.Sprintf("%s's %s #%d: %s", c.Role, r.Name, r.Index, note))
		}
	}
}

// AwaitWritten waits until the server has processed this client's write of
// text and broadcast it, and returns the messageWritten that shows it: the
// client's own (MSG-1 says the sender receives it), or, when another
// joined client of the spec received it and the sender's own did not follow
// within a short grace, that client's (not consumed there, and recorded as
// a tolerated MSG-1 violation). Use it where a case needs "the write was
// processed", not "the sender was echoed".
func (c *Client) AwaitWritten(ctx context.Context, text string) Received {
	ginkgo.GinkgoHelper()
	return c.AwaitWrittenMatching(ctx, HasMessage(text))
}

// AwaitWrittenMatching is AwaitWritten for the messageWritten matching
// filter (Mentions, to find a text a server may have rewritten).
func (c *Client) AwaitWrittenMatching(ctx context.Context, filter Filter) Received {
	ginkgo.GinkgoHelper()
	r, _, err := c.awaitWritten(ctx, filter)
	if err != nil {
		c.f.Failf("%v", err)
	}
	return r
}

// awaitWritten implements AwaitWrittenMatching; own says whether the
// returned event is the sender's.
func (c *Client) awaitWritten(ctx context.Context, filter Filter) (r Received, own bool, err error) {
	filters := []Filter{filter}
	match := func(r Received) bool { return matches(r, "messageWritten", filters) }
	peers := c.peers()
	var seenBy *Client
	var seen Received
	werr := waitUntil(ctx, c.run, c.run.cfg.StepTimeout, append([]*Client{c}, peers...), func() bool {
		if _, ok := c.find(0, match, false); ok {
			return true
		}
		// A peer's copy proves the broadcast even if a step consumed it.
		for _, p := range peers {
			if evs := p.Matching(0, -1, "messageWritten", filters...); len(evs) > 0 {
				seenBy, seen = p, evs[0]
				return true
			}
		}
		return false
	}, c.f.Finding)
	if werr != nil {
		return Received{}, false, fmt.Errorf("%s: expected %s (its own, MSG-1, or any other joined client's: %d of them), but %v",
			c, describe("messageWritten", filters), len(peers), werr)
	}
	if r, ok := c.find(0, match, true); ok {
		c.applyTolerated(r, filters)
		return r, true, nil
	}
	// Another client has it: the write was processed. The sender's own
	// copy is normally on its way.
	if r, err := c.await(ctx, c.f.graceWindow(), "messageWritten", filters); err == nil {
		c.applyTolerated(r, filters)
		return r, true, nil
	}
	seenBy.applyTolerated(seen, filters)
	c.f.Tolerate("MSG-1", fmt.Sprintf("%s received %s (#%d) but the sender %s did not, within %s of it",
		seenBy.Role, describe("messageWritten", filters), seen.Index, c.Role, c.f.graceWindow()))
	return seen, false, nil
}

// barrierRole names the fresh client of a join-based barrier, unique in
// the spec.
func (f *Framework) barrierRole() string {
	f.barriers++
	return fmt.Sprintf("barrier%d", f.barriers)
}

// barrier is Barrier that returns an error instead of failing.
func (c *Client) barrier(ctx context.Context) (Received, error) {
	text := c.f.Text("barrier")
	c.Write(ctx, text)
	r, own, err := c.awaitWritten(ctx, HasMessage(text))
	if err != nil {
		return Received{}, fmt.Errorf("barrier: %s wrote %q and nobody received a messageWritten for it (MSG-1), so nothing can be concluded about what it did not receive: %w", c, text, err)
	}
	if own {
		return r, nil
	}
	// The server does not echo the sender (tolerated above as MSG-1's):
	// a join is the next thing the server sends to this client, after
	// everything it sent before.
	b := c.f.Connect(ctx, c.f.barrierRole())
	b.Join(ctx)
	r, err = c.awaitFunc(ctx, c.run.cfg.StepTimeout, fmt.Sprintf("its own messageWritten for %q, or joined listing %q", text, b.User), func(r Received) bool {
		return matches(r, "messageWritten", []Filter{HasMessage(text)}) || matches(r, "joined", []Filter{Listing(b.User)})
	})
	if err != nil {
		return Received{}, fmt.Errorf("barrier: %s did not receive its own messageWritten for %q (MSG-1), nor the joined of a later join (JOIN-3): %w", c, text, err)
	}
	return r, nil
}

// AwaitJoinOf waits for this client's joined broadcast of joiner's join
// and consumes it: the first joined listing joiner's username (JOIN-3
// says it does). A server may send the list from before the join (a
// JOIN-3 violation): when no joined listing joiner comes within a short
// grace, a barrier on this client's stream decides, and the latest joined
// before it whose list is exactly joiner's connected list without joiner
// is taken as the broadcast of that join, recorded as a tolerated JOIN-3
// violation. JOIN-3 itself awaits Listing strictly.
func (c *Client) AwaitJoinOf(ctx context.Context, joiner *Client) Received {
	ginkgo.GinkgoHelper()
	r, err := c.awaitJoinOf(ctx, 0, joiner.Role, joiner.User, joiner.connectedList, c.run.cfg.StepTimeout)
	if err != nil {
		c.f.Failf("%v", err)
	}
	return r
}

// AwaitJoinOfAfter is AwaitJoinOf for a joined at position mark or later:
// for a username that joins again, whose earlier presence other joins'
// broadcasts list too (on a live server, anyone's).
func (c *Client) AwaitJoinOfAfter(ctx context.Context, mark int, joiner *Client) Received {
	ginkgo.GinkgoHelper()
	r, err := c.awaitJoinOf(ctx, mark, joiner.Role, joiner.User, joiner.connectedList, c.run.cfg.StepTimeout)
	if err != nil {
		c.f.Failf("%v", err)
	}
	return r
}

// TryAwaitJoinOf is AwaitJoinOf that returns whether the joined came
// instead of failing; timeout bounds the wait for a joined listing joiner.
func (c *Client) TryAwaitJoinOf(ctx context.Context, timeout time.Duration, joiner *Client) (Received, bool) {
	r, err := c.awaitJoinOf(ctx, 0, joiner.Role, joiner.User, joiner.connectedList, timeout)
	return r, err == nil
}

// AwaitJoinOfUser is AwaitJoinOfAfter for a joiner that is not a Client of
// the framework (the stock client): role names it, user is its username and
// connected the user list of the connected event it received.
func (c *Client) AwaitJoinOfUser(ctx context.Context, mark int, role, user string, connected []string) Received {
	ginkgo.GinkgoHelper()
	list := func(context.Context) ([]string, error) { return connected, nil }
	r, err := c.awaitJoinOf(ctx, mark, role, user, list, c.run.cfg.StepTimeout)
	if err != nil {
		c.f.Failf("%v", err)
	}
	return r
}

// connectedList waits (up to the step timeout) for the client's connected
// and returns its user list; a client that joined by hand (Emit) may not
// have it yet.
func (c *Client) connectedList(ctx context.Context) ([]string, error) {
	var conn Received
	err := waitUntil(ctx, c.run, c.run.cfg.StepTimeout, []*Client{c}, func() bool {
		var ok bool
		conn, ok = c.lastConnected()
		return ok
	}, c.f.Finding)
	if err != nil {
		return nil, fmt.Errorf("%s never received connected either", c.Role)
	}
	return conn.Payload.Usernames(), nil
}

func (c *Client) awaitJoinOf(ctx context.Context, from int, role, user string, connected func(context.Context) ([]string, error), timeout time.Duration) (Received, error) {
	strict := []Filter{Listing(user)}
	isStrict := func(r Received) bool { return r.Index >= from && matches(r, "joined", strict) }
	what := describe("joined", strict)
	if from > 0 {
		what += fmt.Sprintf(" at position %d or later", from)
	}
	grace := min(c.f.graceWindow(), timeout)
	if r, err := c.awaitFunc(ctx, grace, what, isStrict); err == nil {
		return r, nil
	}
	fail := func(why string) (Received, error) {
		if r, err := c.awaitFunc(ctx, max(timeout-grace, 0), what, isStrict); err == nil {
			return r, nil
		}
		return Received{}, fmt.Errorf("%s: expected %s (the broadcast of %s's join, JOIN-3), but none arrived within %s; %s",
			c, what, role, timeout, why)
	}
	// The joiner's connected says what the list from before its join holds.
	list, err := connected(ctx)
	if err != nil {
		return fail(err.Error())
	}
	barrier, err := c.barrier(ctx)
	if err != nil {
		return fail(err.Error())
	}
	if r, ok := c.find(from, func(r Received) bool { return r.Index < barrier.Index && isStrict(r) }, true); ok {
		return r, nil
	}
	stale := UserListEquals(slices.DeleteFunc(slices.Clone(list), func(u string) bool { return u == user }))
	// The latest such joined: earlier ones are earlier joins' broadcasts.
	found, ok := Received{}, false
	for _, r := range c.Events() {
		if r.Index >= from && r.Index < barrier.Index && matches(r, "joined", []Filter{stale}) {
			found, ok = r, true
		}
	}
	if ok {
		// Consume it, unless another step took it already.
		_, ok = c.find(found.Index, func(r Received) bool { return r.Index == found.Index }, true)
	}
	if !ok {
		return fail(fmt.Sprintf("nor, before the barrier event #%d, an unconsumed joined %s (the list from before the join)", barrier.Index, stale.Desc))
	}
	c.f.Tolerate("JOIN-3", fmt.Sprintf("%s's joined #%d for %s's join lists %q, without %q (the list from before the join)",
		c.Role, found.Index, role, found.Payload.Usernames(), user))
	return found, nil
}
