package reference

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatspec/chatspec/spec/sioclient"
)

func TestSlowReaderUnit(t *testing.T) {
	clock := &fakeClock{}
	var dropped []string
	r := &slowReader{limit: 100, timeout: time.Second, now: clock.now, drop: func(reason string) { dropped = append(dropped, reason) }}
	r.created(60, false)
	r.flushed()
	r.created(30, false)
	if got := r.pending(); got != 90 || len(dropped) != 0 {
		t.Fatalf("pending %d, dropped %v; want 90 and none", got, dropped)
	}
	r.written() // the batch of 60 went out
	r.flushed()
	r.created(60, false)
	if got := r.pending(); got != 90 || len(dropped) != 0 {
		t.Fatalf("after a write: pending %d, dropped %v; want 90 and none", got, dropped)
	}
	r.created(11, false)
	if len(dropped) != 1 || !strings.Contains(dropped[0], "limit") {
		t.Fatalf("over the limit: dropped %v", dropped)
	}
	r.created(1000, false) // dropped once only
	if len(dropped) != 1 {
		t.Fatalf("dropped twice: %v", dropped)
	}

	// idle: closed only once everything queued so far has been written.
	r = &slowReader{now: clock.now, drop: func(string) {}}
	select {
	case <-r.idle():
	default:
		t.Fatal("idle not closed with nothing queued")
	}
	r.created(5, false)
	idle := r.idle()
	r.flushed()
	r.created(5, false) // queued behind the batch in flight
	r.written()
	select {
	case <-idle:
		t.Fatal("idle closed while a packet was still queued")
	default:
	}
	r.flushed()
	r.written()
	select {
	case <-idle:
	default:
		t.Fatal("idle not closed after the last write")
	}

	// A closed connection writes nothing more: its waiters are released,
	// and later ones do not wait.
	r.created(5, false)
	r.flushed()
	idle = r.idle()
	r.closed()
	select {
	case <-idle:
	default:
		t.Fatal("idle not released by the close")
	}
	r.created(5, false)
	select {
	case <-r.idle():
	default:
		t.Fatal("idle waits on a closed connection")
	}

	dropped = nil
	r = &slowReader{timeout: time.Second, now: clock.now, drop: func(reason string) { dropped = append(dropped, reason) }}
	r.created(10, false)
	r.flushed()
	clock.advance(999 * time.Millisecond)
	r.created(1, false)
	if len(dropped) != 0 {
		t.Fatalf("dropped before the timeout: %v", dropped)
	}
	clock.advance(2 * time.Millisecond)
	r.created(1, false)
	if len(dropped) != 1 || !strings.Contains(dropped[0], "stalled") {
		t.Fatalf("after the timeout: dropped %v", dropped)
	}
}

// slowReaderConfig: big broadcasts (100 messages of 4 KB of history), no
// rate limit, a 1 MiB slow-reader limit, and a heartbeat long enough that
// only the guard can drop anyone during the test.
func slowReaderConfig(c *Config) {
	c.Rate = 0
	c.HistoryLimit = 100
	c.SlowReaderLimit = 1 << 20
	c.SlowReaderTimeout = 0
	c.PingInterval, c.PingTimeout = 2*time.Second, 20*time.Second
}

