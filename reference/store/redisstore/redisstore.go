// Package redisstore is a store.Store kept in Redis, so that several reference
// server nodes share one user list and one history.
//
// # Consistency
//
// Every mutation is a single Lua script (see scripts.go for the key layout),
// so all nodes see one join order and one history order: the join order is
// the score from a global INCR counter, the history is one Redis list that
// is appended and trimmed in the same script.
//
// # Change feed
//
// Every script that changes the list or the history also appends the change,
// with the lists right after it, to one Redis stream (<prefix>feed), so the
// stream's order is the order of the changes. Subscribe reads it: a
// server that sends chat events only from it, to its own sockets, gives
// every client of every node the same sequence of lists (see feed.go).
//
// # Node liveness and reaping
//
// Each node owns the sockets it joined. It keeps a liveness key
// <prefix>node:<NodeID> alive (TTL NodeTTL, refreshed every NodeTTL/3) and
// records its holds in <prefix>nodesocks:<NodeID>. Every node checks every
// NodeTTL/2 for nodes whose liveness key has expired and removes their holds
// in one script; a username held by no other socket leaves the list, and the
// node that did the removal calls Options.OnReaped so that the server can
// broadcast the new list. A node that dies without Close therefore leaves no
// ghost users for longer than NodeTTL + NodeTTL/2 (plus one script call)
// once at least one other node runs (a node started later reaps it as well).
// Measured with NodeTTL 300ms: 300–451ms from the crash to the list change
// (TestDeadNodeIsReaped). Expiry is timed by the Redis server's clock, so
// node clocks need not agree.
//
// go-redis logs its own failed dials through its package-level logger
// (redis.SetLogger), not through Options.Logger.
//
// # Redis restarts
//
// go-redis reconnects by itself; while Redis is unreachable every method
// returns an error, the liveness refresh logs each failure and keeps trying,
// and Healthy and Status report the state. Each node keeps a local record of
// the sockets it holds. When its liveness key is found missing (Redis
// restarted without persistence, or the node stalled past NodeTTL and was
// reaped), the node registers all of them again and calls Options.OnRestored
// with the usernames that came back.
//
// What is recoverable: the user list, rebuilt from every live node's local
// record within NodeTTL/3 of Redis answering again. The join order of the
// rebuilt list follows the order in which nodes re-register, not the original
// order. What is not: the history. A Redis restart without persistence loses
// it for good; configure Redis persistence (AOF) if it must survive.
package redisstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatspec/chatspec/reference/store"
)

// This file is longer than most (about 760 lines) because it is the Store
// type whole: its package doc (the consistency, feed and liveness design),
// the node's liveness loop and every method that runs a script. The scripts
// themselves are in scripts.go and the feed reader in feed.go.

// DefaultNodeTTL is the liveness TTL used when Options.NodeTTL is zero.
const DefaultNodeTTL = 10 * time.Second

// DefaultPrefix is the key prefix used when Options.Prefix is empty.
const DefaultPrefix = "chatspec:"

// minNodeTTL keeps the refresh period (NodeTTL/3) well above a Redis round
// trip; anything shorter would make healthy nodes look dead.
const minNodeTTL = 30 * time.Millisecond

// restoreBatch bounds the arguments of one restore script call.
const restoreBatch = 500

// ErrNodeIDInUse is returned by New when another live node already uses the
// NodeID. Wait NodeTTL for a crashed node's key to expire, or pick another ID.
var ErrNodeIDInUse = errors.New("redisstore: node ID is in use by a live node")

