package explore

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file is the executable model whole (about 870 lines): one reading of
// CONTRACT.md, section by section, kept together so that what it permits can
// be checked against the contract in one place. Its inputs (scenario.go) and
// the runner that records traces (runner.go) are separate.

// This file is the executable model of spec/CONTRACT.md: Check takes what a
// run did and what every client received (a Trace) and returns every
// violation. It is pure, so unit tests build traces by hand.
//
// How the model stays exact without knowing the server's timing:
//
//   - Presence operations (join, close, drop, silence) run one at a time,
//     and the runner waits for the events each one owes before the next.
//     So the list of this run's users is known after each operation
//     (Truth). An event's window is the index of the last operation that
//     had started when it arrived. A user list may show the state after
//     any operation up to its window, but never an older one than the
//     previous list on the same socket showed: a server emits one socket's
//     events in the order of its state changes. The events an operation
//     owes (joined, disconnected) must show the state right after it.
//   - Writes are concurrent: the server may order them as it likes, so the
//     one order is read from what receivers saw (every list of every
//     client must agree on one order, and a list is a contiguous window
//     of it), not from send times. Send times only add what causality
//     proves: a message written after another one's echo had arrived
//     comes after it, and one socket's writes keep their order.
//   - Only this run's users and messages are judged (their tags carry the
//     run's nonce): other people's entries on a live server are ignored,
//     except that they count towards a list's length (the history cap).
//   - What CONTRACT.md §8 leaves open is accepted: extra fields and events,
//     joined/messageWritten to unjoined sockets, any cap of at least 50
//     (the same for every list), any refusal that is reported (an ack
//     that is not {"ok": true}, or any event other than the chat events).

// Event is one server event a client received, decoded.
type Event struct {
	Name string
	// Window is the index of the last operation started when the event
	// arrived (-1: before the first).
	Window int
	At     time.Time
	// Users is connectedUserList (connected, joined, disconnected).
	Users []string
	// Msgs is messagesList (connected, messageWritten).
	Msgs []Msg
	// Malformed says why the payload breaks PAY-1 ("" when it does not).
	Malformed string
	// About is, for an event outside the chat events, the "event" its
	// first argument names (a refusal report's), "" when none.
	About string
}

// Msg is one entry of a messagesList.
type Msg struct {
	Username string
	Message  string
}

// Ack is what the server answered to a write's acknowledgement request.
type Ack int

// The acknowledgement outcomes.
const (
	AckNone    Ack = iota // no ack (the server does not ack, or the wait ended)
	AckOK                 // {"ok": true}
	AckRefused            // any other answer: a report (ERR-1 leaves the format open)
)

// Write is one writeMessage a client emitted.
type Write struct {
	Op    int
	ID    int    // the tag's number
	Text  string // exactly as sent
	Claim string // the username field as sent
	Forge bool
	Bad   bool // bad input carrying a tagged text
	Sent  time.Time
	Ack   Ack
}

// JoinOutcome is how a join ended.
type JoinOutcome int

// The join outcomes.
const (
	JoinNone     JoinOutcome = iota // no connected, no refusal
	JoinAccepted                    // connected arrived
	JoinRefused                     // a refusal arrived (JOIN-5 allows it)
)

// Client is one socket's part of a trace.
type Client struct {
	Transport string
	// DialErr is set when the socket could not connect; the scenario's
	// operations on it were skipped (the fixed cases judge transports).
	DialErr string
	// User is the scenario user it joined as (-1: never asked to join).
	User     int
	JoinOp   int
	JoinSent time.Time
	Join     JoinOutcome
	// LeftOp is the operation that closed, dropped or silenced it (-1:
	// alive at the end).
	LeftOp int
	// Ended says why the connection ended when the run did not end it
	// (the server closed it): the run is disturbed from Window EndedWindow.
	Ended       string
	EndedWindow int
	Writes      []Write
	Events      []Event
}

// Trace is everything one run did and received.
type Trace struct {
	Scenario Scenario
	Nonce    string
	Clients  []Client
	// Skipped marks operations the runner could not perform (their client
	// failed to connect).
	Skipped []bool
	// Stall is the longest time the harness could not run during the run
	// (spec/lag), or a socket's heartbeat was late (its HeartbeatLag),
	// whichever is longer: a stall near the server's ping timeout may
	// have made the server rightly drop a socket whose pong came late.
	Stall time.Duration
}

