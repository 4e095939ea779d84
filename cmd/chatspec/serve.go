package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatspec/chatspec/reference"
	"github.com/chatspec/chatspec/reference/store/redisstore"
	"github.com/chatspec/chatspec/reference/store/redisstore/sioadapter"
)

func init() { register("serve", "run the reference chat server", runServe) }

const serveUsage = `Usage: chatspec serve [flags]

Runs the reference chat server of spec/CONTRACT.md: Socket.IO at --path, the
seed's init route at --init-path, /healthz and /metrics. It prints
"chatspec serve: listening on URL" on stdout once it accepts connections
(the URL is the last word of that line) and stops gracefully on Ctrl-C or
SIGTERM, within --shutdown-timeout.

Examples:
  chatspec serve
  chatspec serve --addr 127.0.0.1:0 --log-level debug
  chatspec serve --addr :3000 --cors-origin https://chat.example.com --max-conns-per-ip 20
  chatspec serve --transports polling --rate 0 --history-limit 1000
  chatspec serve --ping-interval 5s --ping-timeout 5s --log-format json
  chatspec serve --seed-clients     # serve the seed's two-connection useSocket hook

A cluster: every node gets the same --redis and --redis-prefix and its own
--addr (and --node-id, if given). Users, per-username socket counts and the
capped history live in Redis; every change is also written to one ordered
Redis stream that each node reads and relays to its own sockets, so every
client sees the same sequence of lists. The zishang520 Redis adapter
(--redis-adapter) is installed for Socket.IO's own cross-node features. A
node that dies without cleaning up has its users removed by the survivors
within 1.5 x --node-ttl. A load balancer in front needs sticky sessions for
long-polling, or clients on WebSocket only (reference/CLUSTER.md).
  chatspec serve --addr 127.0.0.1:3001 --redis redis://127.0.0.1:6379/0
  chatspec serve --addr 127.0.0.1:3002 --redis redis://127.0.0.1:6379/0

Flags:
`

// serveFlags binds the serve flags to a reference.Config.
type serveFlags struct {
	cfg        reference.Config
	transports string
	logLevel   string
	logFormat  string
	redisURL   string
	redisOpts  redisstore.Options
	adapter    string
	cpuProfile string
}

