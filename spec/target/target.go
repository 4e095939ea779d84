// Package target describes how to reach the chat server under test: one or
// more base URLs (several URLs are one cluster, and clients are spread over
// them round-robin), the Socket.IO path and namespace, and what real servers
// need to let a client in (headers, query parameters, an auth payload, and
// the Next.js-style init request). `chatspec verify` and `chatspec load`
// share it so that the same flags mean the same thing in both.
package target

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// Options is the connection part of a run's configuration.
type Options struct {
	// Targets are base URLs (http, https, ws or wss). Empty means "start the
	// reference server in-process"; the command decides that, not this package.
	Targets []string
	// Path is the Engine.IO path, "/socket.io/" unless a server mounts it
	// elsewhere (Next.js apps often do).
	Path string
	// Namespace is the Socket.IO namespace the chat lives in.
	Namespace string
	// InitPath, when set, is requested with GET before connecting, as the
	// seed's client does with /api/socket (CONTRACT.md CONN-2).
	InitPath string
	// Header is sent with every HTTP request and WebSocket handshake.
	Header http.Header
	// Query is added to every Engine.IO request.
	Query url.Values
	// Auth is the Socket.IO CONNECT payload; nil sends none.
	Auth map[string]any
	// ConnectTimeout bounds one connection attempt (handshake, upgrade,
	// namespace CONNECT).
	ConnectTimeout time.Duration
	// HTTPClient is used for the init request and by the protocol client;
	// nil means a default client with ConnectTimeout.
	HTTPClient *http.Client
	// SourceAddrs are local addresses to connect from, client i from
	// SourceAddrs[i mod n] (source.go); empty lets the system choose.
	// They take the place of HTTPClient.
	SourceAddrs []netip.Addr
	sources     []*http.Client // one per distinct SourceAddrs, made by Validate
}

// RegisterFlags binds the options to fs, with defaults.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	if o.Path == "" {
		o.Path = "/socket.io/"
	}
	if o.Namespace == "" {
		o.Namespace = "/"
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	fs.Var((*targetsFlag)(&o.Targets), "target", "base URL of the chat server (repeat for a cluster: clients are spread over the targets); none = start the reference server in-process")
	fs.StringVar(&o.Path, "path", o.Path, "Socket.IO (Engine.IO) path on the target")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "Socket.IO namespace of the chat")
	fs.StringVar(&o.InitPath, "init-path", o.InitPath, "path to GET before connecting, e.g. /api/socket for a Next.js server that attaches lazily")
	fs.Var((*headerFlag)(&o.Header), "header", "extra HTTP header 'Name: value' on every request (repeatable)")
	fs.Var((*queryFlag)(&o.Query), "query", "extra query parameter 'name=value' on every Engine.IO request (repeatable)")
	fs.Var((*authFlag)(&o.Auth), "auth", "Socket.IO auth payload as a JSON object, e.g. '{\"token\":\"abc\"}'")
	fs.DurationVar(&o.ConnectTimeout, "connect-timeout", o.ConnectTimeout, "time allowed for one connection (handshake, upgrade, namespace connect)")
	fs.Var((*sourceFlag)(&o.SourceAddrs), "source-addr", "local `addresses` to connect from, client i from the i-th (mod n): a list, a CIDR such as 127.0.0.0/29 or a range 127.0.0.2-127.0.0.9 (repeatable); one address holds at most ~28k connections to one target")
}

