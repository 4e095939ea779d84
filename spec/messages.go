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
		alice.Await(ctx, "joined", framework.Listing(bob.User))
		text := f.Text("shape")
		bob.Write(ctx, text)
		alice.AwaitMessage(ctx, text)
		bob.AwaitMessage(ctx, text)
		mark := alice.Mark()
		bob.Close()
		alice.AwaitAfter(ctx, mark, "disconnected")
		seen := map[string]bool{}
		var problems []string
		for _, c := range []*framework.Client{alice, bob} {
			for _, ev := range c.Events() {
				seen[ev.Name] = true
				for _, p := range framework.CheckShape(ev.Name, ev.Args) {
					problems = append(problems, fmt.Sprintf("%s event #%d %s", c.Role, ev.Index, p))
				}
			}
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
		alice.Await(ctx, "joined", framework.Listing(bob.User))
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
			for _, c := range []*framework.Client{alice, bob} {
				ev := c.Await(ctx, "messageWritten", framework.Mentions(token))
				got := ev.Payload.MessagesList[len(ev.Payload.MessagesList)-1]
				for _, m := range ev.Payload.MessagesList {
					if strings.Contains(m.Message, token) || strings.Contains(m.Username, token) {
						got = m
					}
				}
				f.Verify(got.Message == text && got.Username == alice.User,
					fmt.Sprintf("%s receives the message exactly as sent: %q by %q", c.Role, text, alice.User),
					fmt.Sprintf("%q by %q", got.Message, got.Username))
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
		alice.Await(ctx, "joined", framework.Listing(carol.User))
		bob.Await(ctx, "joined", framework.Listing(carol.User))
		text := f.Text("hello")
		bob.Write(ctx, text)
		for _, c := range []*framework.Client{alice, bob, carol} {
			first := c.Await(ctx, "messageWritten", framework.HasMessage(text))
			barrier := c.Barrier(ctx)
			c.ExpectNone(first.Index+1, barrier, "a socket received messageWritten for one message twice",
				"messageWritten", lastIs(text))
		}
	})

	// MSG-2 (core, MUST): the new message is the last element of
	// messagesList, as {username: sender, message: text}.
	It("MSG-2 the new message is last in messagesList, with the sender's username and the text", Label(framework.GradeCore), func(ctx SpecContext) {
		alice, _ := f.Joined(ctx, "alice")
		bob, _ := f.Joined(ctx, "bob")
		alice.Await(ctx, "joined", framework.Listing(bob.User))
		text := f.Text("mine")
		alice.Write(ctx, text)
		want := framework.Message{Username: alice.User, Message: text}
		for _, c := range []*framework.Client{alice, bob} {
			ev := c.Await(ctx, "messageWritten", framework.Mentions(text))
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
		alice.Await(ctx, "joined", framework.Listing(carol.User))
		bob.Await(ctx, "joined", framework.Listing(carol.User))
		var fromAlice, fromBob, all []string
		for i := range 5 {
			a, b := f.Text(fmt.Sprintf("a%d", i)), f.Text(fmt.Sprintf("b%d", i))
			alice.Write(ctx, a)
			bob.Write(ctx, b)
			fromAlice, fromBob, all = append(fromAlice, a), append(fromBob, b), append(all, a, b)
		}
		var final []string
		for _, c := range []*framework.Client{alice, bob, carol} {
			ev := c.Await(ctx, "messageWritten", framework.HasAllMessages(all))
			got := framework.Project(ev.Payload.MessagesList, all)
			f.Verify(framework.IsSubsequence(fromAlice, got) && framework.IsSubsequence(fromBob, got),
				"each sender's messages appear in the order sent",
				fmt.Sprintf("%s's list orders them %q", c.Role, got))
			if final == nil {
				final = got
			}
			f.Verify(slices.Equal(got, final), fmt.Sprintf("%s sees the same order as alice: %q", c.Role, final), fmt.Sprintf("%q", got))
		}
		// Every list anyone receives, a late joiner's connected included,
		// orders them the same way.
		late, _ := f.Joined(ctx, "late")
		for _, c := range []*framework.Client{alice, bob, carol, late} {
			for _, ev := range c.Events() {
				if ev.Name != "messageWritten" && ev.Name != "connected" {
					continue
				}
				got := framework.Project(ev.Payload.MessagesList, all)
				f.Verify(framework.IsSubsequence(got, final),
					fmt.Sprintf("every list orders the messages as the final one does (%q)", final),
					fmt.Sprintf("%s's %s #%d orders them %q", c.Role, ev.Name, ev.Index, got))
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
		observer.Await(ctx, "joined", framework.Listing(ws[writers-1].User))
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
			for _, m := range ev.Payload.MessagesList {
				seen[m.Message] = true
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
	It("HIST-3 joins and leaves never reset history, and a late joiner receives it", Label(framework.GradeCore), func(ctx SpecContext) {
		alice, _ := f.Joined(ctx, "alice")
		m1, m2 := f.Text("before-bob"), f.Text("before-bob-2")
		alice.Write(ctx, m1)
		alice.Write(ctx, m2)
		alice.AwaitMessage(ctx, m2)
		// Presence is judged here, not order (HIST-1 judges order).
		bob, bc := f.Joined(ctx, "bob")
		f.Verify(holdsAll(bc.Payload, m1, m2), fmt.Sprintf("bob's connected holds %q and %q", m1, m2),
			fmt.Sprintf("%q", framework.Project(bc.Payload.MessagesList, []string{m1, m2})))
		bob.Close()
		// Pacing only: the leave should be processed before carol joins.
		alice.TryAwait(ctx, settleWindow(f), "disconnected", framework.NotListing(bob.User))
		carol, _ := f.Joined(ctx, "carol")
		alice.Await(ctx, "joined", framework.Listing(carol.User))
		m3 := f.Text("after-joins")
		carol.Write(ctx, m3)
		ev := alice.AwaitMessage(ctx, m3)
		f.Verify(holdsAll(ev.Payload, m1, m2, m3),
			"after bob joined and left and carol joined, history still holds the earlier messages and the new one",
			fmt.Sprintf("%q", framework.Project(ev.Payload.MessagesList, []string{m1, m2, m3})))
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
			c.AwaitMessage(ctx, sent[len(sent)-1])
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
			return len(p.MessagesList) > 0 && p.MessagesList[len(p.MessagesList)-1].Message == text
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
		dups := framework.Duplicates(ev.Payload.MessagesList)
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
