package spec

import (
	"fmt"
	"slices"

	. "github.com/onsi/ginkgo/v2"

	"github.com/chatspec/chatspec/spec/framework"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// Transport and connection: CONTRACT.md §1.
var _ = Describe("Transport and connection (CONN, TRANS)", func() {
	f := framework.New()

	// CONN-1 (core, MUST): the server speaks Socket.IO v5 over Engine.IO v4
	// at its path and accepts connections to the namespace.
	It("CONN-1 the server accepts a Socket.IO v5 / Engine.IO v4 connection to the namespace", Label(framework.GradeCore), func(ctx SpecContext) {
		c := f.Connect(ctx, "alice")
		hs := c.Handshake()
		f.Verify(hs.SID != "" && hs.PingInterval > 0 && hs.PingTimeout > 0,
			"an Engine.IO v4 open packet with a sid, pingInterval and pingTimeout",
			fmt.Sprintf("sid %q, pingInterval %s, pingTimeout %s", hs.SID, hs.PingInterval, hs.PingTimeout))
		f.Verify(c.Conn().ID() != "", "a Socket.IO CONNECT acknowledgement carrying the socket id", "an empty socket id")
	})

	// CONN-2 (core, MUST): with an init path, GET answers 2xx, and
	// repeating it does not reset users or history.
	It("CONN-2 the init request answers 2xx and repeating it resets nothing", Label(framework.GradeCore), func(ctx SpecContext) {
		if f.Config().InitPath == "" {
			Skip("no --init-path given: the server is verified without an init request (a Next.js-style server needs --init-path /api/socket)")
		}
		alice, _ := f.Joined(ctx, "alice")
		text := f.Text("before-init")
		alice.Write(ctx, text)
		alice.AwaitWritten(ctx, text)
		for i := range 3 {
			err := f.Config().Target.Init(ctx, i)
			f.Verify(err == nil, fmt.Sprintf("GET %s answers 2xx every time", f.Config().InitPath), fmt.Sprint(err))
		}
		_, bc := f.Joined(ctx, "bob")
		f.Verify(bc.Payload.Lists(alice.User) && bc.Payload.MessageIndex(text) >= 0,
			fmt.Sprintf("after repeated init requests, the user %q and the message %q are still there", alice.User, text),
			fmt.Sprintf("users %q, %d messages", bc.Payload.Usernames(), len(bc.Payload.MessagesList)))
	})

	// TRANS-1 (core, MUST): HTTP long-polling works for everything.
	It("TRANS-1 long-polling only: join, write, receive every event", Label(framework.GradeCore, framework.LabelPolling), func(ctx SpecContext) {
		chatOver(ctx, f, sioclient.Polling)
	})

	// TRANS-2 (strict, SHOULD): a client can connect over WebSocket directly.
	It("TRANS-2 WebSocket only: join, write, receive every event", Label(framework.GradeStrict, framework.LabelWebSocket), func(ctx SpecContext) {
		chatOver(ctx, f, sioclient.WebSocket)
	})

	// TRANS-3 (strict, SHOULD): a polling client can upgrade to WebSocket
	// and events keep flowing in order.
	It("TRANS-3 polling then upgrade to WebSocket: events keep flowing in order", Label(framework.GradeStrict, framework.LabelUpgrade), func(ctx SpecContext) {
		bob, _ := f.Joined(ctx, "bob", framework.Over(sioclient.Polling))
		alice := f.Connect(ctx, "alice", framework.Over(sioclient.Upgrade))
		hs := alice.Handshake()
		f.Verify(slices.Contains(hs.Upgrades, "websocket"), "the polling handshake offers the websocket upgrade", fmt.Sprintf("upgrades %q", hs.Upgrades))
		f.Verify(alice.Conn().Transport() == sioclient.WebSocket, "the client runs over websocket after the upgrade", string(alice.Conn().Transport()))
		alice.Join(ctx)
		bob.AwaitJoinOf(ctx, alice)
		var texts []string
		for i := range 5 {
			t := f.Text(fmt.Sprintf("seq%d", i))
			bob.Write(ctx, t)
			texts = append(texts, t)
		}
		var order []string
		for _, t := range texts {
			ev := alice.AwaitMessage(ctx, t)
			list := ev.Payload.MessagesList
			order = append(order, framework.Project(list[len(list)-1:], texts)...)
		}
		f.Verify(slices.Equal(order, texts), fmt.Sprintf("messageWritten events arrive in the order written: %q", texts), fmt.Sprintf("%q", order))
		reply := f.Text("reply")
		alice.Write(ctx, reply)
		bob.AwaitMessage(ctx, reply)
	})

	// TRANS-4 (info): the handshake's ping settings and maxPayload.
	It("TRANS-4 handshake settings: pingInterval, pingTimeout, maxPayload", Label(framework.GradeInfo), func(ctx SpecContext) {
		c := f.Connect(ctx, "probe", framework.Over(sioclient.Polling))
		hs := c.Handshake()
		maxPayload := "not announced (the handshake has no maxPayload)"
		if hs.MaxPayload > 0 {
			maxPayload = fmt.Sprintf("%d bytes", hs.MaxPayload)
		}
		f.Finding("pingInterval %s, pingTimeout %s (a silent client is dropped after about %s), maxPayload %s, upgrades %q",
			hs.PingInterval, hs.PingTimeout, hs.PingInterval+hs.PingTimeout, maxPayload, hs.Upgrades)
		if t, why := framework.AutoTransport(); t != "" {
			f.Finding("--transport auto: %s", why)
		}
		if c.Conn().RecoveryID() != "" {
			// Socket.IO's connectionStateRecovery: every event then ends with
			// an offset argument, which the client sets aside (PAY-1 judges
			// what the application emitted).
			f.Finding("the server offers connection state recovery (a pid in the CONNECT ack): events carry a trailing offset argument, set aside by the client")
		}
	})
})

// chatOver runs a whole chat over one transport: two clients join, each
// sees the other, one writes, both receive it, one leaves, the other sees
// it leave.
func chatOver(ctx SpecContext, f *framework.Framework, t sioclient.Transport) {
	GinkgoHelper()
	alice, _ := f.Joined(ctx, "alice", framework.Over(t))
	bob, bc := f.Joined(ctx, "bob", framework.Over(t))
	f.Verify(bc.Payload.Lists(alice.User) && bc.Payload.Lists(bob.User), "bob's connected lists alice and bob", fmt.Sprintf("%q", bc.Payload.Usernames()))
	alice.AwaitJoinOf(ctx, bob)
	for _, pair := range [][2]*framework.Client{{alice, bob}, {bob, alice}} {
		sender, other := pair[0], pair[1]
		text := f.Text("over-" + string(t))
		sender.Write(ctx, text)
		other.AwaitMessage(ctx, text)
		// The sender's own copy is MSG-1's to judge.
		sender.AwaitWritten(ctx, text)
	}
	f.Verify(alice.Conn().Transport() == t && bob.Conn().Transport() == t,
		fmt.Sprintf("both clients stayed on %s", t), fmt.Sprintf("alice %s, bob %s", alice.Conn().Transport(), bob.Conn().Transport()))
	// The transport must carry a disconnected; USER-3 judges its list.
	mark := alice.Mark()
	bob.Close()
	alice.AwaitAfter(ctx, mark, "disconnected")
}
