// Package faultychat is a deliberately faulty chat server for the load
// generator's tests: the chat contract of spec/CONTRACT.md, minus what
// Faults takes away. It shows that the generator's figures and thresholds
// catch a server that loses or delays messages. Test use only.
package faultychat

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Faults selects what the server gets wrong.
type Faults struct {
	// DropEvery, when > 0, silently discards every DropEvery-th
	// writeMessage (counted over the whole server): not stored, not
	// broadcast.
	DropEvery int
	// Delay holds every messageWritten broadcast back this long.
	Delay time.Duration
	// DuplicateEvery, when > 0, stores every DuplicateEvery-th message
	// twice (a double-registered handler).
	DuplicateEvery int
	// EndSessionsAfter, when > 0, makes the server end every session
	// (a Socket.IO disconnect) this long after its `connected`.
	EndSessionsAfter time.Duration
	// EndPollingAfter, when > 0, ends every session still on HTTP
	// long-polling this long after it connected (a server behind a proxy
	// with a request timeout, scaled down).
	EndPollingAfter time.Duration
	// EchoSenderTwice sends the sender its messageWritten twice (the same
	// list both times).
	EchoSenderTwice bool
	// RefuseEvery, when > 0, refuses every RefuseEvery-th writeMessage
	// with `chatError {event: "writeMessage", code: "internal_error"}`:
	// not stored, not broadcast.
	RefuseEvery int
	// RefuseAs is how a refusal is told (CONTRACT.md ERR-1 leaves the
	// format open): "" or "chatError" as above; "ack" only as a negative
	// ack {ok: false, code} (successes ack {ok: true}); "ack-error" only as
	// an ack {error: message} (successes ack with nothing); "notice" as
	// `notice {level: "error", event, reason}`; "exception" as `exception
	// {status: "error", message}`, naming no event; "both" as chatError
	// and a negative ack, as the reference does. Without an ack asked
	// for, "ack" and "ack-error" refuse silently.
	RefuseAs string
	// SplitOrder gives the sockets two orders of history, as a cluster
	// whose nodes disagree: sockets that joined first, third… see
	// messages in arrival order; the others see each pair of messages
	// swapped (the first of a pair is held until the second arrives).
	SplitOrder bool
	// HistoryLimit caps history (default 50).
	HistoryLimit int
	// QuietPresence leaves out what makes the contract's presence
	// quadratic: no `joined` or `disconnected` broadcasts, and `connected`
	// lists only the joining user. Every join otherwise sends the whole
	// user list to every socket, O(users²) bytes per join wave. For
	// measuring the generator at 10,000 users, not for conformance.
	QuietPresence bool
	// Addr is the address to listen on; default "127.0.0.1:0" (a free
	// port). A test restarts a server on the port of one it closed.
	Addr string
	// PingInterval and PingTimeout are the Engine.IO heartbeat; default
	// 2s each, so tests notice dead clients quickly.
	PingInterval, PingTimeout time.Duration
}

type message struct {
	Username string `json:"username"`
	Message  string `json:"message"`
}

type user struct {
	Username string `json:"username"`
}

// Server is a running faulty chat server on 127.0.0.1.
type Server struct {
	f    Faults
	io   *socket.Server
	http *http.Server
	url  string

	mu      sync.Mutex
	users   []user
	history []message
	swapped []message               // SplitOrder: the other order
	held    *message                // SplitOrder: the first of a pair, until the second
	odd     map[*socket.Socket]bool // SplitOrder: sockets that see swapped
	writes  int
	joins   int
	refused int
	queue   chan delayed
	done    chan struct{}
}

type delayed struct {
	due  time.Time
	list []message
}

