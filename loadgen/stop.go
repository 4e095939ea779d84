package loadgen

import "time"

// Stopping has two deadlines: when dispatching ends (stop), every session
// gets StopTimeout to close gracefully; what is left is then aborted and
// gets StopTimeout again, after which the engine gives up on it rather
// than hang.

// stop ends dispatching; the first reason wins.
func (e *Engine) stop(ended, detail string) {
	e.stopOnce.Do(func() {
		e.outMu.Lock()
		e.outcome = Outcome{Ended: ended, Detail: detail, End: e.now()}
		e.outMu.Unlock()
		close(e.stopCh)
		e.stopCtl()
		e.sched.poke()
	})
}

func (e *Engine) stopping() bool {
	select {
	case <-e.stopCh:
		return true
	default:
		return false
	}
}

// shutdown closes every session (the graceful deadline), aborts what is
// left (the hard deadline), and closes the results channel.
func (e *Engine) shutdown() {
	for _, u := range e.users {
		e.leave(u)
	}
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(e.cfg.StopTimeout):
		e.hardCancel()
		for _, u := range e.users {
			if s := u.current(); s != nil {
				if c := s.liveConn(); c != nil {
					s.aborted.Store(true)
					go c.Abort()
				}
			}
		}
		select {
		case <-done:
		case <-time.After(e.cfg.StopTimeout):
			// Something ignores even an abort: give up on it rather than hang.
			e.outMu.Lock()
			e.outcome.Detail = joinDetail(e.outcome.Detail, "some connections did not close within the stop timeout")
			e.outMu.Unlock()
		}
	}
	e.hardCancel()
	e.outMu.Lock()
	if e.outcome.Ended == EndedCompleted {
		e.outcome.End = e.now()
	}
	e.outMu.Unlock()
	e.sealMu.Lock()
	e.sealed = true
	close(e.out)
	e.sealMu.Unlock()
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
