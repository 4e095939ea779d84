package spec

import (
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"

	"github.com/chatspec/chatspec/spec/framework"
)

// Seed-style clients: CONTRACT.md §10 (SEED). Run with the SEC cases, whose
// SEC-2 this client's pattern violates.
var _ = Describe("Seed-style clients (SEED)", SpecPriority(-10), func() {
	f := framework.New()

	// SEED-1 (info): a client written like the seed's useSocket hook opens
	// two connections to the same server (the init request, then io()
	// twice), joins on the first and writes every message on the second,
	// which never joins. Reported: whether its message reaches the chat.
	It("SEED-1 a client written like the seed's useSocket (two connections, writes on the unjoined one) can chat", Label(framework.GradeInfo), func(ctx SpecContext) {
		observer, _ := f.Joined(ctx, "observer")
		// The hook: `const socket = io(); setWs(io())`, both before any
		// event; then `connecting` on the first once it is connected.
		socket := f.Connect(ctx, "socket")
		ws := f.Connect(ctx, "ws", framework.As(socket.User), framework.Beside(socket))
		socket.Join(ctx)
		observer.AwaitJoinOf(ctx, socket)
		// sendMessage: `ws.emit('writeMessage', {...data, username})`, once
		// the page shows the chat (after connected, as a user types).
		text := f.Text("seed-style write")
		ws.Write(ctx, text)

		// Wait for a sign of the outcome on either side: the observer has the
		// message, or the writing socket was told something (its own copy
		// of the broadcast, an error report) or closed. Then the observer
		// gets a settle window, or the full step if the writer's copy shows
		// the server accepted the message.
		step := f.Config().StepTimeout
		hasText := func(evs []framework.Received) bool {
			for _, e := range evs {
				if e.Name == "messageWritten" && e.Payload.MessageIndex(text) >= 0 {
					return true
				}
			}
			return false
		}
		ws.WaitUntil(ctx, step, func(evs []framework.Received) bool {
			ended, _ := ws.Ended()
			return ended || hasText(observer.Events()) || hasText(evs) || len(refusals(evs)) > 0
		})
		wait := settleWindow(f)
		if hasText(ws.Events()) {
			wait = step
		}
		ev, delivered := observer.TryAwait(ctx, wait, "messageWritten", framework.HasMessage(text))
		if delivered {
			m := ev.Payload.MessagesList[ev.Payload.MessageIndex(text)]
			f.Finding("seed-style clients supported: yes: the write on the socket that never joined reached the chat as %q's; "+
				"the server accepts writeMessage from an unjoined socket, which SEC-2 forbids", m.Author(text))
			return
		}
		f.Finding("seed-style clients supported: no: %s; a client written like the seed's useSocket cannot send a message "+
			"to this server (it must call io() once, or the server must serve such clients)", whyUndelivered(ws, f.Config().StepTimeout.String()))
	})
})

// whyUndelivered says what the writing socket saw instead of its message:
// the server's refusal (any non-chat event, ERR-1), a closed connection,
// or nothing.
func whyUndelivered(ws *framework.Client, waited string) string {
	told := refusals(ws.Events())
	switch ended, err := ws.Ended(); {
	case len(told) > 0:
		return "the server refused the write: " + strings.Join(told, "; ")
	case ended:
		return fmt.Sprintf("the server closed the writing socket (%v)", err)
	default:
		return fmt.Sprintf("the message reached nobody within %s and the writing socket was told nothing", waited)
	}
}

// refusals renders the events that are not chat events (a server's error
// reports, ERR-1) among evs.
func refusals(evs []framework.Received) []string {
	var told []string
	for _, ev := range evs {
		if !chatEvents[ev.Name] {
			told = append(told, fmt.Sprintf("%s %s", ev.Name, clipText(string(ev.Args), 300)))
		}
	}
	return told
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
