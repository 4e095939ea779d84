package reference

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/chatspec/chatspec/reference/store"
)

// UsersRemoved tells every socket, on every node, that the user list
// changed without a leave of this server's own: a shared store removed the
// sockets of a node that died, retried a leave that had failed, or removed
// this node's sockets while closing. It broadcasts `disconnected` with
// users, the list right after the change. Its signature is
// redisstore.Options.OnReaped's.
//
// It returns at once: the broadcast runs on a goroutine of its own, in call
// order. A store calls it from inside its own locks, and broadcasting takes
// chatMu, which a handler waiting on that store may hold.
//
// On a store with a change feed it does nothing: the feed reports such
// changes.
func (s *Server) UsersRemoved(removed, users []store.User) {
	if s.feed != nil {
		return
	}
	s.announce(announcement{event: EventDisconnected, users: users, changed: len(removed)})
}

// UsersRestored tells every socket, on every node, that usernames came back
// to the list without a join: a shared store registered this node's sockets
// again after Redis lost its data. It broadcasts `joined` with users, the
// list right after. Its signature is redisstore.Options.OnRestored's; it
// returns at once, like UsersRemoved, and does nothing on a store with a
// change feed.
func (s *Server) UsersRestored(added, users []store.User) {
	if s.feed != nil {
		return
	}
	s.announce(announcement{event: EventJoined, users: users, changed: len(added)})
}

// announcement is one list change the store made in the background.
type announcement struct {
	event   string
	users   []store.User
	changed int
}

// announcer runs announcements one at a time, in order, on a goroutine
// that exists only while some are queued.
type announcer struct {
	queue   []announcement
	running bool
}

func (s *Server) announce(a announcement) {
	if a.users == nil {
		a.users = []store.User{}
	}
	s.annMu.Lock()
	s.ann.queue = append(s.ann.queue, a)
	if s.ann.running {
		s.annMu.Unlock()
		return
	}
	s.ann.running = true
	s.annMu.Unlock()
	// Shutdown waits for pending work, so an announcement made while the
	// store closes still goes out before the adapter is closed.
	s.pending.add()
	go func() {
		defer s.pending.done()
		for {
			s.annMu.Lock()
			if len(s.ann.queue) == 0 {
				s.ann.running = false
				s.annMu.Unlock()
				return
			}
			next := s.ann.queue[0]
			s.ann.queue = s.ann.queue[1:]
			s.annMu.Unlock()
			s.deliverAnnouncement(next)
		}
	}()
}

func (s *Server) deliverAnnouncement(a announcement) {
	s.chatMu.Lock()
	defer s.chatMu.Unlock()
	s.m.users.Set(float64(len(a.users)))
	s.log.Info("user list changed by the store", "event", a.event, "changed", a.changed, "users", len(a.users))
	if err := s.io.To(everyone).Emit(a.event, map[string]any{"connectedUserList": a.users}); err != nil {
		s.log.Error("broadcasting a store change", "event", a.event, "err", err)
	}
}

// storeDetail is what a shared store says about itself for /healthz
// (redisstore: node ID, liveness, last error); nil for the memory store.
func (s *Server) storeDetail() any {
	if d, ok := s.store.(store.HealthReporter); ok {
		return d.HealthDetail()
	}
	return nil
}

// maxStoreProbe bounds the store ping a /metrics scrape makes, so that a
// Redis outage cannot stall the scrape for StoreTimeout.
const maxStoreProbe = time.Second

// registerStoreMetrics adds chatspec_reference_store_up: 1 while the store
// answers a ping, 0 while not (a remote store that lost Redis). It is
// measured at scrape time, so it is never stale.
func (s *Server) registerStoreMetrics(reg prometheus.Registerer) error {
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "chatspec_reference_store_up",
		Help: "1 if the chat-state store (memory or Redis) answered a ping during this scrape, else 0.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(s.ctx, min(s.cfg.StoreTimeout, maxStoreProbe))
		defer cancel()
		if err := s.pingStore(ctx); err != nil {
			return 0
		}
		return 1
	})
	if err := reg.Register(up); err != nil {
		return fmt.Errorf("registering chatspec_reference_store_up: %w", err)
	}
	return nil
}

// # Ordering across nodes
//
// On one node, chatMu makes each change and its broadcast one step, so
// every socket sees the changes in one order (HIST-1, USER-2). Across
// nodes a lock is not enough: node A's broadcast of history [..a] and node
// B's of [..a,b] reach a third node's sockets by separate paths, in either
// order, so a client could get [..a,b] and then [..a], a list that lacks a
// message it has already seen (the suite's HIST-2 caught exactly that,
// against two nodes sharing Redis through the Socket.IO adapter alone).
//
// A store that implements store.ChangeFeed fixes it with a single, totally
// ordered change feed: the store records each change, with the lists right
// after it, in the same atomic step that makes it (redisstore: a Redis
// stream written by the change's own Lua script), and every node's server
// subscribes to the feed (New) and receives it in that one order through
// applyChange. A server with a feed never broadcasts from its handlers:
// applyChange sends each change to the
// server's own sockets only (io.Local), so every client of every node
// receives the same sequence of lists. A handler waits until the feed has
// delivered its own change before it acknowledges, so a writer gets its
// messageWritten before its ack, and a joiner gets `connected` at its
// join's place in the sequence: changes before it may still reach the
// joiner (as to any unjoined socket, JOIN-4), none after it come first.

