package reference

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	engine "github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
)

// The slow-reader guard. Measured in zishang520's engine v3.0.6: every
// packet for a connection is pushed onto that connection's unbounded
// write buffer (socket.go sendPacket), and a broadcast gives every socket
// its own copy of the encoded packet (socket/client.go WriteToEngine
// clones). The WebSocket transport writes one batch at a time on its own
// goroutine with no write deadline (transports/websocket.go), and a
// polling connection keeps everything until its next GET. So a client
// that stops reading blocks no one else (each connection has its own
// writer), but it pins a copy of every broadcast, up to a whole history
// each, until the heartbeat drops it, and a client that keeps sending
// pongs without reading is never dropped at all.
//
// The guard counts the bytes each connection has been handed and not yet
// written (created since the last completed transport write), and closes
// the connection when they exceed Config.SlowReaderLimit, or when one
// write batch has been in flight longer than Config.SlowReaderTimeout.
// Both checks run whenever a packet is queued for the connection, which
// includes the heartbeat's ping, so a stalled connection is checked at
// least every PingInterval.
//
// Every tracker also reports its unwritten bytes to the server's shared
// output budget (outputbudget.go), which bounds their sum: the memory
// they hold. On one node a broadcast is not copied per connection
// (sharedadapter, sharedws): its receivers read one copy. Its bytes still
// count toward each connection's own limit, since a connection that far
// behind is a slow reader, but not toward the budget, which would count
// one copy as many. What the shared copies hold together stays bounded
// anyway: every connection receives the same broadcasts in the same
// order, so each one's unwritten broadcasts are the newest ones, and all
// of them together are the newest SlowReaderLimit bytes of broadcasts,
// once. (Measured: 200 users on a CPU-starved generator had 60 healthy
// connections dropped by the budget, each holding 2–6 MB it did not own.)

// slowReader tracks one Engine.IO connection's unwritten bytes.
type slowReader struct {
	limit   int64
	timeout time.Duration
	now     func() time.Time
	drop    func(reason string)
	// budget is the shared bound (nil: none). released, if set, hears how
	// many bytes a dropped connection gives back.
	budget   *outputBudget
	released func(n int64)

	mu       sync.Mutex
	queued   int64 // bytes created since the last flush
	inflight int64 // bytes flushed, not yet reported written
	// queuedOwn and inflightOwn are the parts of queued and inflight
	// this connection holds alone (not shared broadcasts): what it adds
	// to the budget.
	queuedOwn   int64
	inflightOwn int64
	queuedN     int       // packets created since the last flush
	inflightN   int       // packets flushed, not yet reported written
	since       time.Time // when the batch in flight was flushed
	dropped     bool
	// counted is what this connection adds to the budget's total:
	// queued+inflight while it is open, 0 once dropped or closed (its
	// buffers are about to be freed).
	counted  int64
	idleWait []chan struct{}
}

// packetSize is the size of a queued packet's data, when it knows it.
func packetSize(p *packet.Packet) int64 {
	if p == nil || p.Data == nil {
		return 0
	}
	if l, ok := p.Data.(interface{ Len() int }); ok {
		return int64(l.Len())
	}
	return 0
}

// isBroadcast: the packet is a broadcast's (the adapter gave it the
// broadcast's pre-encoded WebSocket frame).
func isBroadcast(p *packet.Packet) bool {
	return p != nil && p.Options != nil && p.Options.WsPreEncodedFrame != nil
}

// created records a packet queued for the connection and applies the
// bounds. A shared packet (a broadcast whose bytes every receiver reads
// from one copy) counts toward the connection's limit, not its budget.
func (r *slowReader) created(size int64, shared bool) {
	r.mu.Lock()
	r.queued += size
	r.queuedN++
	over := false
	if !shared {
		r.queuedOwn += size
		if !r.dropped {
			r.counted += size
			over = r.budget.add(size)
		}
	}
	pending := r.queued + r.inflight
	stalled := r.inflightN > 0 && r.timeout > 0 && r.now().Sub(r.since) > r.timeout
	reason := ""
	switch {
	case r.dropped:
	case r.limit > 0 && pending > r.limit:
		reason = "slow reader: unwritten bytes over the limit"
	case stalled:
		reason = "slow reader: a write stalled past the timeout"
	}
	freed := int64(0)
	if reason != "" {
		freed = r.release()
	}
	r.mu.Unlock()
	if reason != "" {
		r.dropAndRelease(reason, freed)
		return
	}
	if over {
		r.budget.enforce()
	}
}

// release marks the connection dropped and takes its bytes out of the
// budget; r.mu is held. It returns the bytes released.
func (r *slowReader) release() int64 {
	r.dropped = true
	n := r.counted
	r.budget.add(-n)
	r.counted = 0
	return n
}

// dropAndRelease closes the connection (r.drop) and tells the reclaimer.
func (r *slowReader) dropAndRelease(reason string, freed int64) {
	r.drop(reason)
	if r.released != nil {
		r.released(freed)
	}
}

// held returns the bytes this connection counts against the budget.
func (r *slowReader) held() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counted
}

