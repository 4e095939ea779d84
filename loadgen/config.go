package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// TransportShare is one entry of the transport mix: the fraction Weight of
// users connects with Transport.
type TransportShare struct {
	Transport sioclient.Transport
	Weight    float64
}

// Conn is what a session needs of one Socket.IO connection.
// *sioclient.Conn implements it; the engine's unit tests script a fake.
type Conn interface {
	// Emit sends one event; it returns once the packet is written.
	Emit(ctx context.Context, event string, args ...any) error
	// Close ends the connection gracefully and waits for its reader to
	// stop (no OnEvent call after it returns); it is idempotent.
	Close() error
	// Abort drops the connection without a close handshake, as a lost
	// network does.
	Abort() error
	// Done is closed when the connection has ended; Err then says why.
	Done() <-chan struct{}
	Err() error
}

// Connector opens a connection with opts; events arrive on opts.OnEvent.
type Connector func(ctx context.Context, opts sioclient.Options) (Conn, error)

// DialSocketIO is the default Connector: the suite's Socket.IO client.
func DialSocketIO(ctx context.Context, opts sioclient.Options) (Conn, error) {
	c, err := sioclient.Dial(ctx, opts)
	if err != nil {
		return nil, err // not a typed nil inside a non-nil interface
	}
	return c, nil
}

// Config configures an Engine.
type Config struct {
	// RunID tags every message text (see Stamp); ValidRunID must hold.
	RunID string
	// Arrivals is the users' schedule (Plan.Arrivals).
	Arrivals []Arrival
	// Pacer spaces each user's messages.
	Pacer Pacer
	// MessageSize pads message texts to this many bytes (0: no padding).
	MessageSize int
	// Window is the delivery window: how long a message has to reach every
	// joined user before a user who leaves is no longer expected to see it.
	Window time.Duration
	// JoinTimeout bounds the wait for `connected` after `connecting`.
	JoinTimeout time.Duration
	// Churn is the fraction of users that drop once (abruptly, as a lost
	// network does) at a random moment of their sending phase and
	// reconnect ChurnPause later as a new session with the same username.
	// A session the server drops also reconnects after ChurnPause, as a
	// Socket.IO client does, while its user is still in its sending phase.
	Churn      float64
	ChurnPause time.Duration
	// Transports is the transport mix; empty means all WebSocket.
	Transports []TransportShare
	// Seed makes transport choice, churn and pacing reproducible.
	Seed uint64
	// Dial returns the connection options of a user (URL, path, headers…);
	// the engine sets Transport, OnEvent and SkipArgsValidation.
	Dial func(user int) sioclient.Options
	// Connect opens a connection with those options; nil means
	// DialSocketIO. Tests put a scripted fake here.
	Connect Connector
	// Init, when set, makes the init request before each connection.
	Init func(ctx context.Context, user int) error
	// StopTimeout is the grace given to connections to close after the run
	// ends or is stopped; after it they are aborted. Default 5s.
	StopTimeout time.Duration
	// TickInterval is the period of the generator's clock probe; default
	// 100ms.
	TickInterval time.Duration
	// MaxOutage is how long a target may stay down (refuse TCP
	// connections) before the run ends as target_down. 0, the default,
	// ends the run at the first confirmed outage: right for a CI gate.
	// A positive value lets a run go through a restart or a rolling
	// deploy: the outage is recorded (Engine.Outages), the engine keeps
	// probing the target, users reconnect with a capped backoff while
	// they are in their sending phase, and users whose target is known to
	// be down wait for it to come back instead of dialing it.
	MaxOutage time.Duration
	// SeedStyle makes every user behave like the seed's useSocket hook:
	// two connections per session, joining on one and writing on the
	// other, which never joins (seedstyle.go).
	SeedStyle bool
	// NoAcks sends writes without asking for an acknowledgement. By
	// default every write asks (at most maxPendingAcks unanswered per
	// session), so that a server refusing through its acks alone is seen
	// as refusing, not losing (refusal.go). Seed-style writes never ask:
	// the seed's client does not.
	NoAcks bool
	// Shard, when Count > 1, runs only this shard's slice of Arrivals:
	// the users whose index is Index modulo Count. Every other choice
	// (transports, churn, pacing, names, stamps) is the one the whole plan
	// makes for that user, so N shards together run the plan one process
	// would (shard.go).
	Shard Shard
	// Start, when set, is the run's origin: Run waits for it, and every
	// offset (arrivals, intended times, stamps) counts from it, so shards
	// on several machines given the same Start follow one schedule. Zero
	// means when Run is called.
	Start time.Time
	// Secret, when set, authenticates stamps with NewSharedRunKey: shards
	// given the same secret accept each other's messages. Nil draws a
	// secret of this process alone.
	Secret []byte
}

