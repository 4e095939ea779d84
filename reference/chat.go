package reference

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/chatspec/chatspec/reference/store"
)

// everyone is the room every connected socket joins in onConnection, and
// the target of every broadcast. Broadcasting to the namespace instead
// (io.Emit) would race with the library's connect: it adds a socket to the
// namespace's rooms before it writes the socket's CONNECT reply, so a
// concurrent broadcast could reach a client before its CONNECT, which
// Socket.IO v5 forbids. A socket joins this room only after its CONNECT
// was written, and before the server handles its first event: a socket
// that has just connected may miss a broadcast sent at that moment, which
// the contract allows (JOIN-4, MSG-1), but a joined socket never does. A
// room also crosses nodes with every adapter the library has.
const everyone socket.Room = "chatspec:everyone"

// session is the server's view of one socket.
type session struct {
	sock    *socket.Socket
	id      string
	ip      string
	limiter *tokenBucket
	// release gives the socket's connection slot back; it runs once, on
	// whichever comes first of the socket's disconnect and its
	// transport's close (a socket admitted but never connected fires only
	// the latter).
	release func()

	// Guarded by Server.chatMu.
	username string // set once the socket has joined
	closed   bool   // the socket disconnected; it can never join again
}

// admit is the namespace middleware: it enforces MaxConnections and
// MaxConnectionsPerIP before a socket connects, refusing with a
// CONNECT_ERROR whose message names the cap.
func (s *Server) admit(sock *socket.Socket, next func(*socket.ExtendedError)) {
	ip := hostOf(sock.Handshake().Address)
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		s.releaseGate(sock.Conn().Id())
		next(socket.NewExtendedError("server shutting down", map[string]any{"code": "shutting_down"}))
		return
	}
	if err := s.conns.acquire(ip); err != nil {
		reason := "per_ip"
		if total, _ := s.conns.count(ip); s.cfg.MaxConnections > 0 && total >= s.cfg.MaxConnections {
			reason = "total"
		}
		s.m.refusedConnections.WithLabelValues(reason).Inc()
		s.log.Info("connection refused", "ip", ip, "reason", err.Error())
		s.releaseGate(sock.Conn().Id())
		next(socket.NewExtendedError(err.Error(), map[string]any{"code": "too_many_connections"}))
		return
	}
	sess := &session{
		sock:    sock,
		id:      string(sock.Id()),
		ip:      ip,
		limiter: newTokenBucket(s.cfg.Rate, s.cfg.RateBurst, s.now),
	}
	sess.release = sync.OnceFunc(func() {
		s.conns.release(ip)
		s.output.forget(sess)
	})
	sock.SetData(sess)
	if err := sock.Conn().Once("close", func(...any) { sess.release() }); err != nil {
		sess.release()
		s.releaseGate(sock.Conn().Id())
		next(socket.NewExtendedError("server error: cannot watch the transport", nil))
		return
	}
	next(nil)
}

// onConnection wires one connected socket. The library runs a socket's
// incoming events one at a time on that socket's queue, after this
// handler; so every chat event is handled in the order the socket sent it.
func (s *Server) onConnection(args ...any) {
	sock, ok := firstArg[*socket.Socket](args)
	if !ok {
		s.log.Error("connection event without a socket", "args", len(args))
		return
	}
	// The library has recorded the socket under its namespace before it
	// fires "connection": packets the gate held may go on once the
	// handlers below are in place.
	defer s.releaseGate(sock.Conn().Id())
	sess, ok := sock.Data().(*session)
	if !ok {
		// Only reachable if admit did not run (a recovered session that
		// skips middleware); connection state recovery is off.
		s.log.Error("socket connected without admission", "sid", sock.Id())
		sock.Disconnect(true)
		return
	}
	s.log.Debug("socket connected", "sid", sess.id, "ip", sess.ip, "transport", sock.Conn().Transport().Name())

	var once sync.Once
	disconnect := func(reason ...any) {
		// The library can fire disconnect twice for one socket; only the
		// first counts.
		once.Do(func() {
			s.m.connections.Dec()
			sess.release()
			// Run the leave off the library's goroutine: disconnect can
			// fire from inside a write that chatMu's holder started, and
			// taking chatMu there would deadlock.
			s.pending.add()
			go func() {
				defer s.pending.done()
				s.handleDisconnect(sess, reasonOf(reason))
			}()
		})
	}
	if err := sock.On("disconnect", disconnect); err != nil {
		s.log.Error("registering disconnect handler", "sid", sess.id, "err", err)
		sock.Disconnect(true)
		return
	}
	// The library refuses some packets itself (a reserved event name such
	// as "connect" or "error", a binary frame nobody announced, too many
	// attachments, JSON it cannot parse) and then closes the connection.
	// Say why first, so the offender sees more than a dropped socket.
	if err := sock.On("error", func(args ...any) { s.refusePacket(sess, args) }); err != nil {
		s.log.Error("registering error handler", "sid", sess.id, "err", err)
	}
	s.m.connections.Inc()
	sock.OnAny(func(args ...any) { s.handleEvent(sess, args) })
	sock.Join(everyone)
	if sock.Disconnected() {
		// It dropped before the handler was registered: nothing will fire.
		disconnect("disconnected during connect")
	}
}