// feedState is the server's side of a store's change feed: the store, and
// this node's handlers that wait for their own change.
type feedState struct {
	store   store.ChangeFeed
	mu      sync.Mutex
	waiting map[string]*feedWaiter // by socket ID; a socket handles one event at a time
}

type feedWaiter struct {
	sess *session
	done chan struct{}
}

// expectChange registers sess's next change before the store call that
// makes it, so that the feed cannot deliver it unnoticed. It returns nil
// without a feed.
func (s *Server) expectChange(sess *session) *feedWaiter {
	if s.feed == nil {
		return nil
	}
	w := &feedWaiter{sess: sess, done: make(chan struct{})}
	s.feed.mu.Lock()
	s.feed.waiting[sess.id] = w
	s.feed.mu.Unlock()
	return w
}

// take removes and returns the waiter of socketID, if w is still current.
func (f *feedState) take(socketID string, w *feedWaiter) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cur, ok := f.waiting[socketID]; ok && (w == nil || cur == w) {
		delete(f.waiting, socketID)
		return true
	}
	return false
}

// awaitChange waits until the feed has delivered w's change. If it does
// not within StoreTimeout (the feed is cut off from Redis), it gives up
// and runs fallback instead, so that the socket still gets what concerns
// it; the feed's late delivery then skips the socket's own part.
func (s *Server) awaitChange(w *feedWaiter, fallback func()) {
	if w == nil {
		return
	}
	t := time.NewTimer(s.cfg.StoreTimeout)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
		if s.feed.take(w.sess.id, w) {
			s.log.Error("the change feed did not deliver this socket's change in time; answering it directly",
				"sid", w.sess.id, "timeout", s.cfg.StoreTimeout)
			if fallback != nil {
				fallback()
			}
			return
		}
		<-w.done // applyChange took it just now and is finishing
	}
}

// dropChange forgets w after its store call failed.
func (s *Server) dropChange(w *feedWaiter) {
	if w != nil {
		s.feed.take(w.sess.id, w)
	}
}

// appendFrom appends m for sess, naming the socket as the change's origin
// on a store with a change feed, so that applyChange finds its waiter.
func (s *Server) appendFrom(ctx context.Context, sess *session, m store.Message) ([]store.Message, error) {
	if s.feed != nil {
		return s.feed.store.AppendFrom(ctx, m, sess.id)
	}
	return s.store.Append(ctx, m)
}

// applyChange sends one change of the feed to this server's own sockets.
// The store calls it for every change, in feed order, from one goroutine
// (store.ChangeFeed.Subscribe).
func (s *Server) applyChange(c store.Change) {
	var w *feedWaiter
	if c.SocketID != "" && (c.Kind == store.ChangeJoin || c.Kind == store.ChangeAppend) {
		s.feed.mu.Lock()
		if w = s.feed.waiting[c.SocketID]; w != nil {
			delete(s.feed.waiting, c.SocketID)
		}
		s.feed.mu.Unlock()
	}
	users := c.Users
	if users == nil {
		users = []store.User{}
	}
	local := s.io.Local().To(everyone)
	var err error
	switch c.Kind {
	case store.ChangeJoin:
		s.m.users.Set(float64(len(users)))
		// As in handleConnecting: joined to everyone else, then connected
		// to the joiner, if it is ours.
		err = local.Except(socket.Room(c.SocketID)).Emit(EventJoined, map[string]any{"connectedUserList": users})
		if w != nil {
			history := c.History
			if history == nil {
				history = []store.Message{}
			}
			s.emit(w.sess, EventConnected, map[string]any{"connectedUserList": users, "messagesList": history})
		}
	case store.ChangeAppend:
		history := c.History
		if history == nil {
			history = []store.Message{}
		}
		recipients := s.io.Sockets().Sockets().Len()
		err = local.Emit(EventMessageWritten, map[string]any{"messagesList": history})
		s.m.deliveries.Add(float64(recipients))
	case store.ChangeLeave:
		s.m.users.Set(float64(len(users)))
		if c.Changed { // USER-4: say nothing while another socket holds it
			err = local.Emit(EventDisconnected, map[string]any{"connectedUserList": users})
		}
	case store.ChangeRemoved:
		s.m.users.Set(float64(len(users)))
		s.log.Info("users of another node removed from the list", "users", len(users))
		err = local.Emit(EventDisconnected, map[string]any{"connectedUserList": users})
	case store.ChangeRestored:
		s.m.users.Set(float64(len(users)))
		s.log.Info("users listed again after Redis lost them", "users", len(users))
		err = local.Emit(EventJoined, map[string]any{"connectedUserList": users})
	default:
		s.log.Error("unknown change kind in the feed; ignored", "kind", c.Kind)
	}
	if err != nil {
		s.log.Error("sending a change to this node's sockets", "kind", c.Kind, "err", err)
	}
	if w != nil {
		close(w.done)
	}
}