// Options configures New.
type Options struct {
	// URL is the Redis server, redis://[user:password@]host:port/db.
	URL string
	// Prefix starts every key, so that several chat deployments (or tests)
	// can share one Redis. Default DefaultPrefix.
	Prefix string
	// NodeID names this node; it must be unique among live nodes sharing the
	// prefix. Default: a random ID. A fixed ID lets a restarted node clean up
	// the holds its previous run left behind at once, instead of waiting to be
	// reaped.
	NodeID string
	// HistoryLimit is how many messages the history keeps; 0 keeps none.
	// Negative is an error.
	HistoryLimit int
	// NodeTTL is the liveness key's TTL. Default DefaultNodeTTL; at least 30ms.
	NodeTTL time.Duration
	// Logger receives liveness, reaping and re-registration events. Default:
	// discard.
	Logger *slog.Logger
	// OnReaped, if set, is called after this node removed holds in the
	// background, that is not in answer to a Join or Leave of its own: holds
	// of a node found dead, and Leaves that failed while Redis was unreachable
	// and were retried later. removed lists the usernames that left the list,
	// users is the list right after. The server should broadcast the list
	// (the chat's "disconnected" event) to all nodes. It runs on the store's
	// background goroutine: it must not block for long nor call Close.
	OnReaped func(removed, users []store.User)
	// OnRestored, if set, is called after this node registered its holds
	// again (see the package doc); added lists the usernames that were not
	// listed any more, users is the list right after. Same rules as OnReaped.
	OnRestored func(added, users []store.User)
	// FeedLength is about how many changes the feed keeps for nodes that
	// read it late (XADD MAXLEN ~). Default DefaultFeedLength. Each entry
	// of a join or an append carries the whole history.
	FeedLength int
}

// Status is a snapshot of a Store's view of its own health.
type Status struct {
	NodeID string
	// Healthy reports whether the last liveness refresh succeeded.
	Healthy bool
	// LastError is the last refresh error, empty when Healthy.
	LastError string
	// LastRefresh is when the liveness key was last refreshed successfully.
	LastRefresh time.Time
	// Reregistrations counts how often this node found its liveness key
	// missing and registered its sockets again.
	Reregistrations int
	// ReapedHolds counts the holds of dead nodes this node removed.
	ReapedHolds int
	// PendingLeaves counts Leaves that failed and wait to be retried.
	PendingLeaves int
	// MissedChanges counts feed entries this node never read: trimmed
	// from the feed before it got to them (it lagged FeedLength behind).
	MissedChanges int
	// FeedHealthy reports whether the last read of the change feed
	// succeeded (always false before Subscribe).
	FeedHealthy bool
}

