package explore

import (
	"math/rand/v2"
	"strings"
	"unicode/utf8"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// Username bodies. Twins differ only in Unicode normalization or case:
// CONTRACT.md compares code points, so each twin is its own username, and
// a server that normalizes or folds them merges or rewrites them.
var userTwins = [][2]string{
	{"caf\u00e9", "cafe\u0301"},                    // é precomposed / e + combining acute
	{"Alice", "alice"},                             // case
	{"\u00c5ngstr\u00f6m", "A\u030angstro\u0308m"}, // NFC / NFD
	{"STRASSE", "stra\u00dfe"},                     // full case folding
	{"\uac00\ub098", "\u1100\u1161\u1102\u1161"},   // Hangul syllables / jamo
	{"\u212b-sign", "\u00c5-sign"},                 // Angstrom sign / A-ring (NFC maps one to the other)
	{"\u0130stanbul", "istanbul"},                  // dotted capital I
	{"\u01c5emal", "\u01c4EMAL"},                   // titlecase digraph
	{"\u03a3\u03af\u03c3\u03c5\u03c6\u03bf\u03c2", "\u03c3\u03af\u03c3\u03c5\u03c6\u03bf\u03c3"}, // final sigma
}

var userSingles = []string{
	"bob", "Carol", "dave_99", "\u0395\u03bb\u03ad\u03bd\u03b7", "\u05e2\u05d1\u05e8\u05d9\u05ea",
	"\u0645\u0631\u062d\u0628\u0627", "a\u202eb\u202c", "\U0001F600emoji", "\U0001D518\U0001D52B\U0001D526",
	"\U0001F469\u200d\U0001F4BBdev", "\uff21\uff22\uff23", "\ufb01le", "<b>html</b>", "quo\"te", "\u00a0nbsp",
}

// Message text pieces: normalization, case, astral characters, bidi text,
// markup, whitespace at the ends, control-like characters JSON escapes.
var textPieces = []string{
	"hello", "caf\u00e9", "cafe\u0301", "\u00c5 \u212b A\u030a", "STRASSE stra\u00dfe", "\u0130i\u0131I",
	"\U0001F600\U0001F44D\U0001F3FD\U0001F1EB\U0001F1F7", "\U0001D54F\U0001D538", "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 abc",
	"\u202eevil\u202c", "\u200fRLM\u200e", "<b>bold</b> &amp; <script>x</script>", "\"quotes\" 'single' `back`",
	"line1\nline2\ttab", "back\\slash", " padded ", "\ufb01 \uff21", "e\u0301\u0301 stacked", "\u03a3\u03a3 \u03c3\u03c2",
	"\uac00 \u1100\u1161", "%s %d {{x}} ${y}", "\u00a0\u2003spaces\u3000",
}

// Shape is the kind of scenario a seed generates; Generate cycles through
// them so that a short budget covers each.
type Shape int

// The shapes.
const (
	ShapeTabs     Shape = iota // a few users with several tabs, joins and leaves of every kind
	ShapeCrowd                 // 35 to 130 sockets, churn
	ShapeLongPoll              // polling sessions alive beyond 12 s
	ShapeChatty                // a few sockets, more than 1,000 messages, late joiners
	numShapes
)

// NumShapes is how many shapes seeds cycle through: NumShapes scenarios
// from consecutive seeds cover each shape once.
const NumShapes = int(numShapes)

func (s Shape) String() string {
	return [...]string{"tabs", "crowd", "long-poll", "chatty"}[s]
}

// GenOptions bounds generation by what the server allows.
type GenOptions struct {
	// SilentDrops allows silent drops (set when the server's ping timeout
	// is short enough for the budget).
	SilentDrops bool
	// Transports the scenario may use (default: all three).
	Transports []sioclient.Transport
}

// gen holds the state of one generation.
type gen struct {
	r      *rand.Rand
	o      GenOptions
	s      Scenario
	nextC  int
	live   map[int]int // client -> user, joined and not left
	unj    []int       // connected, not joined, not left
	tabs   map[int][]int
	twinOf map[int]int
}

// Generate returns the scenario of seed. The same seed and options always
// give the same scenario.
func Generate(seed int64, o GenOptions) Scenario {
	g := &gen{r: rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)), o: o, s: Scenario{Seed: seed},
		live: map[int]int{}, tabs: map[int][]int{}, twinOf: map[int]int{}}
	if len(g.o.Transports) == 0 {
		g.o.Transports = []sioclient.Transport{sioclient.WebSocket, sioclient.Polling, sioclient.Upgrade}
	}
	g.users(8 + g.r.IntN(10))
	switch ShapeOf(seed) {
	case ShapeTabs:
		g.tabsShape()
	case ShapeChatty:
		g.chattyShape()
	case ShapeCrowd:
		g.crowdShape()
	case ShapeLongPoll:
		g.longPollShape()
	}
	return g.s
}

// ShapeOf returns the shape a seed generates.
func ShapeOf(seed int64) Shape {
	return Shape(((seed % int64(numShapes)) + int64(numShapes)) % int64(numShapes))
}

