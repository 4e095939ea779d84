package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chatspec/chatspec/loadgen/faultychat"
	"github.com/chatspec/chatspec/reference"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// referenceAt starts the reference server on addr ("127.0.0.1:0" for a
// free port). Restarting on the port of a server just stopped can briefly
// meet the port still taken (one of our own reconnects may have been given
// it as its ephemeral port), so "address in use" is retried for a while.
func referenceAt(t *testing.T, addr string) *reference.Running {
	t.Helper()
	cfg := reference.DefaultConfig()
	cfg.Addr = addr
	cfg.PingInterval = 5 * time.Second
	cfg.PingTimeout = 5 * time.Second
	cfg.HistoryLimit = 50
	cfg.Rate = 0
	r, err := whileAddrInUse(func() (*reference.Running, error) { return reference.Start(context.Background(), cfg) })
	if err != nil {
		t.Fatalf("reference.Start(%s): %v", addr, err)
	}
	return r
}

// whileAddrInUse calls start until it does not fail with "address in use",
// for at most 5 s (the port has no event to wait for), and returns the last
// result.
func whileAddrInUse[T any](start func() (T, error)) (T, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, err := start()
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return v, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func stopReference(t *testing.T, r *reference.Running) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Errorf("reference stop: %v", err)
	}
}

// restart is what happened to the target, in engine time.
type restart struct {
	stopBegan, restartBegan, restarted time.Duration
	ok                                 bool
}

// TestTargetRestartIsRiddenOut stops the reference server mid-run and
// starts a new one on the same port about a second later. With a
// MaxOutage the run goes on: one outage of about the right length is
// recorded, every user rejoins the new server and chats on, and no
// delivery owed is lost (the messages sent before the crash were
// delivered, the ones in flight are owed to nobody, and the ones after the
// recovery reach everyone who rejoined). Nothing is left running.
func TestTargetRestartIsRiddenOut(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	srv := referenceAt(t, "127.0.0.1:0")
	url := srv.URL()
	addr := strings.TrimPrefix(url, "http://")
	const users = 8
	e, m := newEngine(t, url, runOpts{users: users, dur: 5 * time.Second, interval: 200 * time.Millisecond, maxOutage: 10 * time.Second,
		transports: []TransportShare{{sioclient.WebSocket, 2}, {sioclient.Polling, 1}, {sioclient.Upgrade, 1}}})

	done := make(chan restart, 1)
	go func() {
		var r restart
		defer func() { done <- r }()
		// Late enough that messages from before the crash were owed (and
		// settled) at sessions that then dropped.
		// (Deliveries first: once some are seen, e.Start is set.)
		if !await(20*time.Second, func() bool { return m.Live().Delivered >= 50 && time.Since(e.Started()) > 1500*time.Millisecond }) {
			return
		}
		r.stopBegan = time.Since(e.Started())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			return
		}
		// The scenario: the server stays away about a second.
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return
		}
		r.restartBegan = time.Since(e.Started())
		srv = referenceAt(t, addr)
		r.restarted = time.Since(e.Started())
		r.ok = true
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := Measure(ctx, e, m, true)
	r := <-done
	defer func() {
		stopReference(t, srv)
		goleak.VerifyNone(t, leaks, libraryTimers)
	}()
	if !r.ok {
		t.Fatalf("the restart did not happen (deliveries %d)", m.Live().Delivered)
	}
	t.Logf("restart %+v\nended %s %s\noutages %+v\nusers %+v\nmessages %+v\nerrors %+v", r, s.Ended, s.EndedDetail, s.Outages, s.Users, s.Messages, s.Errors)
	if s.Ended != EndedCompleted {
		t.Fatalf("ended = %q (%s), want completed", s.Ended, s.EndedDetail)
	}
	if len(s.Outages) != 1 {
		t.Fatalf("outages = %+v, want exactly one", s.Outages)
	}
	o := s.Outages[0]
	if o.Target != url || o.EndS == nil {
		t.Fatalf("outage %+v: want a closed outage of %s", o, url)
	}
	start, end := time.Duration(o.StartS*float64(time.Second)), time.Duration(*o.EndS*float64(time.Second))
	// It began when the old server went (its sessions dropped during
	// Stop) and ended when the new one listened: within a probe interval
	// plus scheduling slack of those moments.
	const slack = 300 * time.Millisecond
	if start < r.stopBegan || start > r.restartBegan {
		t.Errorf("outage start %v outside the stop (%v to %v)", start, r.stopBegan, r.restartBegan)
	}
	if end < r.restartBegan-slack || end > r.restarted+probeEvery+slack {
		t.Errorf("outage end %v, want about the restart at %v-%v", end, r.restartBegan, r.restarted)
	}
	if d := o.DurationMS; d < 800 || d > 2500 {
		t.Errorf("outage lasted %.0fms, want about 1s", d)
	}
	// Every user rejoined the new server, and chatted on it.
	if s.LatencyMS.Join.Count < 2*users {
		t.Errorf("joins = %d, want every one of %d users to join twice", s.LatencyMS.Join.Count, users)
	}
	var after int64
	for _, iv := range s.Timeline {
		if iv.T > *o.EndS+1 {
			after += iv.Delivered
		}
	}
	if after < 100 {
		t.Errorf("%d deliveries after the recovery, want the users to chat on (timeline %+v)", after, s.Timeline)
	}
	msg := s.Messages
	if msg.Lost != 0 || msg.Delivered != msg.ExpectedDeliveries || msg.Duplicated != 0 || msg.Reordered != 0 {
		t.Errorf("the restart itself inflated the accounting: %+v, per sender %+v", msg, s.PerSender)
	}
	if msg.Skipped == 0 {
		t.Errorf("no sends skipped while the users were away: %+v", msg)
	}
	s.ApplyThresholds(mustThresholds(t, "outage.count==1", "outage.max<3s", "delivery.lost==0"))
	if s.Verdict != "pass" {
		t.Errorf("verdict %s: %+v", s.Verdict, s.Thresholds)
	}
}

