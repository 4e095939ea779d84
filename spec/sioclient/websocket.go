package sioclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// dialWS opens the websocket transport; sid is empty for a fresh session
// and set for an upgrade.
func (c *Conn) dialWS(ctx context.Context, sid string) (*websocket.Conn, error) {
	u := *c.base
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	q := u.Query()
	q.Set("transport", string(WebSocket))
	if sid != "" {
		q.Set("sid", sid)
	}
	u.RawQuery = q.Encode()
	ws, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPClient: c.opts.HTTPClient,
		HTTPHeader: c.opts.Header,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, httpErrorFrom("GET", redact(u.String()), resp)
		}
		return nil, describeNetErr(err, u.Host)
	}
	ws.SetReadLimit(int64(c.opts.MaxPacketBytes))
	c.wsShared.Store(ws)
	if c.ended() { // fail ran before wsShared was set
		_ = ws.CloseNow()
		return nil, c.endErr()
	}
	return ws, nil
}

// openWebSocket opens a session directly over websocket: the first message
// must be the open packet.
func (c *Conn) openWebSocket(ctx context.Context) error {
	ws, err := c.dialWS(ctx, "")
	if err != nil {
		return err
	}
	b, err := readFrame(ctx, ws)
	if err != nil {
		return c.wsErr(err)
	}
	hs, err := parseOpen(b)
	if err != nil {
		return err
	}
	c.startEngine(hs)
	c.ws = ws
	c.transport.Store(WebSocket)
	c.wg.Go(func() { c.wsReadLoop(ws) })
	return nil
}

// upgrade moves a polling session to websocket as Engine.IO v4 specifies:
// probe, pause polling (no GET or POST in flight), then "5".
func (c *Conn) upgrade(ctx context.Context) (step string, err error) {
	if !slices.Contains(c.hs.Upgrades, string(WebSocket)) {
		return "upgrade", fmt.Errorf("server offers no websocket upgrade (handshake upgrades=%q)", c.hs.Upgrades)
	}
	ws, err := c.dialWS(ctx, c.hs.SID)
	if err != nil {
		return "upgrade: websocket handshake", err
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte("2probe")); err != nil {
		return "upgrade probe", c.wsErr(err)
	}
	b, err := readFrame(ctx, ws)
	if err != nil {
		return "upgrade probe", c.wsErr(err)
	}
	if string(b) != "3probe" {
		return "upgrade probe", protoErr(b, `expected "3probe" in answer to "2probe"`)
	}
	if err := c.poll.pauseReader(ctx); err != nil {
		return "upgrade: pausing polling", err
	}
	select {
	case c.wsem <- struct{}{}:
	case <-ctx.Done():
		return "upgrade: pausing polling", ctx.Err()
	}
	c.poll.stopWriter()
	if c.ended() {
		<-c.wsem
		return "upgrade: pausing polling", c.endErr()
	}
	err = ws.Write(ctx, websocket.MessageText, []byte{engineUpgrade})
	if err == nil {
		c.ws = ws
		c.transport.Store(WebSocket)
	}
	<-c.wsem
	if err != nil {
		return "upgrade: sending \"5\"", c.wsErr(err)
	}
	c.wg.Go(func() { c.wsReadLoop(ws) })
	return "", nil
}

// wsReadLoop is the websocket reader goroutine.
func (c *Conn) wsReadLoop(ws *websocket.Conn) {
	for {
		typ, r, err := ws.Reader(context.Background())
		if err != nil {
			c.fail(c.wsErr(err))
			return
		}
		recv := time.Now()
		b, err := readAll(r)
		if err != nil {
			c.fail(c.wsErr(err))
			return
		}
		if typ != websocket.MessageText {
			c.fail(protoErr(b, "binary websocket frame: chat payloads are JSON only"))
			return
		}
		if err := c.handleEngine(b, recv); err != nil {
			c.fail(err)
			return
		}
		if c.ended() {
			return
		}
	}
}

// readFrame reads one text message during Dial, bounded by ctx.
func readFrame(ctx context.Context, ws *websocket.Conn) ([]byte, error) {
	typ, r, err := ws.Reader(ctx)
	if err != nil {
		return nil, err
	}
	b, err := readAll(r)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageText {
		return nil, protoErr(b, "binary websocket frame during the handshake")
	}
	return b, nil
}

// readBufs are scratch buffers for reading frames: a frame is read into
// one and copied out at its exact size, so an idle connection holds no
// read buffer and a busy one allocates once per frame.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func readAll(r io.Reader) ([]byte, error) {
	bp := readBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	var err error
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		var n int
		n, err = r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			break
		}
	}
	out := make([]byte, len(buf))
	copy(out, buf)
	if cap(buf) <= 1<<20 {
		*bp = buf
		readBufs.Put(bp)
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return out, err
}

// wsErr explains a websocket failure.
func (c *Conn) wsErr(err error) error {
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return err
	}
	if errors.Is(err, websocket.ErrMessageTooBig) {
		return protoErr(nil, "websocket frame larger than MaxPacketBytes (%d)", c.opts.MaxPacketBytes)
	}
	if s := websocket.CloseStatus(err); s != -1 {
		return &TransportError{Transport: WebSocket, Err: fmt.Errorf("server closed the websocket (status %d %s)", int(s), s)}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &TransportError{Transport: WebSocket, Err: fmt.Errorf("server dropped the TCP connection without a close frame: %w", err)}
	}
	return &TransportError{Transport: WebSocket, Err: err}
}

// describeNetErr makes dial-level errors actionable.
func describeNetErr(err error, hostport string) error {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("connection refused by %s: is the server running and listening there? (%w)", hostport, err)
	case errors.As(err, &dnsErr):
		return fmt.Errorf("cannot resolve host of %s: %w", hostport, err)
	}
	return err
}

// httpErrorFrom builds an HTTPError with the start of the body.
func httpErrorFrom(method, url string, resp *http.Response) *HTTPError {
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, 200))
		_ = resp.Body.Close()
	}
	e := &HTTPError{Method: method, URL: url, Status: resp.StatusCode, Body: string(body)}
	// resp.Request is the last request the client made; each request made
	// for a redirect carries the response that caused it.
	for req := resp.Request; req != nil && req.Response != nil && len(e.Redirects) < 10; req = req.Response.Request {
		if req.Response.Request == nil {
			break
		}
		e.Redirects = append([]Redirect{{
			Status: req.Response.StatusCode,
			From:   redact(req.Response.Request.URL.String()),
			To:     redact(req.URL.String()),
		}}, e.Redirects...)
	}
	return e
}

// redact drops the query from a URL for messages: it may hold tokens.
func redact(u string) string {
	for i := 0; i < len(u); i++ {
		if u[i] == '?' {
			return u[:i]
		}
	}
	return u
}
