package reference

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/chatspec/chatspec/reference/store"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// ERR-1, ROB-1, ROB-2, SEC-1, SEC-2, SEC-3: every kind of bad input gets a
// chatError with the right code on the offending socket only, and changes
// no state.
func TestBadInput_ERR1_ROB1_ROB2_SEC1_SEC2_SEC3(t *testing.T) {
	long := strings.Repeat("x", 4097)
	cases := []struct {
		name, raw, event, code string
	}{
		{"no payload", `2["writeMessage"]`, EventWriteMessage, CodeInvalidPayload},
		{"null", `2["writeMessage",null]`, EventWriteMessage, CodeInvalidPayload},
		{"number", `2["writeMessage",42]`, EventWriteMessage, CodeInvalidPayload},
		{"string", `2["writeMessage","hi"]`, EventWriteMessage, CodeInvalidPayload},
		{"array", `2["writeMessage",["hi","ann"]]`, EventWriteMessage, CodeInvalidPayload},
		{"message not a string", `2["writeMessage",{"message":1,"username":"ann"}]`, EventWriteMessage, CodeInvalidPayload},
		{"message missing", `2["writeMessage",{"username":"ann"}]`, EventWriteMessage, CodeInvalidPayload},
		{"username missing", `2["writeMessage",{"message":"hi"}]`, EventWriteMessage, CodeInvalidPayload},
		{"nested object", `2["writeMessage",{"message":{"a":{"b":{"c":[[[{}]]]}}},"username":"ann"}]`, EventWriteMessage, CodeInvalidPayload},
		{"SEC-1 other username", `2["writeMessage",{"message":"hi","username":"wat"}]`, EventWriteMessage, CodeUsernameMismatch},
		{"SEC-3 message too long", `2["writeMessage",{"message":"` + long + `","username":"ann"}]`, EventWriteMessage, CodeMessageTooLong},
		{"connecting again", `2["connecting",{"username":"ann"}]`, EventConnecting, CodeInvalidPayload},
		{"unknown event", `2["deleteEverything",{}]`, "deleteEverything", CodeUnknownEvent},
		{"numeric event name", `2[42,{}]`, "42", CodeUnknownEvent},
	}
	unjoined := []struct {
		name, raw, event, code string
	}{
		{"SEC-2 write before joining", `2["writeMessage",{"message":"hi","username":"ann"}]`, EventWriteMessage, CodeNotJoined},
		{"connecting without payload", `2["connecting"]`, EventConnecting, CodeInvalidPayload},
		{"connecting null", `2["connecting",null]`, EventConnecting, CodeInvalidPayload},
		{"username missing", `2["connecting",{}]`, EventConnecting, CodeInvalidPayload},
		{"username not a string", `2["connecting",{"username":7}]`, EventConnecting, CodeInvalidPayload},
		{"username empty", `2["connecting",{"username":""}]`, EventConnecting, CodeInvalidUsername},
		{"SEC-3 username too long", `2["connecting",{"username":"` + strings.Repeat("u", 65) + `"}]`, EventConnecting, CodeInvalidUsername},
		{"username with newline", `2["connecting",{"username":"a\nb"}]`, EventConnecting, CodeInvalidUsername},
	}
	forEachTransport(t, func(t *testing.T, tr sioclient.Transport) {
		r := startServer(t, nil)
		ann, _ := join(t, r, tr, "ann")
		wat, _ := join(t, r, tr, "wat")
		ann.expect(EventJoined, nil)
		idle := dialIdle(t, r, tr)

		for _, tc := range cases {
			if err := ann.SendRaw(t.Context(), tc.raw); err != nil {
				t.Fatalf("%s: send: %v", tc.name, err)
			}
			if p := ann.expectError(tc.event, tc.code); tc.code == CodeMessageTooLong && len(p.Message) > 200 {
				t.Errorf("%s: chatError message echoes the input (%d bytes)", tc.name, len(p.Message))
			}
		}
		for _, tc := range unjoined {
			if err := idle.SendRaw(t.Context(), tc.raw); err != nil {
				t.Fatalf("%s: send: %v", tc.name, err)
			}
			idle.expectError(tc.event, tc.code)
		}

		// ERR-1 acks: negative with the code, positive on success.
		if got := ann.ack(EventWriteMessage, map[string]any{"message": "hi", "username": "wat"}); got.OK || got.Code != CodeUsernameMismatch || got.Message == "" {
			t.Errorf("ERR-1: ack of a refused write = %+v", got)
		}
		ann.expectError(EventWriteMessage, CodeUsernameMismatch)
		if got := ann.ack("nope"); got.OK || got.Code != CodeUnknownEvent {
			t.Errorf("ERR-1: ack of an unknown event = %+v", got)
		}
		ann.expectError("nope", CodeUnknownEvent)
		if got := ann.ack(EventWriteMessage, map[string]any{"message": "valid", "username": "ann"}); !got.OK || got.Code != "" {
			t.Errorf("ERR-1: ack of an accepted write = %+v", got)
		}
		want := []store.Message{{Username: "ann", Message: "valid"}}
		for _, c := range []*client{ann, wat, idle} {
			var m messagesPayload
			c.expect(EventMessageWritten, &m)
			if diff := cmp.Diff(want, m.MessagesList); diff != "" {
				t.Fatalf("ROB-2: %s's list after bad input (-want +got):\n%s", c.name, diff)
			}
		}
		// ERR-1 "on that socket only": wat saw none of ann's chatErrors.
		wat.barrier()

		// ROB-1: malformed packets end (at most) the sender's connection.
		for _, raw := range []string{`2[`, `2"x"`, `9`, `2["writeMessage",{"message":"x","username":"ann"}`} {
			bad := dial(t, r, tr)
			_ = bad.SendRaw(t.Context(), raw)
			bad.Close()
		}
		ann.write("after")
		want = append(want, store.Message{Username: "ann", Message: "after"})
		var m messagesPayload
		wat.expect(EventMessageWritten, &m)
		if diff := cmp.Diff(want, m.MessagesList); diff != "" {
			t.Fatalf("ROB-1: list after malformed packets (-want +got):\n%s", diff)
		}
		_, got := join(t, r, tr, "late")
		if diff := cmp.Diff([]string{"ann", "wat", "late"}, names(got.ConnectedUserList)); diff != "" {
			t.Fatalf("ROB-2: user list after bad input (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, got.MessagesList); diff != "" {
			t.Fatalf("ROB-2: history after bad input (-want +got):\n%s", diff)
		}
		if n := metricValue(r.Server().m.rejected.WithLabelValues(CodeInvalidPayload)); n < 10 {
			t.Errorf("rejected_events_total{code=invalid_payload} = %g, want at least 10", n)
		}
	})
}

// fakeClock is a settable clock for the rate limiter.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// SEC-4: beyond the burst, writeMessage is refused with rate_limited and
// not stored; tokens come back at the configured rate.
func TestRateLimit_SEC4(t *testing.T) {
	clock := &fakeClock{}
	clock.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	r := startServer(t, func(c *Config) { c.Rate, c.RateBurst = 2, 3 }, withClock(clock.now))
	ann, _ := join(t, r, sioclient.WebSocket, "ann")
	for i := range 3 {
		ann.write(fmt.Sprint(i))
		ann.expect(EventMessageWritten, nil)
	}
	ann.write("dropped")
	ann.expectError(EventWriteMessage, CodeRateLimited)
	if got := ann.ack(EventWriteMessage, map[string]any{"message": "dropped too", "username": "ann"}); got.OK || got.Code != CodeRateLimited {
		t.Fatalf("SEC-4: ack beyond the rate = %+v", got)
	}
	ann.expectError(EventWriteMessage, CodeRateLimited)
	clock.advance(500 * time.Millisecond) // one token at 2/s
	ann.write("3")
	var m messagesPayload
	ann.expect(EventMessageWritten, &m)
	want := []store.Message{{Username: "ann", Message: "0"}, {Username: "ann", Message: "1"}, {Username: "ann", Message: "2"}, {Username: "ann", Message: "3"}}
	if diff := cmp.Diff(want, m.MessagesList); diff != "" {
		t.Fatalf("SEC-4: rate-limited messages were stored (-want +got):\n%s", diff)
	}
	if n := metricValue(r.Server().m.rejected.WithLabelValues(CodeRateLimited)); n != 2 {
		t.Errorf("rejected_events_total{code=rate_limited} = %g, want 2", n)
	}
}

// HIST-1: writers on several sockets at once; every socket sees every list,
// each list extends the previous one by exactly the next message, and every
// socket ends with the same history, each writer's messages in send order.
func TestConcurrentOrder_HIST1(t *testing.T) {
	const writers, perWriter = 4, 30
	r := startServer(t, func(c *Config) { c.Rate = 0; c.HistoryLimit = writers * perWriter })
	clients := make([]*client, writers)
	for i := range clients {
		tr := allTransports[i%len(allTransports)]
		clients[i], _ = join(t, r, tr, fmt.Sprintf("w%d", i))
		for _, earlier := range clients[:i] {
			earlier.expect(EventJoined, nil)
		}
	}
	finals := make([][]store.Message, writers)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			for k := range perWriter {
				if err := c.Emit(t.Context(), EventWriteMessage, map[string]any{"message": fmt.Sprintf("%s#%d", c.name, k), "username": c.name}); err != nil {
					t.Errorf("%s: emit: %v", c.name, err)
					return
				}
			}
		})
		wg.Go(func() {
			var prev []store.Message
			for range writers * perWriter {
				ev, err := c.Next(t.Context())
				if err != nil {
					t.Errorf("%s: %v", c.name, err)
					return
				}
				var m messagesPayload
				if ev.Name != EventMessageWritten || ev.Decode(0, &m) != nil {
					t.Errorf("%s: unexpected %s %s", c.name, ev.Name, clip(string(ev.Args), 200))
					return
				}
				if len(m.MessagesList) != len(prev)+1 || !slices.Equal(prev, m.MessagesList[:len(prev)]) {
					t.Errorf("HIST-1: %s got a list of %d that does not extend the previous one of %d", c.name, len(m.MessagesList), len(prev))
					return
				}
				prev = m.MessagesList
			}
			finals[i] = prev
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i := 1; i < writers; i++ {
		if diff := cmp.Diff(finals[0], finals[i]); diff != "" {
			t.Fatalf("HIST-1: %s and %s ended with different histories:\n%s", clients[0].name, clients[i].name, diff)
		}
	}
	next := map[string]int{}
	for _, m := range finals[0] {
		if want := fmt.Sprintf("%s#%d", m.Username, next[m.Username]); m.Message != want {
			t.Fatalf("HIST-1: %s's messages out of send order: got %q, want %q", m.Username, m.Message, want)
		}
		next[m.Username]++
	}
}

// RECON-1: a client whose transport drops comes back as a new socket with
// the same username; the others see disconnected without it, then joined.
func TestReconnect_RECON1(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr sioclient.Transport) {
		r := startServer(t, nil)
		bob, _ := join(t, r, tr, "bob")
		ann, _ := join(t, r, tr, "ann")
		bob.expect(EventJoined, nil)
		ann.write("before the drop")
		ann.expect(EventMessageWritten, nil)
		bob.expect(EventMessageWritten, nil)

		ann.Abort()
		var u usersPayload
		bob.expect(EventDisconnected, &u)
		if diff := cmp.Diff([]string{"bob"}, names(u.ConnectedUserList)); diff != "" {
			t.Fatalf("RECON-1: disconnected list (-want +got):\n%s", diff)
		}
		_, got := join(t, r, tr, "ann")
		want := connectedPayload{
			ConnectedUserList: []store.User{{Username: "bob"}, {Username: "ann"}},
			MessagesList:      []store.Message{{Username: "ann", Message: "before the drop"}},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("RECON-1: connected after reconnect (-want +got):\n%s", diff)
		}
		bob.expect(EventJoined, &u)
		if diff := cmp.Diff([]string{"bob", "ann"}, names(u.ConnectedUserList)); diff != "" {
			t.Fatalf("RECON-1: joined list (-want +got):\n%s", diff)
		}
	})
}