// TestLossAfterRecoveryStillShows: the server that comes back drops every
// fifth message; riding out the outage must not hide that.
func TestLossAfterRecoveryStillShows(t *testing.T) {
	srv := startFaulty(t, faultychat.Faults{})
	addr := strings.TrimPrefix(srv.URL(), "http://")
	e, m := newEngine(t, srv.URL(), runOpts{users: 6, dur: 4 * time.Second, interval: 200 * time.Millisecond, maxOutage: 10 * time.Second})
	done := make(chan *faultychat.Server, 1)
	go func() {
		var next *faultychat.Server
		defer func() { done <- next }()
		if !await(20*time.Second, func() bool { return m.Live().Delivered >= 30 }) {
			return
		}
		srv.Close()
		select {
		case <-time.After(600 * time.Millisecond): // the scenario: down a little while
		case <-e.stopCh:
			return
		}
		if s, err := whileAddrInUse(func() (*faultychat.Server, error) {
			return faultychat.Start(faultychat.Faults{DropEvery: 5, Addr: addr})
		}); err == nil {
			next = s
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := Measure(ctx, e, m, true)
	next := <-done
	if next == nil {
		t.Fatal("the lossy server did not start on the old port")
	}
	defer next.Close()
	t.Logf("ended %s %s outages %+v messages %+v", s.Ended, s.EndedDetail, s.Outages, s.Messages)
	if s.Ended != EndedCompleted {
		t.Fatalf("ended = %q (%s), want completed", s.Ended, s.EndedDetail)
	}
	if len(s.Outages) != 1 || next.Joins() == 0 {
		t.Fatalf("outages %+v, %d joins on the new server: want one outage, then the users back", s.Outages, next.Joins())
	}
	msg := s.Messages
	if msg.Lost == 0 || msg.Delivered+msg.Lost != msg.ExpectedDeliveries {
		t.Errorf("a server dropping every 5th message after the restart: %+v", msg)
	}
}

// TestOutageLongerThanAllowedEndsTheRun: the target never comes back; the
// run ends as target_down once it has been down for MaxOutage, and says
// so.
func TestOutageLongerThanAllowedEndsTheRun(t *testing.T) {
	srv := startFaulty(t, faultychat.Faults{})
	const allowed = 700 * time.Millisecond
	e, m := newEngine(t, srv.URL(), runOpts{users: 6, dur: time.Minute, maxOutage: allowed})
	reached := make(chan bool, 1)
	go func() {
		reached <- await(20*time.Second, func() bool { return m.Live().Delivered >= 20 })
		srv.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := Measure(ctx, e, m, true)
	if !<-reached {
		t.Fatalf("fewer than 20 deliveries within 20s: %+v", s.Messages)
	}
	t.Logf("ended %s (%s) after %.2fs, outages %+v", s.Ended, s.EndedDetail, s.DurationSeconds, s.Outages)
	if s.Ended != EndedTargetDown {
		t.Fatalf("ended = %q (%s), want target_down", s.Ended, s.EndedDetail)
	}
	for _, want := range []string{srv.URL(), "longer than the allowed outage", "max outage 700ms"} {
		if !strings.Contains(s.EndedDetail, want) {
			t.Errorf("detail %q lacks %q", s.EndedDetail, want)
		}
	}
	if len(s.Outages) != 1 || s.Outages[0].EndS != nil {
		t.Fatalf("outages = %+v, want one still open", s.Outages)
	}
	o := s.Outages[0]
	if d := o.DurationMS; d < float64(allowed/time.Millisecond) || d > float64(allowed/time.Millisecond)+1500 {
		t.Errorf("outage counted %.0fms, want a little over %v", d, allowed)
	}
	s.ApplyThresholds(nil)
	if s.Verdict != "fail" {
		t.Errorf("verdict = %s, want fail", s.Verdict)
	}
}

// TestOutagesArePerTarget: of two targets, one restarts; only it has an
// outage, and its users come back while the other target's carry on.
func TestOutagesArePerTarget(t *testing.T) {
	a := startFaulty(t, faultychat.Faults{})
	b := startFaulty(t, faultychat.Faults{})
	addrB := strings.TrimPrefix(b.URL(), "http://")
	urls := []string{a.URL(), b.URL()}
	arr, err := Plan{Users: 6, Ramp: 100 * time.Millisecond, Duration: 4 * time.Second, Linger: 300 * time.Millisecond}.Arrivals()
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{RunID: "pt", Arrivals: arr, Pacer: PoissonPacer{Mean: 200 * time.Millisecond}, Window: 300 * time.Millisecond,
		ChurnPause: 200 * time.Millisecond, MaxOutage: 5 * time.Second, StopTimeout: 3 * time.Second,
		Dial: func(i int) sioclient.Options { return sioclient.Options{URL: urls[i%2]} }})
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(MetricsConfig{Users: 6, Window: 300 * time.Millisecond})
	done := make(chan *faultychat.Server, 1)
	go func() {
		var next *faultychat.Server
		defer func() { done <- next }()
		if !await(20*time.Second, func() bool { return m.Live().Delivered >= 20 }) {
			return
		}
		b.Close()
		select {
		case <-time.After(500 * time.Millisecond): // the scenario: down half a second
		case <-e.stopCh:
			return
		}
		if s, err := whileAddrInUse(func() (*faultychat.Server, error) { return faultychat.Start(faultychat.Faults{Addr: addrB}) }); err == nil {
			next = s
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := Measure(ctx, e, m, true)
	next := <-done
	if next == nil {
		t.Fatal("target b did not restart")
	}
	defer next.Close()
	t.Logf("ended %s (%s) outages %+v users %+v", s.Ended, s.EndedDetail, s.Outages, s.Users)
	if s.Ended != EndedCompleted {
		t.Fatalf("ended = %q (%s), want completed", s.Ended, s.EndedDetail)
	}
	if len(s.Outages) != 1 || s.Outages[0].Target != b.URL() || s.Outages[0].EndS == nil {
		t.Errorf("outages = %+v, want one closed outage of %s only", s.Outages, b.URL())
	}
	if got := next.Joins(); got < 3 {
		t.Errorf("%d joins on the restarted target, want its 3 users back (at least)", got)
	}
}

func TestBackoffIsCapped(t *testing.T) {
	for _, tt := range []struct {
		pause time.Duration
		n     int
		want  time.Duration
	}{
		{time.Second, 0, time.Second},
		{time.Second, 1, 2 * time.Second},
		{time.Second, 2, 4 * time.Second},
		{time.Second, 3, 5 * time.Second},
		{time.Second, 1000, 5 * time.Second},
		{200 * time.Millisecond, 3, 1600 * time.Millisecond},
		{10 * time.Second, 4, 10 * time.Second},
	} {
		if got := backoff(tt.pause, tt.n); got != tt.want {
			t.Errorf("backoff(%v, %d) = %v, want %v", tt.pause, tt.n, got, tt.want)
		}
	}
}

func TestNegativeMaxOutageIsAConfigError(t *testing.T) {
	arr, _ := Plan{Users: 1, Duration: time.Second}.Arrivals()
	_, err := New(Config{RunID: "x", Arrivals: arr, Pacer: PoissonPacer{Mean: time.Second}, Window: time.Second, MaxOutage: -time.Second,
		Dial: func(int) sioclient.Options { return sioclient.Options{URL: "http://127.0.0.1:1"} }})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "max outage") {
		t.Errorf("err = %v, want a config error about max outage", err)
	}
}

// TestOutageMetrics: outages become summary entries (an open one counted
// to the run's end) and the threshold metrics outage.count, outage.max
// and outage.total, in milliseconds.
func TestOutageMetrics(t *testing.T) {
	s := &Summary{Ended: EndedCompleted, Outages: SummarizeOutages([]Outage{
		{Target: "http://a", Start: 2 * time.Second, End: 3500 * time.Millisecond, Ended: true},
		{Target: "http://b", Start: 9 * time.Second},
	}, 10*time.Second)}
	if o := s.Outages[0]; o.EndS == nil || *o.EndS != 3.5 || o.DurationMS != 1500 || o.StartS != 2 {
		t.Errorf("closed outage = %+v", o)
	}
	if o := s.Outages[1]; o.EndS != nil || o.DurationMS != 1000 {
		t.Errorf("open outage = %+v, want no end and 1000ms to the run's end", o)
	}
	for name, want := range map[string]float64{"outage.count": 2, "outage.max": 1500, "outage.total": 2500} {
		if got, ok := s.Metric(name); !ok || got != want {
			t.Errorf("%s = %v (measured %v), want %v", name, got, ok, want)
		}
	}
	s.ApplyThresholds(mustThresholds(t, "outage.max<1.5s", "outage.max<=1500ms", "outage.count<=2"))
	if s.Thresholds[0].OK || !s.Thresholds[1].OK || !s.Thresholds[2].OK {
		t.Errorf("thresholds %+v", s.Thresholds)
	}
	none := &Summary{Outages: SummarizeOutages(nil, time.Second)}
	if none.Outages == nil {
		t.Error("no outages must be an empty list (summary.json: []), not null")
	}
	if v, ok := none.Metric("outage.max"); !ok || v != 0 {
		t.Errorf("outage.max without outages = %v, %v; want 0, measured", v, ok)
	}
}

func TestOutageSecondsAreRoundedToMilliseconds(t *testing.T) {
	got := SummarizeOutages([]Outage{{Target: "x", Start: 6887123456, End: 8932940388, Ended: true}}, time.Minute)
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"target":"x","start_s":6.887,"end_s":8.933,"duration_ms":2046}]`; string(b) != want {
		t.Errorf("json %s, want %s", b, want)
	}
}

// TestErrorsOfOneKindShareARow: connections dropped by the same outage
// differ only in session IDs and local ports; the error table keeps them
// together.
func TestErrorsOfOneKindShareARow(t *testing.T) {
	m := NewMetrics(MetricsConfig{Users: 2, Window: time.Second})
	for _, text := range []string{
		`polling transport: Get "http://127.0.0.1:3999/socket.io/?EIO=4&sid=1OcI41OynJzUhgAAAAAAAAA2&transport=polling": read tcp 127.0.0.1:50656->127.0.0.1:3999: read: connection reset by peer`,
		`polling transport: Get "http://127.0.0.1:3999/socket.io/?EIO=4&sid=2fi_-iWsUmLYdgAAAAAAAAAk&transport=polling": read tcp 127.0.0.1:41234->127.0.0.1:3999: read: connection reset by peer`,
	} {
		m.Add(Result{Kind: Left, User: 0, Session: 0, Err: errors.New(text)})
	}
	var s Summary
	m.Close(time.Second, Usage{}, &s)
	want := `polling transport: Get "http://127.0.0.1:3999/socket.io/?EIO=4&sid=…&transport=polling": read tcp 127.0.0.1:…->127.0.0.1:3999: read: connection reset by peer`
	if len(s.Errors) != 1 || s.Errors[0].Count != 2 || s.Errors[0].Message != want {
		t.Errorf("errors = %+v, want one row of 2: %s", s.Errors, want)
	}
}
