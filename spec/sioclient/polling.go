package sioclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// poller is the long-polling transport. It is full-duplex: getLoop keeps
// one GET pending to receive, while writeLoop POSTs queued packets as soon
// as they are queued, batched with the 0x1e separator.
type poller struct {
	c      *Conn
	url    string
	ctx    context.Context // ends every request; canceled by Conn.fail
	cancel context.CancelFunc

	pauseReq atomic.Bool
	getDone  chan struct{}

	mu         sync.Mutex
	pending    *batch
	wake       chan struct{}
	stopW      chan struct{}
	writerDone chan struct{}
}

// batch is the packets of one POST; all their senders share its result.
type batch struct {
	buf  []byte
	done chan struct{}
	err  error
}

// openPolling performs the Engine.IO handshake over polling and starts the
// GET and POST goroutines.
func (c *Conn) openPolling(ctx context.Context) error {
	u := *c.base
	q := u.Query()
	q.Set("transport", string(Polling))
	u.RawQuery = q.Encode()
	pctx, cancel := context.WithCancel(context.Background())
	p := &poller{
		c:          c,
		url:        u.String(),
		ctx:        pctx,
		cancel:     cancel,
		getDone:    make(chan struct{}),
		wake:       make(chan struct{}, 1),
		stopW:      make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	c.poll = p
	c.transport.Store(Polling)
	stop := context.AfterFunc(ctx, cancel) // Dial's budget bounds the handshake GET
	body, recv, err := p.get(p.url)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	first, rest, _ := bytes.Cut(body, []byte{separator})
	hs, err := parseOpen(first)
	if err != nil {
		return err
	}
	c.startEngine(hs)
	q.Set("sid", hs.SID)
	u.RawQuery = q.Encode()
	p.url = u.String()
	if len(rest) > 0 {
		if err := c.handlePayload(rest, recv); err != nil {
			return err
		}
	}
	c.wg.Go(p.getLoop)
	c.wg.Go(p.writeLoop)
	return nil
}

// get performs one GET and returns the body, read in full within
// MaxPacketBytes, and when it was read.
func (p *poller) get(url string) ([]byte, time.Time, error) {
	req, err := http.NewRequestWithContext(p.ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, time.Time{}, err
	}
	for k, vs := range p.c.opts.Header {
		req.Header[k] = vs
	}
	resp, err := p.c.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, time.Time{}, describeNetErr(err, req.URL.Host)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, time.Time{}, httpErrorFrom("GET", redact(url), resp)
	}
	max := int64(p.c.opts.MaxPacketBytes)
	if resp.ContentLength > max {
		return nil, time.Time{}, protoErr(nil, "polling response of %d bytes exceeds MaxPacketBytes (%d)", resp.ContentLength, max)
	}
	var body []byte
	if resp.ContentLength >= 0 {
		body = make([]byte, resp.ContentLength)
		if _, err := io.ReadFull(resp.Body, body); err != nil {
			return nil, time.Time{}, fmt.Errorf("reading polling response: %w", err)
		}
	} else {
		body, err = readAll(io.LimitReader(resp.Body, max+1))
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("reading polling response: %w", err)
		}
		if int64(len(body)) > max {
			return nil, time.Time{}, protoErr(body, "polling response exceeds MaxPacketBytes (%d)", max)
		}
	}
	return body, time.Now(), nil
}

// getLoop keeps one long-poll GET pending until paused or ended.
func (p *poller) getLoop() {
	defer close(p.getDone)
	for !p.pauseReq.Load() {
		body, recv, err := p.get(p.url)
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				err = &TransportError{Transport: Polling, Err: err}
			}
			p.c.fail(err)
			return
		}
		if err := p.c.handlePayload(body, recv); err != nil {
			p.c.fail(err)
			return
		}
		if p.c.ended() {
			return
		}
	}
}