// handleEvent dispatches one client event. It never panics: a bug in a
// handler is logged and reported to the client as internal_error.
func (s *Server) handleEvent(sess *session, raw []any) {
	args, ack := splitAck(raw)
	name, isString := eventName(args)
	if len(args) > 0 {
		args = args[1:]
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in event handler", "sid", sess.id, "event", clip(name, 64), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			s.refuse(sess, name, ack, reject(CodeInternal, "the server failed to handle this event"))
		}
	}()
	switch {
	case isString && name == EventConnecting:
		s.handleConnecting(sess, args, ack)
	case isString && name == EventWriteMessage:
		s.handleWriteMessage(sess, args, ack)
	case isString && socket.SOCKET_RESERVED_EVENTS.Has(name):
		// The parser already refuses reserved names; never act on one.
	default:
		s.refuse(sess, name, ack, reject(CodeUnknownEvent, "unknown event %q: this server handles connecting and writeMessage", clip(name, 64)))
	}
}

// handleConnecting joins the socket (JOIN-1..3, USER-1, USER-2, HIST-3).
func (s *Server) handleConnecting(sess *session, args []any, ack ackFunc) {
	username, rej := parseConnecting(args, s.cfg.MaxUsernameLen)
	if rej != nil {
		s.refuse(sess, EventConnecting, ack, rej)
		return
	}
	s.chatMu.Lock()
	defer s.chatMu.Unlock()
	if sess.closed {
		return // it left while this event waited for the lock
	}
	if sess.username != "" {
		s.refuse(sess, EventConnecting, ack, reject(CodeInvalidPayload, "already joined as %q; reconnect to change username", sess.username))
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.StoreTimeout)
	defer cancel()
	w := s.expectChange(sess) // nil without a change feed (cluster.go)
	users, history, added, err := s.store.Join(ctx, username, sess.id)
	if err != nil {
		s.dropChange(w)
		s.storeFailed(sess, EventConnecting, ack, err)
		return
	}
	sess.username = username
	s.seedJoined(sess)
	s.m.users.Set(float64(len(users)))
	s.log.Debug("joined", "sid", sess.id, "username", username, "new_user", added, "users", len(users))
	// JOIN-3 to everyone else (JOIN-4: like the seed, sockets that have
	// not joined get it too), then JOIN-1/2 to the joiner. In this order,
	// once the joiner has its connected every other socket has its joined
	// queued, so a client that connects after that never sees this join.
	// With a change feed, applyChange sends both, in the feed's order.
	if w != nil {
		s.awaitChange(w, func() {
			s.emit(sess, EventConnected, map[string]any{"connectedUserList": users, "messagesList": history})
		})
		ackOK(ack)
		return
	}
	if err := sess.sock.To(everyone).Emit(EventJoined, map[string]any{"connectedUserList": users}); err != nil {
		s.log.Error("broadcasting joined", "sid", sess.id, "err", err)
	}
	s.emit(sess, EventConnected, map[string]any{"connectedUserList": users, "messagesList": history})
	ackOK(ack)
}

