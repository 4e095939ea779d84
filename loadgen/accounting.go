package loadgen

import (
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"time"
)

// Delivery accounting.
//
// A message m with intended send time s is expected at session u iff u
// received its `connected` before s, and u was still connected at
// s + window (the delivery window): either it left after that, or it was
// still connected when the run ended. A session that leaves (or drops)
// earlier than s + window owes nothing for m, and a delivery to it is not
// counted. Each expected (message, session) pair counts as delivered once
// when u saw m as new in some messageWritten, however late (the latency
// histogram shows lateness); lost = expected − delivered. The sender's own
// session counts like any other (CONTRACT.md MSG-1: every joined socket,
// the sender included, receives messageWritten).
//
// A lost delivery is a gap when the session received a later message of
// the same sender (a higher seq): the server skipped this one. Every other
// lost delivery is trailing: nothing the sender wrote afterwards reached
// the session before it left, so the server was behind (or had stopped
// sending to it) and the message may have been queued rather than dropped.
// Per-sender seq order is the order the server read them in (one
// connection, one emit at a time), unlike intended times: a server that
// falls behind also reads late, so its order across senders drifts from
// the intended one by seconds.
//
// A duplicate is a message a session saw as new a second time; a
// reordering is a message from a sender whose seq is below one the session
// already saw from that sender. Both are attributed to the sender.
//
// Memory: one bit per (message, session) for duplicate detection, one
// small record per message, and per session a sorted (sender, last seq)
// list plus the deliveries still inside their window.

// senderSeq is one entry of a session's per-sender high-water marks.
type senderSeq struct {
	sender uint32
	seq    uint32
}

// pendingDelivery refers to its message by id, not by pointer: the
// per-sender message slices grow (and move) as messages arrive.
type pendingDelivery struct {
	sender, seq uint32
	deadline    time.Duration // intended + window
}

type sessionState struct {
	user    int32
	joined  bool
	joinAt  time.Duration
	ended   bool
	abrupt  bool
	endAt   time.Duration
	last    []senderSeq
	pending []pendingDelivery // from head on: deliveries inside their window
	head    int
}

const (
	msgUnknown uint8 = iota // seen delivered before its Sent record
	msgSent
	msgFailed
	msgRefused // the server said no (chatError): owed to nobody
)

type msgState struct {
	intended  time.Duration
	session   int32 // the sender's session, from the Sent record (-1: unknown)
	status    uint8
	owed      bool     // counted in the sweep of close (sent, not unconfirmed)
	delivered uint32   // settled expected deliveries
	pred      uint64   // its predecessor in the server's list, as first reported (PackID; 0: none yet)
	predBy    int32    // the session that reported pred
	seen      []uint64 // bit per session index
}

// SenderStats are the delivery figures of one simulated user's messages.
type SenderStats struct {
	User       int   `json:"user"`
	Sent       int64 `json:"sent"`
	Expected   int64 `json:"expected"`
	Delivered  int64 `json:"delivered"`
	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"`
	Reordered  int64 `json:"reordered"`
}

type accounting struct {
	unconfirmed int64 // messages nobody received whose sender dropped right after sending
	window      time.Duration
	sessions    []*sessionState // by session index
	msgs        [][]msgState    // by user, then seq-1
	dup         []int64         // by sender
	reord       []int64         // by sender
	unexpected  int64           // deliveries owed to nobody (joined after, left before window, failed sends)
	repeats     int64           // events that repeated a message the session already had (counted in dup too)
	conflicts   int64           // reports of a predecessor that differs from the first one reported
	pairs       map[[2]int32]*OrderConflict
	otherPairs  int64 // conflicts between pairs beyond maxConflictPairs
}

