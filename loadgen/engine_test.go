package loadgen

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chatspec/chatspec/loadgen/faultychat"
	"github.com/chatspec/chatspec/loadgen/threshold"
	"github.com/chatspec/chatspec/reference"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// startReference runs the reference server on a free loopback port for
// one test.
func startReference(t *testing.T) string {
	t.Helper()
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.PingInterval = 5 * time.Second
	cfg.PingTimeout = 5 * time.Second
	cfg.HistoryLimit = 50
	cfg.Rate = 0
	r, err := reference.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("reference.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("reference stop: %v", err)
		}
	})
	return r.URL()
}

func startFaulty(t *testing.T, f faultychat.Faults) *faultychat.Server {
	t.Helper()
	s, err := faultychat.Start(f)
	if err != nil {
		t.Fatalf("faultychat.Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type runOpts struct {
	users      int
	ramp, dur  time.Duration
	interval   time.Duration
	window     time.Duration
	churn      float64
	transports []TransportShare
	maxOutage  time.Duration
	noAcks     bool
}

func defaults(o runOpts) runOpts {
	if o.users == 0 {
		o.users = 12
	}
	if o.ramp == 0 {
		o.ramp = 300 * time.Millisecond
	}
	if o.dur == 0 {
		o.dur = 2 * time.Second
	}
	if o.interval == 0 {
		o.interval = 250 * time.Millisecond
	}
	if o.window == 0 {
		o.window = time.Second
	}
	return o
}

func newEngine(t *testing.T, url string, o runOpts) (*Engine, *Metrics) {
	t.Helper()
	o = defaults(o)
	arr, err := Plan{Users: o.users, Ramp: o.ramp, Duration: o.dur, Linger: o.window}.Arrivals()
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{
		RunID:       "t1",
		Arrivals:    arr,
		Pacer:       PoissonPacer{Mean: o.interval},
		MessageSize: 64,
		Window:      o.window,
		JoinTimeout: 5 * time.Second,
		Churn:       o.churn,
		ChurnPause:  200 * time.Millisecond,
		Transports:  o.transports,
		Seed:        1,
		StopTimeout: 3 * time.Second,
		MaxOutage:   o.maxOutage,
		NoAcks:      o.noAcks,
		Dial: func(int) sioclient.Options {
			return sioclient.Options{URL: url, ConnectTimeout: 5 * time.Second}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e, NewMetrics(MetricsConfig{Users: o.users, Window: o.window, Interval: 500 * time.Millisecond})
}

func run(t *testing.T, url string, o runOpts) *Summary {
	t.Helper()
	e, m := newEngine(t, url, o)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return Measure(ctx, e, m, true)
}

// libraryDrop matches the one error the zishang520 servers (the reference
// and faultychat) cause on their own: an event that arrives right after
// the namespace CONNECT ack, before the server registered the socket
// (servers/socket v3.0.6 namespace.go _doConnect writes the ack first), is
// refused as "invalid state" and the connection is closed. The engine
// reconnects such a user; tests accept this error and no other.
func libraryDrop(e ErrorCount) bool {
	return e.Kind == "join_failed" && strings.Contains(e.Message, "connection ended before `connected`") &&
		strings.Contains(e.Message, "server dropped the TCP connection")
}

// unexplained returns the errors of s that libraryDrop does not explain.
func unexplained(s *Summary) []ErrorCount {
	var out []ErrorCount
	for _, e := range s.Errors {
		if !libraryDrop(e) {
			out = append(out, e)
		}
	}
	return out
}

// await polls cond until it holds or d has passed, and reports whether it
// held. For conditions on counters, which have no event to wait for.
func await(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func mustThresholds(t *testing.T, exprs ...string) []threshold.Threshold {
	t.Helper()
	var l threshold.List
	for _, e := range exprs {
		if err := l.Set(e); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func TestAgainstReferenceEveryDeliveryIsAccounted(t *testing.T) {
	url := startReference(t)
	s := run(t, url, runOpts{transports: []TransportShare{{sioclient.WebSocket, 2}, {sioclient.Polling, 1}}})
	m := s.Messages
	t.Logf("users %+v messages %+v fanout %+v", s.Users, m, s.LatencyMS.Fanout)
	if s.Ended != EndedCompleted {
		t.Errorf("ended = %q (%s), want completed", s.Ended, s.EndedDetail)
	}
	requireNothingOutOfContract(t, s)
	if got, want := s.Users.Connected, 12; got != want {
		t.Errorf("users connected = %d, want %d", got, want)
	}
	if s.Users.ConnectErrors != 0 || s.Users.Dropped != 0 || len(unexplained(s)) > 0 {
		t.Errorf("errors: %+v %+v", s.Users, s.Errors)
	}
	if m.Sent < 20 {
		t.Errorf("sent = %d, want at least 20", m.Sent)
	}
	if m.ExpectedDeliveries < m.Sent {
		t.Errorf("expected deliveries %d < sent %d", m.ExpectedDeliveries, m.Sent)
	}
	if m.Lost != 0 || m.Delivered != m.ExpectedDeliveries || m.Duplicated != 0 || m.Reordered != 0 {
		t.Errorf("accounting: %+v, per sender %+v", m, s.PerSender)
	}
	if s.LatencyMS.Fanout.Count == 0 || s.LatencyMS.Echo.Count == 0 || s.LatencyMS.Join.Count != 12 || s.LatencyMS.Connect.Count != 12+s.Users.JoinErrors {
		t.Errorf("latency counts: %+v", s.LatencyMS)
	}
	s.ApplyThresholds(mustThresholds(t, "delivery.lost==0", "delivery.loss_ratio<0.001", "connect.errors==0", "fanout.p99<2s"))
	if s.Verdict != "pass" {
		t.Errorf("verdict = %s: %+v", s.Verdict, s.Thresholds)
	}
	if len(s.Timeline) == 0 {
		t.Errorf("empty timeline")
	}
}

// TestUpgradeTransportAccounting runs users that start on polling and
// upgrade: whatever happens to their sessions, every delivery owed is
// accounted for.
func TestUpgradeTransportAccounting(t *testing.T) {
	url := startReference(t)
	s := run(t, url, runOpts{users: 8, transports: []TransportShare{{sioclient.Upgrade, 1}}})
	m := s.Messages
	t.Logf("users %+v messages %+v errors %+v", s.Users, m, s.Errors)
	if s.Users.ConnectErrors != 0 || len(unexplained(s)) > 0 {
		t.Errorf("connect/join errors over upgrade: %+v", s.Errors)
	}
	if m.Sent == 0 || m.Lost != 0 || m.Delivered != m.ExpectedDeliveries {
		t.Errorf("accounting over upgrade: %+v", m)
	}
	requireNothingOutOfContract(t, s)
}

func TestDroppedMessagesAreLostAndFailTheThreshold(t *testing.T) {
	srv := startFaulty(t, faultychat.Faults{DropEvery: 10})
	s := run(t, srv.URL(), runOpts{})
	m := s.Messages
	t.Logf("messages %+v", m)
	if m.Sent < 20 {
		t.Fatalf("sent = %d, want at least 20", m.Sent)
	}
	if m.Lost == 0 {
		t.Fatalf("lost = 0 against a server dropping every 10th message: %+v", m)
	}
	// Every 10th message is lost for everyone expected to see it: about a
	// tenth of the deliveries.
	if r := m.LossRatio; r < 0.04 || r > 0.2 {
		t.Errorf("loss ratio = %.3f, want about 0.1", r)
	}
	if m.Delivered+m.Lost != m.ExpectedDeliveries {
		t.Errorf("delivered %d + lost %d != expected %d", m.Delivered, m.Lost, m.ExpectedDeliveries)
	}
	// The sender's later messages keep arriving after a dropped one: gaps
	// (trailing only when a sender's last message was the dropped one).
	if m.LostGaps+m.LostTrailing != m.Lost || m.LostGaps <= m.LostTrailing {
		t.Errorf("lost %d = gaps %d + trailing %d: want mostly gaps", m.Lost, m.LostGaps, m.LostTrailing)
	}
	if len(s.PerSender) == 0 {
		t.Errorf("no sender listed with losses")
	}
	s.ApplyThresholds(mustThresholds(t, "delivery.lost==0", "fanout.p99<5s"))
	if s.Verdict != "fail" || s.Thresholds[0].OK || !s.Thresholds[1].OK {
		t.Errorf("verdict %s thresholds %+v, want delivery.lost==0 to fail alone", s.Verdict, s.Thresholds)
	}
}

func TestDelayedBroadcastsShowInLatency(t *testing.T) {
	const delay = 400 * time.Millisecond
	srv := startFaulty(t, faultychat.Faults{Delay: delay})
	s := run(t, srv.URL(), runOpts{window: 2 * time.Second})
	f := s.LatencyMS.Fanout
	t.Logf("fanout %+v messages %+v", f, s.Messages)
	if f.Count == 0 {
		t.Fatal("no fan-out latency measured")
	}
	if f.P50 < float64(delay/time.Millisecond) {
		t.Errorf("fanout p50 = %.1fms, want >= %v", f.P50, delay)
	}
	if s.Messages.Lost != 0 {
		t.Errorf("lost = %d: a delay inside the window is not a loss", s.Messages.Lost)
	}
	s.ApplyThresholds(mustThresholds(t, "fanout.p99<250ms"))
	if s.Verdict != "fail" {
		t.Errorf("verdict = %s, want fail: %+v", s.Verdict, s.Thresholds)
	}
}

// A server slower than the delivery window: users leave while their last
// messages are still held back. Those losses are trailing (nothing the
// sender wrote later reached the receiver), which the report tells apart
// from gaps.
func TestBroadcastsLaterThanTheWindowAreTrailingLosses(t *testing.T) {
	const delay = 700 * time.Millisecond
	srv := startFaulty(t, faultychat.Faults{Delay: delay})
	s := run(t, srv.URL(), runOpts{window: 200 * time.Millisecond})
	m := s.Messages
	t.Logf("messages %+v", m)
	if m.Lost == 0 {
		t.Fatalf("lost = 0, although users left %v after their last send and broadcasts were %v late", 200*time.Millisecond, delay)
	}
	if m.LostGaps != 0 || m.LostTrailing != m.Lost {
		t.Errorf("lost %d = gaps %d + trailing %d: want all trailing", m.Lost, m.LostGaps, m.LostTrailing)
	}
}

func TestDuplicatesAreCounted(t *testing.T) {
	srv := startFaulty(t, faultychat.Faults{DuplicateEvery: 4})
	s := run(t, srv.URL(), runOpts{users: 6})
	t.Logf("messages %+v", s.Messages)
	if s.Messages.Duplicated == 0 {
		t.Errorf("duplicated = 0 against a server storing every 4th message twice")
	}
	if s.Messages.Lost != 0 {
		t.Errorf("lost = %d, want 0", s.Messages.Lost)
	}
}

func TestChurnAgainstReference(t *testing.T) {
	url := startReference(t)
	s := run(t, url, runOpts{users: 10, dur: 3 * time.Second, churn: 0.5})
	t.Logf("users %+v messages %+v errors %+v", s.Users, s.Messages, s.Errors)
	if s.Users.Reconnects == 0 {
		t.Errorf("no reconnects with churn 0.5")
	}
	if s.Messages.Lost != 0 || s.Messages.Delivered != s.Messages.ExpectedDeliveries {
		t.Errorf("accounting with churn: %+v %+v", s.Messages, s.PerSender)
	}
	if s.Users.Dropped != 0 {
		t.Errorf("planned churn counted as drops: %d", s.Users.Dropped)
	}
	requireNothingOutOfContract(t, s)
}

func TestInterruptStopsCleanlyWithPartialReport(t *testing.T) {
	url := startReference(t)
	e, m := newEngine(t, url, runOpts{users: 10, dur: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	reached := make(chan bool, 1)
	go func() {
		// Cancel once some messages have been delivered (or, failing
		// that, after a bound, so the test cannot hang).
		reached <- await(20*time.Second, func() bool { return m.Live().Delivered >= 20 })
		cancel()
	}()
	began := time.Now()
	s := Measure(ctx, e, m, true)
	if !<-reached {
		t.Fatalf("fewer than 20 deliveries within 20s: %+v", s.Messages)
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Errorf("interrupted run took %v", took)
	}
	if s.Ended != EndedInterrupted {
		t.Errorf("ended = %q, want interrupted", s.Ended)
	}
	if s.Messages.Lost != 0 {
		t.Errorf("lost = %d after a clean interrupt: in-flight messages are owed to nobody", s.Messages.Lost)
	}
	s.ApplyThresholds(nil)
	if s.Verdict != "fail" {
		t.Errorf("verdict of an interrupted run = %s, want fail", s.Verdict)
	}
}

func TestTargetDyingEndsTheRun(t *testing.T) {
	srv := startFaulty(t, faultychat.Faults{})
	e, m := newEngine(t, srv.URL(), runOpts{users: 8, dur: time.Minute})
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
	if s.Ended != EndedTargetDown {
		t.Fatalf("ended = %q (%s), want target_down", s.Ended, s.EndedDetail)
	}
	if !strings.Contains(s.EndedDetail, srv.URL()) || !strings.Contains(s.EndedDetail, "stopped accepting connections") {
		t.Errorf("detail %q does not name the target and what happened", s.EndedDetail)
	}
	// The default (no MaxOutage) ends the run at the first outage, and the
	// report still says when it began.
	if len(s.Outages) != 1 || s.Outages[0].Target != srv.URL() || s.Outages[0].EndS != nil {
		t.Errorf("outages = %+v, want one open outage of %s", s.Outages, srv.URL())
	}
	if s.Users.Dropped == 0 {
		t.Errorf("no dropped sessions recorded")
	}
}

func TestStagedPlanAgainstReference(t *testing.T) {
	url := startReference(t)
	st, err := ParseStages("600ms:8,1s:8,600ms:2")
	if err != nil {
		t.Fatal(err)
	}
	arr, err := Plan{Stages: st, Linger: time.Second}.Arrivals()
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{RunID: "st", Arrivals: arr, Pacer: ConstantPacer{Interval: 150 * time.Millisecond, Jitter: 50 * time.Millisecond},
		Window: time.Second, Seed: 3, Dial: func(int) sioclient.Options { return sioclient.Options{URL: url} }})
	if err != nil {
		t.Fatal(err)
	}
	s := Measure(context.Background(), e, NewMetrics(MetricsConfig{Users: len(arr), Window: time.Second}), true)
	t.Logf("users %+v messages %+v", s.Users, s.Messages)
	if s.Users.Planned != 8 || s.Users.Connected != 8 || s.LatencyMS.Join.Count != 8 || len(unexplained(s)) > 0 {
		t.Errorf("users %+v errors %+v, want 8 planned, connected and joined", s.Users, s.Errors)
	}
	if s.Messages.Sent == 0 || s.Messages.Lost != 0 || s.Messages.Delivered != s.Messages.ExpectedDeliveries {
		t.Errorf("accounting with departures: %+v", s.Messages)
	}
}

func TestUsersAreSpreadOverTargets(t *testing.T) {
	a, b := startFaulty(t, faultychat.Faults{}), startFaulty(t, faultychat.Faults{})
	arr, _ := Plan{Users: 6, Ramp: 100 * time.Millisecond, Duration: time.Second, Linger: 300 * time.Millisecond}.Arrivals()
	urls := []string{a.URL(), b.URL()}
	e, err := New(Config{RunID: "mt", Arrivals: arr, Pacer: PoissonPacer{Mean: time.Second}, Window: 300 * time.Millisecond,
		Dial: func(i int) sioclient.Options { return sioclient.Options{URL: urls[i%2]} }})
	if err != nil {
		t.Fatal(err)
	}
	s := Measure(context.Background(), e, NewMetrics(MetricsConfig{Users: 6, Window: 300 * time.Millisecond}), true)
	if u := unexplained(s); len(u) > 0 {
		t.Fatalf("errors %+v", u)
	}
	// The library's own drop of a join (libraryDrop) may cost a user its
	// join when its reconnect does not fit in the short plan (seen once on
	// a loaded machine): each such drop is one join fewer, on one target.
	drops := 0
	for _, e := range s.Errors {
		if libraryDrop(e) {
			drops += int(e.Count)
		}
	}
	if got := s.LatencyMS.Join.Count; got < int64(6-drops) {
		t.Fatalf("joined %d of 6 (%d dropped by the library): %+v", got, drops, s.Errors)
	}
	if a.Joins() < 3-drops || b.Joins() < 3-drops || a.Joins()+b.Joins() < 6-drops || a.Joins() > 3+drops || b.Joins() > 3+drops {
		t.Errorf("joins per target = %d, %d (%d dropped by the library); want 3, 3", a.Joins(), b.Joins(), drops)
	}
}

func TestUnreachableTargetFailsConnects(t *testing.T) {
	e, m := newEngine(t, "http://127.0.0.1:1", runOpts{users: 3, dur: 500 * time.Millisecond})
	s := Measure(context.Background(), e, m, false)
	if s.Users.ConnectErrors == 0 {
		t.Errorf("no connect errors against a closed port: %+v", s.Users)
	}
	if s.Ended != EndedTargetDown && s.Ended != EndedCompleted {
		t.Errorf("ended = %q", s.Ended)
	}
}

// requireNothingOutOfContract checks the figures a correct server keeps
// at 0: sessions it ended, refusals, repeated or out-of-contract events,
// order conflicts, and a run that measured nothing.
func requireNothingOutOfContract(t *testing.T, s *Summary) {
	t.Helper()
	m, ev := s.Messages, s.Events
	if s.Sessions.EndedByServer != 0 || m.Refused != 0 || m.OrderConflicts != 0 || m.Unmeasured ||
		ev.Repeated != 0 || ev.Foreign != 0 || ev.Forged != 0 || ev.OutOfContract != 0 {
		t.Errorf("sessions %+v, refused %d, order conflicts %d, unmeasured %v, events %+v: want 0 everywhere",
			s.Sessions, m.Refused, m.OrderConflicts, m.Unmeasured, ev)
	}
	if got := s.Sessions.EndedByPlan + s.Sessions.EndedByServer; got != s.Sessions.Connected {
		t.Errorf("sessions %+v: %d ended, want all %d", s.Sessions, got, s.Sessions.Connected)
	}
}
