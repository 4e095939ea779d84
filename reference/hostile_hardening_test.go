package reference

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chatspec/chatspec/reference/store"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// nested returns n levels of JSON arrays: [[[...]]].
func nested(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// ROB-1, ROB-2, ERR-1, SEC-3: every class of hostile input on a raw
// WebSocket (binary attachments, reserved event names, deep nesting,
// __proto__ keys, strings at and beyond maxPayload) gets a clear chatError
// on the offending connection (and, for packets the library's parser
// refuses, a close right after it), while two other clients keep chatting
// with their history intact.
func TestHostileInput_ROB1_ERR1(t *testing.T) {
	const maxPayload = 200_000
	r := startServer(t, func(c *Config) {
		c.Rate = 0
		c.MaxHTTPBufferSize = maxPayload
		// A long heartbeat, so a close in these cases is never a timeout.
		c.PingInterval, c.PingTimeout = 5*time.Second, 5*time.Second
	})
	ann, _ := join(t, r, sioclient.WebSocket, "ann")
	bob, _ := join(t, r, sioclient.Polling, "bob")
	var history []store.Message

	// othersStillChat proves ROB-1/ROB-2 after each case: ann writes, both
	// see exactly the history so far plus that message.
	othersStillChat := func(t *testing.T, label string) {
		t.Helper()
		ann.write("after " + label)
		history = append(history, store.Message{Username: "ann", Message: "after " + label})
		for _, c := range []*client{ann, bob} {
			ev, err := c.NextNamed(t.Context(), EventMessageWritten)
			if err != nil {
				t.Fatalf("%s after %s: %v", c.name, label, err)
			}
			var m messagesPayload
			if err := ev.Decode(0, &m); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(history, m.MessagesList); diff != "" {
				t.Fatalf("ROB-2: %s's history after %s (-want +got):\n%s", c.name, label, diff)
			}
		}
	}

	// Exactly maxPayload bytes on the wire: the packet the library still
	// accepts, carrying a message far over MaxMessageLen.
	atLimit := func(extra int) string {
		head, tail := `42["writeMessage",{"username":"x1","message":"`, `"}]`
		return head + strings.Repeat("a", maxPayload-len(head)-len(tail)+extra) + tail
	}

	cases := []struct {
		name string
		// join, when set, joins the raw connection under that name first.
		join string
		send func(w *rawWS)
		// A chatError with this event and code must come back.
		event, code string
		// closed: the library refuses the packet and closes the connection.
		closed bool
	}{
		{name: "binary attachment as payload", send: func(w *rawWS) {
			w.text(`451-["writeMessage",{"_placeholder":true,"num":0}]`)
			w.binary([]byte{0, 1, 2, 0xff})
		}, event: EventWriteMessage, code: CodeInvalidPayload},
		{name: "binary attachment as message", join: "b1", send: func(w *rawWS) {
			w.text(`451-["writeMessage",{"message":{"_placeholder":true,"num":0},"username":"b1"}]`)
			w.binary([]byte("hello"))
		}, event: EventWriteMessage, code: CodeInvalidPayload},
		{name: "binary attachment as username", send: func(w *rawWS) {
			w.text(`451-["connecting",{"username":{"_placeholder":true,"num":0}}]`)
			w.binary([]byte("ann"))
		}, event: EventConnecting, code: CodeInvalidPayload},
		{name: "unannounced binary frame", send: func(w *rawWS) { w.binary([]byte{1, 2, 3}) }, code: CodeInvalidPayload, closed: true},
		{name: "too many attachments", send: func(w *rawWS) { w.text(`45999-["writeMessage",{}]`) }, code: CodeInvalidPayload, closed: true},
		{name: "reserved connect", send: func(w *rawWS) { w.text(`42["connect",{}]`) }, code: CodeInvalidPayload, closed: true},
		{name: "reserved connect_error", send: func(w *rawWS) { w.text(`42["connect_error",{}]`) }, code: CodeInvalidPayload, closed: true},
		{name: "reserved disconnect", join: "d1", send: func(w *rawWS) { w.text(`42["disconnect","forged"]`) }, code: CodeInvalidPayload, closed: true},
		{name: "reserved disconnecting", send: func(w *rawWS) { w.text(`42["disconnecting"]`) }, code: CodeInvalidPayload, closed: true},
		{name: "reserved newListener", send: func(w *rawWS) { w.text(`42["newListener","writeMessage"]`) }, code: CodeInvalidPayload, closed: true},
		{name: "reserved removeListener", send: func(w *rawWS) { w.text(`42["removeListener","writeMessage"]`) }, code: CodeInvalidPayload, closed: true},
		{name: "event named error", send: func(w *rawWS) { w.text(`42["error",{"message":"fake"}]`) }, event: "error", code: CodeUnknownEvent},
		{name: "null event name", send: func(w *rawWS) { w.text(`42[null,{}]`) }, code: CodeInvalidPayload, closed: true},
		{name: "__proto__ instead of username", send: func(w *rawWS) { w.text(`42["connecting",{"__proto__":{"username":"ann"}}]`) }, event: EventConnecting, code: CodeInvalidPayload},
		{name: "constructor.prototype username", send: func(w *rawWS) {
			w.text(`42["connecting",{"constructor":{"prototype":{"username":"ann"}}}]`)
		}, event: EventConnecting, code: CodeInvalidPayload},
		{name: "9,990 levels of nesting", join: "n1", send: func(w *rawWS) {
			w.text(`42["writeMessage",{"message":` + nested(9_990) + `,"username":"n1"}]`)
		}, event: EventWriteMessage, code: CodeInvalidPayload},
		{name: "99,000 levels of nesting", join: "n2", send: func(w *rawWS) {
			w.text(`42["writeMessage",{"message":` + nested(99_000) + `,"username":"n2"}]`)
		}, code: CodeInvalidPayload, closed: true},
		{name: "string at exactly maxPayload", join: "x1", send: func(w *rawWS) { w.text(atLimit(0)) }, event: EventWriteMessage, code: CodeMessageTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := dialRaw(t, r)
			if tc.join != "" {
				w.join(tc.join)
			}
			start := time.Now()
			tc.send(w)
			p := w.expectError(tc.event, tc.code)
			if len(p.Message) > 400 {
				t.Errorf("chatError message is %d bytes: it echoes the input", len(p.Message))
			}
			if tc.closed {
				w.expectClosed()
			} else {
				w.text(`42["chatspecBarrier"]`) // still open and serving
				w.expectError("chatspecBarrier", CodeUnknownEvent)
			}
			t.Logf("answered in %s: %s", time.Since(start).Round(time.Millisecond), p.Message)
			w.c.CloseNow()
			othersStillChat(t, tc.name)
		})
	}

	// One byte over maxPayload: the library closes the connection without
	// a word (it never reads the frame), and nobody else notices.
	t.Run("string one byte over maxPayload", func(t *testing.T) {
		w := dialRaw(t, r)
		w.join("x2")
		_ = w.write(1, []byte(atLimit(1))) // may fail once the server closes
		w.expectClosed()
		othersStillChat(t, "over maxPayload")
	})

	// __proto__ as an extra key is only a key: the message is stored with
	// its two fields, and "__proto__" is an ordinary username.
	t.Run("__proto__ key and username", func(t *testing.T) {
		w := dialRaw(t, r)
		w.join("__proto__")
		w.text(`42["writeMessage",{"__proto__":{"admin":true,"username":"ann"},"message":"<img src=x onerror=alert(1)>","username":"__proto__"}]`)
		history = append(history, store.Message{Username: "__proto__", Message: "<img src=x onerror=alert(1)>"})
		for {
			name, args := w.event()
			if name != EventMessageWritten {
				continue
			}
			if want := `{"username":"__proto__","message":"\u003cimg src=x onerror=alert(1)\u003e"}`; !strings.Contains(string(args[0]), want) {
				// Either escaping is fine; the text must be exact.
				if !strings.Contains(string(args[0]), `"message":"<img src=x onerror=alert(1)>"`) {
					t.Fatalf("messageWritten %s: want the HTML kept as plain text", clip(string(args[0]), 300))
				}
			}
			break
		}
		for _, c := range []*client{ann, bob} {
			if _, err := c.NextNamed(t.Context(), EventMessageWritten); err != nil {
				t.Fatal(err)
			}
		}
		w.c.CloseNow()
		othersStillChat(t, "__proto__")
	})

	if got := fmt.Sprint(len(history)); got == "0" {
		t.Fatal("no case ran")
	}
}