// ErrConfig wraps every configuration error of New.
var ErrConfig = errors.New("invalid load configuration")

// withDefaults checks c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	switch {
	case !ValidRunID(c.RunID):
		return c, fmt.Errorf("%w: run ID %q: want 1-16 characters of [a-z0-9]", ErrConfig, c.RunID)
	case len(c.Arrivals) == 0:
		return c, fmt.Errorf("%w: no users planned", ErrConfig)
	case c.Pacer == nil:
		return c, fmt.Errorf("%w: no pacer", ErrConfig)
	case c.Dial == nil:
		return c, fmt.Errorf("%w: no Dial function", ErrConfig)
	case c.Window <= 0:
		return c, fmt.Errorf("%w: delivery window %v must be positive", ErrConfig, c.Window)
	case c.Churn < 0 || c.Churn > 1:
		return c, fmt.Errorf("%w: churn %v: want a fraction in [0,1]", ErrConfig, c.Churn)
	case c.MessageSize < 0 || c.MessageSize > 1<<20:
		return c, fmt.Errorf("%w: message size %d: want 0 to 1 MiB", ErrConfig, c.MessageSize)
	case c.MaxOutage < 0:
		return c, fmt.Errorf("%w: max outage %v must not be negative", ErrConfig, c.MaxOutage)
	}
	if c.JoinTimeout <= 0 {
		c.JoinTimeout = 10 * time.Second
	}
	if c.ChurnPause <= 0 {
		c.ChurnPause = time.Second
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = 5 * time.Second
	}
	if c.TickInterval <= 0 {
		c.TickInterval = 100 * time.Millisecond
	}
	if c.Connect == nil {
		c.Connect = DialSocketIO
	}
	var total float64
	for _, t := range c.Transports {
		switch t.Transport {
		case sioclient.WebSocket, sioclient.Polling, sioclient.Upgrade:
		default:
			return c, fmt.Errorf("%w: unknown transport %q (want websocket, polling or upgrade)", ErrConfig, t.Transport)
		}
		if t.Weight < 0 {
			return c, fmt.Errorf("%w: negative weight for %s", ErrConfig, t.Transport)
		}
		total += t.Weight
	}
	if len(c.Transports) == 0 {
		c.Transports, total = []TransportShare{{sioclient.WebSocket, 1}}, 1
	}
	if total <= 0 {
		return c, fmt.Errorf("%w: transport weights add up to 0", ErrConfig)
	}
	if err := c.Shard.check(len(c.Arrivals)); err != nil {
		return c, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	for i, a := range c.Arrivals {
		if a.User != i {
			return c, fmt.Errorf("%w: arrival %d is for user %d: arrivals must be in user order", ErrConfig, i, a.User)
		}
	}
	return c, nil
}

// pickTransport draws a transport from the mix.
func (c Config) pickTransport(x float64) sioclient.Transport {
	var total float64
	for _, t := range c.Transports {
		total += t.Weight
	}
	x *= total
	var tr sioclient.Transport
	for _, t := range c.Transports {
		if tr = t.Transport; x < t.Weight {
			break
		}
		x -= t.Weight
	}
	return tr
}
