package loadgen

import (
	"fmt"
	"time"
)

// Kind says what a Result records.
type Kind uint8

// Result kinds, in the order a user's life produces them.
const (
	// Connected: a session's Socket.IO connection is up. Latency is the
	// time from the intended arrival (or reconnect) to the namespace ack.
	Connected Kind = iota + 1
	// ConnectFailed: the init request or the connection failed; Err says why.
	ConnectFailed
	// Joined: the session received `connected`. Latency is the time from
	// emitting `connecting` to receiving `connected`.
	Joined
	// JoinFailed: `connected` never came within the join timeout, or the
	// `connecting` emit failed.
	JoinFailed
	// Sent: a writeMessage was emitted. Intended is its scheduled time, At
	// when the emit started (the difference is the generator's lag).
	Sent
	// SendFailed: the emit failed; the message is not expected anywhere.
	// Planned is true when the generator had closed the session itself
	// (churn, leave, stop): then it counts as skipped, not as an error.
	SendFailed
	// Skipped: a message was due while its user was offline (churn), so it
	// was not sent.
	Skipped
	// Delivered: Session saw message (Sender, Seq) as new in a
	// messageWritten received At; Intended is the message's intended send
	// time.
	Delivered
	// Left: a session ended. Planned is true when the generator closed it
	// (leave, churn, stop); otherwise Err holds why it dropped. Abrupt is
	// true when it ended without a clean close (churn, an abort at the hard
	// stop, or a drop).
	Left
	// Refused: the server refused message (Sender, Seq) of Session: a
	// `chatError` for writeMessage (CONTRACT.md ERR-1), matched to the
	// session's oldest write not yet echoed. Err is a *RefusalError with
	// the server's code; Seq is 0 when no write was waiting.
	Refused
	// Noted: Session received an event outside the plain delivery of new
	// messages; Note says which (NoteForeign, NoteForged, NoteRepeat with
	// the repeated message in Sender/Seq, NoteShrunk, or
	// NoteConnectedTwice).
	Noted
	// Tick: the generator's clock probe; At − Intended is how late a
	// timer fired, a measure of the generator's own saturation.
	// Goroutines is the process's goroutine count at that moment.
	Tick
)

var kindNames = [...]string{"", "connected", "connect_failed", "joined", "join_failed", "sent", "send_failed", "skipped", "delivered", "left", "refused", "noted", "tick"}

// RefusalError is the server's refusal of a write, with its code.
type RefusalError struct {
	Event string // the refused event, e.g. "writeMessage"
	Code  string // e.g. "rate_limited", "internal_error"
}

func (e *RefusalError) Error() string { return fmt.Sprintf("server refused %s: %s", e.Event, e.Code) }

func (k Kind) String() string {
	if int(k) < len(kindNames) && k > 0 {
		return kindNames[k]
	}
	return "unknown"
}

// Result is one small record emitted by the engine and consumed by
// Metrics. Times are offsets from the run's start on the monotonic clock.
type Result struct {
	Kind     Kind
	Note     EventNote // Noted records
	User     int32     // the simulated user's index
	Session  int32     // the connection's index; sessions of one user differ across reconnects
	Sender   uint32
	Seq      uint32
	At       time.Duration
	Intended time.Duration
	Latency  time.Duration
	Planned  bool
	Abrupt   bool
	// Pred is, on Delivered records, the message just before this one in
	// the list that carried it (PackID), 0 when unknown.
	Pred uint64
	// Goroutines is set on Tick records only.
	Goroutines int32
	Err        error
}
