package sioclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	sioparser "github.com/zishang520/socket.io/parsers/socket/v3/parser"
)

// This file is longer than most (about 700 lines) because it is one
// connection's state machine: the handshake, the namespace CONNECT, the
// ordered event queue, the heartbeat watchdog and the upgrade share its
// locks. The transports themselves are in polling.go and websocket.go.

// Conn is one Engine.IO session with one connected Socket.IO namespace.
// All methods are safe for concurrent use.
type Conn struct {
	opts Options
	nsp  string
	base *url.URL
	hs   Handshake
	id   string // Socket.IO socket id, set before Dial returns
	pid  string // connection state recovery id from the CONNECT ack, if any

	transport atomic.Value // Transport currently carrying packets

	// wsem serializes sends and guards the switch from polling to
	// websocket; a channel rather than a mutex so senders honour ctx.
	wsem chan struct{}
	ws   *websocket.Conn // active websocket once open or upgraded (guarded by wsem)
	// wsShared is every websocket this Conn opened (including an upgrade
	// probe), readable without wsem so fail can close it.
	wsShared atomic.Pointer[websocket.Conn]
	poll     *poller // polling transport, nil for pure websocket

	silenced   atomic.Bool
	localClose atomic.Bool // Close or Abort started: transport errors are ours

	done    chan struct{}
	endOnce sync.Once
	errMu   sync.Mutex
	err     error

	pingTimer atomic.Pointer[time.Timer]
	pingWait  time.Duration

	// Reader-goroutine state.
	connected  bool
	early      []Event // EVENTs that came before the CONNECT ack
	earlyBytes int     // their eventSize, bounded by MaxQueuedBytes
	seq        uint64
	connectCh  chan error // Dial waits here for the CONNECT ack

	q eventQueue

	ackMu   sync.Mutex
	acks    map[uint64]chan json.RawMessage
	ackFns  map[uint64]func(json.RawMessage) // EmitWithAckCallback's, run by the reader
	nextAck uint64

	wg       sync.WaitGroup
	inOnEvnt atomic.Bool

	lastPing time.Time    // reader goroutine: when the last ping was answered
	pingLag  atomic.Int64 // HeartbeatLag, in nanoseconds
}

// notePing records a ping just answered (reader goroutine).
func (c *Conn) notePing() {
	now := time.Now()
	if !c.lastPing.IsZero() {
		if late := now.Sub(c.lastPing) - c.hs.PingInterval; late > time.Duration(c.pingLag.Load()) {
			c.pingLag.Store(int64(late))
		}
	}
	c.lastPing = now
}

// HeartbeatLag is the longest a ping was answered later than pingInterval
// after the one before: how long the heartbeat was at risk, by the
// server's slowness or this client's (a reader behind its connection, a
// starved process). A server drops a socket whose pong is pingTimeout
// late, so a lag near it explains a drop a correct server made.
func (c *Conn) HeartbeatLag() time.Duration { return time.Duration(c.pingLag.Load()) }

// Dial opens an Engine.IO session, upgrades it if asked, and connects the
// namespace. It returns once the server acknowledged the CONNECT. The whole
// sequence is bounded by ctx and Options.ConnectTimeout; a failure is a
// *DialError naming the step.
func Dial(ctx context.Context, opts Options) (*Conn, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	u, err := baseURL(o)
	if err != nil {
		return nil, err
	}
	c := &Conn{
		opts:      o,
		nsp:       o.Namespace,
		base:      u,
		wsem:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		connectCh: make(chan error, 1),
	}
	c.q.init(o.MaxQueuedEvents, o.MaxQueuedBytes)
	ctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()

	step, err := c.dial(ctx)
	if err != nil {
		c.teardownAfterDialFailure()
		if ctx.Err() != nil && !isSpecific(err) {
			err = fmt.Errorf("timed out after %v (ConnectTimeout) waiting for the server: %w", o.ConnectTimeout, ctx.Err())
			if errors.Is(ctx.Err(), context.Canceled) {
				err = fmt.Errorf("canceled: %w", ctx.Err())
			}
		}
		return nil, &DialError{URL: o.URL, Step: step, Err: err}
	}
	return c, nil
}

