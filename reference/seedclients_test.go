package reference

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chatspec/chatspec/reference/store"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// dialAs dials a socket that sends cookie (a "chatspec_client=..." pair, or
// "" for none) with its handshake, as a browser that ran the init request
// does.
func dialAs(t *testing.T, r *Running, tr sioclient.Transport, name, cookie string) *client {
	t.Helper()
	h := http.Header{}
	if cookie != "" {
		h.Set("Cookie", cookie)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := sioclient.Dial(ctx, sioclient.Options{URL: r.URL(), Path: r.Server().cfg.Path, Transport: tr, Header: h})
	if err != nil {
		t.Fatalf("dial %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, name: name, Conn: c}
}

// seedPair opens the seed hook's two sockets for username with cookie:
// the first joins, the second never does.
func seedPair(t *testing.T, r *Running, tr sioclient.Transport, username, cookie string) (joined, writer *client) {
	t.Helper()
	joined = dialAs(t, r, tr, username, cookie)
	joined.emit(EventConnecting, map[string]any{"username": username})
	joined.expect(EventConnected, nil)
	writer = dialAs(t, r, tr, username+"-ws", cookie)
	return joined, writer
}

// initCookie makes the init request with the given Cookie header and
// returns the chatspec_client cookie the response sets ("" for none).
func initCookie(t *testing.T, r *Running, sent string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.URL()+"/api/socket", nil)
	if err != nil {
		t.Fatal(err)
	}
	if sent != "" {
		req.Header.Set("Cookie", sent)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("init request: status %d", resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == seedCookie {
			if !c.HttpOnly || c.Path != "/" || len(c.Value) != seedCookieLen {
				t.Errorf("init cookie %+v: want HttpOnly, Path=/, %d hex characters", c, seedCookieLen)
			}
			return c.Name + "=" + c.Value
		}
	}
	return ""
}

// SEC-2 with the mode off: the seed hook's write is refused, and the
// refusal says why and names both fixes.
func TestSeedClientsOff_RefusalExplains(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr sioclient.Transport) {
		r := startServer(t, nil)
		if got := initCookie(t, r, ""); got != "" {
			t.Errorf("init route set %q with --seed-clients off; want no cookie", got)
		}
		ann, ws := seedPair(t, r, tr, "ann", "")
		ws.emit(EventWriteMessage, map[string]any{"message": "hello", "username": "ann"})
		p := ws.expectError(EventWriteMessage, CodeNotJoined)
		for _, want := range []string{"never emitted connecting", "io() twice", "call it once", "--seed-clients"} {
			if !strings.Contains(p.Message, want) {
				t.Errorf("not_joined message %q does not say %q", p.Message, want)
			}
		}
		// Nothing was stored or broadcast: ann's next event is her barrier.
		ann.barrier()
	})
}

// SEED-1 with the mode on: a socket that never joined writes under the
// name its sibling (same address, same cookie) joined as; every joined
// socket receives it, attributed to that name.
func TestSeedClientsOn_SiblingWrites(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr sioclient.Transport) {
		r := startServer(t, func(c *Config) { c.SeedClients = true })
		cookie := initCookie(t, r, "")
		if cookie == "" {
			t.Fatal("init route set no chatspec_client cookie with --seed-clients")
		}
		if again := initCookie(t, r, cookie); again != "" {
			t.Errorf("init route replaced a valid cookie with %q; want it kept", again)
		}
		bob, _ := join(t, r, tr, "bob")
		ann, ws := seedPair(t, r, tr, "ann", cookie)
		bob.expect(EventJoined, nil)

		ws.emit(EventWriteMessage, map[string]any{"message": "hello from the second io()", "username": "ann"})
		want := store.Message{Username: "ann", Message: "hello from the second io()"}
		for _, c := range []*client{ann, bob, ws} {
			var m messagesPayload
			c.expect(EventMessageWritten, &m)
			if n := len(m.MessagesList); n == 0 || m.MessagesList[n-1] != want {
				t.Errorf("%s: messageWritten %+v, want it to end with %+v", c.name, m.MessagesList, want)
			}
		}
	})
}

// The tie is the client: another cookie, no cookie, a name the client does
// not hold, or a sibling that has left are all refused with not_joined.
func TestSeedClientsOn_RefusesWithoutTie(t *testing.T) {
	r := startServer(t, func(c *Config) { c.SeedClients = true })
	tr := sioclient.WebSocket
	mine, theirs := initCookie(t, r, ""), initCookie(t, r, "")
	if mine == "" || theirs == "" || mine == theirs {
		t.Fatalf("init cookies %q and %q: want two different ones", mine, theirs)
	}
	observer, _ := join(t, r, tr, "observer")
	ann, _ := seedPair(t, r, tr, "ann", mine)
	observer.expect(EventJoined, nil)

	refused := func(w *client, username, why string) {
		t.Helper()
		w.emit(EventWriteMessage, map[string]any{"message": why, "username": username})
		p := w.expectError(EventWriteMessage, CodeNotJoined)
		if !strings.Contains(p.Message, seedCookie) || !strings.Contains(p.Message, "wait for connected") {
			t.Errorf("%s: not_joined message %q: want it to name the cookie and the wait", why, p.Message)
		}
	}
	refused(dialAs(t, r, tr, "other-browser", theirs), "ann", "another browser's cookie")
	refused(dialAs(t, r, tr, "no-cookie", ""), "ann", "no cookie at all")
	sibling := dialAs(t, r, tr, "sibling", mine)
	refused(sibling, "observer", "a name this client does not hold")
	refused(sibling, "zed", "a name nobody holds (the sibling's join is still on the way)")

	// Once ann's joined socket has left, her sibling's tie is gone.
	ann.Close()
	var d usersPayload
	observer.expect(EventDisconnected, &d)
	sibling.expect(EventDisconnected, nil) // unjoined sockets get it too (JOIN-4's choice)
	refused(sibling, "ann", "the joined sibling has left")
	// None of the refused writes reached the observer.
	observer.barrier()
}

// SEC-1 still holds for joined sockets in seed-client mode, and a cookie
// that is not the server's format ties nothing.
func TestSeedClientsOn_JoinedSocketsKeepSEC1(t *testing.T) {
	r := startServer(t, func(c *Config) { c.SeedClients = true })
	tr := sioclient.Polling
	bad := seedCookie + "=not-hex-and-not-32-characters"
	if got := initCookie(t, r, bad); got == "" {
		t.Error("init route kept a malformed cookie; want a fresh one")
	}
	_, _ = seedPair(t, r, tr, "ann", bad)
	mallory, _ := join(t, r, tr, "mallory")
	mallory.emit(EventWriteMessage, map[string]any{"message": "forged", "username": "ann"})
	mallory.expectError(EventWriteMessage, CodeUsernameMismatch)
	// The malformed cookie counts as none: a cookie-less socket from the
	// same address is the same client, so it may write as ann.
	w := dialAs(t, r, tr, "cookieless", "")
	w.emit(EventWriteMessage, map[string]any{"message": "tied by address", "username": "ann"})
	var m messagesPayload
	w.expect(EventMessageWritten, &m)
}
