package loadgen

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// These tests run the engine against fakeRoom, through Config.Connect:
// no server, no sockets.

func fakeEngine(t *testing.T, room *fakeRoom, users int, o runOpts) *Engine {
	t.Helper()
	if o.dur == 0 {
		o.dur = 600 * time.Millisecond
	}
	if o.window == 0 {
		o.window = 200 * time.Millisecond
	}
	if o.interval == 0 {
		o.interval = 50 * time.Millisecond
	}
	arr, err := Plan{Users: users, Ramp: 100 * time.Millisecond, Duration: o.dur, Linger: o.window}.Arrivals()
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{
		RunID: "fake1", Arrivals: arr, Pacer: ConstantPacer{Interval: o.interval}, Window: o.window,
		JoinTimeout: 300 * time.Millisecond, ChurnPause: 100 * time.Millisecond, StopTimeout: time.Second,
		Churn: o.churn, Seed: 7,
		Dial:    func(int) sioclient.Options { return sioclient.Options{URL: "fake://room"} },
		Connect: room.connect,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func measureFake(t *testing.T, e *Engine) *Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return Measure(ctx, e, NewMetrics(e.MetricsConfig()), false)
}

func TestEngineFakeRoomDeliversEverything(t *testing.T) {
	room := &fakeRoom{}
	s := measureFake(t, fakeEngine(t, room, 4, runOpts{}))
	m := s.Messages
	if s.Ended != EndedCompleted || m.Sent == 0 || m.ExpectedDeliveries == 0 {
		t.Fatalf("ended %s, messages %+v: want a completed run with owed deliveries", s.Ended, m)
	}
	if m.Lost != 0 || m.Duplicated != 0 || m.Reordered != 0 || m.Delivered != m.ExpectedDeliveries {
		t.Errorf("messages %+v: want every owed delivery, once, in order", m)
	}
	if s.Users.Connected != 4 || s.Users.Sessions != 4 || s.Users.Dropped != 0 || s.Users.JoinErrors != 0 {
		t.Errorf("users %+v: want 4 users, one session each, no drop", s.Users)
	}
	if s.Generator.PeakGoroutines == 0 {
		t.Errorf("peak goroutines 0: the clock probe's samples did not reach the metrics")
	}
}

func TestEngineFakeRoomDuplicatesAreCounted(t *testing.T) {
	room := &fakeRoom{messageCopies: 2}
	s := measureFake(t, fakeEngine(t, room, 3, runOpts{}))
	// Each second copy carries the same list: nothing new in it. Today's
	// per-message accounting cannot see it; it must not count it as a
	// loss either.
	if s.Messages.Lost != 0 {
		t.Errorf("lost %d, want 0", s.Messages.Lost)
	}
}

func TestEngineFakeRoomJoinTimeout(t *testing.T) {
	room := &fakeRoom{silentJoin: true}
	s := measureFake(t, fakeEngine(t, room, 2, runOpts{}))
	if s.Users.JoinErrors != 2 || s.Messages.Sent != 0 {
		t.Errorf("join errors %d, sent %d: want 2 join errors and nothing sent", s.Users.JoinErrors, s.Messages.Sent)
	}
}

func TestEngineFakeRoomServerDropReconnects(t *testing.T) {
	room := &fakeRoom{dropAfterJoin: true}
	s := measureFake(t, fakeEngine(t, room, 2, runOpts{}))
	// Each drop is followed by a reconnect after ChurnPause (100ms) while
	// the user is in its 600ms sending phase: several sessions per user.
	if s.Users.Dropped < 4 || s.Users.Sessions < 4 || s.Users.Reconnects < 2 {
		t.Errorf("users %+v: want every session dropped and each user reconnecting", s.Users)
	}
}

func TestEngineFakeRoomChurnIsPlanned(t *testing.T) {
	room := &fakeRoom{}
	s := measureFake(t, fakeEngine(t, room, 4, runOpts{churn: 1, dur: time.Second}))
	if s.Users.Dropped != 0 || s.Users.Reconnects != 4 {
		t.Errorf("users %+v: want each user to churn once (a planned reconnect), no drop", s.Users)
	}
	if s.Messages.Lost != 0 || s.Messages.Duplicated != 0 {
		t.Errorf("messages %+v: churn must not cost deliveries", s.Messages)
	}
}

func TestSchedulerOrderAndWait(t *testing.T) {
	u := &user{}
	s := newScheduler([]event{{30, evLeave, u}, {10, evArrive, u}, {20, evSend, u}})
	if _, due, wait, empty := s.next(5); due || empty || wait != 5 {
		t.Fatalf("next(5) = due %v, wait %v, empty %v; want wait 5", due, wait, empty)
	}
	var got []evKind
	for {
		ev, due, _, empty := s.next(100)
		if empty {
			break
		}
		if !due {
			t.Fatal("an event past its time is not due")
		}
		got = append(got, ev.kind)
	}
	if len(got) != 3 || got[0] != evArrive || got[1] != evSend || got[2] != evLeave {
		t.Errorf("order %v, want arrive, send, leave", got)
	}
}

func TestInitialEventsChurnInMiddleOfSendingPhase(t *testing.T) {
	var users []*user
	for i := range 50 {
		users = append(users, &user{idx: i, arr: Arrival{User: i, At: time.Second, SendUntil: 11 * time.Second, Leave: 12 * time.Second},
			rng: rand.New(rand.NewPCG(1, uint64(i)))})
	}
	evs := initialEvents(users, 0.5)
	churned := 0
	for _, ev := range evs {
		if ev.kind != evChurn {
			continue
		}
		churned++
		if ev.at < 3*time.Second || ev.at > 9*time.Second {
			t.Errorf("churn at %v, want within the middle three fifths (3s..9s)", ev.at)
		}
	}
	if churned < 10 || churned > 40 || len(evs) != 100+churned {
		t.Errorf("%d churns of 50 users at 0.5, %d events: want about half, plus arrive and leave for each", churned, len(evs))
	}
	if n := len(initialEvents(users, 0)); n != 100 {
		t.Errorf("churn 0: %d events, want 100", n)
	}
}