// RECON-2, USER-4: the new socket joins before the server notices that the
// old one went silent; the old session's timeout later removes nothing and
// sends nothing.
func TestSilentDropAfterRejoin_RECON2(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr sioclient.Transport) {
		r := startServer(t, func(c *Config) { c.PingInterval, c.PingTimeout = 200*time.Millisecond, 300*time.Millisecond })
		bob, _ := join(t, r, tr, "bob")
		old, _ := join(t, r, tr, "ann")
		bob.expect(EventJoined, nil)
		old.Silence()
		_, got := join(t, r, tr, "ann")
		if diff := cmp.Diff([]string{"bob", "ann"}, names(got.ConnectedUserList)); diff != "" {
			t.Fatalf("RECON-2: list after the new socket joined (-want +got):\n%s", diff)
		}
		bob.expect(EventJoined, nil)
		conns := r.Server().m.connections
		waitUntil(t, "the server to drop the silent socket", func() bool { return metricValue(conns) == 2 })
		bob.barrier() // no disconnected came before this
		_, got = join(t, r, tr, "cat")
		if diff := cmp.Diff([]string{"bob", "ann", "cat"}, names(got.ConnectedUserList)); diff != "" {
			t.Fatalf("RECON-2: list after the old session timed out (-want +got):\n%s", diff)
		}
	})
}