// Violation is one breach of CONTRACT.md.
type Violation struct {
	ID     string // contract ID
	Client int    // -1: not one client's
	Window int    // operation index the evidence belongs to (-1: none)
	Detail string
}

func (v Violation) String() string {
	where := ""
	if v.Client >= 0 {
		where = fmt.Sprintf(" c%d", v.Client)
	}
	if v.Window >= 0 {
		where += fmt.Sprintf(" after op %d", v.Window)
	}
	return fmt.Sprintf("%s%s: %s", v.ID, where, v.Detail)
}

// MinCap is the smallest history cap HIST-4 accepts.
const MinCap = 50

// truths returns the list of this run's usernames after each operation:
// truths[i+1] after operation i, truths[0] before any.
func truths(t *Trace) [][]string {
	out := make([][]string, 1, len(t.Scenario.Ops)+1)
	out[0] = nil
	var order []string
	holders := map[string]int{}
	zombies := map[string]int{}
	holding := map[int]string{} // client -> username it holds
	for i, op := range t.Scenario.Ops {
		if !t.skipped(i) {
			switch op.Kind {
			case OpJoin:
				if op.C < len(t.Clients) && t.Clients[op.C].Join == JoinAccepted {
					name := t.Scenario.Username(op.User, t.Nonce)
					if holders[name]+zombies[name] == 0 {
						order = append(order, name)
					}
					holders[name]++
					holding[op.C] = name
				}
			case OpClose, OpDrop, OpSilence:
				name, ok := holding[op.C]
				if !ok {
					break
				}
				delete(holding, op.C)
				holders[name]--
				// The runner waited out the ping timeout of every
				// replaced session before this leave: zombies are gone.
				zombies[name] = 0
				if op.Kind == OpSilence && op.NoWait {
					zombies[name]++
				}
				if holders[name]+zombies[name] == 0 {
					order = slices.DeleteFunc(order, func(u string) bool { return u == name })
				}
			}
		}
		out = append(out, slices.Clone(order))
	}
	return out
}

func (t *Trace) skipped(i int) bool { return i < len(t.Skipped) && t.Skipped[i] }

// Owed is one event an operation owes a client.
type Owed struct {
	Client int
	Name   string
	Users  []string
}

// OwedBy returns the events operation i owes (the runner waits for them;
// Check requires them): a joined to every other joined, live socket for an
// accepted join, and a disconnected without the username to each of them
// when the last socket holding a username leaves.
func OwedBy(t *Trace, i int) []Owed {
	if t.skipped(i) {
		return nil
	}
	tr := truths(t)
	op := t.Scenario.Ops[i]
	var name string
	switch op.Kind {
	case OpJoin:
		if t.Clients[op.C].Join != JoinAccepted {
			return nil
		}
		name = "joined"
	case OpClose, OpDrop, OpSilence:
		c := t.Clients[op.C]
		if c.Join != JoinAccepted || len(tr[i+1]) == len(tr[i]) {
			return nil // not joined, or another socket still holds it
		}
		name = "disconnected"
	default:
		return nil
	}
	var out []Owed
	for ci := range t.Clients {
		c := &t.Clients[ci]
		if ci == op.C || c.Join != JoinAccepted || c.JoinOp >= i || (c.LeftOp >= 0 && c.LeftOp <= i) {
			continue
		}
		if c.Ended != "" && c.EndedWindow <= i {
			continue
		}
		out = append(out, Owed{Client: ci, Name: name, Users: tr[i+1]})
	}
	return out
}

// Check returns every violation the trace shows, in a stable order.
func Check(t *Trace) []Violation {
	m := newModel(t)
	m.checkPresence()
	m.checkMessages()
	sort.SliceStable(m.out, func(i, j int) bool { return m.out[i].Window < m.out[j].Window })
	return m.out
}

type model struct {
	t      *Trace
	truth  [][]string
	names  map[string]int // full username -> user index
	tagRe  *regexp.Regexp
	writes map[int]*wref // tag number -> write
	// echo is when each message was first listed to its sender.
	echo    map[int]time.Time
	echoWin map[int]int // the window in which the sender first saw it
	out     []Violation
	perID   map[string]int
	// disturbed is the first window from which presence is no longer
	// known (a server ended a socket the run did not end).
	disturbed int
}

