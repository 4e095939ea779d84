package reference

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	engine "github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/chatspec/chatspec/reference/safepolling"
	"github.com/chatspec/chatspec/reference/sharedadapter"
	"github.com/chatspec/chatspec/reference/sharedws"
	"github.com/chatspec/chatspec/reference/store"
	"github.com/chatspec/chatspec/reference/webchat"
)

// Server is the reference chat server: the chat contract (spec/CONTRACT.md)
// on a Socket.IO server, plus /healthz and /metrics. Build it with New, run
// it with Serve (or use Start). A Server serves once: after Serve returns it
// cannot be started again.
type Server struct {
	cfg       Config
	log       *slog.Logger
	store     store.Store
	ownsStore bool
	gatherer  prometheus.Gatherer
	m         *metrics
	io        *socket.Server
	conns     *connLimiter
	handler   http.Handler
	now       func() time.Time

	// chatMu serialises every change of chat state together with the
	// broadcast that reports it. Without it two writeMessage handlers could
	// append A then B but broadcast [..A,B] before [..A] (HIST-1), and a
	// join and a leave could reach sockets in the other order (USER-2).
	// The library writes a broadcast into each socket's buffer before
	// Emit returns, so emitting under the lock fixes the order per socket.
	chatMu sync.Mutex

	// ctx is cancelled at the end of shutdown; the join and append store
	// calls derive from it, so a slow remote store cannot hold a stopped
	// server. (Leaves use their own deadline: they must still land.)
	ctx    context.Context
	cancel context.CancelFunc
	// pending counts disconnect handlers still running, so the store is
	// closed only after they are done.
	pending inflight
	// gates maps Engine.IO connection ids to their *connectGate (gate.go).
	gates sync.Map

	// annMu guards ann, the queue of list changes a shared store made in
	// the background (cluster.go).
	annMu sync.Mutex
	ann   announcer
	// feed is set when the store has a change feed (store.ChangeFeed):
	// chat events then go out from applyChange only (cluster.go).
	feed *feedState

	mu       sync.Mutex
	served   bool
	draining bool
	newConns map[net.Conn]struct{} // accepted, no request read yet

	// slowDrops counts connections the slow-reader guard closed
	// (slowreader.go).
	slowDrops atomic.Int64
	// writers maps Engine.IO connection ids to their *slowReader.
	writers sync.Map
	// budget bounds the unwritten bytes of all connections together (nil:
	// no bound); reclaim returns a large drop's memory to the OS
	// (outputbudget.go).
	budget  *outputBudget
	reclaim reclaimer
	// output is the chat-wide output rate (nil: none); historyBytes the
	// size of the last broadcast history, for a write's cost
	// (broadcastrate.go).
	output       *broadcastRate
	historyBytes atomic.Int64
	// sharedBroadcasts: a broadcast's receivers hold one copy of it
	// (sharedadapter), so the budget counts it once (slowreader.go).
	sharedBroadcasts bool

	// probe is the store ping /healthz requests are waiting for, if any.
	probeMu sync.Mutex
	probe   *storeProbe

	// seed ties seed-style clients' sockets (Config.SeedClients,
	// seedclients.go); nil when the mode is off.
	seed *seedTies
}

// trackConn is the http.Server's ConnState hook: it remembers connections
// that have not sent a request yet.
func (s *Server) trackConn(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == http.StateNew {
		if s.newConns == nil {
			s.newConns = make(map[net.Conn]struct{})
		}
		s.newConns[c] = struct{}{}
		return
	}
	delete(s.newConns, c)
}

func (s *Server) closeNewConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.newConns {
		c.Close()
		delete(s.newConns, c)
	}
}

// Option configures a Server in New.
type Option func(*options)

type options struct {
	store   store.Store
	logger  *slog.Logger
	reg     prometheus.Registerer
	adapter socket.AdapterConstructor
	now     func() time.Time
	// noReclaim leaves returning memory to the OS to Go's scavenger
	// (benchmarks that measure the difference).
	noReclaim bool
}

// WithStore makes the server keep users and history in s instead of a fresh
// store.NewMemory(cfg.HistoryLimit). The caller keeps ownership: the server
// never closes a store it was given. The store's own history cap applies.
func WithStore(s store.Store) Option { return func(o *options) { o.store = s } }

