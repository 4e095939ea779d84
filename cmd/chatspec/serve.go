package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/chatspec/chatspec/reference"
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

Flags:
`

// serveFlags binds the serve flags to a reference.Config.
type serveFlags struct {
	cfg        reference.Config
	transports string
	logLevel   string
	logFormat  string
	redisURL   string
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
	fs.DurationVar(&f.cfg.PingInterval, "ping-interval", d.PingInterval, "Engine.IO ping `interval`")
	fs.DurationVar(&f.cfg.PingTimeout, "ping-timeout", d.PingTimeout, "Engine.IO ping `timeout`")
	fs.Func("cors-origin", "allow this browser `origin` (repeatable; * allows any; default: same origin only)", func(v string) error {
		f.cfg.CORSOrigins = append(f.cfg.CORSOrigins, v)
		return nil
	})
	fs.StringVar(&f.transports, "transports", strings.Join(d.Transports, ","), "enabled transports, comma-separated: `polling,websocket`")
	fs.Float64Var(&f.cfg.Rate, "rate", d.Rate, "writeMessage events per second allowed per socket (0: no limit)")
	fs.IntVar(&f.cfg.RateBurst, "rate-burst", d.RateBurst, "writeMessage burst allowed per socket")
	fs.IntVar(&f.cfg.MaxConnections, "max-conns", d.MaxConnections, "most concurrent sockets (0: no limit)")
	fs.IntVar(&f.cfg.MaxConnectionsPerIP, "max-conns-per-ip", d.MaxConnectionsPerIP, "most concurrent sockets per client IP (0: no limit)")
	fs.DurationVar(&f.cfg.ShutdownTimeout, "shutdown-timeout", d.ShutdownTimeout, "how long a graceful stop may take")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log `format` on stderr: text or json")
	fs.StringVar(&f.redisURL, "redis", "", "share users and history through Redis at `URL` (redis://host:6379/0)")
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
		fmt.Fprintf(stderr, "chatspec serve: %v\n", err)
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "chatspec serve: unexpected argument %q (serve takes only flags; see --help)\n", fs.Arg(0))
		return ExitUsage
	}
	logger, err := f.finish(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "chatspec serve: %v\n", err)
		return ExitUsage
	}
	if f.redisURL != "" {
		fmt.Fprintln(stderr, "chatspec serve: redis support: not yet wired")
		return ExitUsage
	}

	running, err := reference.Start(ctx, f.cfg, reference.WithLogger(logger))
	if err != nil {
		fmt.Fprintf(stderr, "chatspec serve: %v\n", strings.TrimPrefix(err.Error(), "reference: "))
		return ExitError
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
	if err := running.Stop(stopCtx); err != nil {
		fmt.Fprintf(stderr, "chatspec serve: %v\n", err)
		return ExitError
	}
	if ctx.Err() == nil {
		fmt.Fprintln(stderr, "chatspec serve: the server stopped unexpectedly")
		return ExitError
	}
	return ExitOK
}