// Store is a store.Store in Redis. It is safe for concurrent use.
type Store struct {
	client *redis.Client
	opts   Options
	log    *slog.Logger
	keys   keys

	// regMu orders the local record against re-registration: Join and Leave
	// hold it shared, restore holds it exclusively, so restore never re-adds
	// a socket whose Leave is in flight.
	regMu sync.RWMutex

	mu      sync.Mutex
	local   map[hold]uint64 // sockets this node holds -> local join sequence
	seq     uint64
	pending map[hold]struct{} // Leaves to retry
	status  Status

	feedSeq    int64           // number of the last feed entry read; guarded by mu
	feedFrom   string          // the feed entry New found newest: Subscribe reads after it; guarded by mu
	subscribed bool            // Subscribe was called; guarded by mu
	loopCtx    context.Context // ends at Close: the background goroutines' context

	restorePending atomic.Bool // a restore failed and must be retried

	closed    atomic.Bool
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var (
	_ store.ChangeFeed     = (*Store)(nil)
	_ store.Pinger         = (*Store)(nil)
	_ store.HealthReporter = (*Store)(nil)
)

type hold struct{ username, socketID string }

type keys struct {
	prefix, seq, users, history, nodes, self, selfSocks, feed, feedSeq string
}

func (k keys) socks(username string) string { return k.prefix + "socks:" + username }
func (k keys) node(id string) string        { return k.prefix + "node:" + id }
func (k keys) nodeSocks(id string) string   { return k.prefix + "nodesocks:" + id }

// New connects to Redis, registers this node and starts its liveness and
// reaping loops. ctx bounds only the connection and registration; the loops
// run until Close.
func New(ctx context.Context, opts Options) (*Store, error) {
	if opts.URL == "" {
		return nil, errors.New("redisstore: Options.URL is empty; want redis://host:port/db")
	}
	ropts, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("redisstore: Options.URL %q: %w", opts.URL, err)
	}
	if opts.HistoryLimit < 0 {
		return nil, fmt.Errorf("redisstore: Options.HistoryLimit is %d; want 0 or more", opts.HistoryLimit)
	}
	if opts.FeedLength < 0 {
		return nil, fmt.Errorf("redisstore: Options.FeedLength is %d; want 0 (default) or more", opts.FeedLength)
	}
	if opts.FeedLength == 0 {
		opts.FeedLength = DefaultFeedLength
	}
	if opts.NodeTTL == 0 {
		opts.NodeTTL = DefaultNodeTTL
	}
	if opts.NodeTTL < minNodeTTL {
		return nil, fmt.Errorf("redisstore: Options.NodeTTL is %v; want at least %v", opts.NodeTTL, minNodeTTL)
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.NodeID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		opts.NodeID = hex.EncodeToString(b[:])
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := opts.Prefix
	s := &Store{
		client: redis.NewClient(ropts),
		opts:   opts,
		log:    opts.Logger.With("component", "redisstore", "node", opts.NodeID),
		keys: keys{
			prefix: p, seq: p + "seq", users: p + "users", history: p + "history",
			nodes: p + "nodes", self: p + "node:" + opts.NodeID, selfSocks: p + "nodesocks:" + opts.NodeID,
			feed: p + "feed", feedSeq: p + "feedseq",
		},
		local:   make(map[hold]uint64),
		pending: make(map[hold]struct{}),
		status:  Status{NodeID: opts.NodeID},
	}
	if err := s.register(ctx); err != nil {
		_ = s.client.Close()
		return nil, err
	}
	from, err := s.feedStart(ctx)
	if err != nil {
		_ = s.client.Close()
		return nil, err
	}
	s.feedFrom = from
	loopCtx, cancel := context.WithCancel(context.Background())
	s.loopCtx, s.cancel = loopCtx, cancel
	s.wg.Go(func() { s.loop(loopCtx) })
	return s, nil
}

// register claims the node ID and removes holds a previous run under the
// same ID left behind.
func (s *Store) register(ctx context.Context) error {
	res, err := refreshScript.Run(ctx, s.client, []string{s.keys.self, s.keys.nodes},
		s.opts.NodeID, s.opts.NodeTTL.Milliseconds(), "nx").Int()
	if err != nil {
		return fmt.Errorf("redisstore: registering node %q at %s: %w", s.opts.NodeID, s.opts.URL, err)
	}
	if res == -1 {
		return fmt.Errorf("%w: %q under prefix %q", ErrNodeIDInUse, s.opts.NodeID, s.opts.Prefix)
	}
	s.setRefreshed()
	// Holds recorded under our ID now belong to no live socket.
	holds, removed, users, err := s.reap(ctx, s.opts.NodeID, "stale")
	if err != nil {
		return fmt.Errorf("redisstore: removing stale holds of node %q: %w", s.opts.NodeID, err)
	}
	if holds > 0 {
		s.log.Info("removed holds left by a previous run of this node", "holds", holds, "unlisted", len(removed))
		if len(removed) > 0 && s.opts.OnReaped != nil {
			s.opts.OnReaped(removed, users)
		}
	}
	return nil
}

// loop refreshes the liveness key every NodeTTL/3 and reaps dead nodes every
// NodeTTL/2 until ctx ends.
func (s *Store) loop(ctx context.Context) {
	refresh := time.NewTicker(s.opts.NodeTTL / 3)
	defer refresh.Stop()
	reap := time.NewTicker(s.opts.NodeTTL / 2)
	defer reap.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-refresh.C:
			s.refresh(ctx)
		case <-reap.C:
			s.reapDead(ctx)
		}
	}
}

func (s *Store) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	// A call must not outlive the liveness period, or a hung connection would
	// let this node's key expire unnoticed.
	return context.WithTimeout(ctx, s.opts.NodeTTL/3)
}

func (s *Store) refresh(ctx context.Context) {
	cctx, cancel := s.callCtx(ctx)
	defer cancel()
	existed, err := refreshScript.Run(cctx, s.client, []string{s.keys.self, s.keys.nodes},
		s.opts.NodeID, s.opts.NodeTTL.Milliseconds(), "").Int()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.status.Healthy = false
		s.status.LastError = err.Error()
		s.mu.Unlock()
		s.log.Warn("liveness refresh failed; will retry", "err", err, "every", s.opts.NodeTTL/3)
		return
	}
	wasHealthy := s.setRefreshed()
	if !wasHealthy {
		s.log.Info("liveness refresh succeeded again")
	}
	if existed == 0 || s.restorePending.Swap(false) {
		s.restore(ctx)
	}
	s.retryLeaves(ctx)
}

