// Package sharedws is the Engine.IO WebSocket transport of zishang520's
// engine v3.0.6 with a broadcast framed once for all its receivers, not
// once per receiver (issue 12).
//
// A broadcast's packet is encoded once by the Socket.IO adapter, which
// hands every receiving socket the same pre-encoded frame
// (WriteOptions.WsPreEncodedFrame, one buffer for all). The library's
// transport then builds a new websocket.PreparedMessage from that buffer
// on every socket (transports/websocket.go, send), and a PreparedMessage
// frames its data on first write: a copy of the whole message, allocated
// per receiver. With the chat's messageWritten carrying the whole history
// (200 messages, ~20 KB) to 200 sockets, that is 4 MB of garbage per
// message. PreparedMessage exists to be shared: this transport keeps the
// PreparedMessage of the most recent broadcasts keyed by the frame buffer
// itself, so every receiver writes the same framed bytes.
//
// The library builds transports through the TransportCtor values in its
// server options, so Builder wraps the library's own transport (upgrade,
// reading, closing are the library's) and replaces only Send, with the
// library's semantics: one write at a time in order, writable false until
// the batch is written, then "drain" and "ready".
//
// It also closes a data race of the library's (seen by the race detector
// in CI while a server shut down during handshakes). A WebSocket that
// opens a session gets its transport inside the upgrade request's
// handler; the new session queues its open packet at once, and when the
// handshake is then abandoned (the server is closing, the socket closed)
// the handler writes a close message on the same connection itself
// (server.go, abortUpgrade), concurrently with the queued write, which
// gorilla/websocket forbids (it may panic). This transport writes nothing
// for such a session until the handler has returned: net/http cancels the
// request's context right after ServeHTTP returns, hijacked or not.
package sharedws

import (
	"errors"
	"io"
	"net"
	"sync"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/queue"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Builder builds WebSocket transports that share the framing of a
// broadcast. Use it in place of the library's WebSocket in
// ServerOptions.SetTransports; name and upgrade rules are the library's.
type Builder struct {
	transports.WebSocketBuilder
	frames *frameCache
}

// New returns a Builder with its own cache of recent broadcasts' frames.
// One per server: the cache is only ever hit by sockets of one server.
func New() *Builder { return &Builder{frames: newFrameCache(cacheSize)} }

// cacheSize is how many recent broadcasts keep their framed bytes. A
// socket that falls further behind than this frames its copy itself, as
// the library does; a hit costs nothing, a miss no more than before. At
// 64 × (frame + data) of a 20 KB messageWritten the cache holds ~2.6 MB.
const cacheSize = 64

// New builds the library's transport and routes Send through t (the
// library dispatches through its prototype).
func (b *Builder) New(ctx *types.HttpContext) transports.Transport {
	inner := transports.MakeWebSocket()
	t := &transport{Websocket: inner, conn: ctx.Websocket, writes: queue.New(), frames: b.frames}
	if !ctx.Query().Has("sid") {
		t.handlerDone = ctx.Request().Context().Done()
	}
	inner.Prototype(t)
	t.Construct(ctx)
	// The library's close paths stop its own write queue, which this
	// transport does not use; "close" is emitted on every one of them.
	_ = t.Once("close", func(...any) { t.writes.TryClose() })
	return t
}

type transport struct {
	transports.Websocket

	conn   *types.WebSocketConn
	writes *queue.Queue // one write at a time, in Send order
	frames *frameCache
	// handlerDone is closed once the upgrade request's handler returned;
	// nil when writes need not wait (an upgrade of a polling session),
	// and set to nil by the first write. Only send reads it.
	handlerDone <-chan struct{}
}

// Send queues a batch of packets; the transport is not writable until it
// has been written.
func (t *transport) Send(packets []*packet.Packet) {
	t.SetWritable(false)
	t.writes.Enqueue(func() { t.send(packets) })
}

// DoClose stops the writes, then closes as the library does.
func (t *transport) DoClose(fn types.Callable) {
	t.writes.TryClose()
	t.Websocket.DoClose(fn)
}

// send runs on t.writes only.
func (t *transport) send(packets []*packet.Packet) {
	defer func() {
		t.Emit("drain")
		t.SetWritable(true)
		t.Emit("ready")
	}()
	if t.handlerDone != nil {
		<-t.handlerDone
		t.handlerDone = nil
	}
	for _, p := range packets {
		if frame := preEncoded(p); frame != nil && t.PerMessageDeflate() == nil {
			pm, err := t.frames.prepared(frame)
			if err == nil {
				err = t.conn.WritePreparedMessage(pm)
			}
			if err != nil {
				t.fail(err)
				return
			}
			continue
		}
		data, err := t.Parser().EncodePacket(p, t.SupportsBinary())
		if err != nil {
			t.fail(err)
			return
		}
		if err := t.write(data, compressed(p)); err != nil {
			t.fail(err)
			return
		}
	}
}

// preEncoded is the packet's shared broadcast frame, nil if it has none.
func preEncoded(p *packet.Packet) types.BufferInterface {
	if p.Options == nil {
		return nil
	}
	return p.Options.WsPreEncodedFrame
}

func compressed(p *packet.Packet) bool {
	return p.Options == nil || p.Options.Compress == nil || *p.Options.Compress
}

// write sends one encoded packet as one message.
func (t *transport) write(data types.BufferInterface, compress bool) error {
	if pmd := t.PerMessageDeflate(); pmd != nil && data.Len() < pmd.Threshold {
		compress = false
	}
	t.conn.EnableWriteCompression(compress)
	w, err := t.conn.NextWriter(messageType(data))
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, data); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// fail reports a failed write the way the library's reader reports a
// failed read: a closed connection closes the transport, anything else is
// an error on it (and then closes it).
func (t *transport) fail(err error) {
	if ws.IsUnexpectedCloseError(err) || errors.Is(err, net.ErrClosed) {
		t.conn.Emit("close")
	} else {
		t.conn.Emit("error", err)
	}
}

// messageType: text for a string buffer, binary otherwise (the library's
// rule).
func messageType(data types.BufferInterface) int {
	if _, ok := data.(*types.StringBuffer); ok {
		return ws.TextMessage
	}
	return ws.BinaryMessage
}

// frameCache maps the frame buffers of recent broadcasts to their
// PreparedMessage. The key is the buffer itself (a pointer): every
// receiver of one broadcast holds the same one, and no two broadcasts do.
// Entries leave in insertion order once the cache is full.
type frameCache struct {
	mu    sync.Mutex
	byBuf map[types.BufferInterface]*ws.PreparedMessage
	order []types.BufferInterface // ring, oldest at next
	next  int
}

func newFrameCache(n int) *frameCache {
	return &frameCache{byBuf: make(map[types.BufferInterface]*ws.PreparedMessage, n), order: make([]types.BufferInterface, n)}
}

// prepared returns the shared PreparedMessage of frame, making it on the
// first receiver's write.
func (c *frameCache) prepared(frame types.BufferInterface) (*ws.PreparedMessage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pm, ok := c.byBuf[frame]; ok {
		return pm, nil
	}
	pm, err := ws.NewPreparedMessage(messageType(frame), frame.Bytes())
	if err != nil {
		return nil, err
	}
	if old := c.order[c.next]; old != nil {
		delete(c.byBuf, old)
	}
	c.order[c.next] = frame
	c.next = (c.next + 1) % len(c.order)
	c.byBuf[frame] = pm
	return pm, nil
}
