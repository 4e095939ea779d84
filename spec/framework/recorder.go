package framework

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// Bounds on what the suite keeps of what a server sends. Every event a
// client receives is recorded for the case's checks and its failure
// message, so a server that streams without pause would otherwise grow the
// process without end (issue 13: 3.3 GB after 60 s). The bounds are far
// above what any case needs from a conforming server (HIST-4, the busiest,
// receives about 250 events per client, each carrying a capped history),
// and stated in README.md ("Bounds against a hostile server"). A case
// whose clients reach one is stopped there: the client's connection is
// dropped and every wait on it ends naming the bound, instead of the
// process growing.
//
// What that does to the case depends on the bound. More events to one
// client than any case needs is the server's doing whatever their size, so
// the case fails. Too many bytes is not: CONTRACT.md allows an uncapped
// history (HIST-4 is a SHOULD), every messageWritten carries the whole of
// it, and a long-lived uncapped server (the seed is one) legitimately sends
// a case more than the byte bound once its history has grown. A wait that
// the byte bound ended therefore leaves its case not verified (skipped,
// saying why and how to verify it) rather than failed: chatspec did not
// see what came next, so it cannot say the server did wrong.
const (
	// MaxEventsPerClient is how many events one client records.
	MaxEventsPerClient = 10_000
	// MaxBytesPerCase is how many bytes of event arguments (the raw JSON)
	// all the clients of one case record together. Decoded payloads come
	// on top, about as large again.
	MaxBytesPerCase = 32 << 20
	// maxQueuedBytesPerClient bounds what waits in a client's protocol
	// queue (sioclient.Options.MaxQueuedBytes) before the recorder takes
	// it: the recorder drains the queue as events come, so this only needs
	// room for a burst of the largest frames.
	maxQueuedBytesPerClient = 32 << 20
)

// caseBudget is the recording budget one case's clients share.
type caseBudget struct {
	bytes     atomic.Int64
	largest   atomic.Int64 // the largest event admitted or refused, in bytes
	maxBytes  int64
	maxEvents int
}

func newCaseBudget() *caseBudget {
	return &caseBudget{maxBytes: MaxBytesPerCase, maxEvents: MaxEventsPerClient}
}

// RecordLimitError ends a client's recording: the server sent more than
// the suite keeps (MaxEventsPerClient, MaxBytesPerCase).
type RecordLimitError struct {
	// Events is how many events the client had recorded; CaseBytes how
	// many bytes the case's clients had, with the event that crossed it.
	Events    int
	CaseBytes int64
	// Limit names the bound that was crossed.
	Limit string
	// Bytes is true when the bound crossed was MaxBytesPerCase (a
	// conforming server with a long uncapped history can cross it), false
	// for MaxEventsPerClient.
	Bytes bool
}

func (e *RecordLimitError) Error() string {
	if e.Bytes {
		return fmt.Sprintf("chatspec stopped recording and dropped the connection: the server sent more than %s "+
			"(%d events on this connection, %d bytes to this case's clients)", e.Limit, e.Events, e.CaseBytes)
	}
	return fmt.Sprintf("chatspec stopped recording and dropped the connection: the server sent more than %s "+
		"(%d events on this connection, %d bytes to this case's clients); no case needs that many from a conforming server",
		e.Limit, e.Events, e.CaseBytes)
}

// byteBoundIn returns the byte-bound RecordLimitError that one of args
// (errors, as Failf's arguments are) wraps, or nil.
func byteBoundIn(args []any) *RecordLimitError {
	for _, a := range args {
		err, ok := a.(error)
		if !ok {
			continue
		}
		var limit *RecordLimitError
		if errors.As(err, &limit) && limit.Bytes {
			return limit
		}
	}
	return nil
}

// notVerifiedReason is the skip reason of a case whose recording the byte
// bound ended (see the comment at the top of this file).
func notVerifiedReason(limit *RecordLimitError, largest int64) string {
	return fmt.Sprintf("not verified: the server sent this case's clients more than chatspec records (%s; "+
		"the largest event was %d bytes). A conforming server with a long uncapped history sends that much, as every "+
		"messageWritten carries the whole history, and CONTRACT.md allows an uncapped "+
		"history (HIST-4 is a SHOULD), so this is no failure; to verify this case, run against a server whose "+
		"history is shorter (a fresh process, or one with a history cap)", limit.Limit, largest)
}

// admit counts ev against the client's and the case's bounds; an error
// means it must not be recorded.
func (c *Client) admit(ev sioclient.Event, recorded int) error {
	b := c.budget
	size := int64(len(ev.Args) + len(ev.Name))
	total := b.bytes.Add(size)
	for {
		prev := b.largest.Load()
		if size <= prev || b.largest.CompareAndSwap(prev, size) {
			break
		}
	}
	switch {
	case recorded >= b.maxEvents:
		return &RecordLimitError{Events: recorded, CaseBytes: total, Limit: fmt.Sprintf("%d events to one client in one case", b.maxEvents)}
	case total > b.maxBytes:
		return &RecordLimitError{Events: recorded, CaseBytes: total, Limit: fmt.Sprintf("%d MiB of events to one case's clients", b.maxBytes>>20), Bytes: true}
	}
	return nil
}

// RecordedBytes returns how many bytes of events the clients of the case
// this client belongs to have received so far (counted against
// MaxBytesPerCase).
func (c *Client) RecordedBytes() int64 { return c.budget.bytes.Load() }

// summarizeLimit is the largest event a failure message decodes to
// summarize; larger ones (far beyond any conforming chat event) are shown
// as their first bytes and their size.
const summarizeLimit = 1 << 20

// clipRaw shows the first n bytes of b (cut at a rune start) and its size,
// without copying the rest.
func clipRaw(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	cut := n
	for cut > 0 && !utf8RuneStart(b[cut]) {
		cut--
	}
	return string(b[:cut]) + fmt.Sprintf("…(%d bytes)", len(b))
}
