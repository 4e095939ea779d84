package sioclient

import (
	"context"
	"sync"
)

// eventQueue holds events for Next in receive order, bounded by limit
// events and maxBytes bytes (eventSize). It allocates nothing while empty,
// which keeps idle connections small.
type eventQueue struct {
	mu       sync.Mutex
	items    []Event
	head     int
	limit    int
	maxBytes int
	bytes    int
	notify   chan struct{} // capacity 1: "something was pushed"
}

func (q *eventQueue) init(limit, maxBytes int) {
	q.limit, q.maxBytes = limit, maxBytes
	q.notify = make(chan struct{}, 1)
}

// eventSize is what an event counts against MaxQueuedBytes.
func eventSize(ev Event) int { return len(ev.Name) + len(ev.Args) }

// push appends ev; false means the queue is full.
func (q *eventQueue) push(ev Event) bool {
	q.mu.Lock()
	if len(q.items)-q.head >= q.limit || q.bytes+eventSize(ev) > q.maxBytes {
		q.mu.Unlock()
		return false
	}
	q.bytes += eventSize(ev)
	if q.head > 0 && q.head >= len(q.items)/2 {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
	q.items = append(q.items, ev)
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *eventQueue) signal() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *eventQueue) pop() (Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head >= len(q.items) {
		return Event{}, false
	}
	ev := q.items[q.head]
	q.bytes -= eventSize(ev)
	q.items[q.head] = Event{}
	q.head++
	if q.head == len(q.items) {
		q.items = q.items[:0]
		q.head = 0
	} else {
		q.signal() // wake another waiting Next
	}
	return ev, true
}

// next waits for an event; once done is closed and the queue is drained it
// returns endErr().
func (q *eventQueue) next(ctx context.Context, done <-chan struct{}, endErr func() error) (Event, error) {
	for {
		if ev, ok := q.pop(); ok {
			return ev, nil
		}
		select {
		case <-q.notify:
		case <-done:
			if ev, ok := q.pop(); ok {
				return ev, nil
			}
			return Event{}, endErr()
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}
