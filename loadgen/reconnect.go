package loadgen

import "time"

// maxBackoff caps the reconnect backoff (MaxOutage > 0) unless ChurnPause
// is longer, like a Socket.IO client's reconnectionDelayMax.
const maxBackoff = 5 * time.Second

// reconnectAfterDrop schedules a user's return after the server dropped
// its session, as a Socket.IO client would (CONTRACT.md RECON-1): with a
// backoff when riding out outages, else after ChurnPause; only while the
// user is in its sending phase. If the target is gone, the failing
// reconnects confirm it.
func (e *Engine) reconnectAfterDrop(u *user, at time.Duration) {
	if e.cfg.MaxOutage > 0 {
		e.retry(u)
	} else if back := at + e.cfg.ChurnPause; back < u.arr.SendUntil {
		e.sched.push(event{back, evArrive, u})
	}
}

// retry schedules u's next connection attempt after a failed one or a
// drop, when MaxOutage > 0: ChurnPause doubled per failure in a row up to
// maxBackoff (or ChurnPause if longer), each wait drawn from its upper
// half so a crowd that failed together does not retry together; only
// while u is in its sending phase. With MaxOutage 0 it does nothing: a
// failed connect is not retried.
func (e *Engine) retry(u *user) {
	if e.cfg.MaxOutage == 0 || e.stopping() {
		return
	}
	u.mu.Lock()
	d := backoff(e.cfg.ChurnPause, u.failures)
	u.failures++
	d = d/2 + time.Duration(u.rng.Int64N(int64(d/2)+1))
	at := e.now() + d
	ok := !u.leaving && at < u.arr.SendUntil
	u.mu.Unlock()
	if ok {
		e.sched.push(event{at, evArrive, u})
	}
}

// backoff is pause doubled n times, capped at max(maxBackoff, pause).
func backoff(pause time.Duration, n int) time.Duration {
	ceiling := max(maxBackoff, pause)
	d := pause
	for range n {
		if d >= ceiling/2 {
			return ceiling
		}
		d *= 2
	}
	return min(d, ceiling)
}