// Validate checks the options after flag parsing and normalises them.
func (o *Options) Validate() error {
	for i, raw := range o.Targets {
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("--target %q: %w", raw, err)
		}
		scheme, ok := sioclient.HTTPScheme(u.Scheme)
		if !ok {
			return fmt.Errorf("--target %q: want an http://, https://, ws:// or wss:// URL such as http://127.0.0.1:3000", raw)
		}
		u.Scheme = scheme
		if u.Host == "" {
			return fmt.Errorf("--target %q: no host; want a URL such as http://127.0.0.1:3000", raw)
		}
		if u.Path != "" && u.Path != "/" {
			return fmt.Errorf("--target %q: give the server's base URL; set the Socket.IO path with --path %s", raw, u.Path)
		}
		u.Path = ""
		o.Targets[i] = u.String()
	}
	if !strings.HasPrefix(o.Path, "/") {
		return fmt.Errorf("--path %q: must start with /", o.Path)
	}
	if !strings.HasSuffix(o.Path, "/") {
		o.Path += "/"
	}
	if !strings.HasPrefix(o.Namespace, "/") {
		return fmt.Errorf("--namespace %q: must start with /", o.Namespace)
	}
	if o.InitPath != "" && !strings.HasPrefix(o.InitPath, "/") {
		return fmt.Errorf("--init-path %q: must start with /", o.InitPath)
	}
	if o.ConnectTimeout <= 0 {
		return fmt.Errorf("--connect-timeout %s: must be positive", o.ConnectTimeout)
	}
	o.sources = nil
	if len(o.SourceAddrs) > 0 {
		clients, err := sourceClients(o.SourceAddrs, o.ConnectTimeout)
		if err != nil {
			return err
		}
		o.sources = clients
	}
	return nil
}

// httpClient is the HTTP client of client number i: the one of its source
// address when --source-addr is set, else HTTPClient (nil: the protocol
// client's default).
func (o *Options) httpClient(i int) *http.Client {
	if len(o.sources) == 0 {
		return o.HTTPClient
	}
	if i < 0 {
		i = -i
	}
	return o.sources[i%len(o.sources)]
}

// URL returns the base URL of the target that client number i uses:
// clients are spread over the targets round-robin.
func (o *Options) URL(i int) string {
	if len(o.Targets) == 0 {
		return ""
	}
	if i < 0 {
		i = -i
	}
	return o.Targets[i%len(o.Targets)]
}

// DialOptions returns the protocol client options for client number i,
// without a transport (the caller picks it).
func (o *Options) DialOptions(i int) sioclient.Options {
	return sioclient.Options{
		URL:            o.URL(i),
		Path:           o.Path,
		Namespace:      o.Namespace,
		Header:         o.Header.Clone(),
		Query:          cloneValues(o.Query),
		Auth:           o.authPayload(),
		HTTPClient:     o.httpClient(i),
		ConnectTimeout: o.ConnectTimeout,
	}
}

func (o *Options) authPayload() any {
	if o.Auth == nil {
		return nil
	}
	return o.Auth
}

// Init makes the init request (InitPath) to the target of client i, if an
// init path is set. A status other than 2xx is an error (CONTRACT.md CONN-2).
func (o *Options) Init(ctx context.Context, i int) error {
	if o.InitPath == "" {
		return nil
	}
	base := o.URL(i)
	ctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+o.InitPath, nil)
	if err != nil {
		return fmt.Errorf("init request: %w", err)
	}
	for k, vs := range o.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	client := o.httpClient(i)
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("init request GET %s%s: %w", base, o.InitPath, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("init request GET %s%s: status %d %q; check --init-path (or drop it if the server has no init route)",
			base, o.InitPath, resp.StatusCode, strings.TrimSpace(string(snippet)))
	}
	return nil
}

// ErrUnreachable wraps every error Probe returns.
var ErrUnreachable = errors.New("target unreachable")

// Probe checks that every target answers: the init request when set, then
// a Socket.IO connection over long-polling (which CONTRACT.md TRANS-1
// requires) and one over WebSocket, tried at once, each with the whole
// budget of ctx; the first to connect is closed at once. A server that
// speaks only one of them is reachable: it deserves a verdict (a failed
// TRANS-1 or TRANS-2), not "unreachable", and a transport that hangs (long
// polls that never answer) must not use up the budget of the other. Probe
// says which target failed, what each transport was answered (redirects
// included), and recognises a Next.js server whose Socket.IO server is not
// attached yet without waiting for its WebSocket upgrade, which Next never
// answers.
func (o *Options) Probe(ctx context.Context) error {
	for i, base := range o.Targets {
		if err := o.Init(ctx, i); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrUnreachable, base, err)
		}
		if err := o.probeTransports(ctx, i); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrUnreachable, base, err)
		}
	}
	return nil
}

