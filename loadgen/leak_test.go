package loadgen

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chatspec/chatspec/loadgen/faultychat"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// TestEngineLeavesNoGoroutines runs users over every transport, with
// churn, and checks that once the run and the server are over nothing of
// the engine is left running.
func TestEngineLeavesNoGoroutines(t *testing.T) {
	opts := goleak.IgnoreCurrent()
	srv, err := faultychat.Start(faultychat.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	arr, _ := Plan{Users: 9, Ramp: 200 * time.Millisecond, Duration: 1500 * time.Millisecond, Linger: 300 * time.Millisecond}.Arrivals()
	e, err := New(Config{RunID: "leak", Arrivals: arr, Pacer: PoissonPacer{Mean: 100 * time.Millisecond}, Window: 300 * time.Millisecond,
		Churn: 0.5, ChurnPause: 100 * time.Millisecond, Seed: 9,
		Transports: []TransportShare{{sioclient.WebSocket, 1}, {sioclient.Polling, 1}, {sioclient.Upgrade, 1}},
		Dial:       func(int) sioclient.Options { return sioclient.Options{URL: srv.URL()} }})
	if err != nil {
		t.Fatal(err)
	}
	s := Measure(context.Background(), e, NewMetrics(MetricsConfig{Users: 9, Window: 300 * time.Millisecond}), true)
	if s.Messages.Sent == 0 || s.Users.Reconnects == 0 {
		t.Errorf("the run did too little to prove anything: %+v %+v", s.Messages, s.Users)
	}
	srv.Close()
	goleak.VerifyNone(t, opts, libraryTimers)
}

// The server library's timers (ping, ping timeout, a polling
// transport's 30 s close timeout) each end by themselves after their
// duration and hold nothing of ours; the library leaves some running
// past a close. A goroutine of ours or a connection left open is still
// caught.
var libraryTimers = goleak.IgnoreTopFunction("github.com/zishang520/socket.io/v3/pkg/utils.SetTimeout.func1")
