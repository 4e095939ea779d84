package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/chatspec/chatspec/reports"
	"github.com/chatspec/chatspec/spec/explore"
	"github.com/chatspec/chatspec/spec/framework"
	"github.com/chatspec/chatspec/spec/target"
)

// exploreFlags are verify's flags for model-based exploration (README
// "Exploration").
type exploreFlags struct {
	budget time.Duration
	seed   int64
	replay string
}

// DefaultExploreBudget is how long `verify --profile all` explores.
const DefaultExploreBudget = 60 * time.Second

func (e *exploreFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&e.budget, "explore", DefaultExploreBudget, "with --profile all: explore random scenarios against the contract's model for this long (0 = off), and from the default on at least one scenario of each of the four shapes; a failure is then shrunk (up to as long again)")
	fs.Int64Var(&e.seed, "explore-seed", 0, "first exploration seed (0 = random; the seed is printed, and scenarios use seed, seed+1, ...)")
	fs.StringVar(&e.replay, "explore-replay", "", "replay this scenario file (written by a failing exploration) instead of exploring; the fixed cases are not run")
}

// minScenarios is the least number of scenarios a budget explores: one of
// each shape from the default budget on, none below it (a short budget is
// the user's choice of speed).
func minScenarios(budget time.Duration) int {
	if budget >= DefaultExploreBudget {
		return explore.NumShapes
	}
	return 0
}

func (e *exploreFlags) validate() error {
	if e.budget < 0 {
		return fmt.Errorf("--explore %s: must not be negative", e.budget)
	}
	return nil
}

// wanted reports whether this verify run explores: profile all, a budget or
// a replay, and a focus (if any) that matches EXPLORE.
func (e *exploreFlags) wanted(profile, focus string) bool {
	if e.replay != "" {
		return true
	}
	if profile != "all" || e.budget == 0 {
		return false
	}
	return focus == "" || regexp.MustCompile(focus).MatchString("EXPLORE")
}

// runExplore runs the exploration and returns its case for the report.
// reportDir (or the temp directory) receives the shrunk failing scenario.
func runExplore(ctx context.Context, e *exploreFlags, tgt *target.Options, step time.Duration, reportDir string, embedded bool, stdout io.Writer) (c reports.VerifyCase) {
	c = reports.VerifyCase{ID: "EXPLORE", Title: "model-based exploration: random scenarios judged by the contract's model", Level: framework.GradeCore}
	started := time.Now()
	defer func() { c.DurationMS = time.Since(started).Milliseconds() }()
	o := explore.Options{
		Runner: &explore.Runner{Target: tgt, StepTimeout: step, Pace: 55 * time.Millisecond},
		Budget: e.budget,
		Seed:   e.seed,
		// From the default budget on, every shape is explored once
		// however slow the machine: a volume defect needs the chatty
		// shape, which comes fourth.
		MinScenarios: minScenarios(e.budget),
		Progress:     func(s string) { fmt.Fprintln(stdout, s) },
	}
	if e.replay != "" {
		s, err := explore.ReadScenario(e.replay)
		if err != nil {
			c.Outcome, c.Message = reports.OutcomeSkipped, err.Error()
			return c
		}
		o.Replay = &s
		o.Seed = s.Seed
	} else if o.Seed == 0 {
		o.Seed = time.Now().UnixNano() % 1_000_000_000
	}
	fmt.Fprintf(stdout, "explore: seed %d, budget %s\n", o.Seed, e.budget)
	res, err := explore.Explore(ctx, o)
	c.Findings = res.Notes
	summary := fmt.Sprintf("%d scenarios from seed %d (%d sockets, %d writes) in %s; heartbeat %s+%s",
		res.Scenarios, o.Seed, res.Sockets, res.Writes, res.Duration.Round(time.Second), res.Heartbeat.PingInterval, res.Heartbeat.PingTimeout)
	if err != nil {
		c.Outcome, c.Message = reports.OutcomeSkipped, fmt.Sprintf("exploration could not run: %v", err)
		return c
	}
	if res.SetAside > 0 {
		summary += fmt.Sprintf("; %d failing runs set aside (the harness stalled near the ping timeout), %d scenarios not verified", res.SetAside, res.Unverified)
	}
	f := res.Finding
	if f == nil && res.Unverified > 0 && res.Unverified == res.Scenarios {
		c.Outcome, c.Message = reports.OutcomeSkipped, "not verified: every scenario failed only in runs whose harness stalled near the server's ping timeout (a loaded machine); "+summary
		return c
	}
	if f == nil {
		c.Outcome, c.Message = reports.OutcomePassed, summary
		return c
	}
	if req, ok := framework.Contract(f.Minimal[0].ID); ok {
		c.Level, _, _ = strings.Cut(req.Grade, ",")
		c.Requirement = fmt.Sprintf("%s (%s): %s", req.ID, req.Grade, req.Text)
	}
	c.Outcome = reports.OutcomeFailed
	var b strings.Builder
	fmt.Fprintf(&b, "violates %s (scenario seed %d, shape %s, found after %s; %s)\n", strings.Join(f.IDs, ", "), f.Seed, f.Shape, res.FirstFailure.Round(time.Second), summary)
	fmt.Fprintf(&b, "shrunk from %d to %d operations in %d runs (%s); minimal reproduction:\n", f.OriginalOps, len(f.Shrunk.Ops), f.ShrinkRuns, f.ShrinkTime.Round(time.Second))
	b.WriteString(f.Trace)
	if path, err := saveScenario(reportDir, f); err != nil {
		fmt.Fprintf(&b, "(could not save the scenario: %v)\n", err)
	} else {
		targetArgs := ""
		if !embedded {
			for _, u := range tgt.Targets {
				targetArgs += " --target " + u
			}
			if tgt.InitPath != "" {
				targetArgs += " --init-path " + tgt.InitPath
			}
			if tgt.Path != "/socket.io/" {
				targetArgs += " --path " + tgt.Path
			}
			if tgt.Namespace != "/" {
				targetArgs += " --namespace " + tgt.Namespace
			}
		}
		fmt.Fprintf(&b, "replay: chatspec verify%s --profile all --explore-replay %s\n", targetArgs, path)
		fmt.Fprintf(&b, "or regenerate the unshrunk scenario: chatspec verify%s --profile all --focus EXPLORE --explore-seed %d --explore 1s\n", targetArgs, f.Seed)
	}
	c.Message = b.String()
	return c
}

func saveScenario(dir string, f *explore.Finding) (string, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	data, err := f.Shrunk.Encode()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("explore-seed-%d.json", f.Seed))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", err
	}
	return path, nil
}
