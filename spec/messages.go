package spec

import (
	"fmt"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"

	"github.com/chatspec/chatspec/spec/framework"
)

// Payloads: CONTRACT.md §2. They run after the other chat cases
// (SpecPriority) so that PAY-1 can also judge every event those cases
// received, and before the bad-input cases, whose echoes it leaves alone.
var _ = Describe("Payloads (PAY)", SpecPriority(-5), func() {
	f := framework.New()

	// PAY-1 (core, MUST): every server event carries exactly one JSON
	// object argument with the listed fields; lists are arrays, never null.
	It("PAY-1 every chat event carries one JSON object with the listed fields and types", Label(framework.GradeCore), func(ctx SpecContext) {
		alice, _ := f.Joined(ctx, "alice")
		bob, _ := f.Joined(ctx, "bob")
		alice.AwaitJoinOf(ctx, bob)
		text := f.Text("shape")
		bob.Write(ctx, text)
		alice.AwaitMessage(ctx, text)
		bob.AwaitWritten(ctx, text)
		mark := alice.Mark()
		bob.Close()
		alice.AwaitAfter(ctx, mark, "disconnected")
		// The events' shapes are the server's, always; a list entry is
		// judged when this run caused it. Malformed entries that carry no
		// trace of this run are someone else's, left in the server's state
		// (an earlier run's bad input on a server that keeps it, CONTRACT.md
		// §9): they are reported, not failed on. ROB-2 and SEC-3 judge what
		// a server stores from bad input, in the run that sends it.
		seen := map[string]bool{}
		var problems, foreign []string
		for _, c := range []*framework.Client{alice, bob} {
			for _, ev := range c.Events() {
				seen[ev.Name] = true
				own, other := f.CheckShape(ev.Name, ev.Args)
				for _, p := range own {
					problems = append(problems, fmt.Sprintf("%s event #%d %s", c.Role, ev.Index, p))
				}
				for _, p := range other {
					if !slices.Contains(foreign, p) {
						foreign = append(foreign, p)
					}
				}
			}
		}
		// The chat cases' clients met them too (counted once each).
		n, met := framework.ForeignEntries()
		for _, p := range met {
			if !slices.Contains(foreign, p) {
				foreign = append(foreign, p)
			}
		}
		if len(foreign) > 0 {
			shown := foreign[:min(len(foreign), 8)]
			f.Finding("tolerated %d foreign entries: malformed list entries this run did not cause (another run's or user's state in the server, CONTRACT.md §9), e.g.:\n  %s",
				max(n, len(foreign)), strings.Join(shown, "\n  "))
		}
		f.Verify(len(problems) == 0, "every connected, joined, messageWritten and disconnected carries exactly one JSON object with its fields as arrays of objects of strings",
			strings.Join(problems, "\n      "))
		// The same for every event the run's chat cases received before
		// this one (an empty history as null shows on a fresh server only).
		var others []string
		for _, p := range framework.ShapeProblems() {
			if !strings.HasPrefix(p, f.CaseID+":") { // this case's own are above
				others = append(others, p)
			}
		}
		f.Verify(len(others) == 0, "every chat event received by the clients of the run's other chat cases has the same shape",
			strings.Join(others, "\n      "))
		for _, name := range []string{"connected", "joined", "messageWritten", "disconnected"} {
			f.Verify(seen[name], fmt.Sprintf("the scenario produced a %s event to check", name), "none")
		}
	})

	// PAY-3 (core, MUST): strings come back exactly as sent.
	It("PAY-3 message texts come back exactly as sent (HTML, quotes, emoji, scripts, spaces)", Label(framework.GradeCore), func(ctx SpecContext) {
		alice, _ := f.Joined(ctx, "alice")
		bob, _ := f.Joined(ctx, "bob")
		alice.AwaitJoinOf(ctx, bob)
		bodies := []string{
			`<b>bold</b> & <script>alert(1)</script>`,
			`"double" 'single' \backslash\ /slash/`,
			"emoji 😀 👍🏽 family 👨‍👩‍👧",
			"Кириллица 中文 العربية हिन्दी",
			"  leading and trailing spaces  ",
			"line\nbreak\ttab",
			"&amp; &lt;not an entity&gt; %s %d {{.}}",
		}
		for _, body := range bodies {
			token := f.Text("pay3")
			text := token + " " + body
			if strings.HasPrefix(body, " ") {
				text = body + token + body
			}
			alice.Write(ctx, text)
			for _, c := range []*framework.Client{bob, alice} {
				var ev framework.Received
				if c == alice { // the sender's own copy is MSG-1's to judge
					ev = c.AwaitWrittenMatching(ctx, framework.Mentions(token))
				} else {
					ev = c.Await(ctx, "messageWritten", framework.Mentions(token))
				}
				got := ev.Payload.MessagesList[len(ev.Payload.MessagesList)-1]
				for _, m := range ev.Payload.MessagesList {
					if strings.Contains(m.Message, token) || strings.Contains(m.Username, token) {
						got = m
					}
				}
				gotText, gotUser := got.Message, got.Username
				if !strings.Contains(gotText, token) && strings.Contains(gotUser, token) {
					// Which field holds the text is MSG-2's to judge.
					f.Tolerate("MSG-2", fmt.Sprintf("%s's messageWritten #%d holds %+v: text and username swapped", c.Role, ev.Index, got))
					gotText, gotUser = gotUser, gotText
				}
				f.Verify(gotText == text && gotUser == alice.User,
					fmt.Sprintf("%s receives the message exactly as sent: %q by %q", c.Role, text, alice.User),
					fmt.Sprintf("%q by %q", gotText, gotUser))
			}
		}
	})
})

