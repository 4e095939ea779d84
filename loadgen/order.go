package loadgen

import (
	"container/heap"
	"time"
)

// TimeOrder hands results on in the order of their times, so that what
// Metrics computes from the order of its input (which interval of the
// timeline a record falls in, how many users were connected at an
// interval's end, the peak) depends on when things happened, not on
// which goroutine reached the results channel first. Engine goroutines
// stamp a result and then send it, so the channel's order differs from
// the times' by scheduling delays: microseconds usually, milliseconds on
// a loaded machine. TimeOrder holds each result until one stamped
// Horizon later has arrived, then releases them sorted by time, ties by
// user then arrival. One user's results keep their arrival order (the
// engine's order, which the accounting needs per session): each is
// sorted at the latest time of its user's results so far, never
// earlier.
//
// That makes a run's figures the same however its records were
// interleaved, as long as none arrived more than Horizon late: one
// process's channel, or the shards' records merged by time
// (loadgen/shard). A result later than that is released at once, in
// arrival order, as Metrics always took them.
type TimeOrder struct {
	horizon time.Duration
	sink    func(Result)
	h       orderHeap
	seq     uint64
	latest  time.Duration
	users   []time.Duration // per user: the latest sort time given so far
}

// OrderHorizon is how long results are held for ordering: far above the
// scheduling delays measured on a loaded machine, and short enough that
// the results held stay a few MB at the generator's highest rates.
const OrderHorizon = time.Second

// NewTimeOrder returns a TimeOrder that releases results to sink.
func NewTimeOrder(horizon time.Duration, sink func(Result)) *TimeOrder {
	return &TimeOrder{horizon: horizon, sink: sink}
}

// Add takes one result and releases those old enough.
func (o *TimeOrder) Add(r Result) {
	o.seq++
	key := r.At
	if u := int(r.User); u >= 0 && u < MaxUsers {
		if u >= len(o.users) {
			o.users = append(o.users, make([]time.Duration, u+1-len(o.users))...)
		}
		key = max(key, o.users[u])
		o.users[u] = key
	}
	heap.Push(&o.h, ordered{r, key, o.seq})
	o.latest = max(o.latest, r.At)
	for len(o.h) > 0 && o.h[0].key <= o.latest-o.horizon {
		o.sink(heap.Pop(&o.h).(ordered).r)
	}
}

// Flush releases everything held, in order.
func (o *TimeOrder) Flush() {
	for len(o.h) > 0 {
		o.sink(heap.Pop(&o.h).(ordered).r)
	}
}

type ordered struct {
	r   Result
	key time.Duration
	seq uint64
}

type orderHeap []ordered

func (h orderHeap) Len() int { return len(h) }
func (h orderHeap) Less(i, j int) bool {
	a, b := &h[i], &h[j]
	if a.key != b.key {
		return a.key < b.key
	}
	if a.r.User != b.r.User {
		return a.r.User < b.r.User
	}
	return a.seq < b.seq
}
func (h orderHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *orderHeap) Push(x any)   { *h = append(*h, x.(ordered)) }
func (h *orderHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = ordered{}
	*h = old[:len(old)-1]
	return x
}
