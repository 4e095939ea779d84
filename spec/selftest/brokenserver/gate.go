package brokenserver

import (
	"sync"
	"time"

	engine "github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// connectGate works around a race in zishang520 socket.io v3.0.6 that
// otherwise closes about one connection in fifty (measured here: 1 of 50
// fresh sockets with a client that emits right after the CONNECT reply).
//
// The library writes a namespace's CONNECT reply (socket._onconnect) before
// it records the socket in the client's namespace map (Client.doConnect's
// callback). A client that emits at once can have its EVENT decoded in
// between; Client.ondecoded then finds no socket, logs "invalid state" and
// force-closes the whole connection. A careful server must not lose a
// client's first event to that, so the gate holds a connection's main
// namespace packets that follow a CONNECT until the "connection" handler,
// which runs after the map is updated, has released them.
//
// It sits in front of the library's own Engine.IO "data" listener and
// only ever delays packets (at most gateWait), never drops or alters one.
type connectGate struct {
	mu      sync.Mutex
	pending map[string]chan struct{} // engine socket id -> closed when the socket is registered
}

// gateWait bounds how long a packet is held: a CONNECT that the server
// never completes (say, a refused namespace) must not stall the connection.
const gateWait = 2 * time.Second

func newConnectGate() *connectGate {
	return &connectGate{pending: make(map[string]chan struct{})}
}

// install puts the gate first among the "data" listeners of every new
// Engine.IO connection. It must be called after io.ServeHandler, so that
// the library's own "connection" listener (which adds the Socket.IO data
// listener) has run by the time this one reorders them.
func (g *connectGate) install(io *socket.Server) {
	_ = io.Engine().On("connection", func(args ...any) {
		if len(args) == 0 {
			return
		}
		conn, ok := args[0].(engine.Socket)
		if !ok {
			return
		}
		id := conn.Id()
		library := conn.Listeners("data")
		conn.RemoveAllListeners("data")
		_ = conn.On("data", func(args ...any) { g.onData(id, args) })
		_ = conn.On("data", library...)
		_ = conn.Once("close", func(...any) { g.forget(id) })
	})
}

// onData runs before the library decodes a packet. It peeks at the
// Socket.IO packet type without consuming the buffer.
func (g *connectGate) onData(id string, args []any) {
	if len(args) == 0 {
		return
	}
	peek, ok := args[0].(interface{ Bytes() []byte })
	if !ok {
		return
	}
	b := peek.Bytes()
	if len(b) == 0 || (len(b) > 1 && b[1] == '/') {
		return // empty, or a packet for another namespace: not ours to hold
	}
	switch b[0] {
	case '0': // CONNECT to the main namespace: hold what follows
		g.mu.Lock()
		if _, ok := g.pending[id]; !ok {
			g.pending[id] = make(chan struct{})
		}
		g.mu.Unlock()
	default:
		g.mu.Lock()
		ready, ok := g.pending[id]
		g.mu.Unlock()
		if !ok {
			return
		}
		timer := time.NewTimer(gateWait)
		defer timer.Stop()
		select {
		case <-ready:
		case <-timer.C:
		}
	}
}

// release lets the packets of the connection whose main-namespace socket
// the library has just registered through.
func (g *connectGate) release(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ready, ok := g.pending[id]
	if !ok {
		ready = make(chan struct{})
		g.pending[id] = ready
	}
	select {
	case <-ready:
	default:
		close(ready)
	}
}

func (g *connectGate) forget(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.pending, id)
}
