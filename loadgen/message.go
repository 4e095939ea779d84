package loadgen

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Stamp identifies one load-generator message and carries its intended send
// time. It travels inside the message text, so measurement works against any
// server that stores and echoes the text unchanged (CONTRACT.md PAY-3):
//
//	cs2:<runID>:<sender>:<seq>:<intendedUnixNano>:<tag>[ xxxx…]
//
// runID keeps concurrent runs on a shared server apart; sender is the
// simulated user's index; seq counts that user's messages from 1; tag is
// 12 hex digits (48 bits) of a MAC of the three numbers under a key only
// this run knows (RunKey), so nobody else in the chat can write a text the
// generator takes for its own; the optional padding after a space brings
// the text up to --message-size.
type Stamp struct {
	Sender   uint32
	Seq      uint32
	Intended int64 // Unix nanoseconds
}

// stampPrefix versions the text format.
const stampPrefix = "cs2:"

// tagLen is the length of a stamp's tag in hex digits.
const tagLen = 12

// RunKey authenticates one run's stamps: its run ID and a 128-bit secret,
// drawn at random when the run starts, or derived from a secret the shards
// of one run share (NewSharedRunKey). The tag of a stamp is 48 bits of the
// AES-128 encryption, under that secret, of the one block holding its
// sender, seq and intended time: AES is a pseudo-random permutation, so a
// participant who sees every genuine text still has to guess a 48-bit tag
// to forge one, and shards given the same secret accept each other's
// stamps. One block costs ~25 ns (this machine, AES-NI), against ~15 for
// the keyed hash/maphash used before, whose seed cannot be shared across
// processes. Safe for concurrent use.
type RunKey struct {
	id    string
	block cipher.Block
}

// NewRunKey returns a key for run id with a fresh random secret.
func NewRunKey(id string) (*RunKey, error) {
	var secret [16]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return nil, fmt.Errorf("drawing the run's secret: %w", err)
	}
	return newRunKey(id, secret[:])
}

// MinSharedSecret is the shortest secret NewSharedRunKey takes.
const MinSharedSecret = 16

// NewSharedRunKey returns the key of run id for a secret shared by every
// shard of the run (at least MinSharedSecret bytes), so that each accepts
// the others' stamps.
func NewSharedRunKey(id string, secret []byte) (*RunKey, error) {
	if len(secret) < MinSharedSecret {
		return nil, fmt.Errorf("shared secret of %d bytes: want at least %d", len(secret), MinSharedSecret)
	}
	sum := sha256.Sum256(append([]byte("chatspec run key\x00"+id+"\x00"), secret...))
	return newRunKey(id, sum[:16])
}

func newRunKey(id string, secret []byte) (*RunKey, error) {
	if !ValidRunID(id) {
		return nil, fmt.Errorf("run ID %q: want 1-16 characters of [a-z0-9]", id)
	}
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, err
	}
	return &RunKey{id: id, block: block}, nil
}

// RunID returns the run's ID.
func (k *RunKey) RunID() string { return k.id }

// tag computes s's tag into dst (tagLen hex digits); scratch is a work
// area, so the receive path does not allocate.
func (k *RunKey) tag(s Stamp, dst []byte, scratch *[32]byte) {
	in := scratch[:16]
	binary.LittleEndian.PutUint32(in[0:], s.Sender)
	binary.LittleEndian.PutUint32(in[4:], s.Seq)
	binary.LittleEndian.PutUint64(in[8:], uint64(s.Intended))
	k.block.Encrypt(scratch[16:], in)
	hex.Encode(dst[:tagLen], scratch[16:16+tagLen/2])
}

