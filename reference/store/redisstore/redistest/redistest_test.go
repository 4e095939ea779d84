package redistest

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB that records Fatalf and Skipf and stops the
// calling goroutine as the real ones do.
type recorder struct {
	testing.TB
	mu      sync.Mutex
	fatal   string
	skipped string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatal = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}
func (r *recorder) Skipf(format string, args ...any) {
	r.mu.Lock()
	r.skipped = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func startWith(tb *recorder) {
	var wg sync.WaitGroup
	wg.Go(func() { Start(tb) })
	wg.Wait()
}

// TestMissingServerFailsLoudly: without redis-server on PATH, Start fails
// the test naming the package to install, unless the skip variable is set.
func TestMissingServerFailsLoudly(t *testing.T) {
	t.Setenv("PATH", t.TempDir())

	t.Setenv(SkipEnv, "")
	r := &recorder{TB: t}
	startWith(r)
	if r.skipped != "" || !strings.Contains(r.fatal, "apt-get install -y redis-server") {
		t.Errorf("without redis-server: fatal %q, skipped %q; want a failure naming the package", r.fatal, r.skipped)
	}

	t.Setenv(SkipEnv, "1")
	r = &recorder{TB: t}
	startWith(r)
	if r.fatal != "" || !strings.Contains(r.skipped, SkipEnv+"=1") {
		t.Errorf("with %s=1: fatal %q, skipped %q; want a skip that says why", SkipEnv, r.fatal, r.skipped)
	}
}

// TestStartAnswersAndRestarts checks the server answers PING after Start
// and after Restart, and not after Kill.
func TestStartAnswersAndRestarts(t *testing.T) {
	s := Start(t)
	if err := ping(s.Addr); err != nil {
		t.Fatalf("PING after Start: %v", err)
	}
	s.Kill()
	if err := ping(s.Addr); err == nil {
		t.Fatal("PING after Kill succeeded")
	}
	s.Restart()
	if err := ping(s.Addr); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
}
