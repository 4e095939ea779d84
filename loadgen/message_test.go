package loadgen

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStampTextRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		s    Stamp
		size int
	}{
		{"no padding", Stamp{Sender: 0, Seq: 1, Intended: 1700000000123456789}, 0},
		{"padded", Stamp{Sender: 9999, Seq: 42, Intended: 1}, 200},
		{"size smaller than stamp", Stamp{Sender: 3, Seq: 7, Intended: 99}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.s.Text(testKey("r1"), tt.size)
			if tt.size > 40 && len(text) != tt.size {
				t.Errorf("len(text) = %d, want %d", len(text), tt.size)
			}
			got, ok := ParseText(testKey("r1"), text)
			if !ok {
				t.Fatalf("ParseText(%q) failed", text)
			}
			if diff := cmp.Diff(tt.s, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			if _, ok := ParseText(testKey("r2"), text); ok {
				t.Errorf("ParseText with another run ID accepted %q", text)
			}
		})
	}
}

func TestParseTextRejects(t *testing.T) {
	for _, text := range []string{
		"", "hello", "cs1:r1:", "cs1:r1:1:2", "cs1:r1:1:2:", "cs1:r1:a:2:3", "cs2:r1:1:2:3x", "cs0:r1:1:2:3", "cs2:r1:1:2:3:000000000000", "cs2:r1:1:2:3:zz",
		"cs2:r1:1:2:99999999999999999999999", "cs2:r1:-1:2:3",
	} {
		if s, ok := ParseText(testKey("r1"), text); ok {
			t.Errorf("ParseText(%q) = %+v, want rejection", text, s)
		}
	}
}

func TestValidRunID(t *testing.T) {
	for id, want := range map[string]bool{"a1b2": true, "": false, "A": false, "a:b": false, "0123456789abcdefg": false, "x": true} {
		if got := ValidRunID(id); got != want {
			t.Errorf("ValidRunID(%q) = %v, want %v", id, got, want)
		}
	}
}

// history renders a messageWritten argument list the way a server would:
// foreign messages mixed with stamped ones.
func history(t *testing.T, texts ...string) []byte {
	t.Helper()
	type msg struct {
		Username string `json:"username"`
		Message  string `json:"message"`
	}
	list := make([]msg, len(texts))
	for i, s := range texts {
		list[i] = msg{Username: "u", Message: s}
	}
	b, err := json.Marshal([]any{map[string]any{"messagesList": list}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func st(sender, seq uint32) string {
	return Stamp{Sender: sender, Seq: seq, Intended: int64(seq) * 1000}.Text(testKey("run"), 0)
}

func ids(ss []Seen) string {
	var b []string
	for _, s := range ss {
		b = append(b, fmt.Sprintf("%d/%d", s.Sender, s.Seq))
	}
	return strings.Join(b, " ")
}

func TestTailNew(t *testing.T) {
	tests := []struct {
		name   string
		reset  []string   // connected history
		events [][]string // successive messageWritten histories
		want   []string   // new stamps per event
	}{
		{
			name:   "append one at a time",
			events: [][]string{{st(1, 1)}, {st(1, 1), st(2, 1)}, {st(1, 1), st(2, 1), st(1, 2)}},
			want:   []string{"1/1", "2/1", "1/2"},
		},
		{
			name:   "connected history is not new",
			reset:  []string{st(5, 1), st(5, 2)},
			events: [][]string{{st(5, 1), st(5, 2), st(1, 1)}},
			want:   []string{"1/1"},
		},
		{
			name:   "foreign messages are skipped",
			reset:  []string{"hello", st(5, 1)},
			events: [][]string{{"hello", st(5, 1), "cs1:other:1:1:1", "bye", st(1, 1), "cs1:run:oops"}},
			want:   []string{"1/1"},
		},
		{
			name:   "several new at once (a missed broadcast)",
			events: [][]string{{st(1, 1)}, {st(1, 1), st(2, 1), st(3, 1), st(1, 2)}},
			want:   []string{"1/1", "2/1 3/1 1/2"},
		},
		{
			name:   "capped history dropped the old tail",
			events: [][]string{{st(1, 1), st(1, 2)}, {st(1, 4), st(1, 5)}},
			want:   []string{"1/1 1/2", "1/4 1/5"},
		},
		{
			name:   "same history twice has nothing new",
			events: [][]string{{st(1, 1), st(1, 2)}, {st(1, 1), st(1, 2)}},
			want:   []string{"1/1 1/2", ""},
		},
		{
			name:   "message appended twice is new twice",
			events: [][]string{{st(1, 1), st(2, 1)}, {st(1, 1), st(2, 1), st(2, 1)}},
			want:   []string{"1/1 2/1", "2/1"},
		},
		{
			name:   "message appended twice with one known stamp",
			events: [][]string{{st(2, 1)}, {st(2, 1), st(2, 1)}},
			want:   []string{"2/1", ""},
		},
		{
			name:   "padded texts",
			events: [][]string{{Stamp{Sender: 1, Seq: 1}.Text(testKey("run"), 100)}, {Stamp{Sender: 1, Seq: 1}.Text(testKey("run"), 100), Stamp{Sender: 7, Seq: 3}.Text(testKey("run"), 100)}},
			want:   []string{"1/1", "7/3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tail := NewTail(testKey("run"))
			if tt.reset != nil {
				tail.Reset(history(t, tt.reset...))
			}
			for i, ev := range tt.events {
				if got := ids(tail.New(history(t, ev...))); got != tt.want[i] {
					t.Errorf("event %d: new = %q, want %q (%v)", i, got, tt.want[i], tail)
				}
			}
		})
	}
}

func BenchmarkTailNew(b *testing.B) {
	// A 20-message capped history of 100-byte messages, one new per event.
	texts := make([]string, 0, 1000)
	for i := range cap(texts) {
		texts = append(texts, Stamp{Sender: uint32(i % 50), Seq: uint32(i), Intended: 1}.Text(testKey("run"), 100))
	}
	raws := make([][]byte, 0, 900)
	for i := 20; i < 920; i++ {
		b, _ := json.Marshal([]any{map[string]any{"messagesList": texts[i-20 : i]}})
		raws = append(raws, b)
	}
	tail := NewTail(testKey("run"))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%len(raws) == 0 {
			tail = NewTail(testKey("run")) // the lists wrap around: a new receiver
		}
		if n := len(tail.New(raws[i%len(raws)])); n == 0 && i%len(raws) != 0 {
			b.Fatalf("no new stamp at %d", i)
		}
	}
}

// testKey returns one key per run ID for the whole test binary, so tests
// can make and parse stamps.
func testKey(id string) *RunKey {
	testKeysMu.Lock()
	defer testKeysMu.Unlock()
	if k, ok := testKeys[id]; ok {
		return k
	}
	k, err := NewRunKey(id)
	if err != nil {
		panic(err)
	}
	testKeys[id] = k
	return k
}

var (
	testKeysMu sync.Mutex
	testKeys   = map[string]*RunKey{}
)
