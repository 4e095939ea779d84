package main

import (
	"sync"
	"time"
)

// A command that got as far as parsing its flags leaves its report
// directory whatever ends it. A second signal exits the process without
// waiting for the command to stop gracefully, so the command registers
// "last words" (setLastWords): what to write with the data it has, which
// main runs, bounded, before exiting.
var lastWords struct {
	mu sync.Mutex
	fn func()
}

// setLastWords registers fn for a second signal; the returned function
// unregisters it.
func setLastWords(fn func()) (clear func()) {
	lastWords.mu.Lock()
	lastWords.fn = fn
	lastWords.mu.Unlock()
	return func() {
		lastWords.mu.Lock()
		lastWords.fn = nil
		lastWords.mu.Unlock()
	}
}

// sayLastWords runs the registered last words, waiting at most timeout.
func sayLastWords(timeout time.Duration) {
	lastWords.mu.Lock()
	fn := lastWords.fn
	lastWords.mu.Unlock()
	if fn == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}

// reportOnce writes a run's report directory once: by the command at the
// end of its run, or by its last words, whichever comes first. The other
// call waits for the first one to finish and writes nothing.
type reportOnce struct {
	mu   sync.Mutex
	done bool
}

func (r *reportOnce) write(fn func() error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return nil
	}
	r.done = true
	return fn()
}
