// Package spec is the conformance suite: Ginkgo specs that check a chat
// server against CONTRACT.md. Each spec's name starts with the case ID it
// verifies, and carries one grade label (core, strict, robust, security,
// info); profiles are label filters over the grades (framework.Profiles).
//
// The same specs run from `go test ./spec/...` (against an in-process
// reference server) and from `chatspec verify` (through Run).
package spec

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/formatter"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"

	"github.com/chatspec/chatspec/spec/framework"
)

//go:embed CONTRACT.md
var contractMD string

// contractErr is why CONTRACT.md could not be parsed, if it could not.
var contractErr error

func init() {
	reqs, err := framework.ParseContract(contractMD)
	if err != nil {
		contractErr = fmt.Errorf("spec: CONTRACT.md: %w", err)
		return
	}
	framework.SetContract(reqs)
}

// SuiteDescription names the suite in reports.
const SuiteDescription = "chatspec conformance (CONTRACT.md)"

// RunOptions selects and bounds one run.
type RunOptions struct {
	// Profile is "core", "strict" or "all" (framework.Profiles).
	Profile string
	// Focus, when set, keeps only the cases whose full name matches this
	// regular expression.
	Focus string
	// Timeout bounds the whole run.
	Timeout time.Duration
	// OnCase, when set, is called after each case with its result
	// (progress output).
	OnCase func(CaseResult)
}

var (
	hookMu     sync.Mutex
	onCase     func(CaseResult)
	lastReport *types.Report
	ran        bool
)

var _ = ReportAfterEach(func(r SpecReport) {
	hookMu.Lock()
	hook := onCase
	hookMu.Unlock()
	if c, ok := gradeSpec(r); ok && hook != nil {
		hook(c)
	}
})

var _ = ReportAfterSuite("collect the report", func(r Report) {
	hookMu.Lock()
	defer hookMu.Unlock()
	lastReport = &r
})

// suiteConfig turns options into Ginkgo's configuration.
func suiteConfig(opts RunOptions) (types.SuiteConfig, error) {
	sc := types.NewDefaultSuiteConfig()
	profile := opts.Profile
	if profile == "" {
		profile = "all"
	}
	filter, ok := framework.Profiles[profile]
	if !ok {
		return sc, fmt.Errorf("unknown profile %q (want core, strict or all)", opts.Profile)
	}
	sc.LabelFilter = filter
	if opts.Focus != "" {
		if _, err := regexp.Compile(opts.Focus); err != nil {
			return sc, fmt.Errorf("focus %q: %w", opts.Focus, err)
		}
		sc.FocusStrings = []string{opts.Focus}
	}
	// A fixed seed keeps the order of the cases the same from run to run,
	// so that two runs' reports line up.
	sc.RandomSeed = 1
	if opts.Timeout > 0 {
		sc.Timeout = opts.Timeout
	}
	sc.GracePeriod = 5 * time.Second
	return sc, nil
}

// selector returns the test that tells which specs of a Ginkgo report a
// run with these options selected (its profile's labels and its focus).
// A selected spec that never ran was not reached: the run stopped early.
func selector(opts RunOptions) (func(types.SpecReport) bool, error) {
	sc, err := suiteConfig(opts)
	if err != nil {
		return nil, err
	}
	match, err := types.ParseLabelFilter(sc.LabelFilter)
	if err != nil {
		return nil, err
	}
	var focus *regexp.Regexp
	if opts.Focus != "" {
		focus = regexp.MustCompile(opts.Focus) // checked by suiteConfig
	}
	return func(s types.SpecReport) bool {
		return s.LeafNodeType == types.NodeTypeIt && match(s.Labels()) && (focus == nil || focus.MatchString(s.FullText()))
	}, nil
}

// Case describes one case of the suite, for listings.
type Case struct {
	ID    string
	Grade string
	Title string
	// Labels holds every label (grade, transport, stock-client).
	Labels []string
}

// List returns the cases that a run with these options would run, in run
// order, without running them.
func List(opts RunOptions) ([]Case, error) {
	if contractErr != nil {
		return nil, contractErr
	}
	sc, err := suiteConfig(opts)
	if err != nil {
		return nil, err
	}
	report := PreviewSpecs(SuiteDescription, sc, types.NewDefaultReporterConfig())
	var out []Case
	for _, s := range report.SpecReports {
		if s.LeafNodeType != types.NodeTypeIt || s.State.Is(types.SpecStateSkipped|types.SpecStatePending) {
			continue
		}
		out = append(out, Case{ID: framework.CaseID(s.LeafNodeText), Grade: framework.Grade(s.Labels()), Title: framework.CaseTitle(s.LeafNodeText), Labels: s.Labels()})
	}
	slices.SortStableFunc(out, func(a, b Case) int { return framework.CaseOrder(a.ID, b.ID) })
	return out, nil
}