// setRefreshed records a successful refresh and reports whether the store
// was healthy before.
func (s *Store) setRefreshed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.status.Healthy
	s.status.Healthy = true
	s.status.LastError = ""
	s.status.LastRefresh = time.Now()
	return was
}

// restore registers every local hold again, in local join order.
func (s *Store) restore(ctx context.Context) {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	s.mu.Lock()
	holds := slices.SortedFunc(maps.Keys(s.local), func(a, b hold) int {
		return cmp.Compare(s.local[a], s.local[b])
	})
	s.status.Reregistrations++
	s.mu.Unlock()
	s.log.Warn("liveness key was missing (Redis lost its data, or this node was reaped after a stall); registering this node's sockets again",
		"sockets", len(holds))
	var added, users []store.User
	// Report what was restored even if a later batch fails: the retry will
	// find those usernames listed already and not report them again.
	defer func() {
		if len(added) > 0 && s.opts.OnRestored != nil {
			s.opts.OnRestored(added, users)
		}
	}()
	for chunk := range slices.Chunk(holds, restoreBatch) {
		args := make([]any, 0, 2+2*len(chunk))
		args = append(args, s.keys.prefix, s.feedLen())
		for _, h := range chunk {
			args = append(args, h.username, h.socketID)
		}
		cctx, cancel := s.callCtx(ctx)
		res, err := restoreScript.Run(cctx, s.client, []string{s.keys.users, s.keys.seq, s.keys.selfSocks, s.keys.feed, s.keys.feedSeq}, args...).Slice()
		cancel()
		var a, u []string
		if err == nil {
			a, u, err = twoLists(res)
		}
		if err != nil {
			// The liveness key exists again, so the next refresh would not
			// notice: ask it to retry. Re-adding holds twice is harmless.
			s.log.Error("re-registering sockets failed; will retry", "err", err)
			s.restorePending.Store(true)
			return
		}
		added, users = append(added, toUsers(a)...), toUsers(u)
	}
}

// retryLeaves runs again the Leaves that failed earlier.
func (s *Store) retryLeaves(ctx context.Context) {
	s.mu.Lock()
	pending := slices.Collect(maps.Keys(s.pending))
	s.mu.Unlock()
	for _, h := range pending {
		cctx, cancel := s.callCtx(ctx)
		users, removed, err := s.leave(cctx, h)
		cancel()
		if err != nil {
			return
		}
		s.mu.Lock()
		delete(s.pending, h)
		s.mu.Unlock()
		if removed && s.opts.OnReaped != nil {
			s.opts.OnReaped([]store.User{{Username: h.username}}, users)
		}
	}
}

// reapDead removes the holds of every other node whose liveness key expired.
func (s *Store) reapDead(ctx context.Context) {
	cctx, cancel := s.callCtx(ctx)
	nodes, err := s.client.SMembers(cctx, s.keys.nodes).Result()
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("listing nodes to reap failed; will retry", "err", err)
		}
		return
	}
	for _, id := range nodes {
		if id == s.opts.NodeID {
			continue
		}
		cctx, cancel := s.callCtx(ctx)
		holds, removed, users, err := s.reap(cctx, id, "")
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("reaping a node failed; will retry", "dead_node", id, "err", err)
			}
			return
		}
		if holds == 0 {
			continue
		}
		s.mu.Lock()
		s.status.ReapedHolds += holds
		s.mu.Unlock()
		s.log.Info("reaped a dead node", "dead_node", id, "sockets", holds, "unlisted", len(removed))
		if len(removed) > 0 && s.opts.OnReaped != nil {
			s.opts.OnReaped(removed, users)
		}
	}
}

// reap runs reapScript on node id; mode is "", "stale" or "close" (see
// reapScript).
func (s *Store) reap(ctx context.Context, id, mode string) (holds int, removed, users []store.User, err error) {
	res, err := reapScript.Run(ctx, s.client,
		[]string{s.keys.nodes, s.keys.node(id), s.keys.nodeSocks(id), s.keys.users, s.keys.feed, s.keys.feedSeq},
		s.keys.prefix, id, mode, s.feedLen()).Slice()
	if err != nil {
		return 0, nil, nil, err
	}
	if len(res) != 3 {
		return 0, nil, nil, fmt.Errorf("redisstore: reap script returned %d values, want 3", len(res))
	}
	n, ok := res[0].(int64)
	if !ok {
		return 0, nil, nil, fmt.Errorf("redisstore: reap script returned %T for a count", res[0])
	}
	gone, u, err := twoLists(res[1:])
	if err != nil {
		return 0, nil, nil, err
	}
	return int(n), toUsers(gone), toUsers(u), nil
}

