package spec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/chatspec/chatspec/spec/framework"
)

// chatEvents are the server events of CONTRACT.md §2; anything else a
// server sends is its own (an error report, ERR-1).
var chatEvents = map[string]bool{"connected": true, "joined": true, "messageWritten": true, "disconnected": true}

// badInput is one hostile emit: an event name and its raw JSON arguments.
type badInput struct {
	event string
	args  []json.RawMessage
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func nested(depth int, leaf string) string {
	return strings.Repeat("[", depth) + leaf + strings.Repeat("]", depth)
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// badConnecting returns malformed connecting payloads; every username-like
// string in them contains tok, so that a server that lists one is caught.
func badConnecting(tok string) []badInput {
	return []badInput{
		{"connecting", nil},
		{"connecting", []json.RawMessage{raw(`null`)}},
		{"connecting", []json.RawMessage{raw(`42`)}},
		{"connecting", []json.RawMessage{raw(quote(tok + "-string"))}},
		{"connecting", []json.RawMessage{raw(`[` + quote(tok+"-array") + `]`)}},
		{"connecting", []json.RawMessage{raw(`{}`)}},
		{"connecting", []json.RawMessage{raw(`{"username":42}`)}},
		{"connecting", []json.RawMessage{raw(`{"username":null}`)}},
		{"connecting", []json.RawMessage{raw(`{"username":[` + quote(tok+"-uarray") + `]}`)}},
		{"connecting", []json.RawMessage{raw(`{"username":{"name":` + quote(tok+"-uobject") + `}}`)}},
		{"connecting", []json.RawMessage{raw(`{"__proto__":{"username":` + quote(tok+"-proto") + `}}`)}},
		{"connecting", []json.RawMessage{raw(`{"constructor":{"prototype":{"username":` + quote(tok+"-ctor") + `}}}`)}},
		{"connecting", []json.RawMessage{raw(`{"username":` + nested(500, quote(tok+"-deep")) + `}`)}},
		{tok + "-unknown-event", []json.RawMessage{raw(`{"username":` + quote(tok+"-unknown") + `}`)}},
	}
}

// badWrites returns malformed writeMessage payloads from user; every text
// in them contains tok.
func badWrites(tok, user string) []badInput {
	u := quote(user)
	return []badInput{
		{"writeMessage", nil},
		{"writeMessage", []json.RawMessage{raw(`null`)}},
		{"writeMessage", []json.RawMessage{raw(`42`)}},
		{"writeMessage", []json.RawMessage{raw(quote(tok + "-string"))}},
		{"writeMessage", []json.RawMessage{raw(`[` + quote(tok+"-array") + `]`)}},
		{"writeMessage", []json.RawMessage{raw(`{}`)}},
		{"writeMessage", []json.RawMessage{raw(`{"message":42,"username":` + u + `}`)}},
		{"writeMessage", []json.RawMessage{raw(`{"message":` + quote(tok+"-no-username") + `}`)}},
		{"writeMessage", []json.RawMessage{raw(`{"message":[` + quote(tok+"-marray") + `],"username":` + u + `}`)}},
		{"writeMessage", []json.RawMessage{raw(`{"message":{"text":` + quote(tok+"-mobject") + `},"username":` + u + `}`)}},
		{"writeMessage", []json.RawMessage{raw(`{"message":` + nested(500, quote(tok+"-deep")) + `,"username":` + u + `}`)}},
		{"writeMessage", []json.RawMessage{raw(`{"__proto__":{"message":` + quote(tok+"-proto") + `},"username":` + u + `}`)}},
		{"writeMessage", []json.RawMessage{raw(`{"message":` + quote(tok+"-wrong-user-type") + `,"username":7}`)}},
	}
}

// malformedPackets are Socket.IO packets no parser should accept; each
// goes on its own connection, since a server may rightly close on one.
var malformedPackets = []string{
	`2[`,
	`2{"username":"x"}`,
	`2["connecting"`,
	`2["writeMessage",{"message":"x","username":"y"}]trailing`,
	`9`,
	`2/no-such-namespace,["connecting",{"username":"x"}]`,
	`2["",{}]`,
	`2[42,{}]`,
	`51-["writeMessage",{"_placeholder":true,"num":0}]`,
}

func sendBad(ctx context.Context, c *framework.Client, in []badInput, watch ...*killWatch) {
	for _, b := range in {
		args := make([]any, len(b.args))
		for i, a := range b.args {
			args[i] = a
		}
		if err := c.Conn().Emit(ctx, b.event, args...); err != nil {
			return // the server closed the connection: allowed
		}
		for _, w := range watch {
			w.after(b.String())
		}
	}
}

// String shows the input as the packet a user could replay.
func (b badInput) String() string {
	var parts []string
	for _, a := range b.args {
		s := string(a)
		if len(s) > 120 {
			s = s[:60] + fmt.Sprintf("...(%d bytes)...", len(s)-100) + s[len(s)-40:]
		}
		parts = append(parts, s)
	}
	return fmt.Sprintf("emit %q %s", b.event, strings.Join(parts, ", "))
}

// killWatch finds the first bad input after which the server stopped
// serving: it watches a bystander's connection, and after each input
// waits a short window for that connection to end. A server that crashes
// on an input ends every connection, so the culprit is named exactly
// instead of the case failing later with "target unreachable".
type killWatch struct {
	f         *framework.Framework
	bystander *framework.Client
}

// killWindow is how long each input is given to kill the server. It is a
// bound on an awaited event (the bystander's connection ending), not a sleep.
const killWindow = 30 * time.Millisecond

func (w *killWatch) after(input string) {
	GinkgoHelper()
	select {
	case <-w.bystander.Conn().Done():
		w.f.Failf("the server stopped serving right after this bad input (on another socket): %s\n"+
			"%s's connection ended: %v", input, w.bystander.User, w.bystander.Conn().Err())
	case <-time.After(killWindow):
	}
}

// rawEvent builds a Socket.IO EVENT packet for the configured namespace.
func rawPacket(f *framework.Framework, p string) string {
	ns := f.Config().Target.DialOptions(0).Namespace
	if ns == "" || ns == "/" || !strings.HasPrefix(p, "2[") {
		return p
	}
	return "2" + ns + "," + p[1:]
}

// Bad input: CONTRACT.md §7 (ROB, ERR). These cases run after every
// other (SpecPriority): bad input a weak server stores would otherwise show
// up in the lists the chat cases read.
var _ = Describe("Bad input (ROB, ERR)", SpecPriority(-20), func() {
	f := framework.New()

	// ROB-1 (robust, MUST): after any bad input on one socket, the server
	// keeps serving every other socket, and history is intact.
	It("ROB-1 after bad input on one socket, every other socket keeps chatting and history is intact", Label(framework.GradeRobust), func(ctx SpecContext) {
		alice, _ := f.Joined(ctx, "alice")
		bob, _ := f.Joined(ctx, "bob")
		alice.AwaitJoinOf(ctx, bob)
		before := f.Text("before-bad-input")
		alice.Write(ctx, before)
		bob.AwaitMessage(ctx, before)

		tok := f.Text("bad")
		watch := &killWatch{f: f, bystander: bob}
		unjoined := f.Connect(ctx, "mallory")
		sendBad(ctx, unjoined, badConnecting(tok), watch)
		sendBad(ctx, unjoined, badWrites(tok, unjoined.User), watch)
		joined, _ := f.Joined(ctx, "mallory2")
		sendBad(ctx, joined, badWrites(tok, joined.User), watch)
		sendBad(ctx, joined, badConnecting(tok), watch)
		for i, p := range malformedPackets {
			m := f.Connect(ctx, fmt.Sprintf("malformed%d", i))
			if m.SendRaw(ctx, rawPacket(f, p)) == nil {
				watch.after(fmt.Sprintf("the raw Socket.IO packet %q", rawPacket(f, p)))
			}
		}

		after := f.Text("after-bad-input")
		alice.Write(ctx, after)
		bob.AwaitMessage(ctx, after)
		alice.AwaitWritten(ctx, after)
		carol, cc := f.Joined(ctx, "carol")
		f.Verify(cc.Payload.Lists(alice.User) && cc.Payload.Lists(bob.User),
			"a socket joining after the bad input sees alice and bob listed", fmt.Sprintf("%q", cc.Payload.Usernames()))
		f.Verify(cc.Payload.MessageIndex(before) >= 0 && cc.Payload.MessageIndex(after) >= 0,
			"history still holds the messages written before and after the bad input",
			fmt.Sprintf("before at %d, after at %d", cc.Payload.MessageIndex(before), cc.Payload.MessageIndex(after)))
		reply := f.Text("carol-writes")
		carol.Write(ctx, reply)
		alice.AwaitMessage(ctx, reply)
		bob.AwaitMessage(ctx, reply)
	})

	// ROB-2 (robust, SHOULD): bad input changes no state: no user is
	// listed and no message appended because of it.
	It("ROB-2 bad input lists no user and appends no message", Label(framework.GradeRobust), func(ctx SpecContext) {
		observer, _ := f.Joined(ctx, "observer")
		tok := f.Text("rob2")
		mallory := f.Connect(ctx, "mallory")
		sendBad(ctx, mallory, badConnecting(tok))
		sendBad(ctx, mallory, badWrites(tok, mallory.User))
		// The valid join comes after the bad input on the same connection,
		// so the server has processed all of it when the observer sees it;
		// so does the valid message after the second round. A server may
		// close the connection on bad input instead: then a fresh socket
		// reads the state the server kept.
		_ = mallory.Conn().Emit(ctx, "connecting", map[string]any{"username": mallory.User})
		last := f.Text("rob2-valid")
		if _, ok := observer.TryAwaitJoinOf(ctx, f.Config().StepTimeout, mallory); ok {
			sendBad(ctx, mallory, badWrites(tok, mallory.User))
			sendBad(ctx, mallory, badConnecting(tok))
			if mallory.Conn().Emit(ctx, "writeMessage", map[string]any{"message": last, "username": mallory.User}) == nil {
				observer.TryAwait(ctx, f.Config().StepTimeout, "messageWritten", framework.HasMessage(last))
			}
		}
		if ended, _ := mallory.Ended(); !ended && observer.Matching(0, -1, "messageWritten", framework.HasMessage(last)) == nil {
			f.Failf("mallory's valid join and message after the bad input never reached the observer, though the connection stayed open")
		}
		_, late := f.Joined(ctx, "late")
		for _, ev := range append(observer.Events(), late) {
			for _, u := range ev.Payload.Usernames() {
				f.Verify(!strings.Contains(u, tok), "no username from bad input is ever listed",
					fmt.Sprintf("%s #%d lists %q", ev.Name, ev.Index, u))
			}
			for _, m := range ev.Payload.MessagesList {
				// Either field: a server may have swapped them (MSG-2's).
				f.Verify(!(strings.Contains(m.Message, tok) || strings.Contains(m.Username, tok)) || m.Is(last),
					"no message from bad input is ever stored or broadcast",
					fmt.Sprintf("%s #%d carries %+v", ev.Name, ev.Index, m))
			}
		}
	})

	// ROB-3 (robust, SHOULD): the server stays up after a burst of bad
	// input from many sockets at once.
	It("ROB-3 the server survives a burst of bad input from many sockets at once", Label(framework.GradeRobust), func(ctx SpecContext) {
		observer, _ := f.Joined(ctx, "observer")
		tok := f.Text("rob3")
		var clients []*framework.Client
		for i := range 20 {
			clients = append(clients, f.Connect(ctx, fmt.Sprintf("burst%d", i)))
		}
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() {
				sendBad(ctx, c, badConnecting(tok)[:6])
				sendBad(ctx, c, badWrites(tok, c.User)[:6])
				_ = c.SendRaw(ctx, rawPacket(f, malformedPackets[i%len(malformedPackets)]))
				c.Abort()
			})
		}
		wg.Wait()
		carol, cc := f.Joined(ctx, "carol")
		f.Verify(cc.Payload.Lists(observer.User), "a new joiner after the burst sees the observer listed", fmt.Sprintf("%q", cc.Payload.Usernames()))
		text := f.Text("still-up")
		observer.Write(ctx, text)
		carol.AwaitMessage(ctx, text)
		observer.AwaitWritten(ctx, text)
		reply := f.Text("carol")
		carol.Write(ctx, reply)
		observer.AwaitMessage(ctx, reply)
	})

	// ERR-1 (robust, SHOULD): the server tells the offending socket why it
	// refused an event, on that socket only. The format is open: an
	// acknowledgement, or any event that is not one of the chat events.
	It("ERR-1 a refused event is reported to the offending socket only", Label(framework.GradeRobust), func(ctx SpecContext) {
		observer, _ := f.Joined(ctx, "observer")
		mallory, _ := f.Joined(ctx, "mallory")
		observer.AwaitJoinOf(ctx, mallory)
		// Whatever the joins caused (events the contract does not name, such
		// as a user count) arrives before each socket's own barrier, so it is
		// never taken for the refusal's report.
		malBarrier := mallory.Barrier(ctx)
		observer.Barrier(ctx)
		obsMark := observer.Mark()
		ackCtx, cancel := context.WithTimeout(ctx, f.Config().StepTimeout)
		ack, ackErr := mallory.Conn().EmitWithAck(ackCtx, "writeMessage", raw(`{"message":42,"username":`+quote(mallory.User)+`}`))
		cancel()
		report, evOK := mallory.TryAwaitFunc(ctx, f.Config().QuietWindow, func(r framework.Received) bool {
			return r.Index > malBarrier.Index && !chatEvents[r.Name]
		})
		// An acknowledgement tells the socket why only if it says something:
		// `[]` or `[null]` is a bare receipt.
		acked := ackErr == nil && !emptyArgs(ack)
		f.Verify(acked || evOK,
			"the socket that sent writeMessage {message: 42} is told it was refused (an acknowledgement with content, or an error event)",
			fmt.Sprintf("no acknowledgement with content (ack %s, %v) and no non-chat event", string(ack), ackErr))
		if acked {
			f.Finding("refusal acknowledged with %s", string(ack))
		}
		if evOK {
			f.Finding("refusal reported as event %q %s", report.Name, string(report.Args))
			barrier := observer.Barrier(ctx)
			observer.ExpectNone(obsMark, barrier, "another socket received the error report meant for the offender", report.Name)
		}
	})
})

// emptyArgs reports an argument list with nothing in it: `[]`, or only
// nulls.
func emptyArgs(args json.RawMessage) bool {
	var list []json.RawMessage
	if err := json.Unmarshal(args, &list); err != nil {
		return false // not a list: something was said
	}
	for _, a := range list {
		if string(bytes.TrimSpace(a)) != "null" {
			return false
		}
	}
	return true
}