// Messages and history: CONTRACT.md §5.
var _ = Describe("Messages and history (MSG, HIST)", func() {
	f := framework.New()

	// MSG-1 (core, MUST): every joined socket, the sender included,
	// receives messageWritten once for the message.
	It("MSG-1 every joined socket, the sender included, receives messageWritten once", Label(framework.GradeCore), func(ctx SpecContext) {
		alice, _ := f.Joined(ctx, "alice")
		bob, _ := f.Joined(ctx, "bob")
		carol, _ := f.Joined(ctx, "carol")
		alice.AwaitJoinOf(ctx, carol)
		bob.AwaitJoinOf(ctx, carol)
		text := f.Text("hello")
		bob.Write(ctx, text)
		// Every list after this message holds it too (history), so the
		// event for it is told from later ones by order: each socket's is
		// awaited before the case writes anything else (the barriers).
		clients := []*framework.Client{alice, bob, carol}
		firsts := make([]framework.Received, len(clients))
		for i, c := range clients {
			firsts[i] = c.Await(ctx, "messageWritten", framework.HasMessage(text))
		}
		for i, c := range clients {
			barrier := c.Barrier(ctx)
			c.ExpectNone(firsts[i].Index+1, barrier, "a socket received messageWritten for one message twice",
				"messageWritten", lastIs(text))
		}
	})

	// MSG-2 (core, MUST): the new message is the last element of
	// messagesList, as {username: sender, message: text}.
	It("MSG-2 the new message is last in messagesList, with the sender's username and the text", Label(framework.GradeCore), func(ctx SpecContext) {
		alice, _ := f.Joined(ctx, "alice")
		bob, _ := f.Joined(ctx, "bob")
		alice.AwaitJoinOf(ctx, bob)
		text := f.Text("mine")
		alice.Write(ctx, text)
		want := framework.Message{Username: alice.User, Message: text}
		for _, c := range []*framework.Client{bob, alice} {
			var ev framework.Received
			if c == alice { // the sender's own copy is MSG-1's to judge
				ev = c.AwaitWrittenMatching(ctx, framework.Mentions(text))
			} else {
				ev = c.Await(ctx, "messageWritten", framework.Mentions(text))
			}
			list := ev.Payload.MessagesList
			f.Verify(len(list) > 0 && list[len(list)-1] == want,
				fmt.Sprintf("%s's messageWritten ends with %+v", c.Role, want),
				fmt.Sprintf("last element %+v", lastMessage(list)))
		}
	})

	// HIST-1 (core, MUST): history has one order, the same for every
	// socket, and messages one socket sends in sequence keep that order.
	It("HIST-1 every socket sees one message order, and each sender's sequence is kept", Label(framework.GradeCore), func(ctx SpecContext) {
		alice, _ := f.Joined(ctx, "alice")
		bob, _ := f.Joined(ctx, "bob")
		carol, _ := f.Joined(ctx, "carol")
		alice.AwaitJoinOf(ctx, carol)
		bob.AwaitJoinOf(ctx, carol)
		var fromAlice, fromBob, all []string
		for i := range 5 {
			a, b := f.Text(fmt.Sprintf("a%d", i)), f.Text(fmt.Sprintf("b%d", i))
			alice.Write(ctx, a)
			bob.Write(ctx, b)
			fromAlice, fromBob, all = append(fromAlice, a), append(fromBob, b), append(all, a, b)
		}
		// Every socket receives every message. How many lists that takes is
		// not this case's concern (each carries the whole history, HIST-2),
		// nor whether a sender receives its own (MSG-1): the lists a socket
		// received must together hold every message the others wrote, and
		// each writer's last write must have been processed.
		own := map[*framework.Client][]string{alice: fromAlice, bob: fromBob}
		for _, c := range []*framework.Client{alice, bob, carol} {
			awaitCovered(ctx, f, c, all, own[c])
			if texts := own[c]; len(texts) > 0 {
				c.AwaitWritten(ctx, texts[len(texts)-1])
			}
		}
		// Every list anyone received, a late joiner's connected included,
		// orders any two of the messages the same way, and keeps each
		// sender's messages in the order sent.
		late, _ := f.Joined(ctx, "late")
		type seenAt struct {
			where string
			order []string
		}
		before := map[[2]string]seenAt{} // (x, y) -> a list where x came before y
		for _, c := range []*framework.Client{alice, bob, carol, late} {
			for _, ev := range c.Events() {
				if ev.Name != "messageWritten" && ev.Name != "connected" {
					continue
				}
				got := framework.Project(ev.Payload.MessagesList, all)
				where := fmt.Sprintf("%s's %s #%d", c.Role, ev.Name, ev.Index)
				for _, sender := range [][]string{fromAlice, fromBob} {
					mine := framework.Project(ev.Payload.MessagesList, sender)
					f.Verify(framework.IsSubsequence(mine, sender),
						fmt.Sprintf("each sender's messages appear in the order sent: %q", sender),
						fmt.Sprintf("%s orders them %q", where, mine))
				}
				for i := range got {
					for _, y := range got[i+1:] {
						x := got[i]
						if other, ok := before[[2]string{y, x}]; ok {
							f.Verify(false, "one order: every list that holds two of the messages holds them in the same order",
								fmt.Sprintf("%s has %q before %q (%q), but %s has them the other way round (%q)", where, x, y, got, other.where, other.order))
						}
						if _, ok := before[[2]string{x, y}]; !ok {
							before[[2]string{x, y}] = seenAt{where, got}
						}
					}
				}
			}
		}
	})

	// HIST-2 (core, MUST): nothing written is lost, and no message appears
	// twice. Fifty messages catch a server that loses one in ten; ten
	// writers send five each, at once, so that a per-socket rate limit
	// (SEC-4) is not what refuses them.
	It("HIST-2 none of 50 messages is lost or duplicated, in any list that follows it", Label(framework.GradeCore), func(ctx SpecContext) {
		observer, _ := f.Joined(ctx, "observer")
		const writers, each = 10, 5
		var ws []*framework.Client
		for w := range writers {
			c, _ := f.Joined(ctx, fmt.Sprintf("w%d", w))
			ws = append(ws, c)
		}
		observer.AwaitJoinOf(ctx, ws[writers-1])
		var sent, lasts []string
		for i := range each {
			for _, c := range ws {
				text := f.Text(fmt.Sprintf("%s-%d", c.Role, i))
				c.Write(ctx, text)
				sent = append(sent, text)
				if i == each-1 {
					lasts = append(lasts, text)
				}
			}
		}
		// Each writer's last message comes after all of that writer's others
		// (HIST-1), so the latest of the lists that carry them is the first
		// that must hold all fifty.
		var final framework.Received
		for _, last := range lasts {
			if ev := observer.AwaitMessage(ctx, last); ev.Index >= final.Index {
				final = ev
			}
		}
		seen := map[string]bool{}
		for _, ev := range observer.Matching(0, final.Index+1, "messageWritten") {
			for _, text := range framework.Project(ev.Payload.MessagesList, sent) {
				seen[text] = true
			}
		}
		var never []string
		for _, text := range sent {
			if !seen[text] {
				never = append(never, text)
			}
		}
		f.Verify(len(never) == 0, fmt.Sprintf("each of the %d messages written appears in the messageWritten lists the observer receives", len(sent)),
			fmt.Sprintf("%d never appeared: %q", len(never), never))
		checkNoLoss(f, observer, sent)
		got := framework.Project(final.Payload.MessagesList, sent)
		f.Verify(len(got) == len(sent) || len(final.Payload.MessagesList) >= minCap,
			fmt.Sprintf("the list after the last message holds all %d messages written (or a cap of at least %d dropped the oldest)", len(sent), minCap),
			fmt.Sprintf("it holds %d of them, in a list of %d: missing %q", len(got), len(final.Payload.MessagesList), missing(sent, got)))
		// The late joiner's history must hold them all, or (capped) drop
		// only the oldest; its order is HIST-1's concern, not this case's.
		_, late := f.Joined(ctx, "late")
		lateGot := framework.Project(late.Payload.MessagesList, sent)
		f.Verify(dropsOnlyOldest(lateGot, got) && (len(lateGot) == len(sent) || len(late.Payload.MessagesList) >= minCap),
			fmt.Sprintf("a late joiner's history holds all %d messages (or the newest of them, with a cap of at least %d)", len(sent), minCap),
			fmt.Sprintf("it holds %d of them: missing %q", len(lateGot), missing(sent, lateGot)))
	})

	// HIST-3 (core, MUST): history survives joins and leaves, and a late
	// joiner's connected holds the messages written before it joined.
	// History is judged from the connected lists, which carry the whole
	// history; what messageWritten carries is HIST-2's concern.
	It("HIST-3 joins and leaves never reset history, and a late joiner receives it", Label(framework.GradeCore), func(ctx SpecContext) {
		// The observer shows that a write was processed should the server
		// not echo the sender (MSG-1's to judge).
		f.Joined(ctx, "observer")
		alice, _ := f.Joined(ctx, "alice")
		m1, m2 := f.Text("before-bob"), f.Text("before-bob-2")
		alice.Write(ctx, m1)
		alice.Write(ctx, m2)
		alice.AwaitWritten(ctx, m2)
		// Presence is judged here, not order (HIST-1 judges order).
		bob, bc := f.Joined(ctx, "bob")
		f.Verify(holdsAll(bc.Payload, m1, m2), fmt.Sprintf("bob's connected holds %q and %q", m1, m2),
			fmt.Sprintf("%q", framework.Project(bc.Payload.MessagesList, []string{m1, m2})))
		bob.Close()
		// Pacing only: the leave should be processed before carol joins.
		alice.TryAwait(ctx, settleWindow(f), "disconnected", framework.NotListing(bob.User))
		carol, cc := f.Joined(ctx, "carol")
		f.Verify(holdsAll(cc.Payload, m1, m2),
			"after bob joined and left, the next joiner's connected still holds the earlier messages",
			fmt.Sprintf("%q", framework.Project(cc.Payload.MessagesList, []string{m1, m2})))
		alice.AwaitJoinOf(ctx, carol)
		m3 := f.Text("after-joins")
		carol.Write(ctx, m3)
		alice.AwaitMessage(ctx, m3)
		_, dc := f.Joined(ctx, "dave")
		f.Verify(holdsAll(dc.Payload, m1, m2, m3), "a late joiner's connected holds all three messages",
			fmt.Sprintf("%q", framework.Project(dc.Payload.MessagesList, []string{m1, m2, m3})))
	})

	// HIST-4 (strict, SHOULD): a capped history is a suffix of the full
	// history (oldest dropped, order kept), with a cap of at least 50. The
	// cap observed is reported. Writers take turns (each sends 10 and
	// leaves) so that a per-socket rate limit is not reached and only one
	// observer receives every broadcast.
	It("HIST-4 a capped history keeps the newest messages in order (cap reported)", Label(framework.GradeStrict), func(ctx SpecContext) {
		observer, _ := f.Joined(ctx, "observer")
		const writers, each = 25, 10
		var sent []string
		for w := range writers {
			c, _ := f.Joined(ctx, fmt.Sprintf("w%d", w))
			for i := range each {
				text := f.Text(fmt.Sprintf("w%d-%d", w, i))
				c.Write(ctx, text)
				sent = append(sent, text)
			}
			c.AwaitWritten(ctx, sent[len(sent)-1])
			c.Abort() // no lingering close: the next writer can start at once
		}
		final := observer.Await(ctx, "messageWritten", framework.HasMessage(sent[len(sent)-1]))
		maxLen := 0
		for _, ev := range observer.Matching(0, -1, "messageWritten") {
			maxLen = max(maxLen, len(ev.Payload.MessagesList))
		}
		got := framework.Project(final.Payload.MessagesList, sent)
		f.Verify(isSuffix(got, sent),
			"the history after the last message ends with the newest messages written, in order, with only the oldest dropped",
			fmt.Sprintf("of %d written it holds %d; missing %q", len(sent), len(got), missing(sent, got)))
		checkNoLoss(f, observer, sent)
		if len(got) < len(sent) {
			f.Verify(maxLen >= minCap, fmt.Sprintf("a history cap of at least %d messages", minCap), fmt.Sprintf("lists never longer than %d", maxLen))
			f.Finding("history is capped at %d messages", maxLen)
		} else {
			f.Finding("no history cap observed: all %d messages written are kept (history length %d)", len(sent), len(final.Payload.MessagesList))
		}
	})
})