// Join implements store.Store.
func (s *Store) Join(ctx context.Context, username, socketID string) ([]store.User, []store.Message, bool, error) {
	if err := s.check(ctx); err != nil {
		return nil, nil, false, err
	}
	s.regMu.RLock()
	defer s.regMu.RUnlock()
	res, err := joinScript.Run(ctx, s.client,
		[]string{s.keys.users, s.keys.seq, s.keys.history, s.keys.socks(username), s.keys.selfSocks, s.keys.feed, s.keys.feedSeq},
		username, socketID, s.feedLen()).Slice()
	if err != nil {
		return nil, nil, false, s.wrap("join", err)
	}
	if len(res) != 3 {
		return nil, nil, false, fmt.Errorf("redisstore: join script returned %d values, want 3", len(res))
	}
	added, _ := res[0].(int64)
	names, raw, err := twoLists(res[1:])
	if err != nil {
		return nil, nil, false, err
	}
	history, err := decodeHistory(raw)
	if err != nil {
		return nil, nil, false, err
	}
	h := hold{username, socketID}
	s.mu.Lock()
	if _, ok := s.local[h]; !ok {
		s.seq++
		s.local[h] = s.seq
	}
	delete(s.pending, h)
	s.mu.Unlock()
	return toUsers(names), history, added == 1, nil
}

// Leave implements store.Store. If Redis cannot be reached, Leave returns
// the error and also queues the Leave to be retried in the background (the
// socket is gone either way); a retry that unlists the username calls
// Options.OnReaped.
func (s *Store) Leave(ctx context.Context, username, socketID string) ([]store.User, bool, error) {
	if err := s.check(ctx); err != nil {
		return nil, false, err
	}
	s.regMu.RLock()
	defer s.regMu.RUnlock()
	h := hold{username, socketID}
	users, removed, err := s.leave(ctx, h)
	s.mu.Lock()
	_, known := s.local[h]
	delete(s.local, h)
	if err != nil && known {
		s.pending[h] = struct{}{}
	}
	s.mu.Unlock()
	if err != nil {
		return nil, false, s.wrap("leave", err)
	}
	return users, removed, nil
}

func (s *Store) leave(ctx context.Context, h hold) ([]store.User, bool, error) {
	res, err := leaveScript.Run(ctx, s.client,
		[]string{s.keys.users, s.keys.socks(h.username), s.keys.selfSocks, s.keys.feed, s.keys.feedSeq},
		h.username, h.socketID, s.feedLen()).Slice()
	if err != nil {
		return nil, false, err
	}
	if len(res) != 2 {
		return nil, false, fmt.Errorf("redisstore: leave script returned %d values, want 2", len(res))
	}
	removed, _ := res[0].(int64)
	names, err := toStrings(res[1])
	if err != nil {
		return nil, false, err
	}
	return toUsers(names), removed == 1, nil
}

// Append implements store.Store.
func (s *Store) Append(ctx context.Context, m store.Message) ([]store.Message, error) {
	return s.AppendFrom(ctx, m, "")
}

// AppendFrom is Append for a message written by socketID, which the change
// feed names as the change's origin (Change.SocketID), so that the writer's
// server can tell its own message when the feed delivers it.
func (s *Store) AppendFrom(ctx context.Context, m store.Message, socketID string) ([]store.Message, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("redisstore: encoding message: %w", err)
	}
	res, err := appendScript.Run(ctx, s.client, []string{s.keys.history, s.keys.feed, s.keys.feedSeq}, b, s.opts.HistoryLimit, s.feedLen(), socketID).Slice()
	if err != nil {
		return nil, s.wrap("append", err)
	}
	raw, err := toStrings(res)
	if err != nil {
		return nil, err
	}
	return decodeHistory(raw)
}

