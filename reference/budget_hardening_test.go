package reference

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatspec/chatspec/spec/sioclient"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

func TestOutputBudgetUnit(t *testing.T) {
	b := newOutputBudget(100)
	var dropped []string
	mk := func(name string) *slowReader {
		r := &slowReader{now: time.Now, budget: b, drop: func(string) { dropped = append(dropped, name) }}
		b.register(r)
		return r
	}
	small, big := mk("small"), mk("big")
	small.created(30, false)
	big.created(60, false)
	if len(dropped) != 0 || b.total.Load() != 90 {
		t.Fatalf("within the budget: dropped %v, total %d", dropped, b.total.Load())
	}
	big.flushed()
	big.written() // big read its 60 bytes
	big.created(50, false)
	small.created(30, false) // 110: over; big holds 50, small 60
	if want := []string{"small"}; len(dropped) != 1 || dropped[0] != "small" {
		t.Fatalf("over the budget: dropped %v, want %v (the one holding the most)", dropped, want)
	}
	if got := b.total.Load(); got != 50 {
		t.Fatalf("total after the drop = %d, want 50 (the dropped connection's bytes released)", got)
	}
	small.created(500, false) // a dropped connection counts no more
	small.closed()
	big.closed()
	if got := b.total.Load(); got != 0 || len(dropped) != 1 {
		t.Fatalf("after both closed: total %d, dropped %v", got, dropped)
	}
}

// Shared bytes count toward the connection's own limit, never toward
// the budget, and writing them leaves the budget's total as it was.
func TestOutputBudgetIgnoresSharedBytes(t *testing.T) {
	b := newOutputBudget(100)
	dropped := ""
	r := &slowReader{now: time.Now, budget: b, limit: 1000, drop: func(reason string) { dropped = reason }}
	b.register(r)
	r.created(40, false)
	r.created(500, true) // one copy for many receivers
	if got := b.total.Load(); got != 40 || dropped != "" {
		t.Fatalf("budget total %d, dropped %q: want 40, nobody", got, dropped)
	}
	r.flushed()
	r.written()
	if got := b.total.Load(); got != 0 || r.pending() != 0 {
		t.Fatalf("after the write: budget total %d, pending %d; want 0, 0", got, r.pending())
	}
	r.created(600, true)
	r.created(600, true) // 1200 > the limit of 1000
	if !strings.Contains(dropped, "over the limit") || b.total.Load() != 0 {
		t.Fatalf("dropped %q, budget total %d: want the per-connection limit to drop it, the budget untouched", dropped, b.total.Load())
	}
}

// TestOutputBudgetBoundsNonReaders: six clients stop reading while a
// writer sends 4 KB messages (the n-th messageWritten carries n of them).
// With an adapter that copies each broadcast per receiver (the library's,
// as in cluster mode), each non-reader stays under the per-connection
// SlowReaderLimit (2 MiB) long enough for their sum to pass 4 MiB: without
// the shared budget that sum reaches 6 × 2 MiB; with it, it never exceeds
// the budget by more than one broadcast, the non-readers holding the most
// are closed first, and the two clients that read are never dropped and
// keep chatting. With one node's default adapter (sharedadapter) the
// non-readers hold one copy of the broadcasts between them: the budget
// counts none of it and drops no one for it, and the per-connection limit
// still closes every non-reader.
func TestOutputBudgetBoundsNonReaders(t *testing.T) {
	const budget = 4 << 20
	copying := WithAdapter(&socket.AdapterBuilder{})
	for _, tc := range []struct {
		name   string
		budget int64
		opts   []Option
	}{
		{"copies, budget on", budget, []Option{copying}},
		{"copies, budget off (per-connection bound only)", 0, []Option{copying}},
		{"shared broadcasts, budget on", budget, nil},
	} {
		shared := tc.opts == nil
		t.Run(tc.name, func(t *testing.T) {
			r := startServer(t, func(c *Config) {
				slowReaderConfig(c)
				c.SlowReaderLimit = 2 << 20
				c.OutputBudget = tc.budget
			}, tc.opts...)
			srv := r.Server()
			ann, _ := join(t, r, sioclient.WebSocket, "ann")
			bob, _ := join(t, r, sioclient.Polling, "bob")
			const stalled = 6
			for i := range stalled {
				_, stop := stallPoller(t, r, "stalled"+string(rune('a'+i)))
				defer stop()
			}
			waitUntil(t, "the stalled clients to join", func() bool { return metricValue(srv.m.users) == 2+stalled })

			// Sample the unwritten bytes of all connections, counted
			// independently of the budget's own total, and the budget's.
			var peak, peakBudget atomic.Int64
			done := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				tick := time.NewTicker(time.Millisecond)
				defer tick.Stop()
				for {
					var sum int64
					srv.writers.Range(func(_, v any) bool {
						if r := v.(*slowReader); !r.isDropped() {
							sum += r.pending()
						}
						return true
					})
					if sum > peak.Load() {
						peak.Store(sum)
					}
					if srv.budget != nil {
						if b := srv.budget.total.Load(); b > peakBudget.Load() {
							peakBudget.Store(b)
						}
					}
					select {
					case <-done:
						return
					case <-tick.C:
					}
				}
			}()
			text := strings.Repeat("m", 4000)
			sent := 0
			for ; metricValue(srv.m.connections) > 2; sent++ {
				if sent == 100 { // 2 MiB per connection passes at the 32nd
					t.Fatalf("%d stalled clients still connected after %d broadcasts", int(metricValue(srv.m.connections))-2, sent)
				}
				ann.write(text)
				for _, c := range []*client{ann, bob} {
					if _, err := c.NextNamed(t.Context(), EventMessageWritten); err != nil {
						t.Fatalf("%s (a reader) after %d broadcasts: %v", c.name, sent, err)
					}
				}
			}
			close(done)
			<-sampled
			fullBroadcast := int64(srv.cfg.HistoryLimit) * 4100
			budgetDrops := int64(0)
			if srv.budget != nil {
				budgetDrops = srv.budget.drops.Load()
			}
			t.Logf("%d broadcasts; peak unwritten across connections %.2f MiB; dropped: %d by the budget, %d in all",
				sent, float64(peak.Load())/(1<<20), budgetDrops, srv.slowDrops.Load())
			switch {
			case shared:
				if budgetDrops != 0 {
					t.Errorf("the budget dropped %d connections for broadcasts they shared", budgetDrops)
				}
				if p := peakBudget.Load(); p > fullBroadcast {
					t.Errorf("the budget counted %d bytes at its peak, more than one broadcast (%d): it counted shared copies", p, fullBroadcast)
				}
			case tc.budget > 0:
				if p := peak.Load(); p > tc.budget+fullBroadcast {
					t.Errorf("peak unwritten %d bytes, over the budget %d by more than one broadcast (%d)", p, tc.budget, fullBroadcast)
				}
				if budgetDrops == 0 {
					t.Errorf("the budget dropped no one")
				}
				if got := srv.budget.total.Load(); got < 0 || got > fullBroadcast {
					t.Errorf("budget total after the drops = %d, want the readers' small queue", got)
				}
			default:
				if p := peak.Load(); p <= budget+fullBroadcast {
					t.Errorf("without the budget the peak was only %d bytes; the test no longer shows what the budget prevents", p)
				}
			}
			// The readers were never dropped and still chat.
			if got := metricValue(srv.m.users); got != 2 {
				t.Fatalf("users after the drops = %g, want 2 (ann and bob)", got)
			}
			bob.write("after")
			if _, err := ann.NextNamed(t.Context(), EventMessageWritten); err != nil {
				t.Fatal(err)
			}
		})
	}
}
