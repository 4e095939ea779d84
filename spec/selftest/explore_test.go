package selftest

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatspec/chatspec/spec/explore"
	"github.com/chatspec/chatspec/spec/selftest/brokenserver"
	"github.com/chatspec/chatspec/spec/target"
)

// Exploration's self-test (issue 10): every brokenserver defect of the
// classes the fixed cases cannot see must fail exploration for the right
// contract ID within the default budget, shrink, and replay; the correct
// servers must pass exploration with several seeds.
//
// Environment:
//
//	CHATSPEC_EXPLORE_DEFECTS  comma-separated defects to explore (default: all of exploreExpectations)
//	CHATSPEC_EXPLORE_SEEDS    seeds per correct server (default 2)
//	CHATSPEC_EXPLORE_BUDGET   exploring budget per run (default: one scenario of each shape for defects, 15s for correct servers)

// exploreExpectations: the defect, and the contract IDs of which at least
// one must be among exploration's findings.
var exploreExpectations = []struct {
	defect brokenserver.Defect
	want   []string
}{
	{brokenserver.FirstUserUnlisted, ids("JOIN-2")},
	{brokenserver.TabCountNotIncremented, ids("USER-4")},
	{brokenserver.PingTimeoutRemovesUser, ids("USER-4")},
	{brokenserver.ShortConnectedHistory, ids("HIST-4", "HIST-3")},
	{brokenserver.NormalizesText, ids("PAY-3")},
	{brokenserver.NormalizesUsernames, ids("PAY-3", "JOIN-2", "USER-1")},
	{brokenserver.DropsLongAcked, ids("HIST-2")},
	{brokenserver.IdentityFirstWriteOnly, ids("SEC-1")},
	{brokenserver.IdentityFoldsCase, ids("SEC-1")},
	{brokenserver.ListPageOf30, ids("JOIN-2", "JOIN-3")},
	{brokenserver.BroadcastStopsAfter1000, ids("MSG-1")},
	{brokenserver.StalePollingSessions, ids("MSG-1")},
}

// exploreScenarios is the defects' exploring budget in work: one scenario
// of each of the four shapes (seeds 1 to 4), however long a loaded machine
// takes over them; a wall-clock budget reached fewer shapes when the
// machine was slow and let a volume defect pass. CHATSPEC_EXPLORE_BUDGET
// set restores the wall-clock budget.
func exploreScenarios() int {
	if os.Getenv("CHATSPEC_EXPLORE_BUDGET") != "" {
		return 0
	}
	return 4
}

func exploreBudget(def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv("CHATSPEC_EXPLORE_BUDGET")); err == nil && d > 0 {
		return d
	}
	return def
}