// isSpecific reports errors that say more than a deadline would.
func isSpecific(err error) bool {
	var (
		pe *ProtocolError
		he *HTTPError
		ce *ConnectError
	)
	return errors.As(err, &pe) || errors.As(err, &he) || errors.As(err, &ce) || errors.Is(err, ErrServerDisconnect) || errors.Is(err, ErrEngineClosed)
}

func (c *Conn) dial(ctx context.Context) (step string, err error) {
	switch c.opts.Transport {
	case WebSocket:
		if err := c.openWebSocket(ctx); err != nil {
			return "websocket open", err
		}
	default:
		if err := c.openPolling(ctx); err != nil {
			return "engine.io handshake (polling)", err
		}
	}
	if err := c.connectNamespace(ctx); err != nil {
		return "namespace CONNECT " + strconv.Quote(c.nsp), err
	}
	if c.opts.Transport == Upgrade {
		if step, err := c.upgrade(ctx); err != nil {
			return step, err
		}
	}
	return "", nil
}

// startEngine records the handshake and arms the ping watchdog.
func (c *Conn) startEngine(hs Handshake) {
	c.hs = hs
	c.pingWait = hs.PingInterval + hs.PingTimeout + max(c.opts.PingSlack, 0)
	wait := c.pingWait
	c.pingTimer.Store(time.AfterFunc(wait, func() {
		c.fail(&PingTimeoutError{Waited: wait})
	}))
}

// connectNamespace sends CONNECT and waits for the reader to see the ack.
func (c *Conn) connectNamespace(ctx context.Context) error {
	e := getEncBuf()
	defer putEncBuf(e)
	e.header(sioparser.CONNECT, c.nsp, 0, false)
	if c.opts.Auth != nil {
		if err := e.json(c.opts.Auth); err != nil {
			return fmt.Errorf("encoding Options.Auth: %w", err)
		}
	}
	if err := c.send(ctx, e.b.Bytes()); err != nil {
		select {
		case err := <-c.connectCh: // acked before a later packet broke the connection
			return err
		default:
		}
		return err
	}
	select {
	case err := <-c.connectCh:
		return err
	case <-c.done:
		// The ack may have come just before a later packet ended the
		// connection: the CONNECT still succeeded, and Err tells the rest.
		select {
		case err := <-c.connectCh:
			return err
		default:
		}
		return c.endErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// teardownAfterDialFailure ends a half-open connection and waits for its
// goroutines so a failed Dial leaks nothing.
func (c *Conn) teardownAfterDialFailure() {
	c.localClose.Store(true)
	c.fail(ErrClosed)
	c.wg.Wait()
}

// Handshake returns the Engine.IO open packet the server sent.
func (c *Conn) Handshake() Handshake { return c.hs }

// ID returns the Socket.IO socket id from the CONNECT ack.
func (c *Conn) ID() string { return c.id }

// RecoveryID returns the private session id ("pid") of the CONNECT ack,
// set when the server offers Socket.IO connection state recovery; empty
// otherwise. Such a server appends an offset to every event (Event.Offset).
func (c *Conn) RecoveryID() string { return c.pid }

// takeOffset moves the offset a recovering server appends to an event out
// of its arguments (see splitOffset), so that Args holds what the
// application emitted.
func (c *Conn) takeOffset(ev *Event) {
	if c.pid == "" {
		return
	}
	if rest, off, ok := splitOffset(ev.Args); ok {
		ev.Args, ev.Offset = rest, off
	}
}

// Transport reports the transport carrying packets now: Polling or WebSocket.
func (c *Conn) Transport() Transport { return c.transport.Load().(Transport) }

// Done is closed when the connection has ended for any reason.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err reports why the connection ended: nil while it is open and after Close
// or Abort; otherwise ErrServerDisconnect, ErrEngineClosed,
// *PingTimeoutError, *TransportError, *ProtocolError, *ConnectError or
// ErrQueueOverflow.
func (c *Conn) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if errors.Is(c.err, ErrClosed) {
		return nil
	}
	return c.err
}

// endErr is the error for operations on an ended connection.
func (c *Conn) endErr() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if c.err == nil {
		return ErrClosed
	}
	return c.err
}

