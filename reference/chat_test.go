package reference

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/chatspec/chatspec/reference/store"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// JOIN-1, JOIN-2, JOIN-3, JOIN-4, PAY-1 over every transport.
func TestJoin_JOIN1_JOIN2_JOIN3(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr sioclient.Transport) {
		r := startServer(t, nil)
		idle := dialIdle(t, r, tr) // connected, never joins (JOIN-4)

		ann, got := join(t, r, tr, "ann")
		if diff := cmp.Diff(connectedPayload{ConnectedUserList: []store.User{{Username: "ann"}}, MessagesList: []store.Message{}}, got); diff != "" {
			t.Errorf("JOIN-2: ann's connected (-want +got):\n%s", diff)
		}
		var j usersPayload
		idle.expect(EventJoined, &j)

		bob, got := join(t, r, tr, "bob")
		if want := []string{"ann", "bob"}; !cmp.Equal(names(got.ConnectedUserList), want) {
			t.Errorf("JOIN-2: bob's connected list %v, want %v", names(got.ConnectedUserList), want)
		}
		ann.expect(EventJoined, &j)
		if want := []string{"ann", "bob"}; !cmp.Equal(names(j.ConnectedUserList), want) {
			t.Errorf("JOIN-3: ann's joined list %v, want %v", names(j.ConnectedUserList), want)
		}
		idle.expect(EventJoined, nil)
		// JOIN-1: nothing of bob's own join reaches bob as joined.
		bob.barrier()
		// JOIN-1: connected exactly once; ann got joined exactly once.
		ann.barrier()
	})
}

// USER-1, USER-2, USER-3, USER-4: two sockets per username, join order,
// and removal only with the last socket.
func TestUserList_USER1_USER2_USER3_USER4(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr sioclient.Transport) {
		r := startServer(t, nil)
		ann1, _ := join(t, r, tr, "ann")
		bob, _ := join(t, r, tr, "bob")
		ann1.expect(EventJoined, nil)

		ann2, got := join(t, r, tr, "ann") // a second tab
		if want := []string{"ann", "bob"}; !cmp.Equal(names(got.ConnectedUserList), want) {
			t.Fatalf("USER-1/USER-2: second ann's list %v, want %v", names(got.ConnectedUserList), want)
		}
		var j usersPayload
		bob.expect(EventJoined, &j)
		if want := []string{"ann", "bob"}; !cmp.Equal(names(j.ConnectedUserList), want) {
			t.Fatalf("USER-1: bob's joined list %v, want %v", names(j.ConnectedUserList), want)
		}
		ann1.expect(EventJoined, nil)

		// USER-4: one of ann's sockets leaves; the reference sends nothing.
		ann1.Close()
		cat, _ := join(t, r, tr, "cat")
		bob.expect(EventJoined, &j) // a disconnected before this would fail here
		if want := []string{"ann", "bob", "cat"}; !cmp.Equal(names(j.ConnectedUserList), want) {
			t.Fatalf("USER-4: after one ann socket left, list %v, want %v", names(j.ConnectedUserList), want)
		}
		ann2.expect(EventJoined, nil)

		// USER-3: the last ann socket leaves.
		ann2.Close()
		for _, c := range []*client{bob, cat} {
			c.expect(EventDisconnected, &j)
			if want := []string{"bob", "cat"}; !cmp.Equal(names(j.ConnectedUserList), want) {
				t.Fatalf("USER-3: %s's disconnected list %v, want %v", c.name, names(j.ConnectedUserList), want)
			}
		}
		// USER-2: ann comes back at the end.
		_, got = join(t, r, tr, "ann")
		if want := []string{"bob", "cat", "ann"}; !cmp.Equal(names(got.ConnectedUserList), want) {
			t.Fatalf("USER-2: returning ann's list %v, want %v", names(got.ConnectedUserList), want)
		}
	})
}

