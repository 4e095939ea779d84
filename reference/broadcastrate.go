package reference

import (
	"fmt"
	"sync"
	"time"

	"github.com/chatspec/chatspec/reference/store"
)

// The chat-wide output rate (issue 13). SEC-4's per-socket limit bounds
// each writer, not their sum: 150 sockets at 20 accepted writes a second,
// each broadcasting a 200-message history to every socket, ask for
// 3,000 broadcasts of ~200 KB a second, 600 MB/s to every receiver. No
// client reads that; every socket, the ones that chat normally included,
// passed its slow-reader limit and was closed, and the garbage of the
// encodings took the heap to 780 MB (HARDENING.md, "The flood").
//
// broadcastRate bounds the bytes accepted writes send out, a write
// costing its broadcast's size times its receivers, and shares that rate
// fairly between the sockets writing: while at least half of the burst
// (rateBurst of the rate) is left, every write is accepted; below that, a write is
// accepted only from a socket within its fair share (the rate divided by
// the sockets that wrote in the last shareWindow, saved up for at most
// that window or one write). A socket that writes
// as fast as it may therefore gets the same share as one that writes
// once a minute, and a chat whose output stays under the rate never
// meets the bound.

// shareWindow is how long a socket counts as writing after its last
// write (the divisor of the fair share).
const shareWindow = 2 * time.Second

// rateBurst is how much of the rate the chat may send at once. Every
// socket receives every broadcast, so a burst of the whole chat's output
// lands on each socket as burst/sockets: a second's worth of 2 GiB/s at
// 154 sockets is 14 MB, more than SlowReaderLimit (8 MiB), and dropped
// every socket, the reading ones included, at the start of a flood.
const rateBurst = 250 * time.Millisecond

type broadcastRate struct {
	rate  float64 // bytes per second, the whole chat
	burst float64 // rate × rateBurst
	now   func() time.Time

	mu        sync.Mutex
	tokens    float64 // up to burst
	last      time.Time
	shares    map[*session]*writerShare
	lastPrune time.Time
}

// writerShare is one socket's fair share, in bytes.
type writerShare struct {
	tokens float64
	last   time.Time
}

// newBroadcastRate returns the bound, or nil (none) when rate is 0.
func newBroadcastRate(rate int64, now func() time.Time) *broadcastRate {
	if rate <= 0 {
		return nil
	}
	t := now()
	burst := float64(rate) * rateBurst.Seconds()
	return &broadcastRate{rate: float64(rate), burst: burst, now: now, tokens: burst, last: t, lastPrune: t, shares: map[*session]*writerShare{}}
}

// allow decides a write from sess whose broadcast costs cost bytes in
// all, and takes the cost when it accepts. A nil bound accepts all.
func (b *broadcastRate) allow(sess *session, cost float64) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(b.burst, b.tokens+dt*b.rate)
	}
	b.last = now
	if now.Sub(b.lastPrune) >= time.Second {
		for s, sh := range b.shares {
			if now.Sub(sh.last) > shareWindow {
				delete(b.shares, s)
			}
		}
		b.lastPrune = now
	}
	sh := b.shares[sess]
	fair := b.rate / float64(len(b.shares)+1)
	if sh == nil {
		sh = &writerShare{tokens: fair * shareWindow.Seconds(), last: now}
		b.shares[sess] = sh
	} else {
		fair = b.rate / float64(len(b.shares))
	}
	// A share holds at least one write, so that a broadcast larger than
	// a share's window still gets through once the share has waited.
	limit := max(fair*shareWindow.Seconds(), cost)
	if dt := now.Sub(sh.last).Seconds(); dt > 0 {
		sh.tokens = min(limit, sh.tokens+dt*fair)
	}
	sh.last = now
	// Contended, the shares alone decide: they refill at the rate in all,
	// and a socket's own share is not the faster writers' to take. The
	// chat's tokens go negative then, so it stays contended while the
	// shares are what is being spent.
	if contended := b.tokens < b.burst/2; contended && sh.tokens < cost {
		return false
	}
	b.tokens = max(b.tokens-cost, -max(b.rate, cost))
	sh.tokens = max(sh.tokens-cost, -limit)
	return true
}

// forget drops a disconnected socket's share.
func (b *broadcastRate) forget(sess *session) {
	if b == nil {
		return
	}
	b.mu.Lock()
	delete(b.shares, sess)
	b.mu.Unlock()
}

// broadcastCost estimates what accepting this writeMessage sends out: the
// last broadcast's history plus the new message, to every socket. It is
// an estimate taken before the write is parsed or stored (a refused
// write must cost nothing), so a malformed payload is costed as a
// message of its raw size.
func (s *Server) broadcastCost(args []any) float64 {
	if s.output == nil {
		return 0
	}
	size := int64(perMessageOverhead)
	if len(args) > 0 {
		if m, ok := args[0].(map[string]any); ok {
			for _, v := range m {
				if str, ok := v.(string); ok {
					size += int64(len(str))
				}
			}
		}
	}
	total, _ := s.conns.count("")
	return float64(s.historyBytes.Load()+size) * float64(max(total, 1))
}

// noteHistoryBytes records the size of the history about to be
// broadcast, for the next write's cost, and counts its output.
func (s *Server) noteHistoryBytes(history []store.Message) {
	var n int64
	for _, m := range history {
		n += int64(len(m.Username)+len(m.Message)) + perMessageOverhead
	}
	s.historyBytes.Store(n)
	total, _ := s.conns.count("")
	s.m.broadcastBytes.Add(float64(n) * float64(total))
}

// byteCount renders n bytes for people: 2 GiB, 512 MiB, 3000 B.
func byteCount(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
