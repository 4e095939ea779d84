package framework

import (
	"context"
	"fmt"
	"time"
)

// The harness must never take its own slowness for the server's: on a
// busy machine (2 cores shared with other work, the race detector) the
// goroutines that read and decode a connection's events can fall seconds
// behind the socket, and a wait that times out then says "nothing came"
// about an event that came in time (HIST-2 with 100 KB events: the frame
// was read 1.3 s into a 3 s wait, processed after it). Two measures:
//
//   - every Client's reader says when it has processed everything its
//     connection had queued (Client.idle); a wait that times out first
//     lets the readers catch up (catchUp) and looks again;
//   - the run measures how late the harness's own timers fire (lag.Monitor):
//     time the process was starved of CPU. A wait whose window lost more
//     than starvedShare of its length to that is extended by the lag.
//
// Both are reported as findings, so a verdict that needed them says so.

// starvedShare is the share of a wait's window lost to starvation beyond
// which the wait is extended.
const starvedShare = 10

// catchUp waits until the reader of every client has processed all that
// its connection received before deadline: it processed an event received
// after the deadline (readers go in order), or went idle after it, or has
// been idle with nothing arriving for a short grace, or the connection
// ended. It waits as long as the readers make progress: stall bounds the
// time without any, limit the whole. It returns how long it waited and
// whether some reader was still behind when it gave up.
func catchUp(ctx context.Context, clients []*Client, deadline time.Time, stall, limit time.Duration) (waited time.Duration, behind bool) {
	start := time.Now()
	giveUp := time.NewTimer(limit)
	defer giveUp.Stop()
	for _, c := range clients {
		graced := false
		for {
			c.mu.Lock()
			idle, idleAt, ended, changed := c.idle, c.idleAt, c.ended, c.changed
			past := len(c.records) > 0 && c.records[len(c.records)-1].Event.Received.After(deadline)
			c.mu.Unlock()
			if ended || past || (idle && (graced || !idleAt.Before(deadline))) {
				break
			}
			// Idle since before the deadline: an event queued just before
			// it may still be waking the reader; a short grace tells (the
			// reader marks itself busy without a wake-up, so look again).
			wait := stall
			if idle {
				wait = readerWakeGrace
			}
			timer := time.NewTimer(wait)
			select {
			case <-changed:
				graced = false
			case <-timer.C:
				if !idle {
					return time.Since(start), true // no progress for stall
				}
				graced = true
			case <-giveUp.C:
				timer.Stop()
				return time.Since(start), true
			case <-ctx.Done():
				timer.Stop()
				return time.Since(start), true
			}
			timer.Stop()
		}
	}
	return time.Since(start), false
}

// catchUpBounds returns catchUp's stall and limit for a wait of timeout: a
// reader may take a while over one large event, and a starved harness
// many times the wait to work through its backlog; both stay bounded.
func catchUpBounds(timeout time.Duration) (stall, limit time.Duration) {
	return max(timeout, 2*time.Second), max(10*timeout, 20*time.Second)
}

// readerWakeGrace is how long catchUp gives an idle reader to wake for an
// event queued just before a deadline.
const readerWakeGrace = 50 * time.Millisecond

// lateNote describes what catchUp and the lag monitor found about a wait
// of timeout that started at start, for findings and failure messages; ""
// when the harness kept up.
func lateNote(waited time.Duration, behind bool, lag time.Duration, timeout time.Duration) string {
	var note string
	if waited > 2*readerWakeGrace || behind {
		note = fmt.Sprintf("the harness's readers were behind their connections and needed %s after the %s wait to process what had arrived", waited.Round(time.Millisecond), timeout)
		if behind {
			note += " (and were still behind when it gave up)"
		}
	}
	if lag*starvedShare > timeout {
		if note != "" {
			note += "; "
		}
		note += fmt.Sprintf("the harness was starved of CPU for %s of the %s wait", lag.Round(time.Millisecond), timeout)
	}
	return note
}