// Start listens on f.Addr (a free loopback port by default) and serves
// until Close.
func Start(f Faults) (*Server, error) {
	if f.HistoryLimit <= 0 {
		f.HistoryLimit = 50
	}
	if f.Addr == "" {
		f.Addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", f.Addr)
	if err != nil {
		return nil, err
	}
	opts := socket.DefaultServerOptions()
	opts.SetServeClient(false)
	if f.PingInterval <= 0 {
		f.PingInterval = 2 * time.Second
	}
	if f.PingTimeout <= 0 {
		f.PingTimeout = 2 * time.Second
	}
	opts.SetPingInterval(f.PingInterval)
	opts.SetPingTimeout(f.PingTimeout)
	s := &Server{f: f, url: "http://" + ln.Addr().String(), queue: make(chan delayed, 1<<16), done: make(chan struct{})}
	s.io = socket.NewServer(nil, opts)
	if err := s.io.On("connection", s.onConnection); err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", s.io.ServeHandler(nil))
	s.http = &http.Server{Handler: mux}
	go s.http.Serve(ln)
	go s.broadcaster()
	return s, nil
}

// Joins counts the `connecting` events the server has handled.
func (s *Server) Joins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.joins
}

// Refused counts the writes the server refused (Faults.RefuseEvery).
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// URL is the server's base URL.
func (s *Server) URL() string { return s.url }

// Close stops the server and drops every connection.
func (s *Server) Close() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	close(s.done)
	s.io.Close(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.http.Close()
	}
	return err
}

// broadcaster emits delayed broadcasts in order.
func (s *Server) broadcaster() {
	for {
		select {
		case d := <-s.queue:
			select {
			case <-time.After(time.Until(d.due)):
			case <-s.done:
				return
			}
			s.mu.Lock()
			s.io.Emit("messageWritten", map[string]any{"messagesList": d.list})
			s.mu.Unlock()
		case <-s.done:
			return
		}
	}
}

func field(args []any, name string) (string, bool) {
	if len(args) == 0 {
		return "", false
	}
	m, ok := args[0].(map[string]any)
	if !ok {
		return "", false
	}
	v, ok := m[name].(string)
	return v, ok
}

func (s *Server) onConnection(args ...any) {
	sock, ok := args[0].(*socket.Socket)
	if !ok {
		return
	}
	var name string
	var once sync.Once
	sock.On("connecting", func(args ...any) {
		u, ok := field(args, "username")
		if !ok {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		name = u
		s.joins++
		if s.f.QuietPresence {
			sock.Emit("connected", map[string]any{"connectedUserList": []user{{u}}, "messagesList": append([]message{}, s.history...)})
			return
		}
		s.users = append(s.users, user{u})
		hist := s.history
		if s.f.SplitOrder {
			if s.odd == nil {
				s.odd = map[*socket.Socket]bool{}
			}
			if s.joins%2 == 0 {
				s.odd[sock] = true
				hist = s.swapped
			}
		}
		sock.Emit("connected", map[string]any{"connectedUserList": append([]user{}, s.users...), "messagesList": append([]message{}, hist...)})
		sock.Broadcast().Emit("joined", map[string]any{"connectedUserList": append([]user{}, s.users...)})
		if d := s.f.EndSessionsAfter; d > 0 {
			time.AfterFunc(d, func() { sock.Disconnect(true) })
		}
	})
	if d := s.f.EndPollingAfter; d > 0 {
		time.AfterFunc(d, func() {
			if sock.Conn().Transport().Name() == "polling" {
				sock.Disconnect(true)
			}
		})
	}
	sock.On("writeMessage", func(args ...any) {
		var ack func([]any, error)
		if n := len(args); n > 0 {
			ack, _ = args[n-1].(func([]any, error))
		}
		text, ok := field(args, "message")
		if !ok {
			return
		}
		u, _ := field(args, "username")
		s.mu.Lock()
		defer s.mu.Unlock()
		s.writes++
		if s.f.DropEvery > 0 && s.writes%s.f.DropEvery == 0 {
			return
		}
		if s.f.RefuseEvery > 0 && s.writes%s.f.RefuseEvery == 0 {
			s.refused++
			s.refuse(sock, ack)
			return
		}
		switch {
		case ack == nil:
		case s.f.RefuseAs == "ack" || s.f.RefuseAs == "both":
			ack([]any{map[string]any{"ok": true}}, nil)
		case s.f.RefuseAs == "ack-error":
			ack(nil, nil)
		}
		if s.f.SplitOrder {
			s.splitWrite(message{u, text})
			return
		}
		s.history = append(s.history, message{u, text})
		if s.f.DuplicateEvery > 0 && s.writes%s.f.DuplicateEvery == 0 {
			s.history = append(s.history, message{u, text})
		}
		if n := len(s.history) - s.f.HistoryLimit; n > 0 {
			s.history = append([]message{}, s.history[n:]...)
		}
		list := append([]message{}, s.history...)
		if s.f.Delay > 0 {
			s.queue <- delayed{time.Now().Add(s.f.Delay), list}
			return
		}
		s.io.Emit("messageWritten", map[string]any{"messagesList": list})
		if s.f.EchoSenderTwice {
			sock.Emit("messageWritten", map[string]any{"messagesList": list})
		}
	})
	sock.On("disconnect", func(...any) {
		if s.f.QuietPresence {
			return
		}
		once.Do(func() {
			// Off the library's goroutine: a disconnect can fire inside a
			// write made under s.mu.
			go func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				for i, x := range s.users {
					if x.Username == name {
						s.users = append(s.users[:i], s.users[i+1:]...)
						break
					}
				}
				sock.Broadcast().Emit("disconnected", map[string]any{"connectedUserList": append([]user{}, s.users...)})
			}()
		})
	})
}