// probeTransports connects to target i over polling and WebSocket at once;
// nil as soon as one of them connects.
func (o *Options) probeTransports(ctx context.Context, i int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		t   sioclient.Transport
		c   *sioclient.Conn
		err error
	}
	transports := []sioclient.Transport{sioclient.Polling, sioclient.WebSocket}
	results := make(chan result, len(transports))
	for _, t := range transports {
		dial := o.DialOptions(i)
		dial.Transport = t
		go func() {
			c, err := sioclient.Dial(ctx, dial)
			results <- result{t, c, err}
		}()
	}
	// Every dial is waited for (canceled once the answer is known), so
	// that no connection or goroutine outlives the probe.
	errs := map[sioclient.Transport]error{}
	var answer error
	known := false
	for range transports {
		r := <-results
		switch {
		case r.err == nil:
			_ = r.c.Abort() // a probe needs no graceful goodbye, which a silent server would make wait
			if !known {
				known, answer = true, nil
				cancel()
			}
		case !known:
			errs[r.t] = r.err
			if r.t == sioclient.Polling && o.InitPath == "" && looksLikeUnattachedNextJS(r.err, o.Path) {
				known, answer = true, fmt.Errorf("%w: this looks like a Next.js server whose Socket.IO server is not attached yet "+
					"(Next redirects %s to %s, which it does not serve, and does not answer WebSocket upgrades there): "+
					"a Next.js app that attaches Socket.IO in an API route needs --init-path, e.g. --init-path /api/socket",
					r.err, o.Path, strings.TrimSuffix(o.Path, "/"))
				cancel()
			}
		}
	}
	if known {
		return answer
	}
	perr, werr := errs[sioclient.Polling], errs[sioclient.WebSocket]
	return fmt.Errorf("%w%s; over WebSocket: %w", perr, o.hint(perr), werr)
}

// looksLikeUnattachedNextJS tells Next.js's answer to an Engine.IO
// request when no Socket.IO server is attached: a permanent redirect that
// drops the path's trailing slash (Next's trailingSlash: false default),
// then 404 from the path without it.
func looksLikeUnattachedNextJS(err error, path string) bool {
	var httpErr *sioclient.HTTPError
	if !errors.As(err, &httpErr) || httpErr.Status != http.StatusNotFound || len(httpErr.Redirects) == 0 {
		return false
	}
	r := httpErr.Redirects[0]
	u, perr := url.Parse(r.To)
	return perr == nil && (r.Status == http.StatusPermanentRedirect || r.Status == http.StatusMovedPermanently) &&
		strings.HasSuffix(path, "/") && u.Path == strings.TrimSuffix(path, "/")
}

// hint suggests the flag that most often fixes a failed probe.
func (o *Options) hint(err error) string {
	var httpErr *sioclient.HTTPError
	if errors.As(err, &httpErr) && httpErr.Status == http.StatusNotFound && o.InitPath == "" {
		return " (a Next.js server that attaches lazily needs --init-path /api/socket first)"
	}
	return ""
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

type targetsFlag []string

func (f *targetsFlag) String() string { return strings.Join(*f, ",") }
func (f *targetsFlag) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("empty URL")
	}
	*f = append(*f, strings.TrimSpace(s))
	return nil
}

type headerFlag http.Header

func (f *headerFlag) String() string { return fmt.Sprint(http.Header(*f)) }
func (f *headerFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t") {
		return fmt.Errorf("want 'Name: value', got %q", s)
	}
	if *f == nil {
		*f = headerFlag(http.Header{})
	}
	http.Header(*f).Add(name, strings.TrimSpace(value))
	return nil
}

type queryFlag url.Values

func (f *queryFlag) String() string { return url.Values(*f).Encode() }
func (f *queryFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want 'name=value', got %q", s)
	}
	if *f == nil {
		*f = queryFlag(url.Values{})
	}
	url.Values(*f).Add(name, value)
	return nil
}

type authFlag map[string]any

func (f *authFlag) String() string {
	if *f == nil {
		return ""
	}
	b, _ := json.Marshal(map[string]any(*f))
	return string(b)
}
func (f *authFlag) Set(s string) error {
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil || m == nil {
		return fmt.Errorf("want a JSON object such as '{\"token\":\"abc\"}', got %q", s)
	}
	*f = m
	return nil
}