// Text renders the message text for s, padded with 'x' to size bytes when
// size exceeds the stamp's own length.
func (s Stamp) Text(k *RunKey, size int) string {
	var b strings.Builder
	b.Grow(max(size, 80))
	b.WriteString(stampPrefix)
	b.WriteString(k.id)
	b.WriteByte(':')
	b.WriteString(strconv.FormatUint(uint64(s.Sender), 10))
	b.WriteByte(':')
	b.WriteString(strconv.FormatUint(uint64(s.Seq), 10))
	b.WriteByte(':')
	b.WriteString(strconv.FormatInt(s.Intended, 10))
	b.WriteByte(':')
	var tag [tagLen]byte
	var scratch [32]byte
	k.tag(s, tag[:], &scratch)
	b.Write(tag[:])
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

// ParseText parses a message text produced by Stamp.Text with k.
// Texts of other runs, other formats, and texts whose tag k did not make
// return ok == false.
func ParseText(k *RunKey, text string) (Stamp, bool) {
	rest, ok := strings.CutPrefix(text, stampPrefix+k.id+":")
	if !ok {
		return Stamp{}, false
	}
	var scratch [32]byte
	s, n, ok := parseStamp([]byte(rest), k, &scratch)
	if !ok || (n < len(rest) && rest[n] != ' ') {
		return Stamp{}, false
	}
	return s, true
}

// parseStamp reads "<sender>:<seq>:<nanos>:<tag>" at the start of b and
// returns how many bytes it used; ok is false when b is not shaped like
// a stamp, or its tag is not k's (forged: then n > 0).
func parseStamp(b []byte, k *RunKey, scratch *[32]byte) (s Stamp, n int, ok bool) {
	s, n, tag, ok := parseShape(b)
	if !ok {
		return Stamp{}, 0, false
	}
	if !k.genuine(s, tag, scratch) {
		return Stamp{}, n, false
	}
	return s, n, true
}

// parseShape reads a stamp's fields and tag without checking the tag.
func parseShape(b []byte) (s Stamp, n int, tag []byte, ok bool) {
	s, n, ok = parseStampFields(b)
	if !ok || n+1+tagLen > len(b) || b[n] != ':' {
		return Stamp{}, 0, nil, false
	}
	return s, n + 1 + tagLen, b[n+1 : n+1+tagLen], true
}

// genuine reports whether tag is k's tag of s.
func (k *RunKey) genuine(s Stamp, tag []byte, scratch *[32]byte) bool {
	var want [tagLen]byte
	k.tag(s, want[:], scratch)
	return bytes.Equal(tag, want[:])
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

// EventNote classifies one messageWritten for its receiver (Tail.Note).
type EventNote uint8

// Event notes. MSG-2 makes the newest entry of a messageWritten list the
// message that caused it, which is what tells them apart.
const (
	// NoteNew: the event brought at least one new message of this run.
	NoteNew EventNote = iota
	// NoteForeign: nothing new of this run, and the newest entry is not
	// this run's: another chat participant wrote. Ignored.
	NoteForeign
	// NoteForged: nothing new, and the newest entry looks like this run's
	// stamp but its tag is wrong. Ignored.
	NoteForged
	// NoteRepeat: nothing new, and the newest entry is this run's message
	// that the receiver already got in an earlier messageWritten: the
	// server sent the event twice (MSG-1 says once).
	NoteRepeat
	// NoteStale: nothing new, and the newest entry is a message the
	// receiver knew from its `connected` history: written as it joined,
	// which MSG-1 allows.
	NoteStale
	// NoteShrunk: the list lacks the newest message of this run that the
	// receiver had already seen, while it holds an older one of the same
	// sender: the history went backwards (out of the contract). Nothing in
	// it is taken as new.
	NoteShrunk
	// NoteConnectedTwice: a joined session received a second `connected`
	// (JOIN-1 says exactly once). Not from Tail: the engine notes it.
	NoteConnectedTwice
)

var noteNames = [...]string{"new", "foreign", "forged", "repeat", "stale", "shrunk", "connected_twice"}

func (n EventNote) String() string {
	if int(n) < len(noteNames) {
		return noteNames[n]
	}
	return "note(" + strconv.Itoa(int(n)) + ")"
}

// Seen is one message new to a receiver, with its predecessor in the
// server's list.
type Seen struct {
	Stamp
	// Pred is the message of this run just before it in the list that
	// carried it (PackID), 0 when unknown (the list began with it).
	Pred uint64
	tag  [tagLen]byte
}

// PackID packs a message's (sender, seq) into one non-zero word.
func PackID(sender, seq uint32) uint64 { return uint64(sender)<<32 | uint64(seq) }

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
// skipped: only strings that start with the stamp prefix are read, and
// of those only the ones whose tag the run's key made count. Its memory
// is the two tail stamps plus the new stamps of one list. A Tail is used
// by one receiver's reader goroutine only.
type Tail struct {
	key       *RunKey
	marker    []byte // `"cs2:<runID>:`
	last      Stamp
	prev      Stamp
	lastTag   [tagLen]byte // tags of last and prev, so matching them costs no MAC
	prevTag   [tagLen]byte
	have      int  // how many of last/prev are set: 0, 1 or 2
	lastEvent bool // last came from a messageWritten, not from `connected`
	buf       []Seen
	note      EventNote
	newest    Stamp // the event's newest entry, when it is this run's
	scratch   [32]byte
}

// NewTail returns a Tail for the stamps of k's run.
func NewTail(k *RunKey) *Tail {
	return &Tail{key: k, marker: []byte(`"` + stampPrefix + k.id + ":")}
}

// candidate is a stamp-shaped text in a raw list: at is where its opening
// quote is, stop where its tag ends; its tag is not checked yet.
type candidate struct {
	s        Stamp
	at, stop int
	tag      []byte
}

// Reset sets the tail from a history that is known, not new: the
// messagesList of a `connected` event.
func (t *Tail) Reset(raw []byte) {
	t.have, t.lastEvent = 0, false
	end := len(raw)
	for t.have < 2 {
		c, ok := t.prevGenuine(raw, end)
		if !ok {
			return
		}
		end = c.at
		if t.have == 0 {
			t.last, t.lastTag = c.s, [tagLen]byte(c.tag)
		} else {
			t.prev, t.prevTag = c.s, [tagLen]byte(c.tag)
		}
		t.have++
	}
}

// prevShaped finds the last stamp-shaped text that starts before end.
func (t *Tail) prevShaped(raw []byte, end int) (candidate, bool) {
	for end > 0 {
		i := lastMarker(raw[:end], t.marker)
		if i < 0 {
			return candidate{}, false
		}
		body := raw[i+len(t.marker):]
		s, n, tag, ok := parseShape(body)
		if ok && n < len(body) && (body[n] == '"' || body[n] == ' ') {
			return candidate{s, i, i + len(t.marker) + n, tag}, true
		}
		end = i // not a stamp after all: keep looking further back
	}
	return candidate{}, false
}

// is reports whether c is the stamp s with tag: the tail's own stamps
// are matched by their tag bytes, a forged copy of one does not match.
func (c candidate) is(s Stamp, tag *[tagLen]byte) bool {
	return same(c.s, s) && bytes.Equal(c.tag, tag[:])
}

// genuine checks c's tag.
func (t *Tail) genuine(c candidate) bool { return t.key.genuine(c.s, c.tag, &t.scratch) }

// prevGenuine finds the last genuine stamp that starts before end.
func (t *Tail) prevGenuine(raw []byte, end int) (candidate, bool) {
	for {
		c, ok := t.prevShaped(raw, end)
		if !ok {
			return c, false
		}
		if (t.have > 0 && c.is(t.last, &t.lastTag)) || (t.have > 1 && c.is(t.prev, &t.prevTag)) || t.genuine(c) {
			return c, true
		}
		end = c.at
	}
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
// slice is reused by the next call. Note then classifies the event.
//
// Only stamps that are not the tail's own are checked with the run's key
// (one MAC per new message): the tail's stamps are matched by their tag.
func (t *Tail) New(raw []byte) []Seen {
	t.buf = t.buf[:0]
	t.newest = Stamp{}
	c, ok := t.prevShaped(raw, len(raw))
	newestAt := c.at
	// The newest entry is a stamp when no other entry (an object) follows it.
	newestIsStamp := ok && bytes.IndexByte(raw[c.stop:], '{') < 0
	newestForged := false
	oldTail, oldTag := t.last, t.lastTag
	foundOld, olderOfLast := false, false
	firstAt := -1 // where the newest new stamp starts
	for ok {
		isLast := t.have > 0 && c.is(t.last, &t.lastTag)
		if !isLast && !t.genuine(c) {
			if c.at == newestAt {
				newestForged = newestIsStamp
			}
			c, ok = t.prevShaped(raw, c.at)
			continue
		}
		if c.at == newestAt && newestIsStamp {
			t.newest = c.s
		}
		if isLast {
			if t.have == 1 {
				foundOld = true
				break
			}
			// The old tail ends here only if the stamp before it is the
			// old one-before-last; otherwise this is a new copy of it.
			if p, ok := t.prevGenuine(raw, c.at); !ok || p.is(t.prev, &t.prevTag) {
				foundOld = true
				break
			}
		}
		if t.have > 0 && c.s.Sender == t.last.Sender && c.s.Seq < t.last.Seq {
			olderOfLast = true
		}
		if firstAt < 0 {
			firstAt = c.at
		}
		t.buf = append(t.buf, Seen{Stamp: c.s, tag: [tagLen]byte(c.tag)})
		c, ok = t.prevShaped(raw, c.at)
	}
	if !foundOld && olderOfLast {
		// The list lacks the newest message this receiver had but holds
		// an older one of the same sender: a cap drops the oldest, never
		// the newest, so the history went backwards. Nothing is new.
		t.buf, t.note = t.buf[:0], NoteShrunk
		return t.buf
	}
	// Move the tail to the newest two stamps of raw.
	switch len(t.buf) {
	case 0:
	case 1:
		if foundOld {
			// The scan stopped at the old last, just before the new one:
			// it becomes the one-before-last without another scan.
			t.prev, t.prevTag = oldTail, oldTag
			t.last, t.lastTag, t.have, t.lastEvent = t.buf[0].Stamp, t.buf[0].tag, 2, true
			break
		}
		p, ok := t.prevGenuine(raw, firstAt)
		t.last, t.lastTag, t.have, t.lastEvent = t.buf[0].Stamp, t.buf[0].tag, 1, true
		if ok {
			t.prev, t.prevTag, t.have = p.s, [tagLen]byte(p.tag), 2
		}
	default:
		t.last, t.lastTag, t.prev, t.prevTag, t.have, t.lastEvent = t.buf[0].Stamp, t.buf[0].tag, t.buf[1].Stamp, t.buf[1].tag, 2, true
	}
	// Oldest first, each with its predecessor in the list.
	for i, j := 0, len(t.buf)-1; i < j; i, j = i+1, j-1 {
		t.buf[i], t.buf[j] = t.buf[j], t.buf[i]
	}
	for i := range t.buf {
		switch {
		case i > 0:
			t.buf[i].Pred = PackID(t.buf[i-1].Sender, t.buf[i-1].Seq)
		case foundOld:
			t.buf[i].Pred = PackID(oldTail.Sender, oldTail.Seq)
		}
	}
	switch {
	case len(t.buf) > 0:
		t.note = NoteNew
	case newestForged:
		t.note = NoteForged
	case !newestIsStamp:
		t.note = NoteForeign
	case same(t.newest, t.last) && t.lastEvent:
		t.note = NoteRepeat
	default:
		t.note = NoteStale
	}
	return t.buf
}

// Note classifies the event of the last New call; for NoteRepeat, newest
// is the message the event repeated.
func (t *Tail) Note() (note EventNote, newest Stamp) { return t.note, t.newest }

// String describes the tail for debugging.
func (t *Tail) String() string {
	return fmt.Sprintf("tail(have=%d last=%d/%d prev=%d/%d)", t.have, t.last.Sender, t.last.Seq, t.prev.Sender, t.prev.Seq)
}