func (g *gen) users(n int) {
	for len(g.s.Users) < n {
		tag := len(g.s.Users)
		if g.r.IntN(3) == 0 {
			tw := userTwins[g.r.IntN(len(userTwins))]
			a := len(g.s.Users)
			g.s.Users = append(g.s.Users, User{Body: tw[0], Tag: tag}, User{Body: tw[1], Tag: tag})
			g.twinOf[a], g.twinOf[a+1] = a+1, a
			continue
		}
		body := userSingles[g.r.IntN(len(userSingles))]
		if g.r.IntN(8) == 0 { // long, near a 64-byte limit; refusing it is legal
			body = strings.Repeat(body, 1+48/max(1, len(body)))
			body = truncateBytes(body, 40+g.r.IntN(20))
		}
		g.s.Users = append(g.s.Users, User{Body: body, Tag: tag})
	}
}

func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func (g *gen) add(op Op) { g.s.Ops = append(g.s.Ops, op) }

func (g *gen) transport() sioclient.Transport {
	return g.o.Transports[g.r.IntN(len(g.o.Transports))]
}

func (g *gen) connect(t sioclient.Transport) int {
	c := g.nextC
	g.nextC++
	g.add(Op{Kind: OpConnect, C: c, Transport: t})
	g.unj = append(g.unj, c)
	return c
}

func (g *gen) join(c, u int) {
	g.add(Op{Kind: OpJoin, C: c, User: u})
	for i, x := range g.unj {
		if x == c {
			g.unj = append(g.unj[:i], g.unj[i+1:]...)
			break
		}
	}
	g.live[c] = u
	g.tabs[u] = append(g.tabs[u], c)
}

// freshUser returns a user no live socket holds.
func (g *gen) freshUser() int {
	for range 50 {
		u := g.r.IntN(len(g.s.Users))
		if len(g.tabs[u]) == 0 {
			return u
		}
	}
	return g.r.IntN(len(g.s.Users))
}

func (g *gen) anyLive() (int, bool) {
	if len(g.live) == 0 {
		return 0, false
	}
	keys := make([]int, 0, len(g.live))
	for c := range g.live {
		keys = append(keys, c)
	}
	// Map order is random: sort for determinism.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys[g.r.IntN(len(keys))], true
}

func (g *gen) text() string {
	var b strings.Builder
	for n := 1 + g.r.IntN(3); n > 0; n-- {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(textPieces[g.r.IntN(len(textPieces))])
	}
	if g.r.IntN(40) == 0 { // long, around common limits; refusing it is legal if reported
		size := []int{300, 1000, 2000, 4000, 4096, 6000, 20000}[g.r.IntN(7)]
		piece := b.String() + " "
		return truncateBytes(strings.Repeat(piece, size/len(piece)+1), size)
	}
	return b.String()
}

func (g *gen) write(c int) { g.add(Op{Kind: OpWrite, C: c, Text: g.text()}) }

func (g *gen) writes(n int) {
	for range n {
		if c, ok := g.anyLive(); ok {
			g.write(c)
		}
	}
}

func (g *gen) forge() {
	c, ok := g.anyLive()
	if !ok {
		return
	}
	own := g.live[c]
	g.write(c) // identity checks that hold only on a socket's first write
	switch g.r.IntN(5) {
	case 0, 1:
		g.add(Op{Kind: OpForge, C: c, User: own, Variant: []string{"upper", "lower", "fold"}[g.r.IntN(3)]})
	case 2:
		if tw, ok := g.twinOf[own]; ok {
			g.add(Op{Kind: OpForge, C: c, User: tw, Variant: "as-is"})
			return
		}
		fallthrough
	default:
		o, ok := g.anyLive()
		if ok && g.live[o] != own {
			g.add(Op{Kind: OpForge, C: c, User: g.live[o], Variant: []string{"as-is", "upper", "fold"}[g.r.IntN(3)]})
		}
	}
}

// leave ends socket c in one of the ways a client is lost.
func (g *gen) leave(c int) {
	u := g.live[c]
	kinds := []OpKind{OpClose, OpDrop}
	if g.o.SilentDrops {
		kinds = append(kinds, OpSilence)
	}
	g.add(Op{Kind: kinds[g.r.IntN(len(kinds))], C: c})
	delete(g.live, c)
	t := g.tabs[u]
	for i, x := range t {
		if x == c {
			g.tabs[u] = append(t[:i:i], t[i+1:]...)
			break
		}
	}
}

// reconnect: the socket is lost and the same username comes back on a new
// one, before the server noticed when the loss is silent (RECON-2).
func (g *gen) reconnect(c int) {
	u := g.live[c]
	if g.o.SilentDrops && g.r.IntN(2) == 0 {
		g.add(Op{Kind: OpSilence, C: c, NoWait: true})
		delete(g.live, c)
		g.tabs[u] = removeInt(g.tabs[u], c)
	} else {
		g.leave(c)
	}
	n := g.connect(g.transport())
	g.join(n, u)
}

func removeInt(s []int, x int) []int {
	for i, v := range s {
		if v == x {
			return append(s[:i:i], s[i+1:]...)
		}
	}
	return s
}