type wref struct {
	c int
	w *Write
}

func newModel(t *Trace) *model {
	m := &model{t: t, truth: truths(t), names: map[string]int{}, writes: map[int]*wref{}, echo: map[int]time.Time{}, echoWin: map[int]int{}, disturbed: len(t.Scenario.Ops) + 1}
	for u := range t.Scenario.Users {
		m.names[t.Scenario.Username(u, t.Nonce)] = u
	}
	m.tagRe = regexp.MustCompile(`~` + regexp.QuoteMeta(t.Nonce) + `-[0-9]+`)
	for ci := range t.Clients {
		c := &t.Clients[ci]
		for wi := range c.Writes {
			m.writes[c.Writes[wi].ID] = &wref{c: ci, w: &c.Writes[wi]}
		}
		if c.Ended != "" && c.EndedWindow < m.disturbed {
			m.disturbed = c.EndedWindow
		}
	}
	return m
}

// maxPerID bounds the violations kept per contract ID: one defect repeats
// in every list, and a report needs a few examples, not all.
const maxPerID = 5

func (m *model) fail(id string, client, window int, format string, args ...any) {
	if m.perID == nil {
		m.perID = map[string]int{}
	}
	m.perID[id]++
	if m.perID[id] > maxPerID {
		return
	}
	m.out = append(m.out, Violation{ID: id, Client: client, Window: window, Detail: fmt.Sprintf(format, args...)})
}

// ours returns this run's usernames in a list, in order, and reports
// duplicates (USER-1) and rewritten usernames (PAY-3).
func (m *model) ours(ci int, ev *Event) []string {
	var out []string
	seen := map[string]bool{}
	for _, u := range ev.Users {
		if _, ok := m.names[u]; !ok {
			if m.tagRe.MatchString(u) {
				m.fail("PAY-3", ci, ev.Window, "%s lists %s, a username of this run rewritten (no socket joined with exactly that string)", ev.Name, strconv.QuoteToASCII(u))
			}
			continue
		}
		if seen[u] {
			m.fail("USER-1", ci, ev.Window, "%s lists %q twice: %s", ev.Name, u, quoteList(ev.Users))
			continue
		}
		seen[u] = true
		out = append(out, u)
	}
	return out
}