// WithLogger sends the server's structured logs to l (default: discarded).
// Connections, joins, leaves and refusals log at debug; refused
// connections and shutdown at info; store failures and panics at error.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRegisterer registers the server's metrics on r instead of a fresh
// registry. When r is also a prometheus.Gatherer (a *prometheus.Registry
// is), /metrics serves it; otherwise /metrics answers 404 and the caller
// exposes r itself. Two servers cannot share one registry: their series
// would collide.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.reg = r } }

// WithAdapter sets the Socket.IO adapter that carries broadcasts between
// nodes (for example the library's Redis streams adapter). An adapter
// carries broadcasts only: nodes must also share a store (WithStore).
func WithAdapter(a socket.AdapterConstructor) Option { return func(o *options) { o.adapter = a } }

// withClock replaces time.Now for the rate limiter (tests).
func withClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// withoutReclaim turns off the reclaim after large drops (benchmarks).
func withoutReclaim() Option { return func(o *options) { o.noReclaim = true } }

// New validates cfg and builds a Server. Nothing listens until Serve.
func New(cfg Config, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Transports = slices.Clone(cfg.Transports)
	cfg.CORSOrigins = slices.Clone(cfg.CORSOrigins)
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{cfg: cfg, log: o.logger, store: o.store, now: o.now, conns: newConnLimiter(cfg.MaxConnections, cfg.MaxConnectionsPerIP),
		budget: newOutputBudget(cfg.OutputBudget)}
	s.output = newBroadcastRate(cfg.BroadcastRate, s.now)
	s.reclaim.stopped = o.noReclaim
	if cfg.SeedClients {
		s.seed = newSeedTies()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.store == nil {
		s.store = store.NewMemory(cfg.HistoryLimit)
		s.ownsStore = true
	}
	reg := o.reg
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, s.gatherer = r, r
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		s.gatherer = g
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("reference: registering metrics: %w", err)
	}
	s.m = m
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if !o.noReclaim {
		go s.reclaim.watch(s.ctx)
	}
	if err := s.registerSlowReaderMetric(reg); err != nil {
		s.cancel()
		return nil, fmt.Errorf("reference: registering metrics: %w", err)
	}
	if err := s.registerStoreMetrics(reg); err != nil {
		s.cancel()
		return nil, fmt.Errorf("reference: %w", err)
	}

	// Without an adapter of its own (one node) the server broadcasts
	// through sharedadapter, whose receivers share one copy.
	s.sharedBroadcasts = o.adapter == nil
	s.io = socket.NewServer(nil, s.socketOptions(o.adapter))
	s.io.Use(s.admit)
	if err := s.io.On("connection", s.onConnection); err != nil {
		return nil, fmt.Errorf("reference: registering connection handler: %w", err)
	}
	s.handler = s.routes()
	// The engine exists once routes has called ServeHandler.
	if err := s.io.Engine().On("connection", s.watchSlowReader); err != nil {
		return nil, fmt.Errorf("reference: registering slow-reader guard: %w", err)
	}
	if err := s.io.Engine().On("connection", s.onEngineConnection); err != nil {
		return nil, fmt.Errorf("reference: registering engine connection handler: %w", err)
	}
	// Last, so that no change reaches a half-built server: a shared store's
	// feed is the only source of chat events from now on (cluster.go).
	if f, ok := s.store.(store.ChangeFeed); ok {
		s.feed = &feedState{store: f, waiting: make(map[string]*feedWaiter)}
		if err := f.Subscribe(s.applyChange); err != nil {
			s.cancel()
			return nil, fmt.Errorf("reference: subscribing to the store's change feed: %w", err)
		}
	}
	return s, nil
}