// USER-5: a socket that never joined removes nobody, and the reference
// sends nothing when it goes.
func TestUnjoinedDisconnect_USER5(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr sioclient.Transport) {
		r := startServer(t, nil)
		idle := dialIdle(t, r, tr)
		ann, _ := join(t, r, tr, "ann")
		idle.expect(EventJoined, nil)
		idle.Close()
		waitUntil(t, "the idle socket to be gone", func() bool { return r.Server().io.Sockets().Sockets().Len() == 1 })
		ann.barrier()
		_, got := join(t, r, tr, "bob")
		if want := []string{"ann", "bob"}; !cmp.Equal(names(got.ConnectedUserList), want) {
			t.Fatalf("USER-5: list %v, want %v", names(got.ConnectedUserList), want)
		}
	})
}

// MSG-1, MSG-2, HIST-2, HIST-3, PAY-3: everyone gets each message, the
// sender included; texts come back exactly; late joiners get history.
func TestMessages_MSG1_MSG2_HIST2_HIST3_PAY3(t *testing.T) {
	texts := []string{
		"hello",
		`<b>bold</b> & "quotes" 'single' \backslash`,
		"emoji 😀🎉 and Привет, 你好, مرحبا",
		"line one\nline two\ttab",
		"", // accepted: the contract does not call an empty text bad input
	}
	forEachTransport(t, func(t *testing.T, tr sioclient.Transport) {
		r := startServer(t, nil)
		idle := dialIdle(t, r, tr)
		ann, _ := join(t, r, tr, "ann")
		idle.expect(EventJoined, nil)
		bob, _ := join(t, r, tr, "bob")
		ann.expect(EventJoined, nil)
		idle.expect(EventJoined, nil)

		var want []store.Message
		for i, text := range texts {
			from := []*client{ann, bob}[i%2]
			from.write(text)
			want = append(want, store.Message{Username: from.name, Message: text})
			for _, c := range []*client{ann, bob, idle} {
				var m messagesPayload
				c.expect(EventMessageWritten, &m)
				if diff := cmp.Diff(want, m.MessagesList); diff != "" {
					t.Fatalf("MSG-2/HIST-2/PAY-3: %s's list after message %d (-want +got):\n%s", c.name, i, diff)
				}
			}
		}
		_, got := join(t, r, tr, "cat")
		if diff := cmp.Diff(want, got.MessagesList); diff != "" {
			t.Fatalf("HIST-3: late joiner's history (-want +got):\n%s", diff)
		}
	})
}

// HIST-4: history keeps the newest HistoryLimit messages, in order.
func TestHistoryCap_HIST4(t *testing.T) {
	r := startServer(t, func(c *Config) { c.HistoryLimit = 3 })
	ann, _ := join(t, r, sioclient.WebSocket, "ann")
	var m messagesPayload
	for i := range 5 {
		ann.write(string(rune('a' + i)))
		ann.expect(EventMessageWritten, &m)
	}
	want := []store.Message{{Username: "ann", Message: "c"}, {Username: "ann", Message: "d"}, {Username: "ann", Message: "e"}}
	if diff := cmp.Diff(want, m.MessagesList); diff != "" {
		t.Fatalf("HIST-4: capped list (-want +got):\n%s", diff)
	}
	_, got := join(t, r, sioclient.WebSocket, "bob")
	if diff := cmp.Diff(want, got.MessagesList); diff != "" {
		t.Fatalf("HIST-4: late joiner's capped history (-want +got):\n%s", diff)
	}
}

// A client that emits the moment it sees CONNECT (as the seed does) must not
// be dropped. zishang520 v3.0.6 sends CONNECT before it records the socket
// and closes the connection with "invalid state" if the event wins the race
// (about 1 join in 50 here); gate.go holds the event until the socket is
// recorded. Without the gate this test fails nearly every run.
func TestEmitRightAfterConnect_CONN1(t *testing.T) {
	r := startServer(t, func(c *Config) { c.Rate = 0 })
	for i := range 150 {
		c := dial(t, r, sioclient.WebSocket)
		c.emit(EventConnecting, map[string]any{"username": "ann"})
		// The previous ann's disconnected may come first (USER-3, JOIN-4).
		ctx, cancel := context.WithTimeout(t.Context(), waitFor)
		_, err := c.NextNamed(ctx, EventConnected)
		cancel()
		if err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
		c.Abort() // Close waits ~100 ms for the websocket closing handshake
	}
}
