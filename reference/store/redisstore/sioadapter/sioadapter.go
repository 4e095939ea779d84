// Package sioadapter builds the Redis adapter that lets several zishang520
// Socket.IO servers deliver each other's broadcasts, so that io.Emit on one
// reference server node reaches the clients of every node.
//
// The adapter carries broadcasts only. The chat's shared state (user list,
// history) lives in a redisstore.Store; a node needs both.
//
// Only the two zishang520 adapters that were measured to deliver a
// broadcast-to-all across nodes are offered (see the package test): sharded
// Pub/Sub (Redis 7.0 or later) and Redis Streams. The classic Pub/Sub adapter
// (adapter.RedisAdapterBuilder, adapters/redis v3.0.2) is left out on
// purpose: it ignores messages published on the namespace's base channel, so
// io.Emit never crosses nodes; only room broadcasts do.
package sioadapter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
	sioredis "github.com/zishang520/socket.io/adapters/redis/v3"
	"github.com/zishang520/socket.io/adapters/redis/v3/adapter"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Kind selects the zishang520 Redis adapter.
type Kind string

const (
	// Sharded uses sharded Pub/Sub (SSUBSCRIBE/SPUBLISH), which needs Redis
	// 7.0 or later. Delivery is at most once: a node that is disconnected
	// from Redis misses the broadcasts sent meanwhile.
	Sharded Kind = "sharded"
	// Streams appends every broadcast to a Redis stream that each node
	// reads with a blocking XREAD, so a node that reconnects continues from
	// where it stopped. It also supports Socket.IO connection state
	// recovery. It works with Redis 5.0 or later.
	Streams Kind = "streams"
)

// DefaultKind is the adapter used when Options.Kind is empty.
const DefaultKind = Sharded

// DefaultChannelPrefix is used when Options.ChannelPrefix is empty.
const DefaultChannelPrefix = "chatspec-sio"

// Options configures New.
type Options struct {
	// URL is the Redis server, redis://[user:password@]host:port/db. All
	// nodes must use the same server and ChannelPrefix.
	URL string
	// Kind selects the adapter. Default DefaultKind.
	Kind Kind
	// ChannelPrefix names the Pub/Sub channels (Sharded) or the stream key
	// (Streams), so that several deployments can share one Redis.
	// Default DefaultChannelPrefix.
	ChannelPrefix string
	// Logger receives the adapter's Redis errors, at debug level. Default:
	// discard.
	Logger *slog.Logger
}

// Adapter owns the Redis connection of one node's Socket.IO adapter.
type Adapter struct {
	client  *redis.Client
	cancel  context.CancelFunc
	builder socket.AdapterConstructor
	kind    Kind
}

// New connects to Redis and prepares the adapter. Pass Builder() to the
// server's options (ServerOptions.SetAdapter) before creating the server,
// and call Close after the server is closed. ctx bounds only the connection
// check.
func New(ctx context.Context, opts Options) (*Adapter, error) {
	if opts.URL == "" {
		return nil, errors.New("sioadapter: Options.URL is empty; want redis://host:port/db")
	}
	ropts, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("sioadapter: Options.URL %q: %w", opts.URL, err)
	}
	if opts.Kind == "" {
		opts.Kind = DefaultKind
	}
	if opts.Kind != Sharded && opts.Kind != Streams {
		return nil, fmt.Errorf("sioadapter: Options.Kind %q is unknown; want %q or %q", opts.Kind, Sharded, Streams)
	}
	if opts.ChannelPrefix == "" {
		opts.ChannelPrefix = DefaultChannelPrefix
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := redis.NewClient(ropts)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("sioadapter: connecting to %s: %w", opts.URL, err)
	}
	// The adapters stop their subscriptions and polling when this context
	// ends, so it belongs to the Adapter, not to the caller's ctx.
	life, cancel := context.WithCancel(context.Background())
	rc := sioredis.NewRedisClient(life, client)
	// Debug, not warn: the adapters report every failed dial while Redis is
	// down, and a "use of closed network connection" each time they drop a
	// room's subscription in normal operation. Outages and recoveries are
	// reported once by the store (redisstore) instead.
	_ = rc.On("error", func(args ...any) {
		log.Debug("socket.io redis adapter error", "kind", opts.Kind, "err", fmt.Sprint(args...))
	})
	a := &Adapter{client: client, cancel: cancel, kind: opts.Kind}
	switch opts.Kind {
	case Sharded:
		o := adapter.DefaultShardedRedisAdapterOptions()
		o.SetChannelPrefix(opts.ChannelPrefix)
		a.builder = &adapter.ShardedRedisAdapterBuilder{Redis: rc, Opts: o}
	case Streams:
		o := adapter.DefaultRedisStreamsAdapterOptions()
		o.SetStreamName(opts.ChannelPrefix + "-stream")
		o.SetChannelPrefix(opts.ChannelPrefix)
		o.SetSessionKeyPrefix(opts.ChannelPrefix + "-session:")
		a.builder = &adapter.RedisStreamsAdapterBuilder{Redis: rc, Opts: o}
	}
	return a, nil
}

// Builder returns the value for ServerOptions.SetAdapter. Use it for one
// server only: the builder keeps per-server state.
func (a *Adapter) Builder() socket.AdapterConstructor { return a.builder }

// Kind returns the adapter kind in use.
func (a *Adapter) Kind() Kind { return a.kind }

// Close ends the adapter's subscriptions and closes its Redis connection.
// Close the Socket.IO server first.
func (a *Adapter) Close() error {
	a.cancel()
	return a.client.Close()
}