// handleWriteMessage appends and broadcasts a message (MSG-1, MSG-2,
// HIST-1, HIST-2) after the SEC-4, SEC-2, SEC-1 and SEC-3 checks.
func (s *Server) handleWriteMessage(sess *session, args []any, ack ackFunc) {
	// Every attempt costs a token, valid or not: a flood is a flood.
	if !sess.limiter.allow() {
		s.refuse(sess, EventWriteMessage, ack, reject(CodeRateLimited, "more than %g messages per second (burst %d); message dropped", s.cfg.Rate, s.cfg.RateBurst))
		return
	}
	if !s.output.allow(sess, s.broadcastCost(args)) {
		s.refuse(sess, EventWriteMessage, ack, reject(CodeServerBusy, "the chat is sending all it may (%s a second for everyone) and this socket has had its share; message dropped", byteCount(s.cfg.BroadcastRate)))
		return
	}
	s.chatMu.Lock()
	defer s.chatMu.Unlock()
	if sess.closed {
		return
	}
	own := sess.username
	if own == "" {
		own = s.seedOwner(sess, args) // "" unless --seed-clients ties it
	}
	msg, rej := parseWriteMessage(args, own, s.cfg.MaxMessageLen)
	if rej != nil {
		if rej.code == CodeNotJoined && s.seed != nil {
			rej = s.seedNotJoined(args)
		}
		s.refuse(sess, EventWriteMessage, ack, rej)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.StoreTimeout)
	defer cancel()
	w := s.expectChange(sess)
	history, err := s.appendFrom(ctx, sess, msg)
	if err != nil {
		s.dropChange(w)
		s.storeFailed(sess, EventWriteMessage, ack, err)
		return
	}
	s.noteHistoryBytes(history)
	if w != nil {
		// applyChange sends messageWritten, in the feed's order.
		s.awaitChange(w, nil)
		s.m.messages.Inc()
		ackOK(ack)
		return
	}
	recipients := s.io.Sockets().Sockets().Len()
	if err := s.io.To(everyone).Emit(EventMessageWritten, map[string]any{"messagesList": history}); err != nil {
		s.log.Error("broadcasting messageWritten", "sid", sess.id, "err", err)
	}
	s.m.messages.Inc()
	s.m.deliveries.Add(float64(recipients))
	ackOK(ack)
}

// handleDisconnect removes the socket's hold on its username (USER-3,
// USER-4, USER-5, RECON-1, RECON-2). It is safe to call twice.
func (s *Server) handleDisconnect(sess *session, reason string) {
	s.chatMu.Lock()
	defer s.chatMu.Unlock()
	if sess.closed {
		return
	}
	sess.closed = true
	s.seedLeft(sess)
	if sess.username == "" {
		// USER-5: it never joined; nothing changes and nothing is sent.
		s.log.Debug("socket disconnected before joining", "sid", sess.id, "reason", reason)
		return
	}
	// Leave must reach the store even while shutting down, so it gets its
	// own deadline rather than s.ctx.
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
	defer cancel()
	users, removed, err := s.store.Leave(ctx, sess.username, sess.id)
	if err != nil {
		if errors.Is(err, store.ErrClosed) {
			s.log.Debug("leave after store closed", "sid", sess.id, "username", sess.username)
		} else {
			s.log.Error("store leave failed", "sid", sess.id, "username", sess.username, "err", err)
		}
		return
	}
	s.m.users.Set(float64(len(users)))
	s.log.Debug("left", "sid", sess.id, "username", sess.username, "removed", removed, "reason", reason)
	if !removed || s.feed != nil {
		// USER-4: another socket still holds the username; say nothing.
		// With a change feed, applyChange announces the leave.
		return
	}
	// The socket has left the namespace already, so "everyone" is the
	// others (USER-3).
	if err := s.io.To(everyone).Emit(EventDisconnected, map[string]any{"connectedUserList": users}); err != nil {
		s.log.Error("broadcasting disconnected", "sid", sess.id, "err", err)
	}
}

// refuse reports a refused event to its socket only (ERR-1): a chatError
// event, and a negative ack when the client asked for one.
func (s *Server) refuse(sess *session, event string, ack ackFunc, rej *rejection) {
	s.m.rejected.WithLabelValues(rej.code).Inc()
	s.log.Debug("event refused", "sid", sess.id, "event", clip(event, 64), "code", rej.code, "reason", rej.message)
	// A hostile event name is clipped rather than echoed in full.
	s.emit(sess, EventChatError, map[string]any{"event": clip(event, 128), "code": rej.code, "message": rej.message})
	if ack != nil {
		ack([]any{map[string]any{"ok": false, "code": rej.code, "message": rej.message}}, nil)
	}
}

func (s *Server) storeFailed(sess *session, event string, ack ackFunc, err error) {
	s.log.Error("store failed", "sid", sess.id, "event", event, "err", err)
	s.refuse(sess, event, ack, reject(CodeInternal, "the server could not record this event; try again"))
}

func (s *Server) emit(sess *session, event string, payload map[string]any) {
	if err := sess.sock.Emit(event, payload); err != nil {
		s.log.Error("emit failed", "sid", sess.id, "event", event, "err", err)
	}
}

func ackOK(ack ackFunc) {
	if ack != nil {
		ack([]any{map[string]any{"ok": true}}, nil)
	}
}

func firstArg[T any](args []any) (T, bool) {
	var zero T
	if len(args) == 0 {
		return zero, false
	}
	v, ok := args[0].(T)
	return v, ok
}

func reasonOf(args []any) string {
	if len(args) > 0 {
		if r, ok := args[0].(string); ok {
			return r
		}
	}
	return "unknown"
}