// splitWrite stores m in both orders and broadcasts each order to its
// sockets: arrival order at once; the swapped order holds the first
// message of each pair until the second arrives, then appends both,
// second first. Called with s.mu held.
func (s *Server) splitWrite(m message) {
	capped := func(h []message) []message {
		if n := len(h) - s.f.HistoryLimit; n > 0 {
			h = append([]message{}, h[n:]...)
		}
		return h
	}
	s.history = capped(append(s.history, m))
	s.emitTo(false, s.history)
	if s.held == nil {
		s.held = &m
		return
	}
	first := *s.held
	s.held = nil
	s.swapped = capped(append(s.swapped, m))
	s.emitTo(true, s.swapped)
	s.swapped = capped(append(s.swapped, first))
	s.emitTo(true, s.swapped)
}

// emitTo sends a messageWritten with list to the sockets of one order.
func (s *Server) emitTo(odd bool, list []message) {
	payload := map[string]any{"messagesList": append([]message{}, list...)}
	for sock, o := range s.odd {
		if o == odd {
			sock.Emit("messageWritten", payload)
		}
	}
	if !odd {
		for _, id := range s.io.Sockets().Sockets().Keys() {
			if sock, ok := s.io.Sockets().Sockets().Load(id); ok && !s.odd[sock] {
				sock.Emit("messageWritten", payload)
			}
		}
	}
}

// refuse tells sock its write was refused, in the form Faults.RefuseAs
// names.
func (s *Server) refuse(sock *socket.Socket, ack func([]any, error)) {
	switch s.f.RefuseAs {
	case "", "chatError":
		sock.Emit("chatError", map[string]any{"event": "writeMessage", "code": "internal_error", "message": "store unavailable"})
	case "both":
		sock.Emit("chatError", map[string]any{"event": "writeMessage", "code": "internal_error", "message": "store unavailable"})
		fallthrough
	case "ack":
		if ack != nil {
			ack([]any{map[string]any{"ok": false, "code": "internal_error", "message": "store unavailable"}}, nil)
		}
	case "ack-error":
		if ack != nil {
			ack([]any{map[string]any{"error": "store unavailable"}}, nil)
		}
	case "notice":
		sock.Emit("notice", map[string]any{"level": "error", "event": "writeMessage", "reason": "internal_error", "detail": "store unavailable"})
	case "exception":
		sock.Emit("exception", map[string]any{"status": "error", "message": "writeMessage: store unavailable"})
	}
}
