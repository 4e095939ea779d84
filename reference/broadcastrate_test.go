package reference

import (
	"testing"
	"time"
)

// Under the rate nothing is refused: a burst of ten (SEC-5) and a steady
// writer alike.
func TestBroadcastRateUnderTheRateRefusesNothing(t *testing.T) {
	clock := &fakeClock{}
	b := newBroadcastRate(10_000, clock.now)
	s := &session{id: "a"}
	for i := range 10 {
		if !b.allow(s, 100) {
			t.Fatalf("burst write %d refused", i)
		}
	}
	for i := range 1000 {
		clock.advance(20 * time.Millisecond) // 5,000 B/s: half the rate
		if !b.allow(s, 100) {
			t.Fatalf("steady write %d refused at half the rate", i)
		}
	}
	if newBroadcastRate(0, clock.now) != nil {
		t.Errorf("rate 0 gives a bound")
	}
}

// At the rate, every writing socket gets an equal share: ten flooders
// asking 100 times the rate cannot starve a socket that writes within its
// share, and the total stays at the rate.
func TestBroadcastRateSharesFairlyUnderAFlood(t *testing.T) {
	clock := &fakeClock{}
	const rate, cost = 1100, 100 // eleven writers: 100 B/s each
	b := newBroadcastRate(rate, clock.now)
	flooders := make([]*session, 10)
	for i := range flooders {
		flooders[i] = &session{id: string(rune('a' + i))}
	}
	normal := &session{id: "normal"}
	accepted := map[*session]int{}
	var total, normalTries int
	const seconds = 60
	for tick := range seconds * 100 { // every 10 ms
		clock.advance(10 * time.Millisecond)
		for _, f := range flooders {
			if b.allow(f, cost) {
				accepted[f]++
				total++
			}
		}
		if tick%200 == 0 { // every 2 s: half its share
			normalTries++
			if b.allow(normal, cost) {
				accepted[normal]++
				total++
			}
		}
	}
	if accepted[normal] != normalTries {
		t.Errorf("the socket within its share had %d of %d writes accepted", accepted[normal], normalTries)
	}
	// One second's worth of the chat's and each new share's window (two
	// seconds of the rate in all) up front, then at most the rate.
	if max := (seconds + 3) * rate / cost; total > max {
		t.Errorf("accepted %d writes in %d s, more than the rate allows (%d)", total, seconds, max)
	}
	if min := seconds * rate / cost * 8 / 10; total < min {
		t.Errorf("accepted only %d writes in %d s: the rate is not used (want at least %d)", total, seconds, min)
	}
	lo, hi := accepted[flooders[0]], accepted[flooders[0]]
	for _, f := range flooders {
		lo, hi = min(lo, accepted[f]), max(hi, accepted[f])
	}
	if hi > 2*lo {
		t.Errorf("flooders' shares range from %d to %d writes: not fair", lo, hi)
	}
}

// A broadcast larger than a share's window still gets through once its
// writer has waited, and a socket that left stops counting.
func TestBroadcastRateLargeWritesAndLeavers(t *testing.T) {
	clock := &fakeClock{}
	b := newBroadcastRate(1000, clock.now)
	a, c := &session{id: "a"}, &session{id: "c"}
	got := 0
	for range 100 {
		clock.advance(100 * time.Millisecond)
		if b.allow(a, 3000) { // three seconds of the whole rate
			got++
		}
	}
	if got < 2 || got > 5 {
		t.Errorf("a 3 s write was accepted %d times in 10 s, want about 3", got)
	}
	b.allow(c, 1)
	b.forget(c)
	b.mu.Lock()
	_, kept := b.shares[c]
	b.mu.Unlock()
	if kept {
		t.Errorf("a forgotten socket keeps its share")
	}
}
