package loadgen

import (
	"container/heap"
	"math/rand/v2"
	"sync"
	"time"
)

type evKind uint8

const (
	evArrive evKind = iota
	evSend
	evChurn
	evLeave
)

// event is one scheduled step of one user.
type event struct {
	at   time.Duration
	kind evKind
	u    *user
}

type eventHeap []event

func (h eventHeap) Len() int           { return len(h) }
func (h eventHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h eventHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)        { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// scheduler is the engine's time-ordered queue of user events. It knows
// no clock: the caller asks what is due at a given time and waits itself.
// Safe for concurrent use.
type scheduler struct {
	mu    sync.Mutex
	queue eventHeap
	wake  chan struct{} // signalled by push, so a waiting loop re-checks the head
}

func newScheduler(initial []event) *scheduler {
	s := &scheduler{queue: eventHeap(initial), wake: make(chan struct{}, 1)}
	heap.Init(&s.queue)
	return s
}

// push adds ev and wakes the dispatch loop.
func (s *scheduler) push(ev event) {
	s.mu.Lock()
	heap.Push(&s.queue, ev)
	s.mu.Unlock()
	s.poke()
}

// poke wakes the dispatch loop without adding anything.
func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// next removes and returns the earliest event if it is due at now;
// otherwise it returns how long until it is. empty reports an empty queue.
func (s *scheduler) next(now time.Duration) (ev event, due bool, wait time.Duration, empty bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return event{}, false, 0, true
	}
	head := s.queue[0]
	if w := head.at - now; w > 0 {
		return event{}, false, w, false
	}
	heap.Pop(&s.queue)
	return head, true, 0, false
}

// initialEvents is every user's plan before anything happens: arrive,
// leave, and for a Churn fraction of the users that send at all one
// abrupt drop at a random moment in the middle three fifths of their
// sending phase. It draws from each user's own random source only, so the
// same seed gives the same schedule.
func initialEvents(users []*user, churn float64) []event {
	out := make([]event, 0, 2*len(users))
	for _, u := range users {
		out = append(out, event{u.arr.At, evArrive, u}, event{u.arr.Leave, evLeave, u})
		if at, ok := churnAt(u.arr, churn, u.rng); ok {
			out = append(out, event{at, evChurn, u})
		}
	}
	return out
}

// churnAt decides whether a user with arrival a drops once, and when.
func churnAt(a Arrival, churn float64, rng *rand.Rand) (time.Duration, bool) {
	if churn <= 0 || rng.Float64() >= churn || a.SendUntil <= a.At {
		return 0, false
	}
	span := a.SendUntil - a.At
	return a.At + span/5 + time.Duration(rng.Int64N(int64(span*3/5)+1)), true
}