// failRecorder is the GinkgoTestingT of a run outside `go test`.
type failRecorder struct{ failed bool }

func (f *failRecorder) Fail() { f.failed = true }

// Run runs the suite once against cfg and returns what it found: every
// selected case graded, and why the run stopped early if it did. Ginkgo
// allows one run per process, so a second call returns an error. ctx stops
// the run: the case in progress is interrupted and the rest are skipped;
// a ctx that was canceled is an interruption, one past its deadline the
// run timeout.
func Run(ctx context.Context, cfg framework.Config, opts RunOptions) (Result, error) {
	if contractErr != nil {
		return Result{}, contractErr
	}
	sc, err := suiteConfig(opts)
	if err != nil {
		return Result{}, err
	}
	selected, err := selector(opts)
	if err != nil {
		return Result{}, err
	}
	if err := framework.Configure(ctx, cfg); err != nil {
		return Result{}, err
	}
	hookMu.Lock()
	if ran {
		hookMu.Unlock()
		return Result{}, errors.New("spec: the suite already ran in this process (Ginkgo runs once per process)")
	}
	ran = true
	onCase = opts.OnCase
	lastReport = nil // List (a dry run) reports too
	hookMu.Unlock()
	gomega.RegisterFailHandler(Fail)
	rc := types.NewDefaultReporterConfig()
	rc.Succinct = true
	// Ginkgo's own reporter would print to the process's stdout; callers
	// print their own progress (OnCase) and summary instead.
	formatter.ColorableStdOut = io.Discard
	started := time.Now()
	RunSpecs(&failRecorder{}, SuiteDescription, sc, rc)
	hookMu.Lock()
	defer hookMu.Unlock()
	onCase = nil
	if lastReport == nil {
		return Result{}, errors.New("spec: the suite produced no report")
	}
	res := Result{Started: lastReport.StartTime, Duration: lastReport.RunTime, Cases: collect(*lastReport, selected)}
	if res.Started.IsZero() {
		res.Started = started
	}
	res.Stop = stopOf(ctx, *lastReport, opts)
	if o, down := framework.TargetOutage(); down {
		res.Stop, res.Cases = outageStop(o, res.Cases)
	}
	return res, nil
}

// stopOf says whether the run was stopped from outside: its context
// canceled (interrupted) or past its deadline, or Ginkgo's own suite
// timeout (the same deadline) elapsed first.
func stopOf(ctx context.Context, r types.Report, opts RunOptions) Stop {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return Stop{Kind: StopInterrupted, Reason: "interrupted"}
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || slices.ContainsFunc(r.SpecialSuiteFailureReasons, func(s string) bool {
		return strings.Contains(s, "Timeout")
	}):
		return Stop{Kind: StopRunTimeout, Reason: fmt.Sprintf("the run took longer than --run-timeout %s", opts.Timeout)}
	}
	return Stop{}
}

// outageStop grades a run in which the target stopped answering. When a
// case's bad input is the likely cause, that case failed (even if its own
// checks passed before the target went) and the case that merely found
// the target gone did not run; otherwise the target went away on its own
// and the run ended early.
func outageStop(o framework.Outage, cases []CaseResult) (Stop, []CaseResult) {
	if o.Culprit == "" {
		return Stop{Kind: StopTargetGone, Reason: o.Err.Error(), Case: o.FoundIn}, cases
	}
	reason := fmt.Sprintf("the target stopped answering after %s's bad input (%v)", o.Culprit, o.Err)
	for i := range cases {
		c := &cases[i]
		switch {
		case c.ID == o.Culprit && c.Outcome != Failed:
			c.Outcome = Failed
			c.Message = strings.TrimSpace(fmt.Sprintf("the target stopped answering right after this case's bad input: %v\n%s", o.Err, c.Message))
		case c.ID == o.FoundIn && c.ID != o.Culprit:
			c.Outcome, c.Message = Skipped, "not run: "+o.Err.Error()
		}
	}
	return Stop{Kind: StopTargetKilled, Reason: reason, Case: o.Culprit}, cases
}
