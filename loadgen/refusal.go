package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// Refusals (issue 11, CONTRACT.md ERR-1). A write the server refused is
// owed to nobody: it is counted as refused, by the server's code, and not
// as lost. The contract leaves the form of a refusal open, so the
// generator reads every form a server can use to say "no":
//
//   - a negative acknowledgement of the write itself: the generator asks
//     for an ack on every write (Config.NoAcks turns that off), and the ack
//     names the write exactly;
//   - an error event on the writing socket (the reference's chatError, a
//     `notice` with level "error", an `exception`, …): an event that is not
//     one of the contract's and that reads as an error report. It names no
//     write, so it refuses the oldest write not yet answered: a connection's
//     events are handled in order, and an accepted write is answered (acked
//     or echoed) before a later one is refused.
//
// A refusal both ways (an error event and a negative ack, as the
// reference sends) counts once: the event takes the write, the ack then
// finds it answered.

// AckEmitter is a Conn that can ask for an acknowledgement without
// waiting for it (sioclient.Conn.EmitWithAckCallback). A Conn without it
// sends writes without acks; refusals then come only as events.
type AckEmitter interface {
	EmitWithAckCallback(ctx context.Context, onAck func(json.RawMessage), event string, args ...any) error
}

// maxPendingAcks bounds the acks a session waits for: a server that never
// acks leaves at most this many callbacks registered per session, after
// which its writes go without asking.
const maxPendingAcks = 32

var _ AckEmitter = (*sioclient.Conn)(nil)

// emitWrite sends write seq on conn, asking for an ack when it can.
func (s *session) emitWrite(ctx context.Context, conn Conn, seq uint32, msg writeMessage) error {
	ac, ok := conn.(AckEmitter)
	if !ok || s.e.cfg.NoAcks || s.side != nil || s.pendingAcks.Load() >= maxPendingAcks {
		return conn.Emit(ctx, "writeMessage", msg)
	}
	// The ack may come (on the reader goroutine) before the emit returns
	// with an error (a polling POST answered late): settled makes the
	// pending count drop once either way.
	var settled atomic.Bool
	s.pendingAcks.Add(1)
	err := ac.EmitWithAckCallback(ctx, func(args json.RawMessage) {
		if settled.CompareAndSwap(false, true) {
			s.pendingAcks.Add(-1)
		}
		s.onWriteAck(seq, args)
	}, "writeMessage", msg)
	if err != nil && settled.CompareAndSwap(false, true) {
		s.pendingAcks.Add(-1)
	}
	return err
}

// onWriteAck runs on the reader goroutine with the ack of write seq.
func (s *session) onWriteAck(seq uint32, args json.RawMessage) {
	ref := refusalFromAck(args)
	if ref == nil {
		s.answered(seq) // accepted: a later error event is not about it
		return
	}
	if !s.answered(seq) {
		return // an error event already refused it (or it was echoed)
	}
	e := s.e
	e.emit(Result{Kind: Refused, User: int32(s.u.idx), Session: s.id, Sender: uint32(s.u.idx), Seq: seq, At: e.now(), Err: ref})
}

// answered removes seq from the writes waiting for an answer and says
// whether it was still waiting.
func (s *session) answered(seq uint32) bool {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	for i, q := range s.outstanding {
		if q == seq {
			s.outstanding = append(s.outstanding[:i], s.outstanding[i+1:]...)
			return true
		}
		if q > seq {
			break
		}
	}
	return false
}

// onReport handles an event that is not one of the contract's: if it
// reads as an error report it is a refusal, of the oldest unanswered
// write when it is about a write (or names no event and defaultEvent is
// writeMessage). Anything else a server adds (§8) is ignored.
func (s *session) onReport(ev sioclient.Event, defaultEvent string) {
	ref := refusalFromEvent(ev.Name, ev.Args)
	if ref == nil {
		return
	}
	if ref.Event == "" {
		ref.Event = defaultEvent
	}
	e := s.e
	r := Result{Kind: Refused, User: int32(s.u.idx), Session: s.id, Sender: uint32(s.u.idx), At: ev.Received.Sub(e.start), Err: ref}
	if ref.Event == "writeMessage" {
		r.Seq = s.refusedWrite()
	}
	e.emit(r)
}

