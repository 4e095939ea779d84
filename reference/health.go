package reference

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/chatspec/chatspec/reference/store"
)

// /healthz: whether this node can serve chat, answered within a health
// probe's own short deadline whatever the store does.

// health is the /healthz body.
type health struct {
	Status string `json:"status"`
	Store  string `json:"store"`
	// Detail is what a shared store says about itself (redisstore: node
	// ID, liveness, last error), absent for the memory store.
	Detail any `json:"detail,omitempty"`
}

// healthTimeout is how long /healthz waits for the store. A health probe
// (a load balancer's, Kubernetes') has its own short deadline, typically
// 1 s; an answer that comes after it is no answer.
const healthTimeout = 500 * time.Millisecond

// serveHealth answers 200 {"status":"ok","store":"ok"} while the store
// answers within healthTimeout and the server is not shutting down, else
// 503 with the reason.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	h, code := health{Status: "ok", Store: "ok"}, http.StatusOK
	if err := s.probeStore(r.Context(), min(healthTimeout, s.cfg.StoreTimeout)); err != nil {
		h, code = health{Status: "unhealthy", Store: err.Error()}, http.StatusServiceUnavailable
	}
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		h.Status, code = "shutting down", http.StatusServiceUnavailable
	}
	h.Detail = s.storeDetail()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(h)
}

// probeStore pings the store and waits at most d for the answer. The
// wait does not depend on the store honouring its context: a Redis client
// blocked on a frozen server's socket returns only at its own read timeout
// (seconds), so the ping runs on its own goroutine and the probe stops
// waiting at d. One ping runs at a time; probes that arrive meanwhile
// share its answer, so a frozen store cannot pile up goroutines.
func (s *Server) probeStore(ctx context.Context, d time.Duration) error {
	s.probeMu.Lock()
	p := s.probe
	if p == nil {
		p = &storeProbe{done: make(chan struct{})}
		s.probe = p
		go func() {
			// Bounded by StoreTimeout for a store that honours contexts;
			// the probe's callers stop waiting long before.
			pctx, cancel := context.WithTimeout(s.ctx, s.cfg.StoreTimeout)
			defer cancel()
			err := s.pingStore(pctx)
			// Retire the probe before publishing its answer: a request
			// that arrives after this answer must start a ping of its own,
			// never share one that began before it (a store frozen since
			// then would otherwise read as healthy).
			s.probeMu.Lock()
			s.probe = nil
			s.probeMu.Unlock()
			p.err = err
			close(p.done)
		}()
	}
	s.probeMu.Unlock()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.err
	case <-timer.C:
		return fmt.Errorf("store did not answer within %s", d)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// storeProbe is one store ping shared by every /healthz waiting for it.
type storeProbe struct {
	done chan struct{}
	err  error
}

// pingStore checks the store: with its Ping method when it has one (a
// remote store), else with a cheap read.
func (s *Server) pingStore(ctx context.Context) error {
	if p, ok := s.store.(store.Pinger); ok {
		return p.Ping(ctx)
	}
	_, err := s.store.Users(ctx)
	return err
}