func (m *model) checkPresence() {
	t := m.t
	for ci := range t.Clients {
		c := &t.Clients[ci]
		last := 0 // index into truth of the newest state this socket saw
		connected := 0
		for ei := range c.Events {
			ev := &c.Events[ei]
			if ev.Malformed != "" {
				m.fail("PAY-1", ci, ev.Window, "%s: %s", ev.Name, ev.Malformed)
				continue
			}
			if ev.Name == "connected" {
				connected++
				if connected == 2 {
					m.fail("JOIN-1", ci, ev.Window, "a second connected arrived on one socket (one join)")
				}
			}
			if ev.Name != "connected" && ev.Name != "joined" && ev.Name != "disconnected" {
				continue
			}
			users := m.ours(ci, ev)
			if ev.Window >= m.disturbed {
				continue
			}
			if ev.Name == "connected" && connected == 1 && c.JoinOp >= 0 && c.JoinOp+1 < len(m.truth) {
				// The joiner's own connected shows the state right after
				// its join (JOIN-2): itself listed, in join order.
				want := m.truth[c.JoinOp+1]
				if !slices.Equal(users, want) {
					id := "USER-2"
					if name := t.Scenario.Username(c.User, t.Nonce); !slices.Contains(users, name) {
						id = "JOIN-2"
					} else if len(users) != len(want) {
						id = m.explainList(ev, users, c.JoinOp+1, c.JoinOp+1)
					}
					m.fail(id, ci, ev.Window, "connected lists this run's users as %s; right after this join they are %s", quoteList(users), quoteList(want))
					last = max(last, c.JoinOp+1)
					continue
				}
			}
			hi := ev.Window + 1
			j := -1
			for k := last; k <= hi && k < len(m.truth); k++ {
				if slices.Equal(m.truth[k], users) {
					j = k
					break
				}
			}
			if j >= 0 {
				last = j
				continue
			}
			m.fail(m.explainList(ev, users, last, hi), ci, ev.Window, "%s lists this run's users as %s; the contract allows %s",
				ev.Name, quoteList(users), m.allowed(last, hi))
		}
		if c.Join == JoinAccepted && connected == 0 {
			m.fail("JOIN-1", ci, c.JoinOp, "join accepted but no connected event recorded")
		}
		if c.Join == JoinNone && c.User >= 0 && c.JoinOp >= 0 && !t.skipped(c.JoinOp) && c.JoinOp < m.disturbed && (c.Ended == "" || c.EndedWindow > c.JoinOp) {
			m.fail("JOIN-1", ci, c.JoinOp, "connecting got neither connected nor a refusal")
		}
	}
	// Owed events.
	for i := range t.Scenario.Ops {
		if i >= m.disturbed {
			break
		}
		for _, o := range OwedBy(t, i) {
			// The owed event is the first of its name after the operation
			// started; a loaded harness may read it only in a later
			// window, which proves nothing against the server.
			// Other events of the same name may come first (a server may
			// send disconnected for every socket that leaves, USER-5):
			// any one that shows the state right after the operation is
			// the owed one.
			found := false
			for _, ev := range t.Clients[o.Client].Events {
				if ev.Name == o.Name && ev.Window >= i && ev.Malformed == "" && slices.Equal(m.oursQuiet(ev.Users), o.Users) {
					found = true
					break
				}
			}
			if found {
				continue
			}
			id, what := "JOIN-3", "the join of "+m.t.Scenario.Describe(t.Scenario.Ops[i])
			if o.Name == "disconnected" {
				id, what = "USER-3", "the last socket of its username leaving ("+m.t.Scenario.Describe(t.Scenario.Ops[i])+")"
			}
			if got, ok := m.eventIn(o.Client, o.Name, i); ok {
				if sameSet(got, o.Users) {
					id = "USER-2"
				}
				m.fail(id, o.Client, i, "the %s for %s lists %s; right after it the list is %s", o.Name, what, quoteList(got), quoteList(o.Users))
				continue
			}
			m.fail(id, o.Client, i, "no %s listing %s arrived for %s", o.Name, quoteList(o.Users), what)
		}
	}
}

// eventIn returns this run's users in the first event called name that
// client c received in window.
func (m *model) eventIn(c int, name string, window int) ([]string, bool) {
	for _, ev := range m.t.Clients[c].Events {
		if ev.Name == name && ev.Window == window && ev.Malformed == "" {
			return m.oursQuiet(ev.Users), true
		}
	}
	return nil, false
}

func sameSet(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(s string) bool { return !slices.Contains(b, s) })
}