// dropForBudget closes the connection because the budget is exceeded and
// it holds the most. It reports false if it was already dropped.
func (r *slowReader) dropForBudget() bool {
	r.mu.Lock()
	if r.dropped {
		r.mu.Unlock()
		return false
	}
	freed := r.release()
	r.mu.Unlock()
	r.dropAndRelease("slow reader: the unwritten output of all connections is over the shared budget, and this connection held the most", freed)
	return true
}

// flushed records that the buffer went to the transport as one batch.
func (r *slowReader) flushed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight += r.queued
	r.inflightN += r.queuedN
	r.inflightOwn += r.queuedOwn
	r.queued, r.queuedN, r.queuedOwn = 0, 0, 0
	r.since = r.now()
}

// written records that the transport finished writing its batch. A
// transport writes one batch at a time, so everything flushed so far has
// gone.
func (r *slowReader) written() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.dropped {
		r.counted -= r.inflightOwn
		r.budget.add(-r.inflightOwn)
	}
	r.inflight, r.inflightN, r.inflightOwn = 0, 0, 0
	if r.queuedN == 0 {
		for _, w := range r.idleWait {
			close(w)
		}
		r.idleWait = nil
	}
}

// closed releases every idle waiter (a closed connection writes nothing
// more, so waiting for it would only hold the waiter until its timeout)
// and takes the connection's bytes out of the budget.
func (r *slowReader) closed() {
	r.mu.Lock()
	for _, w := range r.idleWait {
		close(w)
	}
	r.idleWait = nil
	freed := int64(0)
	if !r.dropped {
		freed = r.release()
	}
	r.mu.Unlock()
	// A client that closes while it holds a large queue (an attacker
	// giving up) frees as much memory as a drop would.
	if freed > 0 && r.released != nil {
		r.released(freed)
	}
}

// idle returns a channel closed once every packet queued so far has been
// written, or the connection closed (at once if nothing is queued).
func (r *slowReader) idle() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	if r.dropped || (r.queuedN == 0 && r.inflightN == 0) {
		close(ch)
	} else {
		r.idleWait = append(r.idleWait, ch)
	}
	return ch
}

// isDropped reports whether the guard or the budget dropped the
// connection, or it closed.
func (r *slowReader) isDropped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

// pending returns the bytes the connection holds unwritten.
func (r *slowReader) pending() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.queued + r.inflight
}

// watchSlowReader installs the guard on a new Engine.IO connection. It is
// an engine "connection" listener.
func (s *Server) watchSlowReader(args ...any) {
	conn, ok := firstArg[engine.Socket](args)
	if !ok {
		return
	}
	// The tracker runs even with both bounds off: refusePacket uses it to
	// see a chatError written before the library closes the connection.
	id := conn.Id()
	r := &slowReader{
		limit:    s.cfg.SlowReaderLimit,
		timeout:  s.cfg.SlowReaderTimeout,
		now:      s.now,
		budget:   s.budget,
		released: s.reclaim.note,
	}
	r.drop = func(reason string) {
		s.log.Info("dropping slow reader", "engine_id", id, "ip", hostOf(conn.RemoteAddress()), "reason", reason, "pending_bytes", r.pending())
		s.slowDrops.Add(1)
		// Not on this goroutine: it may be inside a broadcast that holds
		// the library's client lock and chatMu.
		go conn.Close(true)
	}
	watch := func(t transports.Transport) {
		if t != nil {
			t.On("drain", func(...any) { r.written() })
		}
	}
	watch(conn.Transport())
	conn.On("upgrade", func(args ...any) {
		if t, ok := firstArg[transports.Transport](args); ok {
			watch(t)
		}
	})
	conn.On("packetCreate", func(args ...any) {
		p, _ := firstArg[*packet.Packet](args)
		r.created(packetSize(p), s.sharedBroadcasts && isBroadcast(p))
	})
	conn.On("flush", func(...any) { r.flushed() })
	s.writers.Store(id, r)
	s.budget.register(r)
	conn.Once("close", func(...any) {
		s.writers.Delete(id)
		s.budget.unregister(r)
		r.closed()
	})
}

// registerSlowReaderMetric exposes the count of connections the guard
// dropped.
func (s *Server) registerSlowReaderMetric(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "chatspec_reference_slow_readers_dropped_total",
			Help: "Connections closed because they did not read fast enough (Config.SlowReaderLimit, Config.SlowReaderTimeout, Config.OutputBudget).",
		}, func() float64 { return float64(s.slowDrops.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "chatspec_reference_output_budget_drops_total",
			Help: "Connections closed because the unwritten output of all connections passed Config.OutputBudget (they held the most); also counted in slow_readers_dropped_total.",
		}, func() float64 {
			if s.budget == nil {
				return 0
			}
			return float64(s.budget.drops.Load())
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "chatspec_reference_unwritten_bytes",
			Help: "Bytes queued for all connections and not yet written (what Config.OutputBudget bounds; 0 when the budget is off).",
		}, func() float64 {
			if s.budget == nil {
				return 0
			}
			return float64(s.budget.total.Load())
		}),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