// holdsAll reports whether the payload's history holds every text.
func holdsAll(p framework.Payload, texts ...string) bool {
	for _, t := range texts {
		if p.MessageIndex(t) < 0 {
			return false
		}
	}
	return true
}

// dropsOnlyOldest reports whether got holds a suffix of order as a set:
// whatever of order is missing from got comes before everything present.
func dropsOnlyOldest(got, order []string) bool {
	presentSeen := false
	for _, t := range order {
		if slices.Contains(got, t) {
			presentSeen = true
		} else if presentSeen {
			return false
		}
	}
	return len(got) <= len(order)
}

// lastIs accepts messageWritten events whose last message has this text.
func lastIs(text string) framework.Filter {
	return framework.Filter{
		Desc: fmt.Sprintf("whose last message is %q", text),
		Match: func(p framework.Payload) bool {
			return len(p.MessagesList) > 0 && p.MessagesList[len(p.MessagesList)-1].Is(text)
		},
	}
}

func lastMessage(list []framework.Message) any {
	if len(list) == 0 {
		return "(empty list)"
	}
	return list[len(list)-1]
}

// isSuffix reports whether got is sent[k:] for some k.
func isSuffix(got, sent []string) bool {
	return len(got) <= len(sent) && slices.Equal(got, sent[len(sent)-len(got):])
}

