package reference

import (
	"time"
)

// refusePacket reports a packet the library's parser refused. The library
// closes the connection right after this (socket/client.go onerror), so
// the chatError is the offender's last event; others are not affected.
// The event name is unknown (the packet did not parse), so it is empty.
//
// A client can also emit an event named "error", which the library hands
// to the same listeners with the client's own arguments; that is an
// unknown event, which handleEvent reports, so only a Go error (which no
// JSON payload decodes to) counts here.
func (s *Server) refusePacket(sess *session, args []any) {
	err, ok := firstArg[error](args)
	if !ok || err == nil {
		return
	}
	reason := clip(err.Error(), 200)
	s.m.rejected.WithLabelValues(CodeInvalidPayload).Inc()
	s.log.Debug("packet refused by the parser", "sid", sess.id, "reason", reason)
	// The library closes a WebSocket without waiting for a write already
	// handed to the transport (transports/websocket.go DoClose), so the
	// chatError would usually be lost. This listener runs on the
	// connection's reader just before that close: wait, briefly, until
	// everything queued for the connection (the chatError included) has
	// been written. Only this connection waits. A polling connection needs
	// no wait: the library keeps its buffer for the next GET.
	s.emit(sess, EventChatError, map[string]any{
		"event":   "",
		"code":    CodeInvalidPayload,
		"message": "malformed Socket.IO packet (" + reason + "); the server closes this connection",
	})
	conn := sess.sock.Conn()
	w, ok := s.writers.Load(conn.Id())
	if !ok || conn.Transport() == nil || conn.Transport().Name() != TransportWebSocket {
		return
	}
	timer := time.NewTimer(refuseFlushWait)
	defer timer.Stop()
	select {
	case <-w.(*slowReader).idle():
	case <-timer.C:
	case <-s.ctx.Done():
	}
}

// refuseFlushWait bounds how long refusePacket holds a connection's reader
// for its chatError to be written.
const refuseFlushWait = time.Second
