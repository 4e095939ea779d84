package spec

import (
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/chatspec/chatspec/spec/framework"
)

// The user list: CONTRACT.md §4.
var _ = Describe("The user list (USER)", func() {
	f := framework.New()

	// USER-1 (core, MUST): each username appears at most once in any
	// connectedUserList, even when several sockets hold it.
	It("USER-1 a username held by two sockets is listed once", Label(framework.GradeCore), func(ctx SpecContext) {
		observer, _ := f.Joined(ctx, "observer")
		tab1, c1 := f.Joined(ctx, "alice")
		tab2, c2 := f.Joined(ctx, "alice2", framework.As(tab1.User))
		carol, c3 := f.Joined(ctx, "carol")
		observer.AwaitJoinOf(ctx, carol)
		tab1.AwaitJoinOf(ctx, carol)
		tab2.AwaitJoinOf(ctx, carol)
		for _, c := range []*framework.Client{observer, tab1, tab2, carol} {
			for _, ev := range c.Events() {
				if ev.Payload.ConnectedUserList == nil {
					continue
				}
				f.Verify(ev.Payload.Count(tab1.User) <= 1,
					fmt.Sprintf("every connectedUserList lists %q at most once", tab1.User),
					fmt.Sprintf("%s's event #%d %s lists it %d times: %q", c.Role, ev.Index, ev.Name, ev.Payload.Count(tab1.User), ev.Payload.Usernames()))
			}
		}
		f.Verify(c1.Payload.Lists(tab1.User) && c2.Payload.Lists(tab1.User) && c3.Payload.Lists(tab1.User),
			fmt.Sprintf("%q stays listed while both of its sockets are joined", tab1.User),
			fmt.Sprintf("connected lists: tab1 %q, tab2 %q, carol %q", c1.Payload.Usernames(), c2.Payload.Usernames(), c3.Payload.Usernames()))
	})

	// USER-2 (core, MUST): the list is in join order; a username that left
	// and came back is at the end.
	It("USER-2 the list is in join order and a returning user goes to the end", Label(framework.GradeCore), func(ctx SpecContext) {
		alice, _ := f.Joined(ctx, "alice")
		bob, _ := f.Joined(ctx, "bob")
		carol, _ := f.Joined(ctx, "carol")
		dave, dc := f.Joined(ctx, "dave")
		ours := []string{alice.User, bob.User, carol.User, dave.User}
		got := projectUsers(dc.Payload.Usernames(), ours)
		f.Verify(slices.Equal(got, ours),
			fmt.Sprintf("dave's connected lists the suite's users in join order %q", ours),
			fmt.Sprintf("%q", got))
		alice.Close()
		// Give the server the leave before alice returns (USER-3 judges
		// the disconnected itself; here it only paces the case).
		dave.TryAwait(ctx, settleWindow(f), "disconnected", framework.NotListing(alice.User))
		_, back := f.Joined(ctx, "alice-again", framework.As(alice.User))
		want := []string{bob.User, carol.User, dave.User, alice.User}
		got = projectUsers(back.Payload.Usernames(), want)
		f.Verify(slices.Equal(got, want),
			fmt.Sprintf("after alice left and came back, the list is %q (alice at the end)", want),
			fmt.Sprintf("%q", got))
	})

	// USER-3 (core, MUST): when the last socket holding a username
	// disconnects, every other socket receives disconnected once without
	// it, and later lists do not contain it either.
	It("USER-3 a user who leaves is removed: disconnected once, and absent from later lists", Label(framework.GradeCore), func(ctx SpecContext) {
		alice, _ := f.Joined(ctx, "alice")
		bob, _ := f.Joined(ctx, "bob")
		carol, _ := f.Joined(ctx, "carol")
		alice.AwaitJoinOf(ctx, carol)
		bob.AwaitJoinOf(ctx, carol)
		bob.Close()
		var firsts []framework.Received
		for _, c := range []*framework.Client{alice, carol} {
			firsts = append(firsts, c.Await(ctx, "disconnected", framework.NotListing(bob.User)))
		}
		dave, dc := f.Joined(ctx, "dave")
		f.Verify(!dc.Payload.Lists(bob.User),
			fmt.Sprintf("a later connected does not list %q, who left", bob.User),
			fmt.Sprintf("dave's connected lists %q", dc.Payload.Usernames()))
		for i, c := range []*framework.Client{alice, carol} {
			j := c.AwaitJoinOf(ctx, dave)
			f.Verify(!j.Payload.Lists(bob.User),
				fmt.Sprintf("a later joined does not list %q, who left", bob.User),
				fmt.Sprintf("%s's joined lists %q", c.Role, j.Payload.Usernames()))
			barrier := c.Barrier(ctx)
			c.ExpectNone(firsts[i].Index+1, barrier, "a socket received disconnected for one leave twice",
				"disconnected", framework.UserListEquals(firsts[i].Payload.Usernames()))
		}
	})

	// USER-4 (strict, SHOULD): while another socket still holds the
	// username, a disconnect of one of its sockets does not remove it.
	It("USER-4 closing one of two sockets of a username keeps the user listed", Label(framework.GradeStrict), func(ctx SpecContext) {
		observer, _ := f.Joined(ctx, "observer")
		tab1, _ := f.Joined(ctx, "alice")
		// The second socket holds the username while the first one closes.
		f.Joined(ctx, "alice2", framework.As(tab1.User))
		observer.AwaitJoinOf(ctx, tab1)
		mark := observer.Mark()
		tab1.Close()
		expectStillListed(ctx, f, observer, mark, tab1.User, "one of its two sockets closed")
	})

	// USER-5 (core, MUST): a socket that disconnects without having joined
	// removes nobody.
	It("USER-5 a socket that never joined removes nobody when it disconnects", Label(framework.GradeCore), func(ctx SpecContext) {
		alice, _ := f.Joined(ctx, "alice")
		bob, _ := f.Joined(ctx, "bob")
		alice.AwaitJoinOf(ctx, bob)
		mark := alice.Mark()
		lurker := f.Connect(ctx, "lurker")
		lurker.Close()
		// Only events after the mark: on a live server, someone else's
		// earlier leave is no concern of this case.
		if ev, ok := alice.TryAwaitFunc(ctx, settleWindow(f), disconnectedFrom(mark)); ok {
			f.Verify(ev.Payload.Lists(alice.User) && ev.Payload.Lists(bob.User),
				"a disconnected caused by a socket that never joined still lists everyone",
				fmt.Sprintf("alice's disconnected #%d lists %q", ev.Index, ev.Payload.Usernames()))
		}
		_, cc := f.Joined(ctx, "carol")
		f.Verify(cc.Payload.Lists(alice.User) && cc.Payload.Lists(bob.User),
			fmt.Sprintf("the next joiner's list still holds %q and %q", alice.User, bob.User),
			fmt.Sprintf("%q", cc.Payload.Usernames()))
		for _, ev := range alice.Matching(mark, -1, "disconnected") {
			f.Verify(ev.Payload.Lists(alice.User) && ev.Payload.Lists(bob.User),
				"no disconnected removes a joined user because an unjoined socket left",
				fmt.Sprintf("alice's disconnected #%d lists %q", ev.Index, ev.Payload.Usernames()))
		}
	})
})

