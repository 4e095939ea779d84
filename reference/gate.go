package reference

import (
	"sync"
	"time"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	engine "github.com/zishang520/socket.io/servers/engine/v3"
)

// A workaround for a race in github.com/zishang520/socket.io/servers/socket
// v3.0.6 (client.go, doConnect): the server writes its CONNECT reply before
// it records the socket under its namespace. A client that emits right
// after it sees CONNECT, as the seed does (`socket.on('connect', () =>
// socket.emit('connecting', ...))`), can have that event read in between;
// the library then finds no socket, logs "invalid state" and closes the
// whole connection. Measured here over loopback WebSocket: from one join in
// fifty to one in a few under load (TestEmitRightAfterConnect_CONN1 fails
// within its first 20 joins without the gate).
//
// The gate holds the reading of a connection's next packets from the moment
// a CONNECT to the main namespace arrives until the library has finished
// connecting the socket (our connection handler ran) or refused it. Only
// that one connection waits, for microseconds; holdLimit bounds the wait if
// neither happens.

// holdLimit bounds how long one connection's packets wait for its CONNECT.
const holdLimit = 2 * time.Second

// connectGate is the gate of one Engine.IO connection.
type connectGate struct {
	mu   sync.Mutex
	held chan struct{} // non-nil while a CONNECT is being processed
}

// hold closes the gate; it is called on the reader's goroutine just before
// the library processes a CONNECT packet.
func (g *connectGate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held == nil {
		g.held = make(chan struct{})
	}
}

// release opens the gate; calling it when open does nothing.
func (g *connectGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held != nil {
		close(g.held)
		g.held = nil
	}
}

// wait blocks while the gate is closed, at most holdLimit.
func (g *connectGate) wait() {
	g.mu.Lock()
	held := g.held
	g.mu.Unlock()
	if held == nil {
		return
	}
	t := time.NewTimer(holdLimit)
	defer t.Stop()
	select {
	case <-held:
	case <-t.C:
	}
}

// onEngineConnection installs the gate on a new Engine.IO connection. The
// library's own listeners were installed before this one, but Engine.IO
// emits "packet" (ours) before "data" (the library's), so the gate sees
// every packet first.
func (s *Server) onEngineConnection(args ...any) {
	conn, ok := firstArg[engine.Socket](args)
	if !ok {
		return
	}
	g := &connectGate{}
	id := conn.Id()
	s.gates.Store(id, g)
	conn.On("packet", func(args ...any) {
		p, ok := firstArg[*packet.Packet](args)
		if !ok || p.Type != packet.MESSAGE {
			return
		}
		g.wait()
		if isMainConnect(p) {
			g.hold()
		}
	})
	conn.Once("close", func(...any) {
		g.release()
		s.gates.Delete(id)
	})
}

// releaseGate opens the gate of the connection with Engine.IO id id.
func (s *Server) releaseGate(id string) {
	if g, ok := s.gates.Load(id); ok {
		g.(*connectGate).release()
	}
}

// isMainConnect reports whether an Engine.IO message carries a Socket.IO
// CONNECT to the main namespace: "0", "0{auth}" or "0/,...".
func isMainConnect(p *packet.Packet) bool {
	peeker, ok := p.Data.(interface{ Peek(int) ([]byte, error) })
	if !ok {
		return false
	}
	b, _ := peeker.Peek(3)
	if len(b) == 0 || b[0] != '0' {
		return false
	}
	return len(b) == 1 || b[1] != '/' || (len(b) == 3 && b[2] == ',')
}
