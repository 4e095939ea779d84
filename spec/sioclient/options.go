package sioclient

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	engineparser "github.com/zishang520/socket.io/parsers/engine/v3/parser"
)

// Transport names an Engine.IO transport, or the polling-then-upgrade
// strategy when used in Options.
type Transport string

// Transports. Conn.Transport reports only Polling or WebSocket.
const (
	// Polling is HTTP long-polling only.
	Polling Transport = "polling"
	// WebSocket opens the session directly over a websocket.
	WebSocket Transport = "websocket"
	// Upgrade opens the session over polling, connects the namespace, then
	// upgrades to websocket as a browser client does.
	Upgrade Transport = "upgrade"
)

// Defaults applied by Dial to zero Options fields.
const (
	DefaultPath            = "/socket.io/"
	DefaultNamespace       = "/"
	DefaultConnectTimeout  = 10 * time.Second
	DefaultMaxPacketBytes  = 16 << 20
	DefaultMaxQueuedEvents = 1 << 16
	DefaultMaxQueuedBytes  = 64 << 20
	DefaultCloseLinger     = 100 * time.Millisecond
)

// Options configures Dial. The zero value of every field but URL is usable.
type Options struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:3000 (http, https,
	// ws and wss are accepted). It must not carry a path: the Engine.IO path
	// goes in Path and the Socket.IO namespace in Namespace.
	URL string
	// Path is the Engine.IO path; default "/socket.io/".
	Path string
	// Namespace is the Socket.IO namespace to connect; default "/".
	Namespace string
	// Transport selects the transport; default WebSocket.
	Transport Transport
	// Header holds extra headers sent on every HTTP request and on the
	// websocket handshake.
	Header http.Header
	// Query holds extra query parameters for every Engine.IO request.
	Query url.Values
	// Auth is the CONNECT packet payload (Socket.IO "auth"); nil sends none.
	// It must marshal to a JSON object.
	Auth any
	// HTTPClient carries polling requests and the websocket handshake. It
	// must not set a Timeout shorter than the server's ping interval (long
	// polls wait that long). Default: a shared client without proxy.
	HTTPClient *http.Client
	// ConnectTimeout bounds the whole Dial: handshake, upgrade and the
	// namespace CONNECT; default 10s.
	ConnectTimeout time.Duration
	// PingSlack is added to pingInterval+pingTimeout before the client gives
	// up on a server that sent no ping. Zero waits exactly that long, as the
	// official client does; a harness on a loaded machine, whose own
	// reading can be late, gives the server's own timeout room to decide.
	PingSlack time.Duration
	// MaxPacketBytes is the largest websocket frame or polling response
	// accepted from the server; default 16 MiB.
	MaxPacketBytes int
	// MaxQueuedEvents bounds the events waiting for Next when OnEvent is nil.
	// Overflow ends the connection with ErrQueueOverflow (the caller is not
	// reading): memory stays bounded whatever the server sends. Default 65536.
	MaxQueuedEvents int
	// MaxQueuedBytes bounds the bytes (event names and raw arguments) of
	// the events waiting for Next, and of those that came before the
	// namespace CONNECT ack. Overflow ends the connection with
	// ErrQueueOverflow. Default 64 MiB: MaxQueuedEvents alone would let
	// 65536 events of up to MaxPacketBytes each wait.
	MaxQueuedBytes int
	// SkipArgsValidation skips the full JSON validation of each event's
	// arguments; the packet header and the array framing are still checked.
	// Meant for the load generator, where validating every large broadcast
	// costs more CPU than the rest of decoding (see BenchmarkDecodeEvent).
	SkipArgsValidation bool
	// CloseLinger is how long Close waits after the DISCONNECT packet
	// before closing the transport, so servers that process packets
	// asynchronously still see a namespace disconnect (see Close); default
	// 100ms, negative for none.
	CloseLinger time.Duration
	// OnEvent, when set, receives every event in receive order on the reader
	// goroutine (it may run before Dial returns, for events the server sends
	// right after CONNECT). It must not block for long: pings are answered
	// by the same goroutine. When nil, events are queued for Next.
	OnEvent func(Event)
}

// Handshake is the Engine.IO open packet the server sent.
type Handshake struct {
	SID          string
	Upgrades     []string
	PingInterval time.Duration
	PingTimeout  time.Duration
	MaxPayload   int64
}