// ended reports whether the connection has ended.
func (c *Conn) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// fail ends the connection with err (the first reason wins) and releases
// the transports. It never waits for goroutines, so the readers may call it.
func (c *Conn) fail(err error) {
	c.endOnce.Do(func() {
		if c.localClose.Load() {
			err = ErrClosed
		}
		c.errMu.Lock()
		c.err = err
		c.errMu.Unlock()
		close(c.done)
		if t := c.pingTimer.Load(); t != nil {
			t.Stop()
		}
		if c.poll != nil {
			c.poll.cancel()
		}
		// Not under wsem: a sender may hold it while blocked in a write,
		// and closing is what unblocks it.
		if ws := c.wsConn(); ws != nil {
			_ = ws.CloseNow()
		}
	})
}

// wsConn returns the websocket for fail, which cannot take wsem.
func (c *Conn) wsConn() *websocket.Conn { return c.wsShared.Load() }

// Emit sends an event with JSON-encodable arguments. It returns once the
// packet was written (websocket) or its POST was answered (polling).
func (c *Conn) Emit(ctx context.Context, event string, args ...any) error {
	e := getEncBuf()
	defer putEncBuf(e)
	e.header(sioparser.EVENT, c.nsp, 0, false)
	if err := e.array(&event, args); err != nil {
		return fmt.Errorf("sioclient: encoding %q arguments: %w", event, err)
	}
	return c.send(ctx, e.b.Bytes())
}

// EmitWithAck sends an event asking for an acknowledgement and returns the
// ack's arguments as a raw JSON array.
func (c *Conn) EmitWithAck(ctx context.Context, event string, args ...any) (json.RawMessage, error) {
	ch, forget, err := c.sendWithAck(ctx, event, args)
	if err != nil {
		return nil, err
	}
	defer forget()
	select {
	case args := <-ch:
		return args, nil
	case <-c.done:
		return nil, c.endErr()
	case <-ctx.Done():
		return nil, fmt.Errorf("sioclient: waiting for the ack of %q: %w", event, ctx.Err())
	}
}

// sendWithAck registers an ack ID, sends the event with it, and returns the
// channel its ack arrives on and the function that unregisters it (the
// caller's to call once it stops waiting). On error nothing stays
// registered.
func (c *Conn) sendWithAck(ctx context.Context, event string, args []any) (<-chan json.RawMessage, func(), error) {
	ch := make(chan json.RawMessage, 1)
	c.ackMu.Lock()
	id := c.nextAck
	c.nextAck++
	if c.acks == nil {
		c.acks = make(map[uint64]chan json.RawMessage)
	}
	c.acks[id] = ch
	c.ackMu.Unlock()
	forget := func() {
		c.ackMu.Lock()
		delete(c.acks, id)
		c.ackMu.Unlock()
	}

	if err := c.sendEventWithID(ctx, id, event, args); err != nil {
		forget()
		return nil, nil, err
	}
	return ch, forget, nil
}

// sendEventWithID sends an EVENT packet that asks for ack id.
func (c *Conn) sendEventWithID(ctx context.Context, id uint64, event string, args []any) error {
	e := getEncBuf()
	defer putEncBuf(e)
	e.header(sioparser.EVENT, c.nsp, id, true)
	if err := e.array(&event, args); err != nil {
		return fmt.Errorf("sioclient: encoding %q arguments: %w", event, err)
	}
	return c.send(ctx, e.b.Bytes())
}