func brokenTarget(t *testing.T, d brokenserver.Defect) *target.Options {
	t.Helper()
	url, stop, err := brokenserver.Start(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	o := &target.Options{Targets: []string{url}, Path: "/socket.io/", Namespace: "/", InitPath: "/api/socket", ConnectTimeout: 5 * time.Second}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	return o
}

func newExploreRunner(tgt *target.Options) *explore.Runner {
	return &explore.Runner{Target: tgt, StepTimeout: 3 * time.Second, Pace: 55 * time.Millisecond}
}

// TestExploreFindsDefects: each defect fails exploration for its contract
// ID within one scenario of each shape (about the default 60 s budget on a
// quiet machine); the shrunk scenario replays to the same ID.
func TestExploreFindsDefects(t *testing.T) {
	if testing.Short() {
		t.Skip("explores live servers; skipped with -short")
	}
	t.Parallel()
	selected := map[string]bool{}
	for _, name := range strings.Split(os.Getenv("CHATSPEC_EXPLORE_DEFECTS"), ",") {
		if name = strings.TrimSpace(name); name != "" {
			selected[name] = true
		}
	}
	for _, e := range exploreExpectations {
		if len(selected) > 0 && !selected[string(e.defect)] {
			continue
		}
		t.Run(string(e.defect), func(t *testing.T) {
			t.Parallel()
			slots <- struct{}{}
			defer func() { <-slots }()
			tgt := brokenTarget(t, e.defect)
			r := newExploreRunner(tgt)
			res, err := explore.Explore(t.Context(), explore.Options{
				Runner: r, Budget: exploreBudget(60 * time.Second), Scenarios: exploreScenarios(), ShrinkBudget: 20 * time.Second, Seed: 1,
				Progress: func(s string) { t.Log(s) },
			})
			if err != nil {
				t.Fatal(err)
			}
			f := res.Finding
			if f == nil {
				t.Fatalf("%s passed exploration (%d scenarios, %d sockets, %d writes in %s); want a failure of %v",
					e.defect, res.Scenarios, res.Sockets, res.Writes, res.Duration.Round(time.Second), e.want)
			}
			if !slices.ContainsFunc(f.IDs, func(id string) bool { return slices.Contains(e.want, id) }) {
				t.Fatalf("%s failed exploration for %v, want one of %v:\n%s", e.defect, f.IDs, e.want, f.Trace)
			}
			t.Logf("found %v after %s (seed %d, %s); shrunk %d -> %d ops in %d runs (%s)",
				f.IDs, res.FirstFailure.Round(100*time.Millisecond), f.Seed, f.Shape, f.OriginalOps, len(f.Shrunk.Ops), f.ShrinkRuns, f.ShrinkTime.Round(time.Second))
			recordExplore(fmt.Sprintf("%-28s found %-22s in %5.1fs (seed %d, %s), shrunk %4d -> %3d ops",
				e.defect, strings.Join(f.IDs, ","), res.FirstFailure.Seconds(), f.Seed, f.Shape, f.OriginalOps, len(f.Shrunk.Ops)))

			// The reproduction replays to the ID it was shrunk for.
			target := f.Violations[0].ID
			replay, err := explore.Explore(t.Context(), explore.Options{Runner: r, Replay: &f.Shrunk, Attempts: 3})
			if err != nil {
				t.Fatal(err)
			}
			if replay.Finding == nil || !slices.Contains(replay.Finding.IDs, target) {
				t.Errorf("the shrunk scenario did not replay to %s in 3 attempts:\n%s", target, f.Trace)
			}
		})
	}
}

// TestExploreCorrectServerPasses: the careful brokenserver (SeedCorrect)
// passes exploration with several seeds. The reference, the Node server
// and its variants are run the same way by spec/explore's and the interop
// package's tests, and by hand (README "Exploration").
func TestExploreCorrectServerPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("explores a live server; skipped with -short")
	}
	t.Parallel()
	slots <- struct{}{}
	defer func() { <-slots }()
	seeds := envInt("CHATSPEC_EXPLORE_SEEDS", 2)
	tgt := brokenTarget(t, brokenserver.SeedCorrect)
	for i := range seeds {
		seed := int64(100 + 7*i)
		res, err := explore.Explore(t.Context(), explore.Options{
			Runner: newExploreRunner(tgt), Budget: exploreBudget(15 * time.Second), Seed: seed,
			Progress: func(s string) { t.Log(s) },
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Finding != nil {
			t.Fatalf("seed %d: the correct server failed exploration (%v):\n%s", seed, res.Finding.IDs, res.Finding.Trace)
		}
		recordExplore("seed-correct seed " + strconv.FormatInt(seed, 10) + ": passed " + strconv.Itoa(res.Scenarios) + " scenarios")
	}
}

func recordExplore(line string) {
	exploreMu.Lock()
	defer exploreMu.Unlock()
	fmt.Fprintln(os.Stderr, "explore:", line)
}

var exploreMu sync.Mutex

// exploreNodeVariants are variants.js servers (correct, each leaving one
// §8 freedom taken) that exploration must pass, with the reason the model
// must allow each.
var exploreNodeVariants = []string{
	"plain",             // server.js's rules
	"extra-fields",      // PAY-2
	"rooms",             // JOIN-4/MSG-1: unjoined sockets get nothing
	"acks",              // acks with payloads of their own (§8)
	"no-acks",           // refusals as an event only
	"ack-errors",        // refusals through the ack only
	"chatty-disconnect", // disconnected on every disconnect (USER-4/5)
	"cap-50",            // the smallest legal cap
	"broadcast-first",   // others hear before the sender
	"slow-store",        // 20 ms per store operation
	"system-messages",   // other entries in history
	"extra-events",      // events the contract does not name
	"small-limits",      // 32/280 limits: refusals of long names and texts
	"rate-10",           // a rate limit near SEC-5's floor
	"recovery",          // offsets after every payload
	"separate-emits",    // the seed's two emits
	"rewrite-username",  // SEC-1 by rewriting
}

// TestExploreNodeServersPass: the Node server and its variants pass
// exploration (CHATSPEC_EXPLORE_SEEDS seeds each, default 1 here).
func TestExploreNodeServersPass(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Node; skipped with -short")
	}
	t.Parallel()
	seeds := envInt("CHATSPEC_EXPLORE_SEEDS", 1)
	servers := append([]string{"server.js"}, exploreNodeVariants...)
	if v := os.Getenv("CHATSPEC_EXPLORE_NODE"); v != "" {
		servers = strings.Split(v, ",")
	}
	for _, name := range servers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			slots <- struct{}{}
			defer func() { <-slots }()
			// A timeout of 5 s: a client process starved of CPU on a loaded
			// machine must not look like a client the server rightly dropped
			// (the model cannot yet tell a server-side ping timeout the client
			// has not noticed from a presence defect).
			heartbeat := []string{"--port", "0", "--ping-interval", "1000", "--ping-timeout", "5000"}
			var srvURL string
			if name == "server.js" {
				srv := startNode(t, "server.js", heartbeat...)
				srvURL = srv.URL()
				defer logOnFail(t, srv.Output)
			} else {
				srv := startNode(t, "variants.js", append([]string{"--variant", name}, heartbeat...)...)
				srvURL = srv.URL()
				defer logOnFail(t, srv.Output)
			}
			tgt := &target.Options{Targets: []string{srvURL}, Path: "/socket.io/", Namespace: "/", InitPath: "/api/socket", ConnectTimeout: 5 * time.Second}
			if err := tgt.Validate(); err != nil {
				t.Fatal(err)
			}
			for i := range seeds {
				seed := int64(200 + 5*i)
				res, err := explore.Explore(t.Context(), explore.Options{
					Runner: newExploreRunner(tgt), Budget: exploreBudget(15 * time.Second), Seed: seed,
					Progress: func(s string) { t.Log(s) },
				})
				if err != nil {
					t.Fatal(err)
				}
				if res.Finding != nil {
					t.Fatalf("seed %d: %s failed exploration (%v):\n%s", seed, name, res.Finding.IDs, res.Finding.Trace)
				}
				recordExplore(fmt.Sprintf("node %s seed %d: passed %d scenarios (%d sockets, %d writes)", name, seed, res.Scenarios, res.Sockets, res.Writes))
			}
		})
	}
}

func logOnFail(t *testing.T, output func() string) {
	if t.Failed() {
		t.Logf("server output:\n%s", tail(output()))
	}
}
