package spec

import (
	"fmt"
	"slices"

	. "github.com/onsi/ginkgo/v2"

	"github.com/chatspec/chatspec/spec/framework"
)

// Joining: CONTRACT.md §3. Emit versus broadcast: connected goes to the
// joiner only, joined to every other joined socket and never the joiner.
var _ = Describe("Joining (JOIN)", func() {
	f := framework.New()

	// JOIN-1 (core, MUST): the joining socket receives connected exactly
	// once, and nothing of its own join is delivered to it as joined.
	It("JOIN-1 the joiner receives connected exactly once and no joined for its own join", Label(framework.GradeCore), func(ctx SpecContext) {
		observer, obsConnected := f.Joined(ctx, "observer")
		alice := f.Connect(ctx, "alice")
		connected := alice.Join(ctx)
		barrier := alice.Barrier(ctx)
		alice.ExpectNone(connected.Index+1, barrier, "the joiner received a second connected", "connected")
		// A joined carrying exactly the list of alice's own connected is the
		// broadcast of her own join (a later join by someone else would add
		// a username).
		alice.ExpectNone(0, barrier, "the joiner received the joined broadcast of its own join",
			"joined", framework.UserListEquals(connected.Payload.Usernames()))
		// The observer must not receive a connected for someone else's join.
		obsBarrier := observer.Barrier(ctx)
		observer.ExpectNone(obsConnected.Index+1, obsBarrier, "a socket that was already joined received connected for another socket's join", "connected")
	})

	// JOIN-2 (core, MUST): connected lists the joiner and carries the whole
	// current history.
	It("JOIN-2 connected lists the joiner and carries the whole history", Label(framework.GradeCore), func(ctx SpecContext) {
		// The observer shows that a write was processed should the server
		// not echo the sender (MSG-1's to judge).
		f.Joined(ctx, "observer")
		alice, aliceConnected := f.Joined(ctx, "alice")
		// Three messages, each written after the previous one came back:
		// the history holds them in that order, whatever else it holds.
		written := []string{f.Text("first"), f.Text("second"), f.Text("third")}
		var last framework.Received
		for _, m := range written {
			alice.Write(ctx, m)
			last = alice.AwaitWritten(ctx, m)
		}
		bob, connected := f.Joined(ctx, "bob")
		p := connected.Payload
		f.Verify(p.Lists(bob.User) && p.Lists(alice.User),
			fmt.Sprintf("bob's connected.connectedUserList lists bob (%q) and alice (%q)", bob.User, alice.User),
			fmt.Sprintf("%q", p.Usernames()))
		ours := framework.Project(p.MessagesList, written)
		f.Verify(slices.Equal(ours, written),
			fmt.Sprintf("bob's connected.messagesList holds %q in the order written (before bob joined)", written),
			fmt.Sprintf("of those, %q", ours))
		// Whole history: what alice last saw must be there in full, in
		// order, before anything newer. A messageWritten that does not
		// hold all three messages is not the whole history (HIST-2's to
		// judge): then the history alice was given when she joined is.
		ref, refName := last.Payload.MessagesList, "the history alice last received"
		if len(framework.Project(ref, written)) < len(written) {
			f.Tolerate("HIST-2", fmt.Sprintf("alice's last messageWritten holds %d messages, not all three written: not the whole history", len(ref)))
			ref, refName = aliceConnected.Payload.MessagesList, "the history alice received when she joined"
		}
		f.Verify(historyFollows(ref, p.MessagesList),
			fmt.Sprintf("bob's connected.messagesList starts with %s (a capped server may drop its oldest entries)", refName),
			fmt.Sprintf("alice's list had %d messages, bob's has %d and does not continue it", len(ref), len(p.MessagesList)))
	})

	// JOIN-3 (core, MUST): every other joined socket receives joined
	// once, listing the new username.
	It("JOIN-3 every other joined socket receives joined once, listing the joiner", Label(framework.GradeCore), func(ctx SpecContext) {
		alice, _ := f.Joined(ctx, "alice")
		bob, _ := f.Joined(ctx, "bob")
		alice.Await(ctx, "joined", framework.Listing(bob.User))
		carol, _ := f.Joined(ctx, "carol")
		for _, c := range []*framework.Client{alice, bob} {
			j := c.Await(ctx, "joined", framework.Listing(carol.User))
			barrier := c.Barrier(ctx)
			c.ExpectNone(j.Index+1, barrier, "a joined socket received the joined broadcast of one join twice",
				"joined", framework.UserListEquals(j.Payload.Usernames()))
		}
	})
})

// historyFollows reports whether newer continues older: newer starts with
// older[k:] for some k (k > 0 only when a cap dropped the oldest entries).
func historyFollows(older, newer []framework.Message) bool {
	for k := 0; k <= len(older); k++ {
		rest := older[k:]
		if len(rest) > len(newer) {
			continue
		}
		ok := true
		for i := range rest {
			if rest[i] != newer[i] {
				ok = false
				break
			}
		}
		if ok && (k == 0 || len(newer) >= minCap) {
			return true
		}
	}
	return false
}

// minCap is the smallest history cap CONTRACT.md HIST-4 accepts.
const minCap = 50