func (g *gen) secondTab() {
	c, ok := g.anyLive()
	if !ok {
		return
	}
	n := g.connect(g.transport())
	g.join(n, g.live[c])
}

func (g *gen) bad() {
	c := g.connect(g.transport())
	g.add(Op{Kind: OpBad, C: c, Variant: []string{"null-connecting", "number-username", "unjoined-write", "number-claim", "proto"}[g.r.IntN(5)]})
}

// presenceStep performs one random presence change.
func (g *gen) presenceStep() {
	switch k := g.r.IntN(10); {
	case k < 3 || len(g.live) < 2:
		c := g.connect(g.transport())
		g.join(c, g.freshUser())
	case k < 5:
		g.secondTab()
	case k < 7:
		if c, ok := g.anyLive(); ok {
			g.leave(c)
		}
	case k < 9:
		if c, ok := g.anyLive(); ok {
			g.reconnect(c)
		}
	default:
		// A user whose last socket left comes back: the end of the list.
		c := g.connect(g.transport())
		g.join(c, g.r.IntN(len(g.s.Users)))
	}
}

func (g *gen) tabsShape() {
	for range 2 + g.r.IntN(3) {
		c := g.connect(g.transport())
		g.join(c, g.freshUser())
	}
	for range 14 + g.r.IntN(12) {
		g.presenceStep()
		g.writes(g.r.IntN(4))
		if g.r.IntN(4) == 0 {
			g.forge()
		}
	}
	g.forges(3)
	g.bad()
	g.writes(5)
}

// forges adds n forged writes (each after a write of the same socket).
func (g *gen) forges(n int) {
	for range n {
		g.forge()
	}
}

func (g *gen) chattyShape() {
	// Few receivers and short texts: every messageWritten carries the
	// whole (capped) history to every socket, so the cost of a message
	// grows with both.
	for range 3 + g.r.IntN(2) {
		c := g.connect(g.transport())
		g.join(c, g.freshUser())
	}
	g.secondTab()
	total := 1100 + g.r.IntN(150)
	for written := 0; written < total; {
		n := 150 + g.r.IntN(200)
		for range n {
			if c, ok := g.anyLive(); ok {
				g.add(Op{Kind: OpWrite, C: c, Text: textPieces[g.r.IntN(len(textPieces))]})
			}
		}
		written += n
		switch g.r.IntN(3) {
		case 0:
			c := g.connect(g.transport())
			g.join(c, g.freshUser()) // a late joiner: its connected holds the history
		case 1:
			g.forge()
		default:
			if c, ok := g.anyLive(); ok && len(g.live) > 3 {
				g.leave(c)
			}
		}
	}
	c := g.connect(g.transport())
	g.join(c, g.freshUser())
	g.forges(3)
	g.writes(5)
}

func (g *gen) crowdShape() {
	n := 35 + g.r.IntN(30)
	if g.r.IntN(4) == 0 {
		n = 100 + g.r.IntN(30) // at times beyond 100
	}
	for range n {
		c := g.connect(g.transport())
		if g.r.IntN(5) == 0 {
			continue // connected, never joined (JOIN-4, MSG-1: may receive broadcasts)
		}
		if len(g.live) > 3 && g.r.IntN(4) == 0 {
			o, _ := g.anyLive()
			g.join(c, g.live[o]) // another tab
		} else {
			g.join(c, g.freshUser2(c))
		}
		if g.r.IntN(3) == 0 {
			g.write(c)
		}
	}
	for range 10 + g.r.IntN(10) {
		g.presenceStep()
		g.writes(2)
	}
	g.forges(4)
	g.bad()
	g.writes(10)
}

// freshUser2 makes more users when a crowd runs out of them.
func (g *gen) freshUser2(c int) int {
	for _, u := range g.r.Perm(len(g.s.Users)) {
		if len(g.tabs[u]) == 0 {
			return u
		}
	}
	g.s.Users = append(g.s.Users, User{Body: userSingles[c%len(userSingles)], Tag: len(g.s.Users)})
	return len(g.s.Users) - 1
}

func (g *gen) longPollShape() {
	var polls []int
	for range 2 + g.r.IntN(3) {
		c := g.connect(sioclient.Polling)
		g.join(c, g.freshUser())
		polls = append(polls, c)
	}
	for range 6 {
		g.add(Op{Kind: OpPause, Ms: 1500 + g.r.IntN(1000)})
		for _, c := range polls {
			if _, ok := g.live[c]; ok {
				g.write(c)
			}
		}
		if g.r.IntN(2) == 0 {
			g.presenceStepNoPoll(polls)
		}
	}
	g.forges(4)
	g.writes(6)
}

// presenceStepNoPoll changes presence without ending the long-lived
// polling sessions.
func (g *gen) presenceStepNoPoll(keep []int) {
	c := g.connect(g.transport())
	g.join(c, g.freshUser())
	if g.r.IntN(2) == 0 {
		g.writes(2)
		for x := range g.live {
			if x == c {
				g.leave(c)
			}
		}
	}
	_ = keep
}