// expectStillListed checks, after one socket of user went away while
// another still holds the username, that the observer never receives a
// list without user: any disconnected that arrives lists it, and the next
// joiner's connected (and the observer's joined for it) list it too.
//
// The server processes the close on another connection than the
// observer's, so no event of the observer's own stream is ordered after
// it; a settle window (a Consistently over the observer's stream) stands in
// for that, and the later join checks the state the server kept.
func expectStillListed(ctx SpecContext, f *framework.Framework, observer *framework.Client, mark int, user, what string) {
	GinkgoHelper()
	// Only events after the mark: on a live server, someone else's leave
	// before it (when user was not joined yet) lists no user of this case.
	if ev, ok := observer.TryAwaitFunc(ctx, settleWindow(f), disconnectedFrom(mark)); ok {
		f.Verify(ev.Payload.Lists(user),
			fmt.Sprintf("after %s, any disconnected still lists %q (USER-4)", what, user),
			fmt.Sprintf("observer's disconnected #%d lists %q", ev.Index, ev.Payload.Usernames()))
	}
	carol, cc := f.Joined(ctx, "late")
	f.Verify(cc.Payload.Lists(user),
		fmt.Sprintf("after %s, a new joiner's connected lists %q", what, user),
		fmt.Sprintf("%q", cc.Payload.Usernames()))
	observer.AwaitJoinOf(ctx, carol)
	for _, ev := range observer.Matching(mark, -1, "disconnected") {
		f.Verify(ev.Payload.Lists(user),
			fmt.Sprintf("after %s, no disconnected drops %q", what, user),
			fmt.Sprintf("observer's disconnected #%d lists %q", ev.Index, ev.Payload.Usernames()))
	}
	for _, ev := range observer.Matching(mark, -1, "joined") {
		f.Verify(ev.Payload.Lists(user),
			fmt.Sprintf("after %s, every joined still lists %q", what, user),
			fmt.Sprintf("observer's joined #%d lists %q", ev.Index, ev.Payload.Usernames()))
	}
}

// settleWindow is how long a spec watches for an event the server would
// send in reaction to something that happened on another connection.
func settleWindow(f *framework.Framework) time.Duration {
	return max(4*f.Config().QuietWindow, 250*time.Millisecond)
}

// projectUsers returns the names of list that are among ours, in list order.
func projectUsers(list, ours []string) []string {
	var out []string
	for _, u := range list {
		if slices.Contains(ours, u) {
			out = append(out, u)
		}
	}
	return out
}

// disconnectedFrom matches disconnected events at position mark or later.
func disconnectedFrom(mark int) func(framework.Received) bool {
	return func(r framework.Received) bool { return r.Index >= mark && r.Name == "disconnected" }
}