// The library can fire disconnect twice for one socket (measured ~1% under
// churn). Firing it again by hand must change nothing: no user removed, no
// broadcast, no gauge driven negative.
func TestDoubleDisconnectIsHarmless(t *testing.T) {
	r := startServer(t, nil)
	srv := r.Server()
	bob, _ := join(t, r, sioclient.WebSocket, "bob")
	ann1, _ := join(t, r, sioclient.WebSocket, "ann")
	bob.expect(EventJoined, nil)
	ann2, _ := join(t, r, sioclient.WebSocket, "ann")
	bob.expect(EventJoined, nil)
	ann1.expect(EventJoined, nil)

	sock, ok := srv.io.Sockets().Sockets().Load(socket.SocketId(ann1.ID()))
	if !ok {
		t.Fatalf("no server socket for %s", ann1.ID())
	}
	ann1.Close()
	waitUntil(t, "ann's first socket to be gone", func() bool { return srv.io.Sockets().Sockets().Len() == 2 })
	sock.EmitReserved("disconnect", "duplicate after the real one")
	sock.EmitReserved("disconnect", "and again")

	bob.barrier() // USER-4: ann still holds a socket; nothing was sent
	ann2.barrier()
	if got := metricValue(srv.m.connections); got != 2 {
		t.Errorf("connections gauge = %g after duplicate disconnects, want 2", got)
	}
	_, got := join(t, r, sioclient.WebSocket, "cat")
	if diff := cmp.Diff([]string{"bob", "ann", "cat"}, names(got.ConnectedUserList)); diff != "" {
		t.Fatalf("list after duplicate disconnects (-want +got):\n%s", diff)
	}
}
