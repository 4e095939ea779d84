package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/chatspec/chatspec/reference"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// runSeedStyle runs seed-style users (two connections each, writes on the
// unjoined one) on every transport against a reference server with or
// without --seed-clients.
func runSeedStyle(t *testing.T, seedClients bool) *Summary {
	t.Helper()
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.PingInterval = 5 * time.Second
	cfg.PingTimeout = 5 * time.Second
	cfg.HistoryLimit = 50
	cfg.Rate = 0
	cfg.SeedClients = seedClients
	srv, err := reference.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("reference.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("reference stop: %v", err)
		}
	})
	// A generous window: an owed delivery still on its way when its
	// receiver leaves counts as lost, and a loaded machine (tests run
	// with -race, beside other work) can hold an in-process server back
	// by seconds.
	const users, window = 10, 3 * time.Second
	arr, err := Plan{Users: users, Ramp: 300 * time.Millisecond, Duration: 2 * time.Second, Linger: window}.Arrivals()
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{
		RunID:       "seed1",
		Arrivals:    arr,
		Pacer:       PoissonPacer{Mean: 200 * time.Millisecond},
		Window:      window,
		JoinTimeout: 5 * time.Second,
		Transports: []TransportShare{
			{Transport: sioclient.WebSocket, Weight: 1}, {Transport: sioclient.Polling, Weight: 1}, {Transport: sioclient.Upgrade, Weight: 1},
		},
		Seed:        7,
		StopTimeout: 3 * time.Second,
		SeedStyle:   true,
		Dial: func(int) sioclient.Options {
			return sioclient.Options{URL: srv.URL(), ConnectTimeout: 5 * time.Second}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := Measure(ctx, e, NewMetrics(e.MetricsConfig()), false)
	t.Logf("ended %s; users %+v; messages %+v", s.Ended, s.Users, s.Messages)
	return s
}

// Seed-style users against a server that serves them: every delivery owed
// to the joining connections arrives; the writing connections are owed
// nothing.
func TestSeedStyleDeliversThroughSeedClients(t *testing.T) {
	s := runSeedStyle(t, true)
	m := s.Messages
	if s.Ended != EndedCompleted || m.Sent == 0 || m.SendErrors != 0 {
		t.Fatalf("ended %s, sent %d, send errors %d: want a completed run that sent messages", s.Ended, m.Sent, m.SendErrors)
	}
	// Each message is owed to each joined user: about users per message,
	// never the writers (which would double it).
	if m.ExpectedDeliveries == 0 || m.Delivered != m.ExpectedDeliveries || m.Lost != 0 || m.Duplicated != 0 || m.Reordered != 0 {
		t.Errorf("delivered %d of %d owed (lost %d, duplicated %d, reordered %d): want everything owed delivered", m.Delivered, m.ExpectedDeliveries, m.Lost, m.Duplicated, m.Reordered)
	}
	if max := m.Sent * 10; m.ExpectedDeliveries > max {
		t.Errorf("%d deliveries owed for %d messages among 10 users: the writing connections are counted as receivers", m.ExpectedDeliveries, m.Sent)
	}
	if u := unexplained(s); len(u) > 0 {
		t.Errorf("errors: %+v", u)
	}
}

// The same users against a server that enforces SEC-2: every write goes
// out on a connection that never joined and is refused there, so nothing is
// delivered and nothing is owed: the accounting says so as refused writes
// (by code), not as silent loss, and the default gate fails the run.
func TestSeedStyleRefusedWithoutSeedClients(t *testing.T) {
	s := runSeedStyle(t, false)
	m := s.Messages
	if m.Sent == 0 || m.Delivered != 0 || m.Lost != 0 || m.Refused != m.Sent || m.RefusedByCode["not_joined"] != m.Sent {
		t.Errorf("sent %d, delivered %d, lost %d, refused %d (%v): want every write refused as not_joined", m.Sent, m.Delivered, m.Lost, m.Refused, m.RefusedByCode)
	}
}