// OrderConflict is a pair of receivers (users) whose views of the history
// cannot both fit one order (CONTRACT.md HIST-1): for one message, the
// message just before it in the lists each received differs.
type OrderConflict struct {
	// ReceiverA reported first; ReceiverB disagreed.
	ReceiverA int `json:"receiver_a"`
	ReceiverB int `json:"receiver_b"`
	// Count is how many messages the pair disagreed on.
	Count int64 `json:"count"`
	// Example is the first: the message (sender/seq), and what came just
	// before it for A and for B.
	Message string `json:"message"`
	BeforeA string `json:"before_a"`
	BeforeB string `json:"before_b"`
}

// maxConflictPairs bounds the receiver pairs shown with an example.
const maxConflictPairs = 20

func idText(id uint64) string { return fmt.Sprintf("%d/%d", id>>32, uint32(id)) }

// maxSeq bounds how far a stamp's seq may run ahead, so a forged or
// corrupt stamp cannot make the accounting allocate without bound.
const maxSeq = 1 << 24

func newAccounting(users int, window time.Duration) *accounting {
	return &accounting{
		window: window,
		msgs:   make([][]msgState, users),
		dup:    make([]int64, users),
		reord:  make([]int64, users),
	}
}

func (a *accounting) session(id int32, user int32) *sessionState {
	for int(id) >= len(a.sessions) {
		a.sessions = append(a.sessions, nil)
	}
	s := a.sessions[id]
	if s == nil {
		s = &sessionState{user: user}
		a.sessions[id] = s
	}
	return s
}

// msg returns the state of (sender, seq), creating it; nil for stamps that
// cannot be ours.
func (a *accounting) msg(sender, seq uint32, intended time.Duration) *msgState {
	if int(sender) >= len(a.msgs) || seq == 0 || seq > maxSeq {
		return nil
	}
	list := a.msgs[sender]
	if int(seq) > len(list) {
		list = slices.Grow(list, int(seq)-len(list))[:seq]
		a.msgs[sender] = list
	}
	m := &list[seq-1]
	if m.status == msgUnknown && m.intended == 0 {
		m.intended, m.session = intended, -1
	}
	return m
}

func (a *accounting) joined(r Result) {
	s := a.session(r.Session, r.User)
	s.joined, s.joinAt = true, r.At
}

func (a *accounting) sent(r Result, ok bool) {
	m := a.msg(r.Sender, r.Seq, r.Intended)
	if m == nil {
		return
	}
	m.intended = r.Intended
	m.session = r.Session
	switch {
	case m.status == msgRefused: // the refusal overtook the Sent record
	case ok:
		m.status = msgSent
	default:
		m.status = msgFailed
	}
}

// refused marks a write the server refused; it is owed to nobody.
func (a *accounting) refused(r Result) {
	if r.Seq == 0 {
		return // a refusal no write was waiting for
	}
	if m := a.msg(r.Sender, r.Seq, r.Intended); m != nil {
		m.status = msgRefused
	}
}

// repeated counts an event that brought nothing new but repeated the
// message (Sender, Seq) the session had already received: a duplicate.
func (a *accounting) repeated(r Result) {
	a.repeats++
	if int(r.Sender) < len(a.dup) {
		a.dup[r.Sender]++
	}
}

// order checks a receiver's report of what came just before m against
// the first report: one history order (HIST-1) gives every receiver the
// same predecessor.
func (a *accounting) order(r Result, m *msgState) {
	if r.Pred == 0 {
		return
	}
	if m.pred == 0 {
		m.pred, m.predBy = r.Pred, r.Session
		return
	}
	if m.pred == r.Pred {
		return
	}
	a.conflicts++
	ua := a.sessions[m.predBy].user
	key := [2]int32{min(ua, r.User), max(ua, r.User)}
	if c := a.pairs[key]; c != nil {
		c.Count++
		return
	}
	if len(a.pairs) >= maxConflictPairs {
		a.otherPairs++
		return
	}
	if a.pairs == nil {
		a.pairs = map[[2]int32]*OrderConflict{}
	}
	a.pairs[key] = &OrderConflict{ReceiverA: int(ua), ReceiverB: int(r.User), Count: 1,
		Message: idText(PackID(r.Sender, r.Seq)), BeforeA: idText(m.pred), BeforeB: idText(r.Pred)}
}

