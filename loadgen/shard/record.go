// Package shard records one shard's results of a sharded load run and
// merges the shards of a run into one report, exactly.
//
// # Why replay rather than add up summaries
//
// A message sent by a user on one shard is owed to the sessions of every
// shard that were joined when it was sent and still there a delivery
// window later. No shard alone can tell what was owed, and summed per-shard
// figures would count a message that reached nobody on shard B as owed by
// nobody. So each shard writes its raw Results (the engine's own records,
// a few bytes each) to its report directory, and the merge replays every
// shard's records, interleaved by time, through one loadgen.Metrics: the
// same code that a single process running the whole plan uses, on the
// same records. Delivery accounting and latency histograms come out as
// that process's would (see the test that splits one run's records into
// shards and merges them back).
//
// # Files
//
// A shard's report directory holds, besides its own summary.json,
// junit.xml and report.html:
//
//   - results.bin.gz: the records, gzip-compressed (record.go);
//   - shard.json: the manifest, written last: run ID, shard I/N, start,
//     the plan's digest, the metrics configuration, and how the shard's
//     run ended (manifest.go). A directory without it is a shard that did
//     not finish writing, and the merge refuses it.
package shard

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/chatspec/chatspec/loadgen"
)

// Record format, version 1: a sequence of records, each
//
//	flags  byte   kind (bits 0-3), planned (4), abrupt (5), has error (6)
//	note   byte
//	user, session, sender, seq      uvarint (int32 fields as uint32)
//	at     varint  nanoseconds since the previous record's at
//	intended varint  at − intended, nanoseconds
//	latency  varint  nanoseconds
//	pred     uvarint
//	goroutines uvarint
//	[error]  class byte (1 refusal: event, code; 2 other: text, how),
//	         then its two strings, each uvarint length + bytes
//
// Times are deltas so that most fit in two to four bytes; zero fields cost
// one byte, which gzip then mostly removes.
const (
	flagPlanned  = 1 << 4
	flagAbrupt   = 1 << 5
	flagHasError = 1 << 6
	kindMask     = 0x0f

	errRefusal = 1
	errOther   = 2

	// maxString bounds a string read from a record: the files are input
	// like any other, and a corrupt length must not allocate the machine.
	maxString = 64 << 10
)

// encoder writes records to w.
type encoder struct {
	w      *bufio.Writer
	lastAt time.Duration
	buf    []byte
}

func newEncoder(w io.Writer) *encoder {
	return &encoder{w: bufio.NewWriterSize(w, 64<<10), buf: make([]byte, 0, 128)}
}

func (e *encoder) encode(r loadgen.Result) error {
	b := e.buf[:0]
	flags := byte(r.Kind) & kindMask
	if r.Planned {
		flags |= flagPlanned
	}
	if r.Abrupt {
		flags |= flagAbrupt
	}
	if r.Err != nil {
		flags |= flagHasError
	}
	b = append(b, flags, byte(r.Note))
	b = binary.AppendUvarint(b, uint64(uint32(r.User)))
	b = binary.AppendUvarint(b, uint64(uint32(r.Session)))
	b = binary.AppendUvarint(b, uint64(r.Sender))
	b = binary.AppendUvarint(b, uint64(r.Seq))
	b = binary.AppendVarint(b, int64(r.At-e.lastAt))
	e.lastAt = r.At
	b = binary.AppendVarint(b, int64(r.At-r.Intended))
	b = binary.AppendVarint(b, int64(r.Latency))
	b = binary.AppendUvarint(b, r.Pred)
	b = binary.AppendUvarint(b, uint64(uint32(r.Goroutines)))
	if r.Err != nil {
		var ref *loadgen.RefusalError
		if errors.As(r.Err, &ref) {
			b = append(b, errRefusal)
			b = appendString(b, ref.Event)
			b = appendString(b, ref.Code)
		} else {
			b = append(b, errOther)
			b = appendString(b, r.Err.Error())
			b = appendString(b, loadgen.EndedHow(r.Err))
		}
	}
	e.buf = b
	_, err := e.w.Write(b)
	return err
}

func appendString(b []byte, s string) []byte {
	if len(s) > maxString {
		s = s[:maxString]
	}
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads records written by encoder.
type decoder struct {
	r      *bufio.Reader
	lastAt time.Duration
	n      int64 // records read
}

func newDecoder(r io.Reader) *decoder { return &decoder{r: bufio.NewReaderSize(r, 64<<10)} }

// errCorrupt wraps every malformed record.
var errCorrupt = errors.New("corrupt record")

// decode reads the next record; io.EOF at a clean end.
func (d *decoder) decode() (loadgen.Result, error) {
	var r loadgen.Result
	flags, err := d.r.ReadByte()
	if err != nil {
		return r, err // io.EOF between records is the clean end
	}
	fail := func(what string, err error) (loadgen.Result, error) {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return loadgen.Result{}, fmt.Errorf("%w %d: %s: %v", errCorrupt, d.n+1, what, err)
	}
	r.Kind = loadgen.Kind(flags & kindMask)
	if r.Kind < loadgen.Connected || r.Kind > loadgen.Tick || flags&0x80 != 0 {
		return fail("flags", fmt.Errorf("byte %#x", flags))
	}
	r.Planned, r.Abrupt = flags&flagPlanned != 0, flags&flagAbrupt != 0
	note, err := d.r.ReadByte()
	if err != nil {
		return fail("note", err)
	}
	r.Note = loadgen.EventNote(note)
	var u [4]uint64
	for i := range u {
		if u[i], err = binary.ReadUvarint(d.r); err != nil || u[i] > 1<<32-1 {
			return fail("ids", errors.Join(err, errors.New("out of range")))
		}
	}
	r.User, r.Session, r.Sender, r.Seq = int32(uint32(u[0])), int32(uint32(u[1])), uint32(u[2]), uint32(u[3])
	var v [3]int64
	for i := range v {
		if v[i], err = binary.ReadVarint(d.r); err != nil {
			return fail("times", err)
		}
	}
	r.At = d.lastAt + time.Duration(v[0])
	d.lastAt = r.At
	r.Intended, r.Latency = r.At-time.Duration(v[1]), time.Duration(v[2])
	if r.Pred, err = binary.ReadUvarint(d.r); err != nil {
		return fail("pred", err)
	}
	g, err := binary.ReadUvarint(d.r)
	if err != nil || g > 1<<31-1 {
		return fail("goroutines", errors.Join(err, errors.New("out of range")))
	}
	r.Goroutines = int32(g)
	if flags&flagHasError != 0 {
		class, err := d.r.ReadByte()
		if err != nil {
			return fail("error class", err)
		}
		a, err := d.string()
		if err != nil {
			return fail("error", err)
		}
		b, err := d.string()
		if err != nil {
			return fail("error", err)
		}
		switch class {
		case errRefusal:
			r.Err = &loadgen.RefusalError{Event: a, Code: b}
		case errOther:
			r.Err = &loadgen.RecordedError{Text: a, How: b}
		default:
			return fail("error class", fmt.Errorf("%d", class))
		}
	}
	d.n++
	return r, nil
}

func (d *decoder) string() (string, error) {
	n, err := binary.ReadUvarint(d.r)
	if err != nil {
		return "", err
	}
	if n > maxString {
		return "", fmt.Errorf("string of %d bytes (at most %d)", n, maxString)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		return "", err
	}
	return string(b), nil
}