func (m *model) oursQuiet(list []string) []string {
	var out []string
	for _, u := range list {
		if _, ok := m.names[u]; ok && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

// explainList picks the requirement a wrong list breaks.
func (m *model) explainList(ev *Event, users []string, lo, hi int) string {
	want := m.truth[min(hi, len(m.truth)-1)]
	for _, u := range users {
		if !slices.Contains(want, u) && !slices.ContainsFunc(m.truth[lo:hi+1], func(tr []string) bool { return slices.Contains(tr, u) }) {
			return "USER-3" // listed after leaving
		}
	}
	for _, u := range want {
		if slices.Contains(users, u) {
			continue
		}
		if m.everMultiHeld(u) {
			return "USER-4"
		}
		if ev.Name == "connected" {
			return "JOIN-2"
		}
		return "JOIN-3"
	}
	return "USER-2"
}

// everMultiHeld reports whether two sockets ever held name at once, or a
// replaced (silenced) session held it.
func (m *model) everMultiHeld(name string) bool {
	n := 0
	for _, op := range m.t.Scenario.Ops {
		if op.Kind == OpJoin && m.t.Scenario.Username(op.User, m.t.Nonce) == name {
			n++
		}
	}
	return n > 1
}

func (m *model) allowed(lo, hi int) string {
	var opts []string
	for k := lo; k <= hi && k < len(m.truth); k++ {
		s := quoteList(m.truth[k])
		if !slices.Contains(opts, s) {
			opts = append(opts, s)
		}
	}
	return strings.Join(opts, " or ")
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// listRef is one messagesList seen by one client.
type listRef struct {
	c, e int
	ids  []int // this run's messages, in list order
	n    int   // total entries, other people's included
}

func (m *model) checkMessages() {
	t := m.t
	var lists []listRef
	// Entries: exact text and attribution, and the tags each list holds.
	for ci := range t.Clients {
		for ei := range t.Clients[ci].Events {
			ev := &t.Clients[ci].Events[ei]
			if ev.Malformed != "" || (ev.Name != "connected" && ev.Name != "messageWritten") {
				continue
			}
			l := listRef{c: ci, e: ei, n: len(ev.Msgs)}
			seen := map[int]bool{}
			for _, e := range ev.Msgs {
				id, ok := m.entry(ci, ev, e)
				if !ok {
					continue
				}
				if seen[id] {
					m.fail("HIST-2", ci, ev.Window, "%s lists message w%d twice", ev.Name, id)
					continue
				}
				seen[id] = true
				l.ids = append(l.ids, id)
			}
			lists = append(lists, l)
		}
	}
	// The one order, merged from every list.
	order := []int{}
	pos := map[int]int{}
	reindex := func() {
		for i, id := range order {
			pos[id] = i
		}
	}
	for _, l := range lists {
		prev := -1
		for k, id := range l.ids {
			if p, ok := pos[id]; ok {
				if p < prev {
					ev := &t.Clients[l.c].Events[l.e]
					m.fail("HIST-1", l.c, ev.Window, "%s lists w%d after w%d; another list has them the other way round", ev.Name, id, order[prev])
				}
				prev = max(prev, p)
				continue
			}
			// A new message goes right before the next known one.
			at := len(order)
			for _, nid := range l.ids[k+1:] {
				if p, ok := pos[nid]; ok {
					at = p
					break
				}
			}
			order = slices.Insert(order, at, id)
			reindex()
			prev = at
		}
	}
	// Contiguity (nothing in between lost) and the cap (a capped list is
	// a suffix: only older messages are missing, from lists of one length
	// of at least MinCap).
	if m.perID["HIST-1"] > 0 {
		return // without one order, what is missing from a list is unknown
	}
	maxLen, capLen := 0, -1
	capWhere := listRef{}
	for _, l := range lists {
		maxLen = max(maxLen, l.n)
		if len(l.ids) == 0 {
			continue
		}
		ev := &t.Clients[l.c].Events[l.e]
		in := map[int]bool{}
		for _, id := range l.ids {
			in[id] = true
		}
		lo, hi := pos[l.ids[0]], pos[l.ids[len(l.ids)-1]]
		if lo > hi {
			continue // HIST-1 already
		}
		for p := lo; p <= hi; p++ {
			if !in[order[p]] {
				m.fail("HIST-2", l.c, ev.Window, "%s lists w%d and w%d but not w%d, which lies between them in the one order", ev.Name, order[lo], order[hi], order[p])
				break
			}
		}
		if lo > 0 { // older messages are missing: a capped list
			if l.n < MinCap {
				m.fail("HIST-4", l.c, ev.Window, "%s drops w%d and older with only %d entries (a cap must keep at least %d)", ev.Name, order[lo-1], l.n, MinCap)
			}
			if capLen < 0 || l.n < capLen {
				capLen, capWhere = l.n, l
			}
		}
	}
	if capLen >= 0 && capLen < maxLen {
		ev := &t.Clients[capWhere.c].Events[capWhere.e]
		m.fail("HIST-4", capWhere.c, ev.Window, "%s is capped at %d entries while another list had %d: one history, one cap", ev.Name, capLen, maxLen)
	}
	m.checkCausal(order, pos)
	m.checkDelivery(lists, pos)
}

// entry judges one messagesList entry and returns its tag number when it
// is one of this run's messages.
func (m *model) entry(ci int, ev *Event, e Msg) (int, bool) {
	id, ok := tagID(m.t.Nonce, e.Message)
	if !ok {
		if _, swapped := tagID(m.t.Nonce, e.Username); swapped {
			m.fail("MSG-2", ci, ev.Window, "%s has a message text of this run in the username field: {username: %q, message: %q}", ev.Name, clipS(e.Username), clipS(e.Message))
		}
		return 0, false
	}
	w, ok := m.writes[id]
	if !ok {
		return 0, false
	}
	if w.w.Bad {
		m.fail("ROB-2", ci, ev.Window, "%s lists a message from bad input: %q", ev.Name, clipS(e.Message))
		return id, true
	}
	if e.Message != w.w.Text {
		m.fail("PAY-3", ci, ev.Window, "message w%d came back rewritten: sent %s, got %s", id, clipQ(w.w.Text), clipQ(e.Message))
	}
	own := m.t.Scenario.Username(m.t.Clients[w.c].User, m.t.Nonce)
	switch {
	case e.Username == own:
	case w.w.Forge && e.Username == w.w.Claim:
		m.fail("SEC-1", ci, ev.Window, "message w%d is attributed to %q, which its socket (joined as %q) does not hold", id, e.Username, own)
	case strings.EqualFold(e.Username, own) || m.tagRe.FindString(e.Username) == m.tagRe.FindString(own):
		m.fail("PAY-3", ci, ev.Window, "message w%d's username came back rewritten: sent %s, got %s", id, strconv.QuoteToASCII(own), strconv.QuoteToASCII(e.Username))
	default:
		m.fail("MSG-2", ci, ev.Window, "message w%d is attributed to %q, not its sender %q", id, e.Username, own)
	}
	return id, true
}

// checkCausal: one socket's writes keep their order (HIST-1), and a message
// written after another's echo had arrived comes after it.
func (m *model) checkCausal(order []int, pos map[int]int) {
	t := m.t
	echo := m.echo
	for ci := range t.Clients {
		c := &t.Clients[ci]
		mine := map[int]bool{}
		for _, w := range c.Writes {
			mine[w.ID] = true
		}
		for _, ev := range c.Events {
			for _, e := range ev.Msgs {
				if id, ok := tagID(t.Nonce, e.Message); ok {
					if _, seen := echo[id]; !seen && mine[id] {
						echo[id] = ev.At
						m.echoWin[id] = ev.Window
					}
				}
			}
		}
		prev := -1
		for _, w := range c.Writes {
			p, ok := pos[w.ID]
			if !ok {
				continue
			}
			if p < prev {
				m.fail("HIST-1", ci, w.Op, "w%d and w%d, written in this order on one socket, are listed the other way round", order[prev], w.ID)
			}
			prev = max(prev, p)
		}
	}
	type sent struct {
		id int
		at time.Time
	}
	var all []sent
	for id, w := range m.writes {
		if _, ok := pos[id]; ok {
			all = append(all, sent{id, w.w.Sent})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
	for id, at := range echo {
		// Every message sent after id's echo must come after id.
		k := sort.Search(len(all), func(i int) bool { return all[i].at.After(at) })
		for _, x := range all[k:] {
			if pos[x.id] < pos[id] {
				m.fail("HIST-1", m.writes[x.id].c, m.writes[x.id].w.Op, "w%d was written after w%d had been delivered, but is listed before it", x.id, id)
				return
			}
		}
	}
}

// checkDelivery: every accepted message reaches every joined, live socket
// once, as the last entry of a messageWritten (MSG-1, MSG-2); a write is
// either delivered or refused, never acked and lost (HIST-2); a joiner's
// connected holds every message delivered before it joined (HIST-3).
func (m *model) checkDelivery(lists []listRef, pos map[int]int) {
	t := m.t
	for ci := range t.Clients {
		c := &t.Clients[ci]
		if c.Join != JoinAccepted {
			continue
		}
		var connectedAt time.Time
		connIdx := -1
		lastByID := map[int]int{}
		anywhere := map[int]bool{}
		for ei, ev := range c.Events {
			if ev.Malformed != "" {
				continue
			}
			if ev.Name == "connected" && connIdx < 0 {
				connIdx, connectedAt = ei, ev.At
			}
			for _, e := range ev.Msgs {
				if id, ok := tagID(t.Nonce, e.Message); ok {
					anywhere[id] = true
				}
			}
			if ev.Name != "messageWritten" || connIdx < 0 || len(ev.Msgs) == 0 {
				continue
			}
			lastE := ev.Msgs[len(ev.Msgs)-1]
			if id, ok := tagID(t.Nonce, lastE.Message); ok {
				lastByID[id]++
				if lastByID[id] == 2 {
					m.fail("MSG-1", ci, ev.Window, "a second messageWritten for w%d (one per message)", id)
				}
			}
		}
		if connIdx < 0 {
			continue
		}
		inConnected := map[int]bool{}
		connLast := -1
		for _, e := range c.Events[connIdx].Msgs {
			if id, ok := tagID(t.Nonce, e.Message); ok {
				inConnected[id] = true
				if p, ok := pos[id]; ok {
					connLast = max(connLast, p)
				}
			}
		}
		alive := c.LeftOp < 0 && c.Ended == ""
		for id, wr := range m.writes {
			p, accepted := pos[id]
			if !accepted || wr.w.Forge || wr.w.Bad || inConnected[id] {
				continue
			}
			// Delivered before this socket joined: connected must hold it
			// (or a cap dropped it, judged with the cap above).
			if !c.JoinSent.IsZero() && ci != wr.c {
				if at, ok := m.echo[id]; ok && at.Before(c.JoinSent) {
					if p > connLast && (connLast >= 0 || len(c.Events[connIdx].Msgs) < MinCap) {
						m.fail("HIST-3", ci, c.JoinOp, "connected lacks w%d, delivered before this socket joined", id)
					}
					continue
				}
			}
			if !alive {
				continue
			}
			owed := wr.w.Sent.After(connectedAt) || p > connLast
			if owed && lastByID[id] == 0 {
				if !anywhere[id] && !m.barrier(ci, id, p, pos) {
					continue // nothing proves the server sent anything after it: a slow harness, not a verdict
				}
				if anywhere[id] {
					m.fail("MSG-1", ci, -1, "no messageWritten ended with w%d: it reached this socket only inside later lists", id)
				} else {
					m.fail("MSG-1", ci, -1, "no messageWritten for w%d, which other sockets received", id)
				}
			}
		}
	}
	// Writes that nobody ever saw.
	for ci := range t.Clients {
		c := &t.Clients[ci]
		errs := 0
		for _, ev := range c.Events {
			if !isChatEvent(ev.Name) {
				errs++
			}
		}
		unexplained := 0
		for _, w := range c.Writes {
			if _, ok := pos[w.ID]; ok || w.Forge || w.Bad {
				continue
			}
			switch w.Ack {
			case AckOK:
				m.fail("HIST-2", ci, w.Op, "w%d (%d bytes) was acknowledged {\"ok\": true} but never appeared in any list", w.ID, len(w.Text))
			case AckRefused:
			default:
				if c.LeftOp < 0 && c.Ended == "" {
					unexplained++
					if unexplained > errs {
						m.fail("MSG-1", ci, w.Op, "w%d (%d bytes) was neither delivered to anyone nor refused (no ack, no error event)", w.ID, len(w.Text))
					}
				}
			}
		}
	}
}

// barrier reports whether socket ci received something the server can only
// have sent after message id was in history: a list holding a later message,
// or the state right after a presence change that started once id's sender
// had seen it (CONTRACT.md §9: "does not receive" needs a barrier).
func (m *model) barrier(ci, id, p int, pos map[int]int) bool {
	win, ok := m.echoWin[id]
	for _, ev := range m.t.Clients[ci].Events {
		for _, e := range ev.Msgs {
			if x, ok := tagID(m.t.Nonce, e.Message); ok {
				if q, ok := pos[x]; ok && q > p {
					return true
				}
			}
		}
		if !ok || ev.Window <= win || ev.Window+1 >= len(m.truth) || (ev.Name != "joined" && ev.Name != "disconnected") {
			continue
		}
		j := ev.Window + 1
		if !slices.Equal(m.truth[j], m.truth[j-1]) && slices.Equal(m.oursQuiet(ev.Users), m.truth[j]) {
			return true
		}
	}
	return false
}

func isChatEvent(name string) bool {
	switch name {
	case "connected", "joined", "messageWritten", "disconnected":
		return true
	}
	return false
}

func clipS(s string) string {
	r := []rune(s)
	if len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return s
}

// clipQ quotes s with every non-ASCII code point escaped, so that two
// texts that differ only in normalization look different in a report.
func clipQ(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%s… (%d bytes)", strconv.QuoteToASCII(clipS(s)), len(s))
	}
	return strconv.QuoteToASCII(s)
}
