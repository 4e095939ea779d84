package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// fakeRoom is a scripted, in-memory chat server behind the engine's
// connection seam (Config.Connect): no sockets, no Socket.IO. Each
// connection delivers its events in order on its own goroutine, as a
// reader goroutine would. Hooks change its behaviour for one test.
type fakeRoom struct {
	mu      sync.Mutex
	history []string // message texts
	conns   []*fakeConn
	dials   int

	// silentJoin: `connecting` gets no `connected`.
	silentJoin bool
	// dropAfterJoin ends every session from the server's side right
	// after its `connected`.
	dropAfterJoin bool
	// messageCopies is how many messageWritten each joined socket gets per
	// write (0 means 1).
	messageCopies int
}

// serverCloses in a connection's inbox makes the fake server end it
// there, after the events before it were delivered.
const serverCloses = "\x00close"

type fakeConn struct {
	room   *fakeRoom
	on     func(sioclient.Event)
	inbox  chan sioclient.Event
	done   chan struct{}
	reader chan struct{} // closed when the reader goroutine ended
	once   sync.Once
	err    error
	joined bool // guarded by room.mu
}

func (r *fakeRoom) connect(ctx context.Context, opts sioclient.Options) (Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &fakeConn{room: r, on: opts.OnEvent, inbox: make(chan sioclient.Event, 1024), done: make(chan struct{}), reader: make(chan struct{})}
	r.mu.Lock()
	r.conns = append(r.conns, c)
	r.dials++
	r.mu.Unlock()
	go func() {
		defer close(c.reader)
		for {
			select {
			case ev := <-c.inbox:
				if ev.Name == serverCloses {
					go c.end(errors.New("fake: server closed the transport"))
					continue
				}
				c.on(ev)
			case <-c.done:
				return
			}
		}
	}()
	return c, nil
}

func (r *fakeRoom) listJSON() string {
	var b strings.Builder
	b.WriteString(`[{"messagesList":[`)
	for i, t := range r.history {
		if i > 0 {
			b.WriteByte(',')
		}
		q, _ := json.Marshal(t)
		fmt.Fprintf(&b, `{"username":"u","message":%s}`, q)
	}
	b.WriteString(`]}]`)
	return b.String()
}

func (c *fakeConn) Emit(_ context.Context, event string, args ...any) error {
	select {
	case <-c.done:
		return errors.New("fake: connection closed")
	default:
	}
	r := c.room
	r.mu.Lock()
	defer r.mu.Unlock()
	switch event {
	case "connecting":
		if r.silentJoin {
			return nil
		}
		c.joined = true
		c.push("connected", r.listJSON())
		if r.dropAfterJoin {
			c.push(serverCloses, "")
		}
	case "writeMessage":
		if !c.joined {
			return nil
		}
		r.history = append(r.history, args[0].(writeMessage).Message)
		list := r.listJSON()
		for _, o := range r.conns {
			if o.joined {
				for range max(1, r.messageCopies) {
					o.push("messageWritten", list)
				}
			}
		}
	}
	return nil
}

func (c *fakeConn) push(name, args string) {
	select {
	case c.inbox <- sioclient.Event{Name: name, Args: json.RawMessage(args), Received: time.Now()}:
	case <-c.done:
	}
}

// end closes the connection with err (nil: a clean close) and waits for
// its reader, so no event is delivered after it returns.
func (c *fakeConn) end(err error) {
	c.once.Do(func() {
		c.err = err
		c.room.mu.Lock()
		c.joined = false
		c.room.mu.Unlock()
		close(c.done)
	})
	<-c.reader
}

func (c *fakeConn) Close() error          { c.end(nil); return nil }
func (c *fakeConn) Abort() error          { c.end(errors.New("fake: aborted")); return nil }
func (c *fakeConn) Done() <-chan struct{} { return c.done }
func (c *fakeConn) Err() error            { <-c.done; return c.err }