// Event is one Socket.IO EVENT packet received from the server.
type Event struct {
	// Name is the event name (first array element).
	Name string
	// Args is the JSON array of the arguments after the name, raw, e.g.
	// `[{"messagesList":[...]}]`; `[]` when there are none.
	Args json.RawMessage
	// AckID is set when the server asked for an acknowledgement; answer it
	// with Conn.Ack.
	AckID *uint64
	// Received is when the frame or polling response carrying the event was
	// read, before decoding: use it for latency.
	Received time.Time
	// Seq numbers the events of one connection 1, 2, 3... in receive order.
	Seq uint64
	// Offset is the last argument a server with connection state recovery
	// appends to every event (Conn.RecoveryID is then set); it is taken out
	// of Args, which holds only what the application emitted.
	Offset string
}

// Decode unmarshals argument i (0-based, after the event name) into v.
func (e Event) Decode(i int, v any) error {
	raw, err := argAt(e.Args, i)
	if err != nil {
		return fmt.Errorf("sioclient: event %q argument %d: %w", e.Name, i, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("sioclient: event %q argument %d: %w", e.Name, i, err)
	}
	return nil
}

// NumArgs reports how many arguments the event carries.
func (e Event) NumArgs() (int, error) {
	var args []json.RawMessage
	if err := json.Unmarshal(e.Args, &args); err != nil {
		return 0, fmt.Errorf("sioclient: event %q arguments: %w", e.Name, err)
	}
	return len(args), nil
}

func argAt(args json.RawMessage, i int) (json.RawMessage, error) {
	var all []json.RawMessage
	if err := json.Unmarshal(args, &all); err != nil {
		return nil, err
	}
	if i < 0 || i >= len(all) {
		return nil, fmt.Errorf("no such argument: the event has %d", len(all))
	}
	return all[i], nil
}

// withDefaults validates opts and fills in defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Path == "" {
		o.Path = DefaultPath
	}
	if !strings.HasPrefix(o.Path, "/") {
		o.Path = "/" + o.Path
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if !strings.HasPrefix(o.Namespace, "/") {
		return o, fmt.Errorf("sioclient: namespace %q must start with '/'", o.Namespace)
	}
	if strings.ContainsAny(o.Namespace, ",?") {
		return o, fmt.Errorf("sioclient: namespace %q must not contain ',' or '?'", o.Namespace)
	}
	switch o.Transport {
	case "":
		o.Transport = WebSocket
	case Polling, WebSocket, Upgrade:
	default:
		return o, fmt.Errorf("sioclient: unknown transport %q (want polling, websocket or upgrade)", o.Transport)
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.MaxPacketBytes <= 0 {
		o.MaxPacketBytes = DefaultMaxPacketBytes
	}
	if o.MaxQueuedEvents <= 0 {
		o.MaxQueuedEvents = DefaultMaxQueuedEvents
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if o.CloseLinger == 0 {
		o.CloseLinger = DefaultCloseLinger
	}
	if o.HTTPClient == nil {
		o.HTTPClient = defaultHTTPClient
	}
	return o, nil
}

// defaultHTTPClient is shared by all connections so that polling reuses
// keep-alive connections; it ignores proxy settings because a verdict must
// be about the server at URL, not an intermediary.
var defaultHTTPClient = func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.MaxIdleConns = 0
	t.MaxIdleConnsPerHost = 1024
	return &http.Client{Transport: t}
}()

// HTTPScheme returns the http(s) scheme a server URL with the given scheme
// is reached at: a Socket.IO server answers ws:// and wss:// URLs at the
// same endpoint over http:// and https:// (the handshake starts there). ok
// is false for any other scheme.
func HTTPScheme(scheme string) (httpScheme string, ok bool) {
	switch scheme {
	case "http", "https":
		return scheme, true
	case "ws":
		return "http", true
	case "wss":
		return "https", true
	}
	return "", false
}

// baseURL turns opts.URL into the http(s) Engine.IO endpoint with the fixed
// query (EIO=4 plus the caller's parameters).
func baseURL(o Options) (*url.URL, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("sioclient: bad URL %q: %w", o.URL, err)
	}
	scheme, ok := HTTPScheme(u.Scheme)
	if !ok {
		return nil, fmt.Errorf("sioclient: URL %q: scheme must be http, https, ws or wss", o.URL)
	}
	u.Scheme = scheme
	if u.Host == "" {
		return nil, fmt.Errorf("sioclient: URL %q has no host", o.URL)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("sioclient: URL %q has path %q: put the Engine.IO path in Path and the namespace in Namespace", o.URL, u.Path)
	}
	u.Path = o.Path
	q := u.Query()
	for k, vs := range o.Query {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	q.Set("EIO", strconv.Itoa(engineparser.Protocol))
	u.RawQuery = q.Encode()
	u.Fragment = ""
	return u, nil
}