func (s *Server) socketOptions(adapter socket.AdapterConstructor) *socket.ServerOptions {
	opts := socket.DefaultServerOptions()
	opts.SetPath(strings.TrimSuffix(s.cfg.Path, "/"))
	opts.SetServeClient(false)
	opts.SetPingInterval(s.cfg.PingInterval)
	opts.SetPingTimeout(s.cfg.PingTimeout)
	opts.SetMaxHttpBufferSize(s.cfg.MaxHTTPBufferSize)
	if s.cfg.HTTPCompressionThreshold > 0 {
		opts.SetHttpCompression(&types.HttpCompression{Threshold: s.cfg.HTTPCompressionThreshold})
	} else {
		opts.SetHttpCompression(nil) // a set nil is "off"; unset is the library's 1024
	}
	ts := types.NewSet[engine.TransportCtor]()
	for _, t := range s.cfg.Transports {
		switch t {
		case TransportPolling:
			ts.Add(safepolling.Polling) // the library's, with closes ordered after POSTs (safepolling)
		case TransportWebSocket:
			ts.Add(sharedws.New()) // the library's, with a broadcast framed once for all receivers (sharedws)
		}
	}
	opts.SetTransports(ts)
	opts.SetAllowUpgrades(s.cfg.AllowUpgrades)
	if len(s.cfg.CORSOrigins) > 0 {
		allowed := s.cfg.CORSOrigins
		opts.SetCors(&types.Cors{
			Origin: func(origin string) bool {
				return slices.ContainsFunc(allowed, func(a string) bool { return a == "*" || strings.EqualFold(a, origin) })
			},
		})
	}
	if adapter == nil {
		// One node: the library's in-memory adapter, with a broadcast's
		// bytes shared by its receivers rather than copied (sharedadapter).
		adapter = sharedadapter.Builder{}
	}
	opts.SetAdapter(adapter)
	return opts
}

// Handler returns the server's HTTP routes: Socket.IO at cfg.Path, the
// init route at cfg.InitPath, /healthz, /metrics and the chat page at /.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(s.cfg.Path, s.io.ServeHandler(nil))
	if s.cfg.InitPath != "" {
		mux.HandleFunc(s.cfg.InitPath, s.serveInit)
	}
	mux.HandleFunc(healthPath, s.serveHealth)
	if s.gatherer != nil {
		mux.Handle(metricsPath, promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	}
	// The chat page, and 404 for every other path.
	mux.Handle("/", webchat.Handler(webchat.Options{Path: s.cfg.Path, InitPath: s.cfg.InitPath}))
	return s.bodyDeadline(mux)
}

// bodyDeadline bounds how long a request's body may take
// (Config.RequestBodyTimeout). http.Server's ReadHeaderTimeout stops at the
// headers and a ReadTimeout would also cut hijacked WebSockets, so the
// deadline is set here, per request, only when a body follows. The body is
// read in full before the engine sees it: the engine ignores read errors
// and would parse a cut-off body as the client's packets, so a body that
// misses the deadline is answered 408 and never reaches the chat.
func (s *Server) bodyDeadline(next http.Handler) http.Handler {
	limit := s.cfg.MaxHTTPBufferSize
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength > limit {
			// No body, or one the engine refuses (413) unread.
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(s.cfg.RequestBodyTimeout)); err != nil {
			next.ServeHTTP(w, r)
			return
		}
		// One byte over the engine's own limit keeps its truncation
		// behaviour for a chunked body that is too long.
		body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil {
			s.log.Debug("request body not received in time", "ip", hostOf(r.RemoteAddr), "path", r.URL.Path, "after", s.cfg.RequestBodyTimeout.String(), "err", err)
			w.Header().Set("Connection", "close")
			http.Error(w, fmt.Sprintf("request body not received within %s", s.cfg.RequestBodyTimeout), http.StatusRequestTimeout)
			return
		}
		_ = rc.SetReadDeadline(time.Time{})
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// serveInit answers the seed client's `await fetch('/api/socket')`
// (CONN-2). The seed attached Socket.IO lazily here; the reference is
// attached from the start, so this route only confirms it and never
// touches chat state, however often it is called.
func (s *Server) serveInit(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	s.issueSeedCookie(w, r)
	io.WriteString(w, "Socket is already running\n")
}

// Serve serves on ln until ctx is done, then shuts down gracefully: it
// disconnects every socket (so users leave the store), stops the HTTP
// server and closes a store the server created, all within
// cfg.ShutdownTimeout. It returns nil after a clean shutdown, or the error
// that stopped it. ln is closed on return.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.served {
		s.mu.Unlock()
		ln.Close()
		return errors.New("reference: Serve called twice; a Server serves once")
	}
	s.served = true
	s.mu.Unlock()

	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		// No WriteTimeout: a polling GET legitimately waits a ping
		// interval. Idle keep-alive connections are shed.
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ConnState:   s.trackConn,
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("serving", "addr", ln.Addr().String(), "path", s.cfg.Path)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		// The listener failed; still release everything below.
	}
	shutdownErr := s.shutdown(hs)
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("reference: serving: %w", serveErr)
	}
	return shutdownErr
}

