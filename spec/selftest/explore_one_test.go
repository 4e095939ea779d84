package selftest

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chatspec/chatspec/spec/explore"
	"github.com/chatspec/chatspec/spec/selftest/brokenserver"
)

// TestExploreOne explores one server by hand: CHATSPEC_EXPLORE_ONE=<defect>,
// CHATSPEC_EXPLORE_SEED=N (default 1), one scenario, no shrinking.
func TestExploreOne(t *testing.T) {
	name := os.Getenv("CHATSPEC_EXPLORE_ONE")
	if name == "" {
		t.Skip("set CHATSPEC_EXPLORE_ONE=<defect> to explore one broken server by hand")
	}
	d, err := brokenserver.ParseDefect(name)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := strconv.ParseInt(os.Getenv("CHATSPEC_EXPLORE_SEED"), 10, 64)
	tgt := brokenTarget(t, d)
	res, err := explore.Explore(t.Context(), explore.Options{Runner: newExploreRunner(tgt), Budget: time.Millisecond, ShrinkBudget: time.Millisecond, Seed: seed,
		Progress: func(s string) { t.Log(s) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Finding != nil {
		t.Logf("%v\n%s", res.Finding.IDs, res.Finding.Trace)
	}
}