// maxReportBytes bounds what is parsed of a report; a larger one is
// still a report (by its name) but its fields are not read.
const maxReportBytes = 64 << 10

// errorName matches event names that say they carry an error.
var errorName = regexp.MustCompile(`(?i)error|exception|refus|reject|denied|fail`)

// report is the part of an error report the generator reads; every field
// is optional.
type report struct {
	Event  any `json:"event"`
	Code   any `json:"code"`
	Reason any `json:"reason"`
	Error  any `json:"error"`
	OK     any `json:"ok"`
	Level  any `json:"level"`
	Status any `json:"status"`
}

// refusalFromEvent reads a non-contract event as an error report, nil if
// it is not one. It is one when its name says so (chatError, exception…)
// or its first argument does (level or status "error", ok false, or an
// error field). Its event is the report's `event` field, "" when it has
// none; its code the first of `code`, `reason`, `error` that is a string.
func refusalFromEvent(name string, args []byte) *RefusalError {
	byName := errorName.MatchString(name)
	var v []json.RawMessage
	if len(args) > maxReportBytes || json.Unmarshal(args, &v) != nil || len(v) == 0 {
		if byName {
			return &RefusalError{Code: "unreadable"}
		}
		return nil
	}
	var r report
	if json.Unmarshal(v[0], &r) != nil { // not an object: a string, a number…
		if byName {
			return &RefusalError{Code: "none"}
		}
		return nil
	}
	if !byName && !r.saysError() {
		return nil
	}
	ev, _ := r.Event.(string)
	return &RefusalError{Event: cleanCode(ev, ""), Code: r.code()}
}

// refusalFromAck reads the ack of a write: a refusal when its first
// argument is false, or an object with "ok": false, or with an error
// field and no "ok": true (§8 leaves acks open: an empty ack, {"ok":
// true} or the stored message are all acceptance). nil when accepted.
func refusalFromAck(args []byte) *RefusalError {
	var v []json.RawMessage
	if len(args) > maxReportBytes || json.Unmarshal(args, &v) != nil || len(v) == 0 {
		return nil
	}
	if bytes.Equal(bytes.TrimSpace(v[0]), []byte("false")) {
		return &RefusalError{Event: "writeMessage", Code: "none"}
	}
	var r report
	if json.Unmarshal(v[0], &r) != nil {
		return nil
	}
	if ok, isBool := r.OK.(bool); isBool && ok {
		return nil
	}
	if r.OK != false && !present(r.Error) {
		return nil
	}
	return &RefusalError{Event: "writeMessage", Code: r.code()}
}

// saysError: the report's own fields say it is an error.
func (r report) saysError() bool {
	for _, f := range []any{r.Level, r.Status} {
		if s, ok := f.(string); ok && strings.EqualFold(s, "error") {
			return true
		}
	}
	return r.OK == false || present(r.Error)
}

// code is the report's code: the first of code, reason, error that is a
// non-empty string, cleaned; "none" without one.
func (r report) code() string {
	for _, f := range []any{r.Code, r.Reason, r.Error} {
		if s, ok := f.(string); ok && s != "" {
			return cleanCode(s, "none")
		}
	}
	return "none"
}

// present: a JSON value that is there and says something (not null,
// false, "" or an empty object).
func present(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// cleanCode bounds what a server sends as a code: at most 40 characters
// of [A-Za-z0-9_.-], a run of anything else as one "_"; empty when
// nothing is left.
func cleanCode(s, empty string) string {
	b := make([]byte, 0, min(len(s), 40))
	for i := 0; i < len(s) && len(b) < 40; i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.':
			b = append(b, c)
		case len(b) > 0 && b[len(b)-1] != '_':
			b = append(b, '_')
		}
	}
	if t := strings.Trim(string(b), "_"); t != "" {
		return t
	}
	return empty
}
