package interop

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chatspec/chatspec/loadgen"
	"github.com/chatspec/chatspec/loadgen/threshold"
	"github.com/chatspec/chatspec/spec/sioclient"
	"github.com/chatspec/chatspec/spec/target"
)

// runLoad drives a short load (users on a websocket/polling/upgrade mix,
// each making the init request first) against a Node server, as `chatspec
// load --target URL --init-path /api/socket` does, and returns its summary
// with gates applied.
func runLoad(t *testing.T, url string, gates ...string) *loadgen.Summary {
	t.Helper()
	return runLoadWith(t, url, nil, gates...)
}

// runLoadWith is runLoad with the engine's configuration adjusted by tune
// (users linger for the Window tune leaves).
func runLoadWith(t *testing.T, url string, tune func(*loadgen.Config), gates ...string) *loadgen.Summary {
	t.Helper()
	opts := &target.Options{Targets: []string{url}, Path: "/socket.io/", Namespace: "/", InitPath: "/api/socket", ConnectTimeout: 5 * time.Second}
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	const users = 16
	cfg := loadgen.Config{
		RunID:       "node1",
		Pacer:       loadgen.PoissonPacer{Mean: 200 * time.Millisecond},
		MessageSize: 64,
		Window:      time.Second,
		JoinTimeout: 5 * time.Second,
		Transports: []loadgen.TransportShare{
			{Transport: sioclient.WebSocket, Weight: 2}, {Transport: sioclient.Polling, Weight: 1}, {Transport: sioclient.Upgrade, Weight: 1},
		},
		Seed:        3,
		StopTimeout: 3 * time.Second,
		Dial:        opts.DialOptions,
		Init:        opts.Init,
	}
	if tune != nil {
		tune(&cfg)
	}
	arr, err := loadgen.Plan{Users: users, Ramp: 500 * time.Millisecond, Duration: 3 * time.Second, Linger: cfg.Window}.Arrivals()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Arrivals = arr
	e, err := loadgen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s := loadgen.Measure(ctx, e, loadgen.NewMetrics(e.MetricsConfig()), false)
	var list threshold.List
	for _, g := range gates {
		if err := list.Set(g); err != nil {
			t.Fatal(err)
		}
	}
	s.ApplyThresholds(list)
	t.Logf("ended %s; users %+v; messages %+v; fanout p99 %.1fms", s.Ended, s.Users, s.Messages, s.LatencyMS.Fanout.P99)
	return s
}

// TestLoadAgainstNodeServer: the load generator's accounting holds against
// an independently written server on another Socket.IO implementation
// (socket.io 4.8 on Node, attached lazily by the init request): every owed
// delivery arrives, over WebSocket, long-polling and the upgrade.
func TestLoadAgainstNodeServer(t *testing.T) {
	requireNode(t)
	srv := startNode(t, "server.js", "--port", "0", "--lazy", "--init-path", "/api/socket")
	s := runLoad(t, srv.URL(), "connect.errors==0", "join.errors==0", "delivery.lost==0", "delivery.duplicated==0", "delivery.reordered==0")
	m := s.Messages
	if s.Ended != loadgen.EndedCompleted || s.Verdict != "pass" {
		t.Errorf("ended %s (%s), verdict %s: %+v", s.Ended, s.EndedDetail, s.Verdict, s.Thresholds)
	}
	if m.Sent < 100 || m.ExpectedDeliveries == 0 || m.Delivered != m.ExpectedDeliveries {
		t.Errorf("sent %d, delivered %d of %d owed: want everything owed delivered", m.Sent, m.Delivered, m.ExpectedDeliveries)
	}
}

// TestLoadCatchesNodeServerLosingMessages: the same load against a Node
// server that never stores every 10th message (faulty.js drop-tenth) shows
// the losses as gaps and fails the delivery gate.
func TestLoadCatchesNodeServerLosingMessages(t *testing.T) {
	requireNode(t)
	srv := startNode(t, "faulty.js", "--fault", "drop-tenth", "--port", "0", "--lazy", "--init-path", "/api/socket")
	s := runLoad(t, srv.URL(), "delivery.lost==0")
	m := s.Messages
	if m.Lost == 0 || m.LostGaps == 0 {
		t.Fatalf("lost %d (gaps %d) against a server dropping every 10th message", m.Lost, m.LostGaps)
	}
	if r := m.LossRatio; r < 0.04 || r > 0.2 {
		t.Errorf("loss ratio %.3f, want about 0.1", r)
	}
	if s.Verdict != "fail" || s.Thresholds[0].OK {
		t.Errorf("verdict %s, thresholds %+v: want delivery.lost==0 to fail", s.Verdict, s.Thresholds)
	}
}

