package reference

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// tokenBucket is a per-socket rate limiter (SEC-4). golang.org/x/time/rate
// is not among the module's dependencies and one socket needs only this
// much: tokens refill continuously at rate per second up to burst.
type tokenBucket struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// newTokenBucket returns a full bucket, or nil (no limit) when rate is 0.
func newTokenBucket(rate float64, burst int, now func() time.Time) *tokenBucket {
	if rate <= 0 {
		return nil
	}
	return &tokenBucket{rate: rate, burst: float64(burst), now: now, tokens: float64(burst), last: now()}
}

// allow takes one token if there is one. A nil bucket always allows.
func (b *tokenBucket) allow() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = min(b.burst, b.tokens+elapsed*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// connLimiter counts live sockets in total and per client IP, so that one
// host cannot take every connection slot.
type connLimiter struct {
	maxTotal, maxPerIP int

	mu    sync.Mutex
	total int
	perIP map[string]int
}

func newConnLimiter(maxTotal, maxPerIP int) *connLimiter {
	return &connLimiter{maxTotal: maxTotal, maxPerIP: maxPerIP, perIP: make(map[string]int)}
}

// acquire takes a slot for ip, or says which cap refused it. Every
// successful acquire must be matched by exactly one release.
func (l *connLimiter) acquire(ip string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxTotal > 0 && l.total >= l.maxTotal {
		return fmt.Errorf("server full: %d connections is the limit", l.maxTotal)
	}
	if l.maxPerIP > 0 && l.perIP[ip] >= l.maxPerIP {
		return fmt.Errorf("too many connections from %s: %d is the limit per address", ip, l.maxPerIP)
	}
	l.total++
	l.perIP[ip]++
	return nil
}

func (l *connLimiter) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
}

// count returns the live sockets in total and for ip.
func (l *connLimiter) count(ip string) (total, forIP int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.perIP[ip]
}

// hostOf returns the IP part of a remote address such as "127.0.0.1:5000".
// The reference does not trust X-Forwarded-For: behind a proxy every client
// shares the proxy's address, so set MaxConnectionsPerIP with that in mind.
func hostOf(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