// conflictPairs lists the pairs, most conflicts first.
func (a *accounting) conflictPairs() []OrderConflict {
	out := make([]OrderConflict, 0, len(a.pairs))
	for _, c := range a.pairs {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		if out[i].ReceiverA != out[j].ReceiverA {
			return out[i].ReceiverA < out[j].ReceiverA
		}
		return out[i].ReceiverB < out[j].ReceiverB
	})
	return out
}

// delivered records one receipt and reports whether it should count
// toward latency (a first receipt by a session joined before the message).
func (a *accounting) delivered(r Result) (first bool) {
	if int(r.Session) >= len(a.sessions) || a.sessions[r.Session] == nil {
		return false
	}
	s := a.sessions[r.Session]
	m := a.msg(r.Sender, r.Seq, r.Intended)
	if m == nil {
		return false
	}
	word, bit := int(r.Session)/64, uint64(1)<<(uint(r.Session)%64)
	if word >= len(m.seen) {
		m.seen = slices.Grow(m.seen, word+1-len(m.seen))[:word+1]
	}
	if m.seen[word]&bit != 0 {
		a.dup[r.Sender]++
		return false
	}
	m.seen[word] |= bit
	a.order(r, m)
	// Per-sender order.
	i, found := slices.BinarySearchFunc(s.last, r.Sender, func(e senderSeq, t uint32) int { return int(int64(e.sender) - int64(t)) })
	if found {
		if r.Seq < s.last[i].seq {
			a.reord[r.Sender]++
		} else {
			s.last[i].seq = r.Seq
		}
	} else {
		s.last = slices.Insert(s.last, i, senderSeq{r.Sender, r.Seq})
	}
	a.settle(s, r.At)
	if !s.joined || s.joinAt >= m.intended {
		a.unexpected++
		return false
	}
	deadline := m.intended + a.window
	if r.At >= deadline {
		m.delivered++
	} else {
		s.pending = append(s.pending, pendingDelivery{r.Sender, r.Seq, deadline})
	}
	return true
}

// settle counts the pending deliveries of s whose window closed by now,
// since s was provably connected at now. Pending deliveries are kept in
// arrival order, which is nearly deadline order, and settled from the
// front only: one that is out of order waits for a later settle (or the
// session's end), which reaches the same verdict, so each delivery costs
// O(1) however many are pending.
func (a *accounting) settle(s *sessionState, now time.Duration) {
	for s.head < len(s.pending) && s.pending[s.head].deadline <= now {
		p := s.pending[s.head]
		a.msgs[p.sender][p.seq-1].delivered++
		s.head++
	}
	if s.head == len(s.pending) {
		s.pending, s.head = s.pending[:0], 0
	} else if s.head > 64 && s.head > len(s.pending)/2 {
		n := copy(s.pending, s.pending[s.head:])
		s.pending, s.head = s.pending[:n], 0
	}
}

// finish settles everything pending at the session's end: a delivery
// counts when the session lasted to its deadline, otherwise it was owed
// to nobody.
func (a *accounting) finish(s *sessionState) {
	for _, p := range s.pending[s.head:] {
		if p.deadline <= s.endAt {
			a.msgs[p.sender][p.seq-1].delivered++
		} else {
			a.unexpected++
		}
	}
	s.pending, s.head = nil, 0
}

func (a *accounting) left(r Result) {
	s := a.session(r.Session, r.User)
	if s.ended {
		return
	}
	s.ended, s.endAt, s.abrupt = true, r.At, r.Abrupt
	a.finish(s)
}

