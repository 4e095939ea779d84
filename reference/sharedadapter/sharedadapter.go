// Package sharedadapter is the in-memory Socket.IO adapter of zishang520's
// socket v3.0.6 with a broadcast's encoded bytes shared by all its
// receivers instead of copied for each (issue 12).
//
// The library's adapter encodes a broadcast once and then hands every
// receiving socket a copy of the encoding (socket/client.go,
// WriteToEngine: encodedPacket.Clone()). The copy exists because a
// transport reads the packet's data as it encodes it (polling consumes
// its reader), but reading never changes the bytes: a fresh reader over
// the same bytes per receiver does the same job without the copy. With
// the chat's messageWritten carrying the whole history (~20 KB at 200
// messages) to 200 sockets, those copies were a third of the reference's
// CPU under load (profile in the README's benchmark steps).
//
// Only Broadcast changes, and only for the usual packet: one text
// encoding (no binary attachments). Anything else, acknowledged
// broadcasts included, takes the library's own path, as do rooms, the
// socket sets and every other method.
package sharedadapter

import (
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Builder builds the adapter; pass it to ServerOptions.SetAdapter.
type Builder struct{}

// New wraps the library's adapter for nsp and routes Broadcast through
// the wrapper (the library dispatches through its prototype).
func (Builder) New(nsp socket.Namespace) socket.Adapter {
	inner := socket.MakeAdapter()
	a := &adapter{Adapter: inner}
	inner.Prototype(a)
	a.Construct(nsp)
	return a
}

type adapter struct {
	socket.Adapter
}

// Broadcast sends packet to the sockets opts selects, as the library
// does, each receiver reading the one encoding.
func (a *adapter) Broadcast(packet *parser.Packet, opts *socket.BroadcastOptions) {
	flags := &socket.BroadcastFlags{}
	if opts != nil && opts.Flags != nil {
		flags = opts.Flags
	}
	packet.Nsp = a.Nsp().Name()
	encoded := a.Nsp().Server().Encoder().Encode(packet)
	text, ok := oneText(encoded)
	if !ok {
		a.broadcastCopies(packet, opts, encoded, flags)
		return
	}
	// The WebSocket frame: "4" (an Engine.IO message) and the packet, the
	// same for every receiver (see sharedws).
	frame := types.NewStringBufferString("4")
	_, _ = frame.Write(text)
	w := &socket.WriteOptions{}
	w.PreEncoded = true
	w.Volatile = flags.Volatile
	w.Compress = flags.Compress
	w.WsPreEncodedFrame = frame
	// A full slice expression: a reader that ever appended would copy,
	// never write into the bytes the others read.
	text = text[:len(text):len(text)]
	a.each(opts, func(s *socket.Socket) {
		if notify := s.NotifyOutgoingListeners(); notify != nil {
			notify(packet)
		}
		conn := s.Conn()
		if w.Volatile && !conn.Transport().Writable() {
			return
		}
		conn.Write(types.NewStringBuffer(text), &w.Options, nil)
	})
}

// broadcastCopies is the library's way, for packets with binary parts.
func (a *adapter) broadcastCopies(packet *parser.Packet, opts *socket.BroadcastOptions, encoded []types.BufferInterface, flags *socket.BroadcastFlags) {
	w := &socket.WriteOptions{}
	w.PreEncoded = true
	w.Volatile = flags.Volatile
	w.Compress = flags.Compress
	a.each(opts, func(s *socket.Socket) {
		if notify := s.NotifyOutgoingListeners(); notify != nil {
			notify(packet)
		}
		s.Client().WriteToEngine(encoded, w)
	})
}

// oneText is the bytes of an encoding that is a single text packet.
func oneText(encoded []types.BufferInterface) ([]byte, bool) {
	if len(encoded) != 1 {
		return nil, false
	}
	s, ok := encoded[0].(*types.StringBuffer)
	if !ok {
		return nil, false
	}
	return s.Bytes(), true
}

// each calls fn for every connected socket opts selects, once: the
// members of its rooms (every socket when it names none) that are in none
// of its excepted rooms.
func (a *adapter) each(opts *socket.BroadcastOptions, fn func(*socket.Socket)) {
	var rooms, except *types.Set[socket.Room]
	if opts != nil {
		rooms, except = opts.Rooms, opts.Except
	}
	excluded := map[socket.SocketId]bool{}
	if except != nil {
		for _, room := range except.Keys() {
			if ids, ok := a.Rooms().Load(room); ok {
				for _, id := range ids.Keys() {
					excluded[id] = true
				}
			}
		}
	}
	sockets := a.Nsp().Sockets()
	visit := func(id socket.SocketId) {
		if excluded[id] {
			return
		}
		if s, ok := sockets.Load(id); ok && s.Connected() {
			fn(s)
		}
	}
	if rooms == nil || rooms.Len() == 0 {
		a.Sids().Range(func(id socket.SocketId, _ *types.Set[socket.Room]) bool {
			visit(id)
			return true
		})
		return
	}
	for _, room := range rooms.Keys() {
		ids, ok := a.Rooms().Load(room)
		if !ok {
			continue
		}
		for _, id := range ids.Keys() {
			if excluded[id] {
				continue
			}
			// A socket in several of the rooms is sent to once.
			excluded[id] = true
			if s, ok := sockets.Load(id); ok && s.Connected() {
				fn(s)
			}
		}
	}
}
