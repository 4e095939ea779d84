package loadgen

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Stamp identifies one load-generator message and carries its intended send
// time. It travels inside the message text, so measurement works against any
// server that stores and echoes the text unchanged (CONTRACT.md PAY-3):
//
//	cs1:<runID>:<sender>:<seq>:<intendedUnixNano>[ xxxx…]
//
// runID keeps concurrent runs on a shared server apart; sender is the
// simulated user's index; seq counts that user's messages from 1; the
// optional padding after a space brings the text up to --message-size.
type Stamp struct {
	Sender   uint32
	Seq      uint32
	Intended int64 // Unix nanoseconds
}

// stampPrefix versions the text format.
const stampPrefix = "cs1:"

// Text renders the message text for s, padded with 'x' to size bytes when
// size exceeds the stamp's own length.
func (s Stamp) Text(runID string, size int) string {
	var b strings.Builder
	b.Grow(max(size, 64))
	b.WriteString(stampPrefix)
	b.WriteString(runID)
	b.WriteByte(':')
	b.WriteString(strconv.FormatUint(uint64(s.Sender), 10))
	b.WriteByte(':')
	b.WriteString(strconv.FormatUint(uint64(s.Seq), 10))
	b.WriteByte(':')
	b.WriteString(strconv.FormatInt(s.Intended, 10))
	if pad := size - b.Len() - 1; pad > 0 {
		b.WriteByte(' ')
		for range pad {
			b.WriteByte('x')
		}
	}
	return b.String()
}

// ValidRunID reports whether id can name a run: 1 to 16 characters of
// [a-z0-9], so that it never needs JSON escaping and never contains ':'.
func ValidRunID(id string) bool {
	if id == "" || len(id) > 16 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// ParseText parses a message text produced by Stamp.Text for runID.
// Texts of other runs, other users and other formats return ok == false.
func ParseText(runID, text string) (Stamp, bool) {
	rest, ok := strings.CutPrefix(text, stampPrefix+runID+":")
	if !ok {
		return Stamp{}, false
	}
	s, n, ok := parseStampFields([]byte(rest))
	if !ok || (n < len(rest) && rest[n] != ' ') {
		return Stamp{}, false
	}
	return s, true
}

// parseStampFields reads "<sender>:<seq>:<nanos>" at the start of b and
// returns how many bytes it used.
func parseStampFields(b []byte) (Stamp, int, bool) {
	var f [3]uint64
	i := 0
	for k := range 3 {
		start := i
		var v uint64
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if i-start >= 19 {
				return Stamp{}, 0, false
			}
			v = v*10 + uint64(b[i]-'0')
			i++
		}
		if i == start {
			return Stamp{}, 0, false
		}
		f[k] = v
		if k < 2 {
			if i >= len(b) || b[i] != ':' {
				return Stamp{}, 0, false
			}
			i++
		}
	}
	if f[0] > 1<<31 || f[1] > 1<<31 || f[2] > 1<<62 {
		return Stamp{}, 0, false
	}
	return Stamp{Sender: uint32(f[0]), Seq: uint32(f[1]), Intended: int64(f[2])}, i, true
}

// Tail finds the messages that are new in each whole-history list one
// receiver gets, without decoding the list.
//
// Every messageWritten carries the whole (possibly capped) history, so
// decoding it per event would cost O(history) per delivery. Tail instead
// scans the raw JSON backwards from the end for this run's stamps and stops
// at the previous event's tail: the last two stamps it saw, adjacent in
// that order. Matching two stamps rather than one lets a message the server
// appended twice in a row show up as new (a duplicate) instead of being
// mistaken for the old tail. When the old tail is gone (a capped history
// dropped it), every stamp in the list is new.
//
// Messages that are not this run's (other users of a live server) are
// skipped: only strings that start with the stamp prefix are read. A Tail is
// used by one receiver's reader goroutine only.
type Tail struct {
	marker []byte // `"cs1:<runID>:`
	last   Stamp
	prev   Stamp
	have   int // how many of last/prev are set: 0, 1 or 2
	buf    []Stamp
}

// NewTail returns a Tail for runID's stamps.
func NewTail(runID string) *Tail {
	return &Tail{marker: []byte(`"` + stampPrefix + runID + ":")}
}

// Reset sets the tail from a history that is known, not new: the
// messagesList of a `connected` event.
func (t *Tail) Reset(raw []byte) {
	t.have = 0
	end := len(raw)
	for t.have < 2 {
		s, at, ok := t.prevStamp(raw, end)
		if !ok {
			return
		}
		end = at
		if t.have == 0 {
			t.last = s
		} else {
			t.prev = s
		}
		t.have++
	}
}

// prevStamp finds the last stamp that starts before end.
func (t *Tail) prevStamp(raw []byte, end int) (Stamp, int, bool) {
	for end > 0 {
		i := lastMarker(raw[:end], t.marker)
		if i < 0 {
			return Stamp{}, 0, false
		}
		body := raw[i+len(t.marker):]
		s, n, ok := parseStampFields(body)
		if ok && n < len(body) && (body[n] == '"' || body[n] == ' ') {
			return s, i, true
		}
		end = i // not a stamp after all: keep looking further back
	}
	return Stamp{}, 0, false
}

// lastMarker is bytes.LastIndex(b, marker) for a marker that starts with
// a quote: it hops between quotes, a few per history entry, which is
// several times faster than a general backwards search over the texts.
func lastMarker(b, marker []byte) int {
	for end := len(b); end > 0; {
		i := bytes.LastIndexByte(b[:end], marker[0])
		if i < 0 {
			return -1
		}
		if bytes.HasPrefix(b[i:], marker) {
			return i
		}
		end = i
	}
	return -1
}

func same(a, b Stamp) bool { return a.Sender == b.Sender && a.Seq == b.Seq }

// New returns the stamps that are new in raw since the previous call (or
// Reset), oldest first, and moves the tail to the end of raw. The returned
// slice is reused by the next call.
func (t *Tail) New(raw []byte) []Stamp {
	t.buf = t.buf[:0]
	end := len(raw)
	firstAt := -1 // where the newest stamp starts
	for {
		s, at, ok := t.prevStamp(raw, end)
		if !ok {
			break
		}
		end = at
		if t.have > 0 && same(s, t.last) {
			if t.have == 1 {
				break
			}
			// The old tail ends here only if the stamp before it is the
			// old one-before-last; otherwise this is a new copy of it.
			if p, _, ok := t.prevStamp(raw, end); !ok || same(p, t.prev) {
				break
			}
		}
		if firstAt < 0 {
			firstAt = at
		}
		t.buf = append(t.buf, s)
	}
	// Move the tail to the newest two stamps of raw.
	switch len(t.buf) {
	case 0:
	case 1:
		t.last = t.buf[0]
		t.have = 1
		if p, _, ok := t.prevStamp(raw, firstAt); ok {
			t.prev, t.have = p, 2
		}
	default:
		t.last, t.prev, t.have = t.buf[0], t.buf[1], 2
	}
	// Oldest first.
	for i, j := 0, len(t.buf)-1; i < j; i, j = i+1, j-1 {
		t.buf[i], t.buf[j] = t.buf[j], t.buf[i]
	}
	return t.buf
}

// String describes the tail for debugging.
func (t *Tail) String() string {
	return fmt.Sprintf("tail(have=%d last=%d/%d prev=%d/%d)", t.have, t.last.Sender, t.last.Seq, t.prev.Sender, t.prev.Seq)
}
