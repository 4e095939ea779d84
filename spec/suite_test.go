package spec

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/chatspec/chatspec/reference"
	"github.com/chatspec/chatspec/spec/framework"
	"github.com/chatspec/chatspec/target"
)

// TestSpec runs the whole suite (every grade) against an in-process
// reference server with a short heartbeat, so that the reconnection cases
// finish quickly. Ginkgo's flags select cases, e.g.
// go test ./spec/ -ginkgo.label-filter=core.
func TestSpec(t *testing.T) {
	RegisterFailHandler(Fail)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, cfg := startReference(t, ctx)
	opts := &target.Options{
		Targets:        []string{srv.URL()},
		Path:           cfg.Path,
		Namespace:      "/",
		InitPath:       cfg.InitPath,
		ConnectTimeout: 5 * time.Second,
	}
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := opts.Probe(ctx); err != nil {
		t.Fatal(err)
	}
	if err := framework.Configure(ctx, framework.Config{Target: opts, InitPath: opts.InitPath}); err != nil {
		t.Fatal(err)
	}
	RunSpecs(t, SuiteDescription)
}

// A short heartbeat keeps RECON-2 and RECON-3 at about two seconds; the
// timeout leaves room for a race-instrumented client on a busy machine.
const (
	embeddedPingInterval = 500 * time.Millisecond
	embeddedPingTimeout  = 1500 * time.Millisecond
)

func startReference(t *testing.T, ctx context.Context) (*reference.Running, reference.Config) {
	t.Helper()
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.PingInterval = embeddedPingInterval
	cfg.PingTimeout = embeddedPingTimeout
	srv, err := reference.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("stopping the reference server: %v", err)
		}
	})
	return srv, cfg
}
