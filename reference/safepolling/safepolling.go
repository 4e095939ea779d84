// Package safepolling is the Engine.IO long-polling transport of
// zishang520's engine v3.0.6 with one defect worked around: a close of the
// transport while one of its POST requests is being handled.
//
// The library's polling.DoClose answers an in-flight data request (POST)
// with 429 and "Connection: close" (transports/polling.go, DoClose), while
// onDataRequest, once the packets it carried are handled, goes on to set
// that same request's response headers and write "ok". The two touch one
// http.Header map without a lock:
//   - when the close comes from another goroutine (a GET's flush completing
//     a deferred close, the heartbeat, a server-side disconnect), that is a
//     data race on a map, which the race detector reports and which the Go
//     runtime may end with "fatal error: concurrent map writes", taking the
//     whole server down;
//   - when the close comes from the packets the POST itself carried (a
//     handler that disconnects the socket), the client's POST is answered
//     429 instead of "ok", though its packets were read and handled.
//
// The fix needs no fork: the library builds transports through the
// TransportCtor values in its server options, so Builder wraps the
// library's own polling (and JSONP) transport and makes a close wait until
// the POST requests in flight have been answered. A POST takes as long as
// reading its body and running its handlers, which the server bounds
// (request-body deadline, maxHttpBufferSize); the close then proceeds
// exactly as the library does it.
package safepolling

import (
	"net/http"
	"sync"

	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Builder builds polling transports whose close waits for the POST
// requests in flight. Use it in place of the library's Polling in
// ServerOptions.SetTransports; name, upgrades and JSONP are the library's.
type Builder struct {
	transports.PollingBuilder
}

// Polling is a ready Builder, to stand where the library's Polling stood.
var Polling transports.TransportCtor = &Builder{}

// New builds the library's transport and routes its DoClose through the
// guard (the library dispatches DoClose through its prototype).
func (*Builder) New(ctx *types.HttpContext) transports.Transport {
	var inner transports.Polling
	if ctx.Query().Has("j") {
		inner = transports.MakeJSONP()
	} else {
		inner = transports.MakePolling()
	}
	t := &transport{Polling: inner}
	inner.Prototype(t)
	t.Construct(ctx)
	return t
}

// transport is the library's polling transport with POSTs and closes
// ordered: the library's DoClose never runs while a POST is being handled,
// and a POST never starts while it runs.
type transport struct {
	transports.Polling

	// mu is held while the library's DoClose runs. The library calls
	// DoClose at most once per transport (Close checks readyState), and
	// nothing it calls back from there enters this transport's OnRequest.
	mu      sync.Mutex
	posting int              // POST requests being handled
	asked   bool             // a close waits for the POSTs
	pending []types.Callable // the callbacks of the closes asked for
}

// OnRequest counts a POST while the library handles it, then runs a close
// that was asked for meanwhile.
func (t *transport) OnRequest(ctx *types.HttpContext) {
	if ctx.Method() != http.MethodPost {
		t.Polling.OnRequest(ctx)
		return
	}
	t.mu.Lock()
	t.posting++
	t.mu.Unlock()

	t.Polling.OnRequest(ctx)

	t.mu.Lock()
	defer t.mu.Unlock()
	t.posting--
	if t.posting == 0 && t.asked {
		fns := t.pending
		t.pending, t.asked = nil, false
		t.doClose(fns)
	}
}

// DoClose closes now when no POST is being handled, and otherwise as soon
// as the last one has been answered.
func (t *transport) DoClose(fn types.Callable) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.posting > 0 {
		t.pending = append(t.pending, fn)
		t.asked = true
		return
	}
	t.doClose([]types.Callable{fn})
}

// doClose runs the library's close, calling every callback handed to it;
// t.mu is held.
func (t *transport) doClose(fns []types.Callable) {
	t.Polling.DoClose(func() {
		for _, fn := range fns {
			if fn != nil {
				fn()
			}
		}
	})
}