// chatUntilDropped has ann write 4 KB messages one after another and
// measures, for each, how long until both ann and bob have the
// messageWritten, until the slow-reader guard has dropped someone. It
// fails if that takes more than limit messages.
func chatUntilDropped(t *testing.T, r *Running, ann, bob *client, limit int) (sent int, lat []time.Duration) {
	t.Helper()
	srv := r.Server()
	text := strings.Repeat("m", 4000)
	for sent = 0; srv.slowDrops.Load() == 0; sent++ {
		if sent == limit {
			t.Fatalf("the slow reader was not dropped after %d broadcasts", limit)
		}
		start := time.Now()
		ann.write(text)
		for _, c := range []*client{ann, bob} {
			if _, err := c.NextNamed(t.Context(), EventMessageWritten); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		lat = append(lat, time.Since(start))
	}
	return sent, lat
}

func summarize(lat []time.Duration) (p50, max time.Duration) {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}

// A WebSocket client that stops reading but keeps answering the heartbeat
// (so the heartbeat never drops it) cannot slow anyone else's broadcasts,
// and is closed once it holds more than SlowReaderLimit unwritten bytes.
func TestSlowReaderWebSocketDropped(t *testing.T) {
	r := startServer(t, slowReaderConfig)
	srv := r.Server()
	ann, _ := join(t, r, sioclient.WebSocket, "ann")
	bob, _ := join(t, r, sioclient.WebSocket, "bob")
	slow := dialRaw(t, r)
	slow.join("slow")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go slow.pumpPongs(ctx, 500*time.Millisecond) // alive, never reading

	sent, lat := chatUntilDropped(t, r, ann, bob, 2000)
	p50, max := summarize(lat)
	t.Logf("slow reader dropped after %d broadcasts of up to %d KB; others' fan-out latency p50 %s max %s", sent, 100*4, p50, max)
	if max > time.Second {
		t.Errorf("a broadcast to the others took %s while a client was not reading", max)
	}
	waitUntil(t, "the slow reader's socket to be gone", func() bool { return metricValue(srv.m.connections) == 2 })
	var u usersPayload
	ev, err := bob.NextNamed(t.Context(), EventDisconnected)
	if err != nil {
		t.Fatal(err)
	}
	ev.Decode(0, &u)
	if got := names(u.ConnectedUserList); !slices.Equal(got, []string{"ann", "bob"}) {
		t.Fatalf("user list after the drop: %v", got)
	}
	ann.write("after")
	if _, err := bob.NextNamed(t.Context(), EventMessageWritten); err != nil {
		t.Fatal(err)
	}
}

// With only SlowReaderTimeout set, a WebSocket client that stops reading
// is closed once a write to it has been stuck that long (after the kernel's
// buffers filled up).
func TestSlowReaderStalledWriteDropped(t *testing.T) {
	r := startServer(t, func(c *Config) {
		slowReaderConfig(c)
		c.SlowReaderLimit, c.SlowReaderTimeout = 0, 300*time.Millisecond
	})
	ann, _ := join(t, r, sioclient.WebSocket, "ann")
	bob, _ := join(t, r, sioclient.WebSocket, "bob")
	slow := dialRaw(t, r)
	slow.join("slow")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go slow.pumpPongs(ctx, 500*time.Millisecond)
	start := time.Now()
	sent, lat := chatUntilDropped(t, r, ann, bob, 3000)
	p50, max := summarize(lat)
	t.Logf("stalled writer dropped after %d broadcasts, %s; others' fan-out latency p50 %s max %s", sent, time.Since(start).Round(time.Millisecond), p50, max)
	waitUntil(t, "the stalled socket to be gone", func() bool { return metricValue(r.Server().m.connections) == 2 })
}

// A polling client that stops polling (but keeps POSTing pongs) is closed
// once the packets waiting for its next GET exceed SlowReaderLimit.
func TestSlowReaderPollingDropped(t *testing.T) {
	r := startServer(t, slowReaderConfig)
	srv := r.Server()
	ann, _ := join(t, r, sioclient.WebSocket, "ann")
	bob, _ := join(t, r, sioclient.Polling, "bob")

	url, stop := stallPoller(t, r, "stalled")
	defer stop()
	waitUntil(t, "the polling client to join", func() bool { return metricValue(srv.m.users) == 3 })

	sent, lat := chatUntilDropped(t, r, ann, bob, 2000)
	p50, max := summarize(lat)
	t.Logf("stalled polling client dropped after %d broadcasts; others' fan-out latency p50 %s max %s", sent, p50, max)
	waitUntil(t, "the stalled socket to be gone", func() bool { return metricValue(srv.m.connections) == 2 })
	if code, body := httpDo(t, "GET", url, ""); code != http.StatusBadRequest {
		t.Errorf("GET after the drop: %d %q, want 400 (session gone)", code, body)
	}
	// The n-th broadcast carries n messages of 4000 bytes: the queue
	// passes 1 MiB during the 23rd (23*24/2*4000 > 1<<20), so the guard
	// must have acted by then and not hold more than that.
	if sent > 23 {
		t.Errorf("took %d broadcasts to pass a 1 MiB limit; want at most 23", sent)
	}
}

func TestSlowReaderConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string // substring of the error; "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"both off", func(c *Config) { c.SlowReaderLimit, c.SlowReaderTimeout = 0, 0 }, ""},
		{"negative limit", func(c *Config) { c.SlowReaderLimit = -1 }, "SlowReaderLimit must not be negative"},
		{"negative timeout", func(c *Config) { c.SlowReaderTimeout = -time.Second }, "SlowReaderTimeout must not be negative"},
		{"below one full broadcast", func(c *Config) { c.SlowReaderLimit = 100_000 }, "below one full messageWritten"},
		{"small history fits", func(c *Config) { c.SlowReaderLimit, c.HistoryLimit = 100_000, 10 }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			err := c.Validate()
			if tc.want == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// httpDo makes one plain HTTP request and returns the status and body.
func httpDo(tb testing.TB, method, url, body string) (int, string) {
	tb.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// stallPoller connects a polling client by hand, joins it as username and
// then never polls again; it only POSTs a pong every 500 ms, so the
// heartbeat never drops it. It returns the session's URL and a stop
// function that ends the pongs.
func stallPoller(tb testing.TB, r *Running, username string) (string, func()) {
	tb.Helper()
	base := r.URL() + r.Server().cfg.Path + "?EIO=4&transport=polling"
	_, open := httpDo(tb, "GET", base, "")
	var hs struct{ Sid string }
	if !strings.HasPrefix(open, "0") || json.Unmarshal([]byte(open[1:]), &hs) != nil || hs.Sid == "" {
		tb.Fatalf("polling handshake: %q", open)
	}
	url := base + "&sid=" + hs.Sid
	httpDo(tb, "POST", url, "40")
	if _, body := httpDo(tb, "GET", url, ""); !strings.Contains(body, "40{") {
		tb.Fatalf("polling CONNECT: %q", body)
	}
	httpDo(tb, "POST", url, `42["connecting",{"username":"`+username+`"}]`)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader("3"))
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
	})
	return url, func() { cancel(); wg.Wait() }
}