// TestSeedStyleLoadAgainstSeedServer: users written like the seed's
// useSocket hook (two connections each, every message written on the one
// that never joins) against the seed's own server (seed.js), which serves
// them: every delivery owed to the joining connections arrives.
func TestSeedStyleLoadAgainstSeedServer(t *testing.T) {
	requireNode(t)
	srv := startNode(t, "seed.js", "--port", "0")
	// The seed's server sends the whole, uncapped history to every socket,
	// the writers included: twice the broadcasts of a one-connection run,
	// each growing with the history. A slower message rate keeps those
	// bytes (quadratic in the messages sent) within what a loaded machine
	// parses in time, and a generous window keeps its delays from reading
	// as losses.
	s := runLoadWith(t, srv.URL(), func(c *loadgen.Config) {
		c.SeedStyle = true
		c.Pacer = loadgen.PoissonPacer{Mean: 500 * time.Millisecond}
		c.Window = 3 * time.Second
	},
		"connect.errors==0", "join.errors==0", "delivery.lost==0", "delivery.duplicated==0", "delivery.reordered==0")
	m := s.Messages
	if s.Ended != loadgen.EndedCompleted || s.Verdict != "pass" {
		t.Errorf("ended %s (%s), verdict %s: %+v", s.Ended, s.EndedDetail, s.Verdict, s.Thresholds)
	}
	if m.Sent == 0 || m.ExpectedDeliveries == 0 || m.Delivered != m.ExpectedDeliveries {
		t.Errorf("sent %d, delivered %d of %d owed: want everything owed delivered", m.Sent, m.Delivered, m.ExpectedDeliveries)
	}
}

// TestLoadCountsEveryRefusalForm: servers on other stacks that refuse
// writes (a rate limit the load exceeds) in forms other than the
// reference's chatError — the Python server's `notice` event and
// `{"error": …}` ack, a Node server refusing through acks alone, one
// telling it in an `exception` event that names no event — have those
// writes counted as refused, never as lost, and every accepted message
// delivered (issue 11).
func TestLoadCountsEveryRefusalForm(t *testing.T) {
	// Each user writes faster than the server's rate limit lets it.
	// The window is 8 s. CI once saw the Node ack-errors server (verdict
	// otherwise clean, 514 refusals) still sending 3 of 9,603 deliveries
	// more than 1 s after their send when the receivers left; with two
	// full test runs at once on the 2 cores (issue 13's loaded-machine
	// proof) error-event had fan-out p99 4.6 s and 684 trailing losses of
	// 7,661 with a 3 s window, in both runs. The contract sets no delivery
	// bound; the window is the generator's allowance for a loaded machine,
	// not a limit on the server.
	fast := func(c *loadgen.Config) {
		c.Pacer = loadgen.PoissonPacer{Mean: 40 * time.Millisecond}
		c.Window = 8 * time.Second
	}
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) string
		tune  func(c *loadgen.Config)
	}{
		// python-socketio rebuilds and sends the whole history to every
		// receiver on each accepted write: on a loaded 2-core machine the
		// interpreter falls seconds behind 16 users at the Node cases'
		// rate, and deliveries still in its queues when the run ends read
		// as lost (CI, measured: 8,565 trailing losses of 12,649 with three
		// busy loops beside it). A slower refill and the shortest legal
		// history keep the accepted work small while the writes (10/s per
		// user against 1/s after a burst of 10) are still refused, and a
		// wider window gives its delays room.
		{"python notice", func(t *testing.T) string {
			requirePython(t)
			return startPython(t, "--rate-burst", "10", "--rate-per-second", "1", "--history-limit", "50").URL()
		}, func(c *loadgen.Config) {
			c.Pacer = loadgen.PoissonPacer{Mean: 100 * time.Millisecond}
			c.Window = 3 * time.Second
		}},
		{"node ack-errors", func(t *testing.T) string {
			requireNode(t)
			return startNode(t, "variants.js", "--variant", "ack-errors,rate-10", "--port", "0", "--init-path", "/api/socket").URL()
		}, fast},
		{"node error-event", func(t *testing.T) string {
			requireNode(t)
			return startNode(t, "variants.js", "--variant", "error-event,rate-10", "--port", "0", "--init-path", "/api/socket").URL()
		}, fast},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := runLoadWith(t, tc.start(t), tc.tune)
			m := s.Messages
			if m.Refused == 0 {
				t.Errorf("refused %d by code %v: the load outruns the server's rate limit, want refusals", m.Refused, m.RefusedByCode)
			}
			if m.Lost != 0 || m.ExpectedDeliveries == 0 || m.Delivered != m.ExpectedDeliveries {
				t.Errorf("messages %+v: want every accepted message delivered and nothing lost", m)
			}
		})
	}
}

// TestLoadDefaultGatesPassOtherStacks: `chatspec load` with its default
// gates (every correctness figure at 0: sessions dropped, refused, lost,
// duplicated, reordered, order conflicts, out-of-contract events)
// passes the Node and the Python servers, as a user would run it.
func TestLoadDefaultGatesPassOtherStacks(t *testing.T) {
	bin := chatspecBinary(t)
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) string
	}{
		{"node", func(t *testing.T) string {
			requireNode(t)
			return startNode(t, "server.js", "--port", "0", "--lazy", "--init-path", "/api/socket").URL()
		}},
		{"python", func(t *testing.T) string {
			requirePython(t)
			return startPython(t).URL()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.start(t)
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "load", "--target", url, "--init-path", "/api/socket", "--users", "20", "--ramp", "1s",
				"--duration", "4s", "--message-interval", "300ms", "--transport-mix", "websocket=2,polling=1,upgrade=1", "--progress", "off", "--report-dir", dir)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("chatspec load: %v\n%s", err, out)
			}
			b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
			if err != nil {
				t.Fatal(err)
			}
			var s loadgen.Summary
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatal(err)
			}
			if m := s.Messages; s.Verdict != "pass" || m.Delivered == 0 || m.Delivered != m.ExpectedDeliveries || m.Refused != 0 || s.Sessions.EndedByServer != 0 {
				t.Errorf("verdict %s, messages %+v, sessions %+v\n%s", s.Verdict, m, s.Sessions, out)
			}
		})
	}
}
