package reference

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Transport names accepted in Config.Transports. They are the Engine.IO
// transport names a client puts in its handshake query.
const (
	TransportPolling   = "polling"
	TransportWebSocket = "websocket"
)

// Fixed HTTP routes next to the configurable Socket.IO and init paths.
const (
	healthPath  = "/healthz"
	metricsPath = "/metrics"
)

// Config is the reference server's configuration. Start from DefaultConfig
// and change what you need; New calls Validate.
type Config struct {
	// Addr is the TCP address Start listens on ("127.0.0.1:3000"; port 0
	// picks a free port). Serve ignores it: it uses the listener it is given.
	Addr string

	// Path is where Socket.IO is served (CONN-1), with a trailing slash:
	// "/socket.io/".
	Path string

	// InitPath answers GET with 200 and a short text body, so a client
	// written like the seed (which fetches /api/socket before connecting)
	// works unchanged (CONN-2). Requests to it never touch chat state. An
	// empty InitPath disables the route.
	InitPath string

	// MaxUsernameLen caps a username, in bytes of UTF-8 (SEC-3). Bytes,
	// not runes, because the cap exists to bound memory and the size of
	// every list the server broadcasts.
	MaxUsernameLen int

	// MaxMessageLen caps a message text, in bytes of UTF-8 (SEC-3).
	MaxMessageLen int

	// HistoryLimit is how many of the newest messages the server keeps
	// (HIST-4). Every messageWritten carries the whole list, so this also
	// bounds the size of each broadcast.
	HistoryLimit int

	// MaxHTTPBufferSize is Engine.IO's maxPayload: the largest packet (or
	// polling request body) the server accepts, in bytes (SEC-3). A client
	// that sends more is disconnected by the library.
	MaxHTTPBufferSize int64

	// HTTPCompressionThreshold is the smallest long-polling response, in
	// bytes, that is gzip- or deflate-compressed for a client that accepts
	// it; 0 turns compression off. Socket.IO's default is 1024. It trades
	// CPU for bandwidth: the library compresses every polling response of
	// every client anew (a broadcast is compressed once per polling
	// client), which was the largest single CPU cost of the reference under
	// load with polling clients (README, "Reference capacity").
	HTTPCompressionThreshold int

	// PingInterval and PingTimeout are Engine.IO's heartbeat. A silent
	// client is dropped after about PingInterval+PingTimeout (RECON-3).
	//
	// Keep PingTimeout above PingInterval. The engine of
	// zishang520/socket.io v3.0.6 sends a PING and only then arms its
	// timeout timer; a PONG handled in between clears the previous timer,
	// not the new one, which then fires and drops a healthy client ("ping
	// timeout") unless the next PING (after PingInterval) clears it first.
	// The defaults are Socket.IO's 25 s + 20 s swapped: the same 45 s to
	// notice a dead client, without those drops. Measured: 2 of 200 idle
	// clients dropped in 4 s at 100 ms/90 ms, none at 90 ms/100 ms.
	PingInterval time.Duration
	PingTimeout  time.Duration

	// CORSOrigins lists the browser origins allowed to connect from another
	// site ("https://chat.example.com"); "*" allows any origin. Empty (the
	// default) sends no CORS headers and refuses cross-origin WebSocket
	// handshakes: same-origin pages and non-browser clients (which send no
	// Origin header) still work. Secure by default; open it on purpose.
	CORSOrigins []string

	// Transports enables Engine.IO transports: TransportPolling and/or
	// TransportWebSocket. Both by default.
	Transports []string

	// AllowUpgrades lets a polling client upgrade to WebSocket (TRANS-3).
	// It only matters when both transports are enabled.
	AllowUpgrades bool

	// Rate is how many writeMessage events per second one socket may send
	// (SEC-4); RateBurst is how many it may send at once. Every attempt
	// counts, valid or not. A writeMessage beyond the rate is refused with
	// chatError rate_limited and not stored. Rate 0 disables the limit.
	Rate      float64
	RateBurst int

	// BroadcastRate bounds the bytes per second that accepted writes
	// send out, all sockets together: a write costs its broadcast's size
	// times its receivers. Under the bound every write is accepted; at it,
	// each writing socket gets an equal share and a write beyond its share
	// is refused with chatError server_busy and not stored (HARDENING.md,
	// "Chat-wide output rate"). SEC-4's per-socket Rate does not bound the
	// sum. 0 disables it.
	BroadcastRate int64

	// MaxConnections caps concurrent sockets on this server;
	// MaxConnectionsPerIP caps them per client IP address. 0 means
	// unlimited. A socket over a cap is refused with a Socket.IO
	// CONNECT_ERROR whose message says which cap was hit.
	//
	// The default total cap follows from OutputBudget (HARDENING.md,
	// "Connection caps"): a join sends every socket the whole user list,
	// so one joined broadcast queues sockets × list bytes at once; at
	// 2,000 sockets with 20-byte names that is ~144 MB, which fits the
	// default budget with room for the chat. There is no default per-IP
	// cap: load tests and NATed offices open thousands from one address.
	MaxConnections      int
	MaxConnectionsPerIP int

	// SlowReaderLimit is how many bytes one connection may hold queued
	// and not yet written to its client before the server closes it (a
	// client that stopped reading, or a polling client that stopped
	// polling). Each queued broadcast is a private copy that can hold the
	// whole history, so without a bound one such client pins a copy of
	// every message until the heartbeat drops it. SlowReaderTimeout closes
	// a connection whose current write has not finished after that long.
	// Both are checked whenever a packet is queued for the connection (at
	// least once per PingInterval, the ping). 0 disables either.
	SlowReaderLimit   int64
	SlowReaderTimeout time.Duration

	// OutputBudget bounds the bytes held unwritten by all connections
	// together: when a packet takes the total over it, the connections
	// holding the most are closed, largest first, until the total is
	// back within it (HARDENING.md, "Shared output budget"). Without it,
	// n clients that stop reading hold n × SlowReaderLimit. 0 disables it.
	OutputBudget int64

	// RequestBodyTimeout is how long the server waits for a request body
	// (a long-polling POST) once the headers are in; a body not complete
	// by then is answered 408 and its connection closed, so a client that
	// trickles a body cannot hold a request open. Headers have their own
	// 10 s bound.
	RequestBodyTimeout time.Duration

	// ShutdownTimeout bounds the graceful shutdown that follows the end of
	// Serve's context.
	ShutdownTimeout time.Duration

	// StoreTimeout bounds each call to the store (it matters for a remote
	// store such as Redis; the memory store never waits).
	StoreTimeout time.Duration

	// SeedClients serves clients written like the seed's useSocket hook,
	// which open two sockets and write on the one that never joined
	// (CONTRACT.md SEED-1). A writeMessage from a socket that never joined
	// is then accepted under a username that a joined socket of the same
	// client holds: same IP address and same chatspec_client cookie, which
	// the init route sets (seedclients.go). This relaxes SEC-2 on purpose,
	// and `chatspec verify --profile all` reports SEC-2 failed. Off by
	// default.
	SeedClients bool
}