// Ack answers an event whose AckID is set.
func (c *Conn) Ack(ctx context.Context, id uint64, args ...any) error {
	e := getEncBuf()
	defer putEncBuf(e)
	e.header(sioparser.ACK, c.nsp, id, true)
	if err := e.array(nil, args); err != nil {
		return fmt.Errorf("sioclient: encoding ack arguments: %w", err)
	}
	return c.send(ctx, e.b.Bytes())
}

// SendRaw sends text as a Socket.IO packet (the Engine.IO message prefix is
// added), e.g. `2["writeMessage"]` or garbage, for hostile-input tests.
func (c *Conn) SendRaw(ctx context.Context, socketIOPacket string) error {
	return c.SendEngineRaw(ctx, string(engineMessage)+socketIOPacket)
}

// SendEngineRaw sends text as one Engine.IO packet, unmodified.
func (c *Conn) SendEngineRaw(ctx context.Context, enginePacket string) error {
	return c.send(ctx, []byte(enginePacket))
}

// send writes one Engine.IO packet on the current transport. pkt may be
// reused by the caller once send returns.
func (c *Conn) send(ctx context.Context, pkt []byte) error {
	if c.silenced.Load() {
		return ErrSilenced
	}
	select {
	case c.wsem <- struct{}{}:
	case <-c.done:
		return c.endErr()
	case <-ctx.Done():
		return ctx.Err()
	}
	if c.ended() {
		<-c.wsem
		return c.endErr()
	}
	if c.ws != nil {
		err := c.ws.Write(ctx, websocket.MessageText, pkt)
		<-c.wsem
		if err != nil {
			if c.ended() {
				return c.endErr()
			}
			if ctx.Err() != nil {
				// coder/websocket closes the connection when a write's
				// context ends mid-frame.
				c.fail(&TransportError{Transport: WebSocket, Err: fmt.Errorf("write abandoned: %w", ctx.Err())})
				return ctx.Err()
			}
			err = &TransportError{Transport: WebSocket, Err: fmt.Errorf("write: %w", err)}
			c.fail(err)
			return err
		}
		return nil
	}
	b := c.poll.enqueue(pkt)
	<-c.wsem
	select {
	case <-b.done:
		return b.err
	case <-c.done:
		return c.endErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sendControl sends an Engine.IO control packet (pong) from a reader
// goroutine without waiting for polling POSTs.
func (c *Conn) sendControl(pkt []byte) {
	if c.silenced.Load() {
		return
	}
	if c.Transport() == Polling && c.poll != nil {
		c.wsem <- struct{}{}
		if c.ws == nil {
			c.poll.enqueue(pkt)
			<-c.wsem
			return
		}
		<-c.wsem
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.hs.PingTimeout)
	defer cancel()
	_ = c.send(ctx, pkt)
}

// Next returns the next queued event of any name, in receive order. Events
// queued before the connection ended are still returned; after them Next
// returns the reason the connection ended (ErrClosed after Close/Abort).
func (c *Conn) Next(ctx context.Context) (Event, error) {
	if c.opts.OnEvent != nil {
		return Event{}, ErrNoQueue
	}
	return c.q.next(ctx, c.done, c.endErr)
}

// NextNamed returns the next queued event whose name is one of names,
// DISCARDING the events of other names that come before it. Use Next to see
// the full ordered stream.
func (c *Conn) NextNamed(ctx context.Context, names ...string) (Event, error) {
	for {
		ev, err := c.Next(ctx)
		if err != nil {
			return ev, err
		}
		for _, n := range names {
			if ev.Name == n {
				return ev, nil
			}
		}
		if len(names) == 0 {
			return ev, nil
		}
	}
}

// Close disconnects gracefully: a Socket.IO DISCONNECT, a linger of up to
// Options.CloseLinger for the server to act on it, then the transport's own
// close (an Engine.IO close packet over polling, a close frame over
// websocket). It waits for the connection's goroutines (except when called
// from OnEvent) and is idempotent. After Silence, Close sends nothing (like
// Abort).
//
// Why the linger: some servers (zishang520's Go server among them) handle a
// DISCONNECT on a task queue but a transport close at once, so closing right
// after the DISCONNECT makes them report "transport close" instead of
// "client namespace disconnect". Socket.IO has no ack for DISCONNECT, so a
// short bounded wait is the only portable barrier.
func (c *Conn) Close() error {
	if !c.localClose.CompareAndSwap(false, true) {
		c.waitGoroutines()
		return nil
	}
	if c.silenced.Load() || c.ended() {
		c.fail(ErrClosed)
		c.waitGoroutines()
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e := getEncBuf()
	e.header(sioparser.DISCONNECT, c.nsp, 0, false)
	err := c.send(ctx, e.b.Bytes())
	putEncBuf(e)
	if err == nil && c.opts.CloseLinger > 0 {
		t := time.NewTimer(c.opts.CloseLinger)
		select {
		case <-t.C:
		case <-c.done:
		}
		t.Stop()
	}
	if err == nil && !c.ended() {
		select {
		case c.wsem <- struct{}{}:
			if ws := c.ws; ws != nil {
				<-c.wsem
				if cerr := ws.Close(websocket.StatusNormalClosure, ""); cerr != nil && !isClosedErr(cerr) {
					err = cerr
				}
			} else {
				b := c.poll.enqueue([]byte{engineClose})
				<-c.wsem
				// The server may answer this POST with an error status
				// because acting on the close packet aborts the very
				// request carrying it (zishang520 replies 429): the
				// session is closed either way, so the result is ignored.
				select {
				case <-b.done:
				case <-c.done:
				case <-ctx.Done():
				}
			}
		case <-c.done:
		case <-ctx.Done():
		}
	}
	c.fail(ErrClosed)
	c.waitGoroutines()
	if err != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("sioclient: close: %w", err)
	}
	return nil
}

func isClosedErr(err error) bool {
	return websocket.CloseStatus(err) != -1 || errors.Is(err, net.ErrClosed)
}

// Abort drops the connection abruptly: the TCP connections are closed with
// no Socket.IO or Engine.IO packet (the server sees a transport close).
func (c *Conn) Abort() error {
	c.localClose.Store(true)
	c.fail(ErrClosed)
	c.waitGoroutines()
	return nil
}

// Silence stops answering pings and sending anything while keeping the TCP
// connection(s) open and reading, so the server notices the loss only at
// pingInterval+pingTimeout. Emits then fail with ErrSilenced.
func (c *Conn) Silence() { c.silenced.Store(true) }

// waitGoroutines waits for the reader goroutines unless called from one.
func (c *Conn) waitGoroutines() {
	if c.inOnEvnt.Load() {
		return
	}
	c.wg.Wait()
}

// deliver hands an event to OnEvent or the queue, in order.
func (c *Conn) deliver(ev Event) error {
	if f := c.opts.OnEvent; f != nil {
		c.inOnEvnt.Store(true)
		defer c.inOnEvnt.Store(false)
		f(ev)
		return nil
	}
	if !c.q.push(ev) {
		return ErrQueueOverflow
	}
	return nil
}

// handleEngine processes one Engine.IO packet from the server.
func (c *Conn) handleEngine(b []byte, recv time.Time) error {
	if len(b) == 0 {
		return protoErr(b, "empty Engine.IO packet")
	}
	switch b[0] {
	case engineMessage:
		return c.handleSocket(b, recv)
	case enginePing:
		if len(b) != 1 {
			return protoErr(b, "ping with a payload (Engine.IO v4 pings are bare \"2\")")
		}
		// The watchdog follows the server's pings even when silenced, so
		// that the server, not this timer, is the first to notice.
		c.pingTimer.Load().Reset(c.pingWait)
		c.sendControl([]byte{enginePong})
		c.notePing()
		return nil
	case engineNoop, enginePong:
		return nil
	case engineClose:
		return ErrEngineClosed
	case engineOpen:
		return protoErr(b, "second open packet in one session")
	case engineUpgrade:
		return protoErr(b, "upgrade packet sent by the server")
	case engineBinary:
		return protoErr(b, "binary Engine.IO message not supported: chat payloads are JSON only")
	default:
		return protoErr(b, "unknown Engine.IO packet type %q", b[0])
	}
}

// earlyEventLimit bounds the EVENTs buffered before the CONNECT ack: a
// race in a server gives a few, an endless stream is a protocol error.
const earlyEventLimit = 64

// handleSocket processes a Socket.IO packet (b includes the leading '4').
func (c *Conn) handleSocket(b []byte, recv time.Time) error {
	p, err := parseSocketPacket(b[1:])
	if err != nil {
		return err
	}
	if string(p.nsp) != c.nsp {
		return protoErr(b, "packet for namespace %q, but only %q is connected", p.nsp, c.nsp)
	}
	switch p.typ {
	case sioparser.CONNECT:
		if c.connected {
			return protoErr(b, "CONNECT ack for an already connected namespace")
		}
		sid, pid, err := parseConnectAck(p.data)
		if err != nil {
			return err
		}
		c.id, c.pid = sid, pid
		c.connected = true
		// Events that came before the ack (see earlyEventLimit) are
		// delivered first, in the order they arrived.
		early := c.early
		c.early, c.earlyBytes = nil, 0
		for _, ev := range early {
			c.seq++
			ev.Seq = c.seq
			c.takeOffset(&ev)
			if err := c.deliver(ev); err != nil {
				return err
			}
		}
		c.connectCh <- nil
		return nil
	case sioparser.CONNECT_ERROR:
		return parseConnectError(c.nsp, p.data)
	case sioparser.DISCONNECT:
		return ErrServerDisconnect
	case sioparser.EVENT:
		name, args, err := parseEventData(p.data, !c.opts.SkipArgsValidation)
		if err != nil {
			return err
		}
		if !c.connected {
			// zishang520's server (v3.0.6) adds a socket to its rooms
			// before it writes the CONNECT ack, so a broadcast can overtake
			// the ack. The official JavaScript client buffers such events
			// until it is connected; so does this one, up to a bound.
			if len(c.early) >= earlyEventLimit {
				return protoErr(b, "more than %d EVENTs before the namespace CONNECT was acknowledged", earlyEventLimit)
			}
			ev := Event{Name: name, Args: args, Received: recv}
			if c.earlyBytes += eventSize(ev); c.earlyBytes > c.opts.MaxQueuedBytes {
				return ErrQueueOverflow
			}
			if p.hasID {
				id := p.id
				ev.AckID = &id
			}
			c.early = append(c.early, ev)
			return nil
		}
		c.seq++
		ev := Event{Name: name, Args: args, Received: recv, Seq: c.seq}
		if p.hasID {
			id := p.id
			ev.AckID = &id
		}
		c.takeOffset(&ev)
		return c.deliver(ev)
	case sioparser.ACK:
		if !p.hasID {
			return protoErr(b, "ACK without an id")
		}
		args := p.data
		if !isJSONArray(args) {
			return protoErr(b, "ACK payload is not a JSON array")
		}
		c.ackMu.Lock()
		ch, ok := c.acks[p.id]
		fn := c.ackFns[p.id]
		delete(c.ackFns, p.id) // a second ack for the same id finds nothing
		issued := p.id < c.nextAck
		c.ackMu.Unlock()
		if !issued {
			return protoErr(b, "ACK for id %d, which was never requested", p.id)
		}
		if fn != nil {
			fn(json.RawMessage(args))
		}
		if ok {
			select {
			case ch <- json.RawMessage(args):
			default: // a second ack for the same id: the first one won
			}
		}
		return nil
	default:
		return protoErr(b, "unexpected Socket.IO packet type %s", p.typ)
	}
}

func isJSONArray(b []byte) bool {
	i := skipSpace(b, 0)
	return i < len(b) && b[i] == '[' && json.Valid(b)
}
