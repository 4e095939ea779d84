package loadgen

import (
	"runtime"
	"time"
)

// ticks emits the clock probe: how late a timer fires is the generator's
// own scheduling lag. Each tick also carries the process's goroutine
// count, so consumers of Results never sample the process themselves.
func (e *Engine) ticks() {
	iv := e.cfg.TickInterval
	next := iv
	t := time.NewTimer(iv)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-e.stopCh:
			return
		}
		now := e.now()
		e.emit(Result{Kind: Tick, Intended: next, At: now, Goroutines: int32(runtime.NumGoroutine())})
		for next <= now {
			next += iv
		}
		t.Reset(next - e.now())
	}
}
