package loadgen

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"sync"
	"time"
)

// Outage is one period during which a target refused TCP connections:
// from the first of two failed probes in a row to the first probe that
// succeeded again.
type Outage struct {
	// Target is the target's URL, as Dial gave it.
	Target string
	// Start is the first failed probe, since the run's start.
	Start time.Duration
	// End is the first successful probe after it; valid when Ended.
	End time.Duration
	// Ended is false when the target was still down when the run ended.
	Ended bool
}

// Probe timing: two failed TCP connects probeConfirm apart confirm an
// outage; a target known to be down is probed every probeEvery (bounded:
// one dial in flight per target), which is also the resolution of an
// outage's end.
const (
	probeConfirm = 200 * time.Millisecond
	probeEvery   = 100 * time.Millisecond
	probeTimeout = time.Second
)

// probeState is the probe state of one distinct target URL.
type probeState struct {
	url  string
	addr string // host:port to probe; "" when the URL cannot be parsed

	mu      sync.Mutex
	probing bool    // a probe goroutine runs (while down, until it is up)
	down    bool    // an outage is confirmed and open
	outage  int     // index of the open outage in targetMonitor.outages
	waiters []*user // users waiting for the target to come back
}

// targetMonitor knows the run's distinct targets, which of them are down,
// and the outages so far.
type targetMonitor struct {
	targets []*probeState
	byURL   map[string]int

	mu      sync.Mutex
	outages []Outage
}

func newTargetMonitor() *targetMonitor { return &targetMonitor{byURL: map[string]int{}} }

// add returns the index of rawURL's target, adding it when new.
func (m *targetMonitor) add(rawURL string) int {
	if i, ok := m.byURL[rawURL]; ok {
		return i
	}
	i := len(m.targets)
	m.byURL[rawURL] = i
	t := &probeState{url: rawURL}
	if hp, err := hostPort(rawURL); err == nil {
		t.addr = hp
	}
	m.targets = append(m.targets, t)
	return i
}

// list returns the outages so far, in the order they were confirmed.
func (m *targetMonitor) list() []Outage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.outages)
}

// opened records that t went down at start.
func (m *targetMonitor) opened(t *probeState, start time.Duration) {
	m.mu.Lock()
	idx := len(m.outages)
	m.outages = append(m.outages, Outage{Target: t.url, Start: start})
	m.mu.Unlock()
	t.mu.Lock()
	t.down, t.outage = true, idx
	t.mu.Unlock()
}

// closed ends t's open outage at `at`, if any, and returns the users who
// waited for it.
func (m *targetMonitor) closed(t *probeState, at time.Duration) (waiters []*user, was bool) {
	t.mu.Lock()
	if !t.down {
		t.mu.Unlock()
		return nil, false
	}
	t.down = false
	idx, waiters := t.outage, t.waiters
	t.waiters = nil
	t.mu.Unlock()
	m.mu.Lock()
	m.outages[idx].End, m.outages[idx].Ended = at, true
	m.mu.Unlock()
	return waiters, true
}

// park holds back a connection attempt of u while its target is known to
// be down; it reports whether u was parked.
func (m *targetMonitor) park(u *user) bool {
	t := m.targets[u.target]
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.down {
		return false
	}
	t.waiters = append(t.waiters, u)
	return true
}

// suspect checks whether the user's target still accepts TCP
// connections, one probe goroutine per target at a time. Two failed
// probes in a row confirm an outage: with MaxOutage 0 it ends the run as
// target_down; otherwise it is recorded and the target is probed until it
// accepts connections again or has been down longer than MaxOutage.
func (e *Engine) suspect(u *user) {
	if e.stopping() {
		return
	}
	t := e.mon.targets[u.target]
	t.mu.Lock()
	if t.probing || t.addr == "" {
		t.mu.Unlock()
		return
	}
	t.probing = true
	t.mu.Unlock()
	e.wg.Add(1)
	go e.probe(t)
}

func (e *Engine) probe(t *probeState) {
	defer e.wg.Done()
	defer func() {
		t.mu.Lock()
		t.probing = false
		t.mu.Unlock()
	}()
	fails := 0
	var first time.Duration // the first failed probe of this series
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		at := e.now()
		d := net.Dialer{Timeout: probeTimeout}
		c, err := d.DialContext(e.stopCtx, "tcp", t.addr)
		if e.stopping() {
			if c != nil {
				c.Close()
			}
			return
		}
		if err == nil {
			c.Close()
			e.targetUp(t, at)
			return
		}
		if e.stopAtLocalLimit(err) {
			return // the probe could not open a socket: no news of the target
		}
		if fails++; fails == 1 {
			first = at
		}
		if fails == 2 {
			e.mon.opened(t, first)
			if e.cfg.MaxOutage == 0 {
				e.stop(EndedTargetDown, fmt.Sprintf("target %s stopped accepting connections: %v", t.url, err))
				return
			}
		}
		if down := e.now() - first; fails >= 2 && down > e.cfg.MaxOutage {
			e.stop(EndedTargetDown, fmt.Sprintf("target %s down for %v, longer than the allowed outage (max outage %v): %v",
				t.url, down.Round(time.Millisecond), e.cfg.MaxOutage, err))
			return
		}
		wait := probeEvery
		if fails < 2 {
			wait = probeConfirm
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-e.stopCh:
			return
		}
	}
}

// targetUp closes t's open outage, if any, at `at` and lets the users who
// waited for t reconnect, spread over ChurnPause so they do not all
// arrive in the same instant.
func (e *Engine) targetUp(t *probeState, at time.Duration) {
	waiters, was := e.mon.closed(t, at)
	if !was {
		return
	}
	now := e.now()
	for _, u := range waiters {
		u.mu.Lock()
		u.failures = 0
		back := now + time.Duration(u.rng.Float64()*float64(e.cfg.ChurnPause))
		ok := !u.leaving && back < u.arr.SendUntil
		u.mu.Unlock()
		if ok {
			e.sched.push(event{back, evArrive, u})
		}
	}
}

func hostPort(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Port() != "" {
		return u.Host, nil
	}
	switch u.Scheme {
	case "https", "wss":
		return net.JoinHostPort(u.Hostname(), "443"), nil
	}
	return net.JoinHostPort(u.Hostname(), "80"), nil
}
