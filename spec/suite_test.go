package spec

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/chatspec/chatspec/reference"
	"github.com/chatspec/chatspec/spec/framework"
	"github.com/chatspec/chatspec/spec/target"
)

// TestSpec runs the whole suite (every grade) against an in-process
// reference server with a short heartbeat, so that the reconnection cases
// finish quickly. Ginkgo's flags select cases, e.g.
// go test ./spec/ -ginkgo.label-filter=core.
func TestSpec(t *testing.T) {
	RegisterFailHandler(Fail)
	before := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	srv, cfg := startReference(t, ctx)
	defer func() {
		// After the run and the server's stop, no client of the suite may
		// be left running (CONTRACT-independent: a harness that leaks
		// goroutines cannot run unattended in CI).
		cancel()
		stopReference(t, srv)
		if err := goleak.Find(before,
			// Ginkgo's own interrupt handler lives as long as the process.
			goleak.IgnoreTopFunction("github.com/onsi/ginkgo/v2/internal/interrupt_handler.(*InterruptHandler).registerForInterrupts.func2"),
			// The server library's timers (ping, ping timeout, a polling
			// transport's 30 s close timeout) each end by themselves after their
			// duration and hold nothing of ours; the library leaves some running
			// past a close. A goroutine of ours or a connection left open is still
			// caught.
			goleak.IgnoreTopFunction("github.com/zishang520/socket.io/v3/pkg/utils.SetTimeout.func1")); err != nil {
			t.Errorf("goroutines left after the suite: %v", err)
		}
	}()
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
	return srv, cfg
}

func stopReference(t *testing.T, srv *reference.Running) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		t.Errorf("stopping the reference server: %v", err)
	}
}
