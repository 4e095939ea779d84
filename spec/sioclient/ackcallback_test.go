package sioclient

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// EmitWithAckCallback: each ack reaches its own callback, in receive
// order with the events around it, and an ack the server never sends
// leaves nothing behind once the connection ends.
func TestAckCallbackKeepsReceiveOrder(t *testing.T) {
	for _, tr := range allTransports {
		t.Run(string(tr), func(t *testing.T) {
			ts := newTestServer(t, serverConfig{onConnect: func(s *socket.Socket) {
				// "answer" emits "before", then acks with its argument;
				// "ignore" never acks.
				s.On("answer", func(args ...any) {
					ack := args[len(args)-1].(func([]any, error))
					_ = s.Emit("before", args[0])
					ack([]any{args[0]}, nil)
				})
				s.On("ignore", func(...any) {})
			}})
			var mu sync.Mutex
			var seen []string
			record := func(s string) { mu.Lock(); seen = append(seen, s); mu.Unlock() }
			c := ts.dial(t, Options{URL: ts.URL, Transport: tr, OnEvent: func(ev Event) { record(ev.Name + string(ev.Args)) }})
			ctx := ctxT(t, 5*time.Second)
			if err := c.EmitWithAckCallback(ctx, func(json.RawMessage) { record("never") }, "ignore"); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			for i := range 3 {
				onAck := func(args json.RawMessage) {
					record("ack" + string(args))
					if i == 2 {
						close(done)
					}
				}
				if err := c.EmitWithAckCallback(ctx, onAck, "answer", i); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-done:
			case <-ctx.Done():
				t.Fatal("no ack for the third write")
			}
			mu.Lock()
			got := fmt.Sprint(seen)
			mu.Unlock()
			if want := "[before[0] ack[0] before[1] ack[1] before[2] ack[2]]"; got != want {
				t.Errorf("events and acks %s, want %s", got, want)
			}
			c.ackMu.Lock()
			pending := len(c.ackFns)
			c.ackMu.Unlock()
			if pending != 1 {
				t.Errorf("%d callbacks pending, want 1 (the unanswered write)", pending)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if fmt.Sprint(seen) != got {
				t.Errorf("after Close: %v, want no further call", seen)
			}
		})
	}
}

// HeartbeatLag: a ping that comes 600 ms later than pingInterval after the
// one before is measured as at least that late.
func TestHeartbeatLagMeasuresALatePing(t *testing.T) {
	var n atomic.Int32
	url := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			fmt.Fprint(w, "ok")
			return
		}
		switch n.Add(1) {
		case 1:
			fmt.Fprint(w, `0{"sid":"a","upgrades":[],"pingInterval":100,"pingTimeout":5000,"maxPayload":1000000}`)
		case 2:
			fmt.Fprint(w, `40{"sid":"s1"}`)
		case 3:
			fmt.Fprint(w, "2")
		case 4:
			time.Sleep(100 * time.Millisecond)
			fmt.Fprint(w, "2")
		case 5:
			time.Sleep(700 * time.Millisecond)
			fmt.Fprint(w, "2")
		default:
			<-r.Context().Done()
		}
	})
	c, err := Dial(ctxT(t, 5*time.Second), Options{URL: url, Transport: Polling})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() < 6 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := c.HeartbeatLag(); got < 550*time.Millisecond {
		t.Errorf("HeartbeatLag = %s after a ping 600ms late, want at least 550ms", got)
	}
}
