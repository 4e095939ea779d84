// Package lag measures how starved of CPU the harness itself is: how late
// a ticking timer fires. On a busy machine (2 cores shared with other
// work, the race detector) the harness can fall seconds behind, and a
// verdict must never take its own slowness for the server's: the
// conformance suite extends a wait by the time lost (spec/framework), and
// exploration does not judge a run whose harness stalled for long enough
// to miss a heartbeat (spec/explore).
package lag

import (
	"context"
	"sync"
	"time"
)

// tick is how often the lag monitor wakes: short enough to see a
// starved process, long enough to cost nothing.
const tick = 20 * time.Millisecond

// keep bounds the samples kept: waits are seconds long, so a few
// minutes of history is plenty.
const keep = 8192

type sample struct {
	at   time.Time
	late time.Duration
}

// Monitor records how late a ticking timer fires: the time the process
// could not run. Only late ticks are stored.
type Monitor struct {
	mu      sync.Mutex
	samples []sample // ring of the last keep late ticks
	next    int
}

// Start starts a Monitor that runs until ctx ends.
func Start(ctx context.Context) *Monitor {
	m := &Monitor{}
	go m.loop(ctx)
	return m
}

func (m *Monitor) loop(ctx context.Context) {
	t := time.NewTimer(tick)
	defer t.Stop()
	for {
		start := time.Now()
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			// More than a tick late: the goroutine could not run.
			if late := now.Sub(start) - tick; late > tick {
				m.add(sample{at: now, late: late})
			}
			t.Reset(tick)
		}
	}
}

func (m *Monitor) add(s sample) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.samples) < keep {
		m.samples = append(m.samples, s)
		return
	}
	m.samples[m.next] = s
	m.next = (m.next + 1) % keep
}

// During returns how much of [from, to] the process was starved (the sum
// of the late ticks that ended in it).
func (m *Monitor) During(from, to time.Time) time.Duration {
	var sum time.Duration
	m.each(from, to, func(s sample) { sum += min(s.late, s.at.Sub(from)) })
	return sum
}

// Longest returns the longest single stall that ended in [from, to]: a
// stretch in which the process could not run at all (a heartbeat answer
// due then went out that late).
func (m *Monitor) Longest(from, to time.Time) time.Duration {
	var longest time.Duration
	m.each(from, to, func(s sample) { longest = max(longest, s.late) })
	return longest
}

// each calls f with every late tick that ended in [from, to]; a nil
// Monitor has none.
func (m *Monitor) each(from, to time.Time, f func(sample)) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.samples {
		if s.at.After(from) && !s.at.After(to) {
			f(s)
		}
	}
}