func missing(sent, got []string) []string {
	var out []string
	for _, s := range sent {
		if !slices.Contains(got, s) {
			out = append(out, s)
			if len(out) == 5 {
				out = append(out, "…")
				break
			}
		}
	}
	return out
}

// checkNoLoss checks every messageWritten c received against HIST-2: no
// duplicates, and each of the spec's messages, once seen, stays in every
// later list unless a cap of at least minCap dropped it along with every
// older one.
func checkNoLoss(f *framework.Framework, c *framework.Client, sent []string) {
	GinkgoHelper()
	var prev []string
	for _, ev := range c.Matching(0, -1, "messageWritten") {
		dups := framework.Duplicates(ev.Payload.MessagesList, sent)
		f.Verify(len(dups) == 0, "no message appears twice in a list",
			fmt.Sprintf("%s's messageWritten #%d repeats %q", c.Role, ev.Index, dups))
		got := framework.Project(ev.Payload.MessagesList, sent)
		for i, text := range prev {
			if slices.Contains(got, text) {
				continue
			}
			capped := len(ev.Payload.MessagesList) >= minCap && !containsAny(got, prev[:i])
			f.Verify(capped,
				fmt.Sprintf("%q, once in history, stays in every later list (a cap of at least %d may drop only the oldest)", text, minCap),
				fmt.Sprintf("%s's messageWritten #%d (list of %d) lacks it", c.Role, ev.Index, len(ev.Payload.MessagesList)))
		}
		prev = got
	}
}

func containsAny(list, of []string) bool {
	for _, s := range of {
		if slices.Contains(list, s) {
			return true
		}
	}
	return false
}

// awaitCovered waits until the messageWritten events c received together
// hold every text of all except those of mine (c's own writes: whether the
// sender receives them is MSG-1's concern), and fails the spec otherwise.
// It consumes nothing.
func awaitCovered(ctx SpecContext, f *framework.Framework, c *framework.Client, all, mine []string) {
	GinkgoHelper()
	var need []string
	ok := c.WaitUntil(ctx, f.Config().StepTimeout, func(evs []framework.Received) bool {
		have := map[string]bool{}
		for _, ev := range evs {
			if ev.Name == "messageWritten" {
				for _, t := range framework.Project(ev.Payload.MessagesList, all) {
					have[t] = true
				}
			}
		}
		need = need[:0]
		for _, t := range all {
			if !have[t] && !slices.Contains(mine, t) {
				need = append(need, t)
			}
		}
		return len(need) == 0
	})
	if !ok {
		f.Failf("%s: expected messageWritten events that together hold every message the others wrote, but within %s these never came: %q",
			c, f.Config().StepTimeout, need)
	}
}