// DefaultConfig returns the defaults: loopback on port 3000, the Socket.IO
// and seed paths, both transports with upgrades, the library's heartbeat
// (25 s / 20 s), 1 MB packets, usernames up to 64 bytes, messages up to 4096
// bytes, 200 messages of history, 20 events/s with bursts of 40 per socket,
// slow readers dropped beyond 8 MiB unwritten or a 30 s stalled write,
// 256 MiB unwritten across all connections, 2,000 sockets (no cap per
// IP), 10 s for a request body, no CORS, and a 10 s shutdown.
func DefaultConfig() Config {
	return Config{
		Addr:                     "127.0.0.1:3000",
		Path:                     "/socket.io/",
		InitPath:                 "/api/socket",
		MaxUsernameLen:           64,
		MaxMessageLen:            4096,
		HistoryLimit:             200,
		MaxHTTPBufferSize:        1_000_000,
		HTTPCompressionThreshold: 1024,
		PingInterval:             20 * time.Second,
		PingTimeout:              25 * time.Second,
		Transports:               []string{TransportPolling, TransportWebSocket},
		AllowUpgrades:            true,
		Rate:                     20,
		RateBurst:                40,
		BroadcastRate:            defaultBroadcastRate,
		SlowReaderLimit:          8 << 20,
		SlowReaderTimeout:        30 * time.Second,
		MaxConnections:           defaultMaxConnections,
		OutputBudget:             256 << 20,
		RequestBodyTimeout:       10 * time.Second,
		ShutdownTimeout:          10 * time.Second,
		StoreTimeout:             5 * time.Second,
	}
}