// Users implements store.Store.
func (s *Store) Users(ctx context.Context) ([]store.User, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	names, err := s.client.ZRange(ctx, s.keys.users, 0, -1).Result()
	if err != nil {
		return nil, s.wrap("users", err)
	}
	return toUsers(names), nil
}

// History implements store.Store.
func (s *Store) History(ctx context.Context) ([]store.Message, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	raw, err := s.client.LRange(ctx, s.keys.history, 0, -1).Result()
	if err != nil {
		return nil, s.wrap("history", err)
	}
	return decodeHistory(raw)
}

// Healthy pings Redis and returns the error, if any.
func (s *Store) Healthy(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return s.wrap("ping", s.client.Ping(ctx).Err())
}

// Ping is Healthy under the name the reference server's /healthz looks
// for: while Redis does not answer, /healthz reports 503 with this error.
func (s *Store) Ping(ctx context.Context) error { return s.Healthy(ctx) }

// HealthDetail is the liveness snapshot for the reference server's
// /healthz body (it calls HealthDetail when a store has it).
func (s *Store) HealthDetail() any {
	st := s.Status()
	d := map[string]any{
		"backend":         "redis",
		"node":            st.NodeID,
		"liveness":        st.Healthy,
		"reregistrations": st.Reregistrations,
		"reaped_sockets":  st.ReapedHolds,
		"pending_leaves":  st.PendingLeaves,
	}
	if !st.LastRefresh.IsZero() {
		d["last_refresh"] = st.LastRefresh.UTC().Format(time.RFC3339Nano)
	}
	if st.LastError != "" {
		d["last_error"] = st.LastError
	}
	return d
}

// Status returns a snapshot of this node's liveness state.
func (s *Store) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.PendingLeaves = len(s.pending)
	return st
}

// NodeID returns this node's ID (the generated one if Options.NodeID was
// empty).
func (s *Store) NodeID() string { return s.opts.NodeID }

// Close stops the background loops, removes this node's holds from Redis (a
// clean shutdown: its usernames leave the list unless another node's socket
// holds them, and OnReaped is called for them) and closes the connection. It
// does not touch other nodes' holds, nor the history. Close is safe to call
// more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.cancel()
		s.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, removed, users, err := s.reap(ctx, s.opts.NodeID, "close")
		if err != nil {
			s.closeErr = fmt.Errorf("redisstore: removing this node's sockets on close: %w", err)
		} else if len(removed) > 0 && s.opts.OnReaped != nil {
			s.opts.OnReaped(removed, users)
		}
		if err := s.client.Close(); err != nil && s.closeErr == nil {
			s.closeErr = fmt.Errorf("redisstore: closing the connection: %w", err)
		}
	})
	return s.closeErr
}

// crash stops the store as a killed process would: the loops end and the
// connection closes, but nothing is removed from Redis. For tests of reaping.
func (s *Store) crash() {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.stall()
		_ = s.client.Close()
	})
}

// stall stops the background loops and nothing else, as a node frozen by a
// long pause would be. For tests; Close still works afterwards.
func (s *Store) stall() {
	s.cancel()
	s.wg.Wait()
}

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return ctx.Err()
}

func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, redis.ErrClosed) && s.closed.Load() {
		return store.ErrClosed
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

func toUsers(names []string) []store.User {
	users := make([]store.User, len(names))
	for i, n := range names {
		users[i] = store.User{Username: n}
	}
	return users
}

func decodeHistory(raw []string) ([]store.Message, error) {
	history := make([]store.Message, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal([]byte(r), &history[i]); err != nil {
			return nil, fmt.Errorf("redisstore: history entry %d is not a message: %w", i, err)
		}
	}
	return history, nil
}

func twoLists(res []any) ([]string, []string, error) {
	if len(res) != 2 {
		return nil, nil, fmt.Errorf("redisstore: script returned %d lists, want 2", len(res))
	}
	a, err := toStrings(res[0])
	if err != nil {
		return nil, nil, err
	}
	b, err := toStrings(res[1])
	if err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

func toStrings(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("redisstore: script returned %T, want a list", v)
	}
	out := make([]string, len(list))
	for i, e := range list {
		str, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("redisstore: script list holds %T, want strings", e)
		}
		out[i] = str
	}
	return out, nil
}