// close ends the sessions still open at end and computes, per sender, the
// expected deliveries with one sweep over messages and sessions sorted by
// time (a Fenwick tree counts the sessions still connected at s + window),
// and how many lost deliveries are trailing (see the top of this file).
func (a *accounting) close(end time.Duration) (_ []SenderStats, trailing int64) {
	for _, s := range a.sessions {
		if s != nil && !s.ended {
			s.ended, s.endAt = true, end
			a.finish(s)
		}
	}
	type span struct{ join, end time.Duration }
	var spans []span
	for _, s := range a.sessions {
		if s != nil && s.joined {
			spans = append(spans, span{s.joinAt, s.endAt})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].join < spans[j].join })
	ends := make([]time.Duration, len(spans))
	for i, sp := range spans {
		ends[i] = sp.end
	}
	slices.Sort(ends)
	ends = slices.Compact(ends)
	tree := make([]int64, len(ends)+1) // Fenwick tree over end ranks
	add := func(i int) {
		for i++; i < len(tree); i += i & -i {
			tree[i]++
		}
	}
	prefix := func(i int) (n int64) { // count of added with rank < i
		for ; i > 0; i -= i & -i {
			n += tree[i]
		}
		return n
	}
	type ref struct {
		sender   int
		intended time.Duration
		m        *msgState
	}
	var refs []ref
	stats := make([]SenderStats, len(a.msgs))
	for u, list := range a.msgs {
		stats[u].User = u
		stats[u].Duplicated = a.dup[u]
		stats[u].Reordered = a.reord[u]
		for i := range list {
			m := &list[i]
			switch m.status {
			case msgFailed, msgRefused:
				a.unexpected += int64(m.delivered)
				continue
			case msgUnknown:
				if len(m.seen) == 0 {
					continue // a gap in seq: never sent (the sender was offline)
				}
			}
			if a.unconfirmedSend(m) {
				a.unconfirmed++
				stats[u].Sent++
				continue
			}
			m.owed = true
			refs = append(refs, ref{u, m.intended, m})
		}
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].intended < refs[j].intended })
	next, added := 0, int64(0)
	for _, r := range refs {
		for next < len(spans) && spans[next].join < r.intended {
			rank, _ := slices.BinarySearch(ends, spans[next].end)
			add(rank)
			added++
			next++
		}
		cut, _ := slices.BinarySearch(ends, r.intended+a.window) // ranks of ends < s+window
		expected := added - prefix(cut)
		st := &stats[r.sender]
		st.Sent++
		st.Expected += expected
		st.Delivered += int64(r.m.delivered)
	}
	for i := range stats {
		st := &stats[i]
		st.Lost = max(0, st.Expected-st.Delivered)
	}
	// Gaps: per session, the owed messages of each sender it heard from,
	// below the highest seq it received, that it never received. Owed means
	// joined before the send and connected until send + window, as in the
	// sweep above. The cost is about one step per expected delivery.
	var lost, gaps int64
	for i := range stats {
		lost += stats[i].Lost
	}
	for id, s := range a.sessions {
		if s == nil || !s.joined {
			continue
		}
		word, bit := id/64, uint64(1)<<(uint(id)%64)
		for _, h := range s.last {
			list := a.msgs[h.sender]
			for seq := uint32(1); seq < h.seq && int(seq) <= len(list); seq++ {
				m := &list[seq-1]
				if !m.owed || m.intended <= s.joinAt || m.intended+a.window > s.endAt {
					continue
				}
				if word >= len(m.seen) || m.seen[word]&bit == 0 {
					gaps++
				}
			}
		}
	}
	return stats, max(0, lost-gaps)
}

// unconfirmedSend reports a message that no session received and whose
// sender's connection ended abruptly (churn, a drop) within the window
// after sending it. Bytes written just before an abrupt close can die in
// the sockets' buffers (a close with unread data sends a TCP reset), so
// the server may never have seen it: it is not owed to anyone. A message
// that reached even one session was accepted by the server and stays
// owed to everyone expected.
func (a *accounting) unconfirmedSend(m *msgState) bool {
	for _, w := range m.seen {
		if bits.OnesCount64(w) > 0 {
			return false
		}
	}
	if m.session < 0 || int(m.session) >= len(a.sessions) {
		return false
	}
	s := a.sessions[m.session]
	return s != nil && s.ended && s.abrupt && s.endAt < m.intended+a.window
}
