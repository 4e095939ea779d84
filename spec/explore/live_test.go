package explore_test

import (
	"context"
	"testing"
	"time"

	"github.com/chatspec/chatspec/reference"
	"github.com/chatspec/chatspec/spec/explore"
	"github.com/chatspec/chatspec/spec/target"
)

// startReference runs the reference server with the embedded verify's
// short heartbeat and returns a target for it.
func startReference(t *testing.T) *target.Options {
	t.Helper()
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.PingInterval = 500 * time.Millisecond
	cfg.PingTimeout = 1500 * time.Millisecond
	srv, err := reference.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	})
	o := &target.Options{Targets: []string{srv.URL()}, Path: cfg.Path, Namespace: "/", InitPath: cfg.InitPath, ConnectTimeout: 5 * time.Second}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	return o
}

// TestReferencePassesExploration explores the reference server briefly:
// it must find nothing.
func TestReferencePassesExploration(t *testing.T) {
	if testing.Short() {
		t.Skip("explores a live server for about 20 s")
	}
	tgt := startReference(t)
	res, err := explore.Explore(t.Context(), explore.Options{
		Runner:   &explore.Runner{Target: tgt, StepTimeout: 3 * time.Second, Pace: 55 * time.Millisecond},
		Budget:   15 * time.Second,
		Seed:     1,
		Progress: func(s string) { t.Log(s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Finding != nil {
		t.Fatalf("the reference server failed exploration:\n%s", res.Finding.Trace)
	}
	if res.Scenarios == 0 {
		t.Fatal("no scenario ran")
	}
}