func newServeFlags() (*flag.FlagSet, *serveFlags) {
	f := &serveFlags{cfg: reference.DefaultConfig()}
	d := f.cfg
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed by runServe, usage on --help
	fs.StringVar(&f.cfg.Addr, "addr", d.Addr, "TCP `host:port` to listen on (port 0 picks a free one)")
	fs.StringVar(&f.cfg.Path, "path", d.Path, "Socket.IO `path`, with a trailing slash")
	fs.StringVar(&f.cfg.InitPath, "init-path", d.InitPath, "`path` answering GET with 200, like the seed's /api/socket (empty: none)")
	fs.IntVar(&f.cfg.HistoryLimit, "history-limit", d.HistoryLimit, "newest `messages` kept; each messageWritten carries them all")
	fs.IntVar(&f.cfg.MaxUsernameLen, "max-username", d.MaxUsernameLen, "longest username, in `bytes` of UTF-8")
	fs.IntVar(&f.cfg.MaxMessageLen, "max-message", d.MaxMessageLen, "longest message, in `bytes` of UTF-8")
	fs.Int64Var(&f.cfg.MaxHTTPBufferSize, "max-http-buffer", d.MaxHTTPBufferSize, "Engine.IO maxPayload: largest packet accepted, in `bytes`")
	fs.IntVar(&f.cfg.HTTPCompressionThreshold, "http-compression", d.HTTPCompressionThreshold, "compress long-polling responses of at least `bytes` (0: off; costs CPU per polling client)")
	fs.DurationVar(&f.cfg.PingInterval, "ping-interval", d.PingInterval, "Engine.IO ping `interval`")
	fs.DurationVar(&f.cfg.PingTimeout, "ping-timeout", d.PingTimeout, "Engine.IO ping `timeout`")
	fs.Func("cors-origin", "allow this browser `origin` (repeatable; * allows any; default: same origin only)", func(v string) error {
		f.cfg.CORSOrigins = append(f.cfg.CORSOrigins, v)
		return nil
	})
	fs.StringVar(&f.transports, "transports", strings.Join(d.Transports, ","), "enabled transports, comma-separated: `polling,websocket`")
	fs.Float64Var(&f.cfg.Rate, "rate", d.Rate, "writeMessage events per second allowed per socket (0: no limit)")
	fs.IntVar(&f.cfg.RateBurst, "rate-burst", d.RateBurst, "writeMessage burst allowed per socket")
	fs.Int64Var(&f.cfg.BroadcastRate, "broadcast-rate", d.BroadcastRate, "`bytes` per second accepted writes may send out, all sockets together (a write costs its history times its receivers); at the rate each writing socket gets an equal share, beyond it writes are refused server_busy (0: no limit)")
	fs.IntVar(&f.cfg.MaxConnections, "max-conns", d.MaxConnections, "most concurrent sockets (0: no limit)")
	fs.IntVar(&f.cfg.MaxConnectionsPerIP, "max-conns-per-ip", d.MaxConnectionsPerIP, "most concurrent sockets per client IP (0: no limit)")
	fs.Int64Var(&f.cfg.SlowReaderLimit, "slow-reader-limit", d.SlowReaderLimit, "close a connection holding more than this many unwritten `bytes` (0: no limit)")
	fs.DurationVar(&f.cfg.SlowReaderTimeout, "slow-reader-timeout", d.SlowReaderTimeout, "close a connection whose write has not finished after this `long` (0: no limit)")
	fs.Int64Var(&f.cfg.OutputBudget, "output-budget", d.OutputBudget, "unwritten `bytes` all connections may hold together; over it, those holding the most are closed first (0: no limit)")
	fs.DurationVar(&f.cfg.RequestBodyTimeout, "body-timeout", d.RequestBodyTimeout, "time a request body (long-polling POST) may take after its headers; later: 408 and the connection closed")
	// Seed-style clients (issue 16, CONTRACT.md SEED-1): relaxes SEC-2.
	fs.BoolVar(&f.cfg.SeedClients, "seed-clients", d.SeedClients, "accept writeMessage from a socket that never joined, under a username a joined socket of the same client (address + init-route cookie) holds, as the seed's two-io() client needs; relaxes SEC-2")
	fs.DurationVar(&f.cfg.ShutdownTimeout, "shutdown-timeout", d.ShutdownTimeout, "how long a graceful stop may take")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log `format` on stderr: text or json")
	fs.StringVar(&f.cpuProfile, "cpu-profile", "", "write a Go CPU profile of the whole run to `file` (read it with go tool pprof)")
	fs.StringVar(&f.redisURL, "redis", "", "share users and history through Redis at `URL` (redis://host:6379/0); default: in memory, one node")
	fs.StringVar(&f.redisOpts.Prefix, "redis-prefix", redisstore.DefaultPrefix, "with --redis: `prefix` of every key and channel; nodes of one chat share it")
	fs.StringVar(&f.redisOpts.NodeID, "node-id", defaultNodeID(), "with --redis: this node's `ID`, unique among live nodes")
	fs.DurationVar(&f.redisOpts.NodeTTL, "node-ttl", redisstore.DefaultNodeTTL, "with --redis: liveness `TTL`; a dead node's users are removed within about 1.5x this")
	// Streams by default, not sioadapter.DefaultKind: with the sharded
	// adapter installed, the suite's RECON-2 measured an unrelated socket
	// dropped by "ping timeout" in about 1 run of 10 (see CLUSTER.md).
	fs.StringVar(&f.adapter, "redis-adapter", string(sioadapter.Streams), "with --redis: Socket.IO adapter, `sharded` (Redis 7+), streams, or none (chat events cross nodes on the store's change feed either way)")
	return fs, f
}

