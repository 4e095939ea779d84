package reference

import (
	"context"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// The shared output budget. The slow-reader guard (slowreader.go) bounds
// each connection, but nothing bounded their sum: 150 clients that flood
// and never read held 8 MiB each, 1.57 GB of RSS in all (issue 13). The
// budget counts the bytes every connection holds unwritten, in one total;
// when a packet takes the total over Config.OutputBudget, the connections
// holding the most are closed, largest first, until the total is back
// under it. A client that reads keeps its queue short and is never the
// largest for long; one that stopped reading is.
//
// The bound is approximate by one enforcement pass: packets queued by
// other goroutines while one pass runs are counted, and the next packet
// queued anywhere starts the next pass.

// outputBudget is the total of unwritten bytes across connections.
type outputBudget struct {
	limit int64
	total atomic.Int64
	drops atomic.Int64

	readers   sync.Map // *slowReader → struct{}: every open connection
	enforcing sync.Mutex
}

func newOutputBudget(limit int64) *outputBudget {
	if limit <= 0 {
		return nil
	}
	return &outputBudget{limit: limit}
}

// add changes the total by n bytes and reports whether it is now over the
// limit. A nil budget is never over.
func (b *outputBudget) add(n int64) bool {
	if b == nil || n == 0 {
		return false
	}
	return b.total.Add(n) > b.limit
}

func (b *outputBudget) register(r *slowReader) {
	if b != nil {
		b.readers.Store(r, struct{}{})
	}
}

func (b *outputBudget) unregister(r *slowReader) {
	if b != nil {
		b.readers.Delete(r)
	}
}

// enforce closes the connections holding the most unwritten bytes until
// the total is within the limit. Only one pass runs at a time; a caller
// that finds one running leaves the work to it.
func (b *outputBudget) enforce() {
	if b == nil || !b.enforcing.TryLock() {
		return
	}
	defer b.enforcing.Unlock()
	for b.total.Load() > b.limit {
		var worst *slowReader
		var most int64
		b.readers.Range(func(k, _ any) bool {
			if r := k.(*slowReader); r.held() > most {
				worst, most = r, r.held()
			}
			return true
		})
		if worst == nil {
			return
		}
		if worst.dropForBudget() {
			b.drops.Add(1)
		}
	}
}

// reclaimer hands the heap that dropped connections held back to the
// operating system soon after a large drop. Go's background scavenger
// returns free pages slowly (minutes for a gigabyte), so RSS would stay
// at the attack's peak long after the attack; debug.FreeOSMemory does it
// at once, at the price of one full collection. It runs at most once per
// reclaimDelay, and only after at least reclaimMin bytes were dropped.
type reclaimer struct {
	mu      sync.Mutex
	dropped int64
	timer   *time.Timer
	stopped bool
	runs    atomic.Int64
}

const (
	// reclaimMin is how many dropped bytes make a reclaim worth a full
	// collection.
	reclaimMin = 32 << 20
	// reclaimDelay leaves the dropped connections time to close and
	// release their buffers before the collection.
	reclaimDelay = 2 * time.Second
)

// note records n bytes released by a dropped or closed connection.
func (c *reclaimer) note(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropped += n
	if c.stopped || c.timer != nil || c.dropped < reclaimMin {
		return
	}
	c.timer = time.AfterFunc(reclaimDelay, func() {
		debug.FreeOSMemory()
		c.runs.Add(1)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.dropped, c.timer = 0, nil
	})
}

// watch returns free heap to the OS whatever freed it, until ctx ends:
// every reclaimDelay it reads how much of the heap is free and not yet
// returned, and reclaims when that is at least reclaimMin and more than
// half of what the heap holds live. The drops note() hears are only the
// bytes a connection owned: a flood's memory is mostly garbage of shared
// broadcasts and decoded input, which no drop accounts for (measured in
// HARDENING.md: 780 MB of heap in use during the flood, 50 MB after it,
// and RSS still 854 MB three minutes later without this).
func (c *reclaimer) watch(ctx context.Context) {
	samples := []rtmetrics.Sample{{Name: "/memory/classes/heap/free:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	tick := time.NewTicker(reclaimDelay)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rtmetrics.Read(samples)
		if samples[0].Value.Kind() != rtmetrics.KindUint64 || samples[1].Value.Kind() != rtmetrics.KindUint64 {
			return // not reported by this runtime
		}
		free, live := samples[0].Value.Uint64(), samples[1].Value.Uint64()
		c.mu.Lock()
		run := !c.stopped && c.timer == nil && free >= reclaimMin && free > live/2
		c.mu.Unlock()
		if run {
			debug.FreeOSMemory()
			c.runs.Add(1)
		}
	}
}

// stop cancels a pending reclaim (the server is shutting down).
func (c *reclaimer) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}
