package safepolling

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// scripted stands in for the library's transport: its POST handling
// blocks until released, and it records when DoClose reaches it.
type scripted struct {
	transports.Polling
	inPost  chan struct{} // closed once OnRequest has started
	release chan struct{} // OnRequest returns once this is closed
	closed  chan struct{} // closed by DoClose
	posted  bool          // OnRequest had returned when DoClose ran
	mu      sync.Mutex
}

func (s *scripted) OnRequest(*types.HttpContext) {
	close(s.inPost)
	<-s.release
	s.mu.Lock()
	s.posted = true
	s.mu.Unlock()
}

func (s *scripted) DoClose(fn types.Callable) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.posted {
		panic("the library's DoClose ran while a POST was being handled")
	}
	close(s.closed)
	if fn != nil {
		fn()
	}
}

func postContext() *types.HttpContext {
	return types.NewHttpContext(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/socket.io/?EIO=4&transport=polling&sid=x", strings.NewReader("40")))
}

// TestCloseWaitsForThePost: a close asked for while a POST is handled
// reaches the library only after the POST has been answered, and its
// callback runs.
func TestCloseWaitsForThePost(t *testing.T) {
	inner := &scripted{Polling: transports.MakePolling(), inPost: make(chan struct{}), release: make(chan struct{}), closed: make(chan struct{})}
	tr := &transport{Polling: inner}
	posted := make(chan struct{})
	go func() { tr.OnRequest(postContext()); close(posted) }()
	<-inner.inPost

	called := make(chan struct{})
	tr.DoClose(func() { close(called) }) // returns at once: the close is deferred
	select {
	case <-inner.closed:
		t.Fatal("DoClose reached the library while the POST was being handled")
	default:
	}
	close(inner.release)
	<-posted
	select {
	case <-inner.closed:
	default:
		t.Fatal("the deferred close did not run when the POST was answered")
	}
	select {
	case <-called:
	default:
		t.Fatal("the close's callback did not run")
	}
}

// TestCloseWithoutPostIsImmediate: with no POST in flight the close goes
// straight to the library.
func TestCloseWithoutPostIsImmediate(t *testing.T) {
	inner := &scripted{Polling: transports.MakePolling(), closed: make(chan struct{}), posted: true}
	tr := &transport{Polling: inner}
	tr.DoClose(nil)
	select {
	case <-inner.closed:
	default:
		t.Fatal("DoClose did not reach the library")
	}
}

// startServer runs a Socket.IO server on the given polling transport whose
// "bye" handler closes the transport. The library runs event handlers on
// the socket's own task goroutine, so the close comes from another
// goroutine while the POST that carried "bye" may still be writing its
// answer: the situation the race detector caught in the library.
func startServer(t *testing.T, polling socket.TransportCtor) string {
	t.Helper()
	opts := socket.DefaultServerOptions()
	opts.SetTransports(types.NewSet(polling))
	opts.SetPingInterval(20 * time.Second)
	opts.SetPingTimeout(20 * time.Second)
	io := socket.NewServer(nil, opts)
	_ = io.On("connection", func(a ...any) {
		s := a[0].(*socket.Socket)
		_ = s.On("bye", func(...any) {
			if tr := s.Conn().Transport(); tr != nil {
				tr.Close()
			}
		})
	})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", io.ServeHandler(nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() {
		hs.Close()
		io.Close(nil)
	})
	return "http://" + ln.Addr().String() + "/socket.io/?EIO=4&transport=polling"
}

func do(t *testing.T, c *http.Client, method, u, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// TestServerSideCloseDuringPosts drives many sessions whose POST makes the
// server close the transport, on a real server and real sockets. Run with
// the race detector (as scripts/test.sh does): with the library's own
// polling transport the detector reports the header-map race here within
// a few hundred sessions; with Builder it must stay quiet. Every POST is
// answered, and every session ends.
func TestServerSideCloseDuringPosts(t *testing.T) {
	base := startServer(t, Polling)
	c := &http.Client{Timeout: 30 * time.Second}
	const sessions = 300
	for i := 0; i < sessions; i++ {
		status, open := do(t, c, http.MethodGet, base, "")
		if status != http.StatusOK || !strings.HasPrefix(open, "0{") {
			t.Fatalf("session %d: handshake %d %q", i, status, open)
		}
		sid := open[strings.Index(open, `"sid":"`)+7:]
		sid = sid[:strings.IndexByte(sid, '"')]
		u := base + "&sid=" + url.QueryEscape(sid)
		if status, body := do(t, c, http.MethodPost, u, "40"); status != http.StatusOK || body != "ok" {
			t.Fatalf("session %d: CONNECT %d %q", i, status, body)
		}
		if status, body := do(t, c, http.MethodGet, u, ""); status != http.StatusOK || !strings.HasPrefix(body, "40") {
			t.Fatalf("session %d: CONNECT ack %d %q", i, status, body)
		}
		// The POST is answered "ok" (the close waited for it) or, when the
		// close won the race to the session, refused as a closed session.
		if status, body := do(t, c, http.MethodPost, u, `42["bye"]`); status != http.StatusOK && status != http.StatusBadRequest {
			t.Fatalf("session %d: the POST that closed its transport got %d %q", i, status, body)
		}
	}
}