// handlePayload splits a polling payload into Engine.IO packets.
func (c *Conn) handlePayload(body []byte, recv time.Time) error {
	if len(body) == 0 {
		return protoErr(body, "empty polling response")
	}
	for len(body) > 0 {
		pkt, rest, found := bytes.Cut(body, []byte{separator})
		if len(pkt) == 0 {
			return protoErr(body, "empty packet in polling payload")
		}
		if err := c.handleEngine(pkt, recv); err != nil {
			return err
		}
		if c.ended() {
			return nil
		}
		body = rest
		if found && len(rest) == 0 {
			return protoErr(pkt, "polling payload ends with a separator")
		}
	}
	return nil
}

// pauseReader stops issuing GETs and waits for the pending one, which the
// server answers (with a noop if nothing else) once it saw the probe.
func (p *poller) pauseReader(ctx context.Context) error {
	p.pauseReq.Store(true)
	select {
	case <-p.getDone:
		if p.c.ended() {
			return p.c.endErr()
		}
		return nil
	case <-p.c.done:
		return p.c.endErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enqueue adds a packet to the next POST and returns that POST's batch.
// The caller holds Conn.wsem. What waits for a POST is bounded by
// MaxPacketBytes; beyond it the connection ends with ErrSendBacklog.
func (p *poller) enqueue(pkt []byte) *batch {
	p.mu.Lock()
	b := p.pending
	if b != nil && len(b.buf)+1+len(pkt) > p.c.opts.MaxPacketBytes {
		// POSTs are not keeping up (a server that holds them while it
		// sends pings, each of which needs a pong): end the session
		// rather than let the backlog grow.
		p.mu.Unlock()
		p.c.fail(&TransportError{Transport: Polling, Err: ErrSendBacklog})
		failed := &batch{done: make(chan struct{}), err: p.c.endErr()}
		close(failed.done)
		return failed
	}
	if b == nil {
		b = &batch{done: make(chan struct{})}
		p.pending = b
	} else {
		b.buf = append(b.buf, separator)
	}
	b.buf = append(b.buf, pkt...)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return b
}

// stopWriter flushes what is queued and stops the writer (for the upgrade).
func (p *poller) stopWriter() {
	close(p.stopW)
	<-p.writerDone
}

// writeLoop POSTs queued packets, one request at a time.
func (p *poller) writeLoop() {
	defer close(p.writerDone)
	for {
		select {
		case <-p.wake:
			p.flush()
		case <-p.stopW:
			p.flush()
			return
		case <-p.ctx.Done():
			return
		}
	}
}

func (p *poller) flush() {
	for {
		p.mu.Lock()
		b := p.pending
		p.pending = nil
		p.mu.Unlock()
		if b == nil {
			return
		}
		b.err = p.post(b.buf)
		close(b.done)
		if b.err != nil {
			p.c.fail(b.err)
			return
		}
	}
}

// post sends a payload, split at packet boundaries to respect the server's
// maxPayload.
func (p *poller) post(payload []byte) error {
	limit := int(p.c.hs.MaxPayload)
	for len(payload) > 0 {
		chunk := payload
		if limit > 0 && len(chunk) > limit {
			// Cut at the last separator within the limit; a single
			// oversized packet goes alone and the server judges it.
			cut := bytes.LastIndexByte(chunk[:limit], separator)
			if cut <= 0 {
				cut = bytes.IndexByte(chunk, separator)
			}
			if cut > 0 {
				chunk = chunk[:cut]
			}
		}
		if err := p.postOne(chunk); err != nil {
			return err
		}
		payload = payload[len(chunk):]
		if len(payload) > 0 && payload[0] == separator {
			payload = payload[1:]
		}
	}
	return nil
}

func (p *poller) postOne(body []byte) error {
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, vs := range p.c.opts.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := p.c.opts.HTTPClient.Do(req)
	if err != nil {
		if p.c.ended() {
			return p.c.endErr()
		}
		return &TransportError{Transport: Polling, Err: fmt.Errorf("POST: %w", describeNetErr(err, req.URL.Host))}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return httpErrorFrom("POST", redact(p.url), resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 512))
	return nil
}