// defaultBroadcastRate is DefaultConfig's BroadcastRate: above what one
// core of the development machine sends (about 0.8 GB/s at 200 users
// with history 200, half a core), so a chat the server can serve never
// meets it, and low enough that a flood cannot ask for 600 MB/s to every
// socket (HARDENING.md).
const defaultBroadcastRate = 2 << 30

// defaultMaxConnections is DefaultConfig's MaxConnections (see there).
const defaultMaxConnections = 2000

// minBufferOverhead is the room a writeMessage packet needs beyond its two
// strings: the Engine.IO and Socket.IO framing, the event name, the field
// names and JSON escaping headroom for short texts.
const minBufferOverhead = 256

// perMessageOverhead is the JSON around one message in messagesList:
// {"username":"","message":""} and a comma.
const perMessageOverhead = 32

// Validate reports the first problem with c, naming the field and the value.
func (c Config) Validate() error {
	if c.Addr == "" {
		return errors.New("reference: Addr is empty (want host:port, e.g. 127.0.0.1:3000)")
	}
	if _, port, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("reference: Addr %q is not host:port: %w", c.Addr, err)
	} else if port == "" {
		return fmt.Errorf("reference: Addr %q has no port", c.Addr)
	}
	if err := checkPath("Path", c.Path); err != nil {
		return err
	}
	if !strings.HasSuffix(c.Path, "/") || c.Path == "/" {
		return fmt.Errorf("reference: Path %q must be a directory below / ending with /, e.g. /socket.io/", c.Path)
	}
	if c.InitPath != "" {
		if err := checkPath("InitPath", c.InitPath); err != nil {
			return err
		}
		if c.InitPath == "/" {
			return errors.New(`reference: InitPath "/" would answer every unknown path; pick a real route such as /api/socket`)
		}
		if strings.HasPrefix(c.InitPath, c.Path) || c.InitPath+"/" == c.Path {
			return fmt.Errorf("reference: InitPath %q lies under Path %q", c.InitPath, c.Path)
		}
	}
	for _, fixed := range []string{healthPath, metricsPath} {
		if c.InitPath == fixed || c.Path == fixed+"/" {
			return fmt.Errorf("reference: %s is reserved for the server's own route", fixed)
		}
	}
	if c.MaxUsernameLen < 1 {
		return fmt.Errorf("reference: MaxUsernameLen must be at least 1, got %d", c.MaxUsernameLen)
	}
	if c.MaxMessageLen < 1 {
		return fmt.Errorf("reference: MaxMessageLen must be at least 1, got %d", c.MaxMessageLen)
	}
	if c.HistoryLimit < 1 {
		return fmt.Errorf("reference: HistoryLimit must be at least 1, got %d", c.HistoryLimit)
	}
	if need := int64(c.MaxMessageLen) + int64(c.MaxUsernameLen) + minBufferOverhead; c.MaxHTTPBufferSize < need {
		return fmt.Errorf("reference: MaxHTTPBufferSize %d is too small for MaxMessageLen %d and MaxUsernameLen %d (need at least %d)",
			c.MaxHTTPBufferSize, c.MaxMessageLen, c.MaxUsernameLen, need)
	}
	if c.PingInterval <= 0 {
		return fmt.Errorf("reference: PingInterval must be positive, got %s", c.PingInterval)
	}
	if c.PingTimeout <= 0 {
		return fmt.Errorf("reference: PingTimeout must be positive, got %s", c.PingTimeout)
	}
	for _, o := range c.CORSOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Errorf("reference: CORS origin %q is not scheme://host[:port] or *", o)
		}
	}
	if len(c.Transports) == 0 {
		return errors.New("reference: Transports is empty (want polling, websocket or both)")
	}
	seen := map[string]bool{}
	for _, t := range c.Transports {
		if t != TransportPolling && t != TransportWebSocket {
			return fmt.Errorf("reference: unknown transport %q (want polling or websocket)", t)
		}
		if seen[t] {
			return fmt.Errorf("reference: transport %q listed twice", t)
		}
		seen[t] = true
	}
	if c.Rate < 0 {
		return fmt.Errorf("reference: Rate must not be negative, got %g", c.Rate)
	}
	if c.Rate > 0 && c.RateBurst < 1 {
		return fmt.Errorf("reference: RateBurst must be at least 1 when Rate is set, got %d", c.RateBurst)
	}
	if c.HTTPCompressionThreshold < 0 {
		return fmt.Errorf("reference: HTTPCompressionThreshold must not be negative (0 turns compression off), got %d", c.HTTPCompressionThreshold)
	}
	if c.SlowReaderLimit < 0 {
		return fmt.Errorf("reference: SlowReaderLimit must not be negative, got %d", c.SlowReaderLimit)
	}
	// One full messageWritten (the whole history of plain-text messages)
	// must fit, or a healthy client would be dropped by a single broadcast.
	if full := int64(c.HistoryLimit) * (int64(c.MaxMessageLen) + int64(c.MaxUsernameLen) + perMessageOverhead); c.SlowReaderLimit > 0 && c.SlowReaderLimit < full {
		return fmt.Errorf("reference: SlowReaderLimit %d is below one full messageWritten (%d bytes for HistoryLimit %d, MaxMessageLen %d, MaxUsernameLen %d)",
			c.SlowReaderLimit, full, c.HistoryLimit, c.MaxMessageLen, c.MaxUsernameLen)
	}
	if c.BroadcastRate < 0 {
		return fmt.Errorf("reference: BroadcastRate must not be negative (0 turns it off), got %d", c.BroadcastRate)
	}
	if c.OutputBudget < 0 {
		return fmt.Errorf("reference: OutputBudget must not be negative (0 turns it off), got %d", c.OutputBudget)
	}
	if c.OutputBudget > 0 && c.SlowReaderLimit > 0 && c.OutputBudget < c.SlowReaderLimit {
		return fmt.Errorf("reference: OutputBudget %d is below SlowReaderLimit %d: one connection's bound must fit in the budget for all of them", c.OutputBudget, c.SlowReaderLimit)
	}
	if full := int64(c.HistoryLimit) * (int64(c.MaxMessageLen) + int64(c.MaxUsernameLen) + perMessageOverhead); c.OutputBudget > 0 && c.OutputBudget < full {
		return fmt.Errorf("reference: OutputBudget %d is below one full messageWritten (%d bytes)", c.OutputBudget, full)
	}
	if c.RequestBodyTimeout <= 0 {
		return fmt.Errorf("reference: RequestBodyTimeout must be positive, got %s", c.RequestBodyTimeout)
	}
	if c.SlowReaderTimeout < 0 {
		return fmt.Errorf("reference: SlowReaderTimeout must not be negative, got %s", c.SlowReaderTimeout)
	}
	if c.MaxConnections < 0 {
		return fmt.Errorf("reference: MaxConnections must not be negative, got %d", c.MaxConnections)
	}
	if c.MaxConnectionsPerIP < 0 {
		return fmt.Errorf("reference: MaxConnectionsPerIP must not be negative, got %d", c.MaxConnectionsPerIP)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("reference: ShutdownTimeout must be positive, got %s", c.ShutdownTimeout)
	}
	if c.StoreTimeout <= 0 {
		return fmt.Errorf("reference: StoreTimeout must be positive, got %s", c.StoreTimeout)
	}
	return nil
}

func checkPath(field, p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("reference: %s %q must start with /", field, p)
	}
	if strings.ContainsAny(p, "?#* \t") {
		return fmt.Errorf("reference: %s %q must be a plain path (no query, fragment, wildcard or space)", field, p)
	}
	return nil
}
