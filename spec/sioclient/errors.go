package sioclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors reported by Err, Emit and Next.
var (
	// ErrServerDisconnect: the server sent a Socket.IO DISCONNECT for the namespace.
	ErrServerDisconnect = errors.New("sioclient: server disconnected the socket (Socket.IO DISCONNECT packet)")
	// ErrEngineClosed: the server sent an Engine.IO close packet ("1").
	ErrEngineClosed = errors.New("sioclient: server closed the Engine.IO session (close packet)")
	// ErrClosed: the connection was closed or aborted by this side.
	ErrClosed = errors.New("sioclient: connection closed by the client")
	// ErrSilenced: Silence was called, so the connection sends nothing.
	ErrSilenced = errors.New("sioclient: connection silenced: sending is disabled")
	// ErrQueueOverflow: more than Options.MaxQueuedEvents events, or
	// Options.MaxQueuedBytes bytes of them, were waiting for Next: the
	// caller is not reading as fast as the server sends.
	ErrQueueOverflow = errors.New("sioclient: event queue overflow: the server sent faster than the caller read (Options.MaxQueuedEvents, MaxQueuedBytes)")
	// ErrSendBacklog: over long-polling, more than Options.MaxPacketBytes
	// waited to be POSTed (the server is not answering POSTs while it keeps
	// sending pings, which need pongs).
	ErrSendBacklog = errors.New("sioclient: send backlog: the server does not accept POSTs as fast as it asks for answers (Options.MaxPacketBytes waiting)")
	// ErrNoQueue: Next was called but Options.OnEvent receives the events.
	ErrNoQueue = errors.New("sioclient: Next is unavailable: Options.OnEvent receives the events")
)

// PingTimeoutError reports that no ping came from the server within
// pingInterval+pingTimeout, as Engine.IO v4 requires of the server.
type PingTimeoutError struct {
	Waited time.Duration
}

// Error describes the failure for humans.
func (e *PingTimeoutError) Error() string {
	return fmt.Sprintf("sioclient: ping timeout: no ping from the server within %v (pingInterval+pingTimeout)", e.Waited)
}

// ProtocolError reports bytes from the server that break Engine.IO v4 or
// Socket.IO v5 (or the limits in Options).
type ProtocolError struct {
	Msg  string
	Data []byte // the offending bytes, truncated to 200
}

// Error describes the failure for humans.
func (e *ProtocolError) Error() string {
	if e.Data == nil {
		return "sioclient: protocol error: " + e.Msg
	}
	return fmt.Sprintf("sioclient: protocol error: %s: %s", e.Msg, quoteTrunc(e.Data))
}

func protoErr(data []byte, format string, args ...any) *ProtocolError {
	const max = 200
	d := data
	if len(d) > max {
		d = d[:max]
	}
	return &ProtocolError{Msg: fmt.Sprintf(format, args...), Data: append([]byte{}, d...)}
}

// quoteTrunc quotes b for an error message, marking truncation.
func quoteTrunc(b []byte) string {
	const max = 200
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}

// ConnectError is the server's CONNECT_ERROR for the namespace, typically
// from a middleware rejecting the connection.
type ConnectError struct {
	Namespace string
	Message   string
	Data      json.RawMessage // the "data" field, if any
}

// Error describes the failure for humans.
func (e *ConnectError) Error() string {
	s := fmt.Sprintf("sioclient: server refused namespace %q: CONNECT_ERROR %q", e.Namespace, e.Message)
	if len(e.Data) > 0 {
		s += " data=" + quoteTrunc(e.Data)
	}
	return s
}

// HTTPError is an unexpected HTTP response from the Engine.IO endpoint.
type HTTPError struct {
	Method string
	URL    string
	Status int
	Body   string // first bytes of the body
	// Redirects are the redirects followed before the answer with Status,
	// in order; the last one's To is the URL that answered.
	Redirects []Redirect
}

// Redirect is one redirect the HTTP client followed.
type Redirect struct {
	Status   int
	From, To string // without the query
}

// Error describes the failure for humans.
func (e *HTTPError) Error() string {
	s := fmt.Sprintf("sioclient: %s %s: HTTP %d", e.Method, e.URL, e.Status)
	if n := len(e.Redirects); n > 0 {
		var hops []string
		for _, r := range e.Redirects {
			hops = append(hops, fmt.Sprintf("%d to %s", r.Status, r.To))
		}
		s = fmt.Sprintf("sioclient: %s %s: redirected (%s), which answered HTTP %d", e.Method, e.URL, strings.Join(hops, ", then "), e.Status)
	}
	if e.Body != "" {
		s += " body " + strconv.Quote(e.Body)
	}
	switch e.Status {
	case 404:
		s += " (nothing at this path: is the Engine.IO path right? see Options.Path / --path)"
	case 200:
		s += " (expected 101 Switching Protocols: this is not a websocket endpoint)"
	}
	return s
}

// TransportError reports that the transport failed or the server closed it.
type TransportError struct {
	Transport Transport
	Err       error
}

// Error describes the failure for humans.
func (e *TransportError) Error() string {
	return fmt.Sprintf("sioclient: %s transport: %v", e.Transport, e.Err)
}

// Unwrap returns the underlying error.
func (e *TransportError) Unwrap() error { return e.Err }

// DialError says which Dial step failed and why.
type DialError struct {
	URL  string
	Step string // e.g. "engine.io handshake", "upgrade probe", "namespace CONNECT"
	Err  error
}

// Error describes the failure for humans.
func (e *DialError) Error() string {
	return fmt.Sprintf("sioclient: dial %s: %s: %v", e.URL, e.Step, e.Err)
}

// Unwrap returns the underlying error.
func (e *DialError) Unwrap() error { return e.Err }