// finish turns the parsed flags into a validated config and a logger.
func (f *serveFlags) finish(stderr io.Writer) (*slog.Logger, error) {
	f.cfg.Transports = nil
	for t := range strings.SplitSeq(f.transports, ",") {
		if t = strings.TrimSpace(t); t != "" {
			f.cfg.Transports = append(f.cfg.Transports, t)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch f.logFormat {
	case "text":
		h = slog.NewTextHandler(stderr, opts)
	case "json":
		h = slog.NewJSONHandler(stderr, opts)
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", f.logFormat)
	}
	if f.redisURL != "" {
		u, err := url.Parse(f.redisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return nil, fmt.Errorf("--redis %q: want redis://host:port[/db] or rediss://...", f.redisURL)
		}
		if _, err := redis.ParseURL(f.redisURL); err != nil {
			return nil, fmt.Errorf("--redis %q: %v", f.redisURL, err)
		}
	}
	if k := sioadapter.Kind(f.adapter); k != sioadapter.Sharded && k != sioadapter.Streams && k != adapterNone {
		return nil, fmt.Errorf("--redis-adapter %q: want %s, %s or %s", f.adapter, sioadapter.Sharded, sioadapter.Streams, adapterNone)
	}
	if f.redisOpts.NodeTTL < 30*time.Millisecond {
		return nil, fmt.Errorf("--node-ttl %v: want at least 30ms", f.redisOpts.NodeTTL)
	}
	if f.redisOpts.Prefix == "" {
		return nil, errors.New("--redis-prefix is empty; nodes of one chat need a shared, non-empty prefix")
	}
	if f.redisOpts.NodeID == "" {
		return nil, errors.New("--node-id is empty")
	}
	if err := f.cfg.Validate(); err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "reference: "))
	}
	return slog.New(h), nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, f := newServeFlags()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			io.WriteString(stdout, serveUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return ExitOK
		}
		return usageError(stderr, "serve", err)
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "serve", fmt.Errorf("unexpected argument %q (serve takes only flags)", fs.Arg(0)))
	}
	logger, err := f.finish(stderr)
	if err != nil {
		return usageError(stderr, "serve", err)
	}
	if f.cpuProfile != "" {
		stop, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "chatspec serve: %v\n", err)
			return ExitError
		}
		defer stop()
	}
	opts := []reference.Option{reference.WithLogger(logger)}
	var cl *cluster
	if f.redisURL != "" {
		if cl, err = startCluster(ctx, f, logger); err != nil {
			fmt.Fprintf(stderr, "chatspec serve: %v\n", err)
			return ExitError
		}
		opts = append(opts, cl.options()...)
	}

	running, err := reference.Start(ctx, f.cfg, opts...)
	if err != nil {
		if cl != nil {
			cl.close(nil)
		}
		fmt.Fprintf(stderr, "chatspec serve: %v\n", strings.TrimPrefix(err.Error(), "reference: "))
		return ExitError
	}
	if cl != nil {
		logger.Info("cluster node ready", "node", f.redisOpts.NodeID, "redis", redactURL(f.redisURL),
			"prefix", f.redisOpts.Prefix, "adapter", f.adapter, "node_ttl", f.redisOpts.NodeTTL.String())
	}
	fmt.Fprintf(stdout, "chatspec serve: listening on %s\n", running.URL())

	select {
	case <-ctx.Done():
	case <-running.Done():
		// The server stopped by itself: the listener failed.
	}
	// Allow the configured timeout plus a margin for the store to close.
	stopCtx, cancel := context.WithTimeout(context.Background(), f.cfg.ShutdownTimeout+time.Second)
	defer cancel()
	stop := func() error { return running.Stop(stopCtx) }
	var stopErr error
	if cl != nil {
		stopErr = cl.close(stop)
	} else {
		stopErr = stop()
	}
	if stopErr != nil {
		fmt.Fprintf(stderr, "chatspec serve: %v\n", stopErr)
		return ExitError
	}
	if ctx.Err() == nil {
		fmt.Fprintln(stderr, "chatspec serve: the server stopped unexpectedly")
		return ExitError
	}
	return ExitOK
}

// adapterNone is the --redis-adapter value that installs no Socket.IO
// adapter: chat events need none (they cross nodes on the change feed);
// only Socket.IO features such as cross-node fetchSockets would.
const adapterNone = "none"

// cluster is a node's share of a Redis cluster: the store holding the chat
// state and the adapter carrying broadcasts.
type cluster struct {
	st *redisstore.Store
	ad *sioadapter.Adapter
}

// startCluster connects the store and the adapter. go-redis's own log lines
// (every failed dial while Redis is down) go to logger at debug level: the
// store already reports an outage and the recovery once, at warn and info.
func startCluster(ctx context.Context, f *serveFlags, logger *slog.Logger) (*cluster, error) {
	redis.SetLogger(goRedisLogger{logger.With("component", "go-redis")})
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	o := f.redisOpts
	o.URL = f.redisURL
	o.HistoryLimit = f.cfg.HistoryLimit
	o.Logger = logger
	// The server subscribes to the store's change feed by itself: it
	// carries every change, reaped and restored users included, in Redis's
	// order, so OnReaped and OnRestored stay unset.
	st, err := redisstore.New(cctx, o)
	if err != nil {
		return nil, err
	}
	if f.adapter == adapterNone {
		return &cluster{st: st}, nil
	}
	ad, err := sioadapter.New(cctx, sioadapter.Options{
		URL:           f.redisURL,
		Kind:          sioadapter.Kind(f.adapter),
		ChannelPrefix: strings.TrimSuffix(f.redisOpts.Prefix, ":") + "-sio",
		Logger:        logger,
	})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return &cluster{st: st, ad: ad}, nil
}

func (c *cluster) options() []reference.Option {
	opts := []reference.Option{reference.WithStore(c.st)}
	if c.ad != nil {
		opts = append(opts, reference.WithAdapter(c.ad.Builder()))
	}
	return opts
}

// close shuts the node down in the only order that loses no announcement:
// the store first (it removes this node's users in one step and the other
// nodes read that from the change feed), then the
// server (stop; its disconnect handlers find the store closed and have
// nothing left to do), then the adapter.
func (c *cluster) close(stop func() error) error {
	errs := []error{c.st.Close()}
	if stop != nil {
		errs = append(errs, stop())
	}
	if c.ad != nil {
		errs = append(errs, c.ad.Close())
	}
	return errors.Join(errs...)
}

// goRedisLogger routes go-redis's package-level log lines to slog.
type goRedisLogger struct{ l *slog.Logger }

func (g goRedisLogger) Printf(ctx context.Context, format string, v ...any) {
	g.l.DebugContext(ctx, fmt.Sprintf(format, v...))
}

// defaultNodeID is hostname-pid: unique among nodes on one machine and
// readable in logs and in Redis keys.
func defaultNodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// redactURL hides a password in a Redis URL for logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// startCPUProfile profiles the process into path until the returned stop
// is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpu-profile: %v", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