func (s *Server) shutdown(hs *http.Server) error {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout.String())
	deadline, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()

	// Close Socket.IO first: it disconnects every socket, whose handlers
	// then remove their users from the store. Polling requests in flight
	// complete, so http.Server.Shutdown below does not wait for them.
	closed := make(chan struct{})
	go func() {
		s.io.Close(nil)
		close(closed)
	}()
	var errs []error
	select {
	case <-closed:
	case <-deadline.Done():
		errs = append(errs, errors.New("reference: Socket.IO close did not finish before the shutdown timeout"))
	}
	// http.Server.Shutdown counts a connection that has sent no request
	// yet as busy for 5 s (browsers and HTTP clients open such spare
	// connections); close those while it waits for real requests.
	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- hs.Shutdown(deadline) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for waiting := true; waiting; {
		s.closeNewConns()
		select {
		case err := <-shutdownDone:
			waiting = false
			if err != nil {
				errs = append(errs, fmt.Errorf("reference: http shutdown: %w", err))
				hs.Close()
			}
		case <-tick.C:
		}
	}
	// Prefer "done" when both are ready: the deadline may have passed in
	// the HTTP shutdown above after the handlers had finished.
	idle := s.pending.idle()
	select {
	case <-idle:
	default:
		select {
		case <-idle:
		case <-deadline.Done():
			errs = append(errs, errors.New("reference: disconnect handlers still running at the shutdown timeout"))
		}
	}
	// Stop store calls still in flight only now, so that the disconnects
	// above could record their leaves.
	s.cancel()
	s.reclaim.stop()
	if s.ownsStore {
		if err := s.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("reference: closing store: %w", err))
		}
	}
	s.log.Info("stopped")
	return errors.Join(errs...)
}

// Running is a Server listening on its own port, as Start returns it.
type Running struct {
	srv    *Server
	url    string
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Start builds a Server with New, listens on cfg.Addr (port 0 picks a free
// one) and serves in the background until ctx is done or Stop is called.
// It is what `chatspec serve`, the suite's `go test` and the loadgen tests
// use to get a server in one call.
func Start(ctx context.Context, cfg Config, opts ...Option) (*Running, error) {
	srv, err := New(cfg, opts...)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		srv.cancel()
		if srv.ownsStore {
			srv.store.Close()
		}
		return nil, fmt.Errorf("reference: listening on %s: %w", cfg.Addr, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Running{srv: srv, url: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = srv.Serve(ctx, ln)
	}()
	return r, nil
}

// URL is the server's base URL, "http://127.0.0.1:PORT".
func (r *Running) URL() string { return r.url }

// Server returns the running Server.
func (r *Running) Server() *Server { return r.srv }

// Done is closed when the server has stopped.
func (r *Running) Done() <-chan struct{} { return r.done }

// Stop shuts the server down and waits until it has stopped or ctx is done.
// It returns the shutdown's error; calling it again returns the same.
func (r *Running) Stop(ctx context.Context) error {
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return fmt.Errorf("reference: waiting for shutdown: %w", ctx.Err())
	}
}

// Wait blocks until the server has stopped (its context ended) and returns
// Serve's result.
func (r *Running) Wait() error {
	<-r.done
	return r.err
}

// inflight counts running goroutines like a sync.WaitGroup, but may gain
// new members while someone waits for it to drain (a socket can disconnect
// during shutdown), which WaitGroup forbids.
type inflight struct {
	mu      sync.Mutex
	n       int
	waiters []chan struct{}
}

func (f *inflight) add() {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}

func (f *inflight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n--; f.n == 0 {
		for _, w := range f.waiters {
			close(w)
		}
		f.waiters = nil
	}
}

// idle returns a channel closed once nothing is running.
func (f *inflight) idle() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan struct{})
	if f.n == 0 {
		close(ch)
	} else {
		f.waiters = append(f.waiters, ch)
	}
	return ch
}
