package spec

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/chatspec/chatspec/spec/framework"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// Reconnection: CONTRACT.md §6.
var _ = Describe("Reconnection (RECON)", func() {
	f := framework.New()

	// RECON-1 (core, MUST): a client whose transport drops abruptly comes
	// back as a new socket with the same username; others see it leave and
	// return; list and history are intact. The drop closes TCP, so the
	// server notices at once.
	It("RECON-1 a client that drops abruptly rejoins with the same username; list and history intact", Label(framework.GradeCore), func(ctx SpecContext) {
		bob, _ := f.Joined(ctx, "bob")
		// Over WebSocket (or after an upgrade) the dropped TCP connection
		// tells the server at once. Over long-polling there is no connection
		// to drop between requests: the server notices at its ping timeout.
		alice, _ := f.Joined(ctx, "alice")
		// CONTRACT.md sets no bound on how soon the server notices. The
		// expected time is the step timeout (a TCP close), or over polling
		// the ping timeout plus margin; the case fails only past a generous
		// bound (twice that, see noticeBounds) and reports a finding between
		// the two: python-engineio, for one, checks ping timeouts lazily.
		expected, generous := f.Config().StepTimeout, 2*f.Config().StepTimeout
		if alice.Conn().Transport() == sioclient.Polling {
			expected, generous = noticeBounds(f, alice)
		}
		bob.AwaitJoinOf(ctx, alice)
		text := f.Text("before-drop")
		alice.Write(ctx, text)
		before := bob.AwaitMessage(ctx, text)
		dropped := time.Now()
		alice.Abort()
		left, ok := bob.TryAwait(ctx, generous, "disconnected", framework.NotListing(alice.User))
		if !ok {
			f.Failf("bob: expected \"disconnected\" without %q within %s of alice's transport dropping (the generous bound; %s expected), but none arrived", alice.User, generous, expected)
		}
		if took := left.Event.Received.Sub(dropped); took > expected {
			f.Finding("the server noticed alice's dropped transport after %s, later than the expected %s but within the generous bound %s (CONTRACT.md sets no bound)",
				took.Round(time.Millisecond), expected, generous)
		}
		back, bc := f.Joined(ctx, "alice-back", framework.As(alice.User))
		f.Verify(bc.Payload.Lists(back.User) && bc.Payload.Lists(bob.User),
			fmt.Sprintf("the returning socket's connected lists %q and %q", back.User, bob.User),
			fmt.Sprintf("%q", bc.Payload.Usernames()))
		// Presence only: the order of the returning socket's history is
		// JOIN-2's and HIST-1's to judge, not this case's.
		f.Verify(historyKept(before.Payload.MessagesList, bc.Payload.MessagesList) && bc.Payload.MessageIndex(text) >= 0,
			"the returning socket's connected carries the whole history, including the message written before the drop",
			fmt.Sprintf("%d messages, the one before the drop at index %d", len(bc.Payload.MessagesList), bc.Payload.MessageIndex(text)))
		// Bob sees alice leave, then come back: a joined for her return
		// after the disconnected (earlier joins' broadcasts, on a live
		// server anyone's, list her too). Its list is JOIN-3's to judge.
		bob.AwaitJoinOfAfter(ctx, left.Index+1, back)
		again := f.Text("after-return")
		back.Write(ctx, again)
		bob.AwaitMessage(ctx, again)
	})

	// RECON-2 (strict, SHOULD): when the new socket joined before the
	// server noticed that the old one was gone, the old session's timeout
	// does not remove the username (USER-4).
	It("RECON-2 an old session timing out after its user rejoined does not remove the user", Label(framework.GradeStrict), func(ctx SpecContext) {
		observer, _ := f.Joined(ctx, "observer")
		old, _ := f.Joined(ctx, "alice")
		wait := pingWait(f, old)
		old.Silence()
		_, nc := f.Joined(ctx, "alice-new", framework.As(old.User))
		f.Verify(nc.Payload.Lists(old.User), fmt.Sprintf("the new socket's connected lists %q", old.User), fmt.Sprintf("%q", nc.Payload.Usernames()))
		mark := observer.Mark()
		select {
		case <-old.Conn().Done():
		case <-time.After(wait):
			f.Finding("the server did not close the silent session within %s (pingInterval+pingTimeout plus margin)", wait)
		case <-ctx.Done():
			Fail("interrupted while waiting for the old session to time out")
		}
		expectStillListed(ctx, f, observer, mark, old.User, "the old session timed out")
	})

	// RECON-3 (info): how long the server takes to notice a silent drop,
	// against pingInterval+pingTimeout.
	It("RECON-3 time for the server to notice a silent drop", Label(framework.GradeInfo), func(ctx SpecContext) {
		observer, _ := f.Joined(ctx, "observer")
		alice, _ := f.Joined(ctx, "alice")
		observer.AwaitJoinOf(ctx, alice)
		wait := pingWait(f, alice)
		hs := alice.Handshake()
		start := time.Now()
		alice.Silence()
		if ev, ok := observer.TryAwait(ctx, wait, "disconnected", framework.NotListing(alice.User)); ok {
			f.Finding("the server noticed the silent drop after %s (pingInterval+pingTimeout = %s)",
				ev.Event.Received.Sub(start).Round(time.Millisecond), hs.PingInterval+hs.PingTimeout)
			return
		}
		if ctx.Err() != nil || framework.RunStopped() {
			Fail("the run was stopped before the server noticed the drop")
		}
		f.Finding("the server did not report the silent drop (no disconnected without the user) within %s; pingInterval+pingTimeout = %s",
			wait, hs.PingInterval+hs.PingTimeout)
	})
})

// noticeBounds returns how long the server is expected to take to notice
// a client that went away without a word (pingInterval+pingTimeout from
// its handshake, plus margin: pingWait) and the generous bound past which
// a case fails: twice pingInterval+pingTimeout plus the step timeout, room
// for a server that checks its timers lazily (python-engineio noticed 7.5
// to 8.5 s after a drop with a 5 s bound). It skips the case as pingWait
// does.
func noticeBounds(f *framework.Framework, c *framework.Client) (expected, generous time.Duration) {
	GinkgoHelper()
	expected = pingWait(f, c)
	hs := c.Handshake()
	generous = max(expected, 2*(hs.PingInterval+hs.PingTimeout)+f.Config().StepTimeout)
	return expected, generous
}

// pingWait returns how long to wait for the server to time out a silent
// session (pingInterval+pingTimeout from the handshake, plus margin), and
// skips the case when that exceeds the configured cap.
func pingWait(f *framework.Framework, c *framework.Client) time.Duration {
	GinkgoHelper()
	hs := c.Handshake()
	wait := hs.PingInterval + hs.PingTimeout
	wait += max(wait/5, time.Second)
	if maxWait := f.Config().MaxWait; wait > maxWait {
		Skip(fmt.Sprintf("the server's pingInterval %s + pingTimeout %s need a wait of about %s, more than --max-wait %s: rerun with --max-wait %s to include this case",
			hs.PingInterval, hs.PingTimeout, wait.Round(time.Second), maxWait, (wait + time.Second).Round(time.Second)))
	}
	return wait
}

// historyKept reports whether newer still holds every message of older, in
// any order, or is at least as long as the smallest cap HIST-4 allows (a
// capped history may have dropped the oldest).
func historyKept(older, newer []framework.Message) bool {
	if len(newer) >= minCap {
		return true
	}
	have := make(map[framework.Message]int, len(newer))
	for _, m := range newer {
		have[m]++
	}
	for _, m := range older {
		if have[m] == 0 {
			return false
		}
		have[m]--
	}
	return true
}
