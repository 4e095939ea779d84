package reference

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Seed-style clients (CONTRACT.md SEED-1, Config.SeedClients).
//
// The seed's useSocket hook calls io() twice, so each page holds two
// sockets: one emits connecting and receives the chat, the other never
// joins and carries every writeMessage. SEC-2 refuses those writes. With
// SeedClients on, a write from a socket that never joined is accepted when
// its username is held, at that moment, by a joined socket of the same
// client. "The same client" is the pair (remote IP address, value of the
// seedCookie cookie, empty when absent):
//
//   - In a browser, the seed's `await fetch('/api/socket')` runs before both
//     io() calls, so the cookie the init route sets is stored before either
//     handshake starts, and both handshakes (polling XHR and the WebSocket
//     upgrade request) carry it. Its 128 random bits tie the two sockets of
//     one browser and nobody else's, even behind a shared NAT address. A
//     cookie set on the Engine.IO handshake instead would race: the two
//     io() handshakes run concurrently, so each could get a different one.
//   - Clients without a cookie jar shared with their fetch (Node's
//     socket.io-client, chatspec's own Go client) send no cookie: they are
//     tied by address alone, so any cookie-less socket from the same
//     address can write under a name another cookie-less socket from that
//     address joined as. That is weaker, and said so in the README.
//
// The tie is per node: in a cluster, the two sockets of one page must reach
// the same node (sticky sessions), or the write is refused.
//
// A write that arrives before its sibling's join (the two io() calls race
// their handshakes) is refused at once, with not_joined and a message that
// says so, rather than held: holding it would stall every later event of
// that socket. The seed's page only writes once the user typed, long after
// its connected arrived.

// seedCookie is the cookie the init route sets in seed-client mode.
const seedCookie = "chatspec_client"

// seedCookieLen is the length of a valid seedCookie value: 16 random
// bytes in hex. Other values are ignored, so a client cannot make the
// server hold arbitrary strings.
const seedCookieLen = 32

// seedHold is one (client, username) pair held by joined sockets.
type seedHold struct {
	client   string
	username string
}

// seedTies tracks which usernames each client's joined sockets hold. It is
// guarded by Server.chatMu.
type seedTies struct {
	held    map[seedHold]int // number of joined sockets holding it
	clients map[*session]string
}

func newSeedTies() *seedTies {
	return &seedTies{held: make(map[seedHold]int), clients: make(map[*session]string)}
}

// seedClientOf returns the client a socket belongs to: its IP address and
// its seedCookie value (empty when it sent none or an invalid one).
func seedClientOf(sock *socket.Socket, ip string) string {
	hs := sock.Handshake()
	if hs == nil {
		return ip + "|"
	}
	return ip + "|" + validSeedCookie(hs.Headers.Header())
}

func validSeedCookie(h http.Header) string {
	c, err := (&http.Request{Header: h}).Cookie(seedCookie)
	if err != nil || len(c.Value) != seedCookieLen {
		return ""
	}
	if _, err := hex.DecodeString(c.Value); err != nil {
		return ""
	}
	return c.Value
}

// seedJoined records that sess joined. Call with chatMu held, after
// sess.username is set.
func (s *Server) seedJoined(sess *session) {
	if s.seed == nil {
		return
	}
	client := seedClientOf(sess.sock, sess.ip)
	s.seed.clients[sess] = client
	s.seed.held[seedHold{client, sess.username}]++
}

// seedLeft forgets a joined sess. Call with chatMu held.
func (s *Server) seedLeft(sess *session) {
	if s.seed == nil {
		return
	}
	client, ok := s.seed.clients[sess]
	if !ok {
		return
	}
	delete(s.seed.clients, sess)
	h := seedHold{client, sess.username}
	if s.seed.held[h]--; s.seed.held[h] <= 0 {
		delete(s.seed.held, h)
	}
}

// seedOwner returns the username an unjoined sess may write under: the
// payload's username when a joined socket of the same client holds it,
// else "". Call with chatMu held.
func (s *Server) seedOwner(sess *session, args []any) string {
	if s.seed == nil || sess.username != "" || len(args) == 0 {
		return ""
	}
	obj, ok := args[0].(map[string]any)
	if !ok {
		return ""
	}
	name, ok := obj["username"].(string)
	if !ok || name == "" {
		return ""
	}
	if s.seed.held[seedHold{seedClientOf(sess.sock, sess.ip), name}] > 0 {
		return name
	}
	return ""
}

// notJoinedMessage is SEC-2's refusal when seed-client mode is off,
// worded for the client most likely to hit it: the seed's, which writes on
// a second socket that never joined.
const notJoinedMessage = "this socket never emitted connecting; if your client calls io() twice (the seed's useSocket does), call it once, or start the server with --seed-clients"

// seedNotJoined is SEC-2's refusal in seed-client mode: no joined socket of
// the writer's client holds the payload's username (yet).
func (s *Server) seedNotJoined(args []any) *rejection {
	name := ""
	if obj, ok := args[0].(map[string]any); ok {
		name, _ = obj["username"].(string)
	}
	return reject(CodeNotJoined, "this socket never emitted connecting, and no joined socket of the same client (same address and %s cookie from the init request) holds %q; join first, or wait for connected on the joining socket before writing on this one",
		seedCookie, clip(name, 80))
}

// issueSeedCookie sets the seedCookie on an init response in seed-client
// mode, unless the request already carries a valid one (a second tab of
// the same browser keeps its tie).
func (s *Server) issueSeedCookie(w http.ResponseWriter, r *http.Request) {
	if s.seed == nil || validSeedCookie(r.Header) != "" {
		return
	}
	var b [seedCookieLen / 2]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	http.SetCookie(w, &http.Cookie{
		Name:     seedCookie,
		Value:    hex.EncodeToString(b[:]),
		Path:     "/",
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
}
