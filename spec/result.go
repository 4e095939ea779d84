package spec

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/chatspec/chatspec/spec/framework"
)

// Outcome is what one case of a run came to.
type Outcome string

// Outcomes of a case.
const (
	Passed  Outcome = "passed"
	Failed  Outcome = "failed"
	Skipped Outcome = "skipped"
	// Info is the outcome of an info-grade case: a finding, never a
	// failure.
	Info Outcome = "info"
)

// CaseResult is one case of a run, graded: plain data, free of Ginkgo's
// types, for the reports and the command.
type CaseResult struct {
	// ID is the contract case ID ("JOIN-1").
	ID    string
	Title string
	// Grade is core, strict, robust, security or info.
	Grade string
	// Labels holds every label (grade, transport, stock-client).
	Labels  []string
	Outcome Outcome
	// Message says why a case failed or was skipped, or what an info case
	// found; "" for a plain pass.
	Message  string
	Duration time.Duration
	// Requirement is the text of the contract requirement the case checks.
	Requirement string
	// Findings are the informational notes the case recorded.
	Findings []string
}

// StopKind says why a run ended before every selected case ran.
type StopKind string

// Why a run stopped early.
const (
	// NotStopped: every selected case ran.
	NotStopped StopKind = ""
	// StopInterrupted: the caller's context was canceled (Ctrl-C, SIGTERM).
	StopInterrupted StopKind = "interrupted"
	// StopRunTimeout: the run's deadline (RunOptions.Timeout) passed.
	StopRunTimeout StopKind = "run_timeout"
	// StopTargetGone: the target stopped answering on every transport,
	// between cases or during a case that sent it nothing unusual.
	StopTargetGone StopKind = "target_gone"
	// StopTargetKilled: the target stopped answering during, or right
	// after, a case that sent it bad input (robust and security cases):
	// that case failed, and the rest could not run. A verdict, not an
	// interruption.
	StopTargetKilled StopKind = "target_killed"
)

// Stop is why a run ended early.
type Stop struct {
	Kind StopKind
	// Reason is one line for people ("" when the run was not stopped).
	Reason string
	// Case is the case the target died in or after (StopTargetGone,
	// StopTargetKilled).
	Case string
}

// EndedEarly reports a run stopped from outside or by a target that went
// away on its own: it has no full verdict. A target killed by a case's
// input is a verdict (that case failed), not an early end.
func (s Stop) EndedEarly() bool {
	switch s.Kind {
	case StopInterrupted, StopRunTimeout, StopTargetGone:
		return true
	}
	return false
}

// Result is what one run of the suite found: every selected case in
// contract order (the ones a stopped run never reached are Skipped, "not
// run"), and why the run stopped early, if it did.
type Result struct {
	Started  time.Time
	Duration time.Duration
	Cases    []CaseResult
	Stop     Stop
}

// Count returns how many cases had outcome o.
func (r Result) Count(o Outcome) int {
	n := 0
	for _, c := range r.Cases {
		if c.Outcome == o {
			n++
		}
	}
	return n
}

// Passed reports whether every graded case passed and the run was not
// stopped.
func (r Result) Passed() bool {
	return r.Count(Failed) == 0 && r.Stop.Kind == NotStopped
}

// notRunMessage is the message of a selected case a stopped run never
// reached.
const notRunMessage = "not run: the run stopped before this case"

// gradeSpec converts one Ginkgo spec report into a case. ok is false for
// reports that are not cases of the run: suite-level nodes, and specs the
// profile or focus filtered out.
func gradeSpec(s types.SpecReport) (c CaseResult, ok bool) {
	if s.LeafNodeType != types.NodeTypeIt {
		return CaseResult{}, false
	}
	if s.State == types.SpecStateSkipped && s.Failure.Message == "" && s.RunTime == 0 {
		return CaseResult{}, false // filtered out, never ran
	}
	if s.State == types.SpecStatePending {
		return CaseResult{}, false
	}
	c = describeSpec(s)
	c.Duration = s.RunTime
	for _, e := range s.ReportEntries {
		if e.Name == framework.FindingEntry {
			c.Findings = append(c.Findings, e.StringRepresentation())
		}
	}
	failure := s.Failure.Message
	if s.Failure.ForwardedPanic != "" {
		failure = fmt.Sprintf("panic: %s\n%s", s.Failure.ForwardedPanic, s.Failure.Location.FullStackTrace)
	}
	switch {
	case s.State == types.SpecStatePassed && c.Grade == framework.GradeInfo:
		c.Outcome, c.Message = Info, strings.Join(c.Findings, "\n")
	case s.State == types.SpecStatePassed:
		c.Outcome, c.Message = Passed, strings.Join(c.Findings, "\n")
	case s.State == types.SpecStateSkipped:
		c.Outcome, c.Message = Skipped, failure
	case s.State == types.SpecStateInterrupted:
		// Stopped from outside (Ctrl-C, the run's deadline): no verdict.
		c.Outcome, c.Message = Skipped, "interrupted: "+failure
	case c.Grade == framework.GradeInfo:
		// An info case never fails; one that could not measure says so.
		c.Outcome, c.Message = Info, "could not measure: "+failure
	default:
		c.Outcome = Failed
		c.Message = failure
		if s.State != types.SpecStateFailed {
			c.Message = fmt.Sprintf("%s: %s", s.State, failure)
		}
	}
	return c, true
}

// describeSpec fills what a case is (ID, title, grade, requirement).
func describeSpec(s types.SpecReport) CaseResult {
	labels := s.Labels()
	c := CaseResult{
		ID:     framework.CaseID(s.LeafNodeText),
		Title:  framework.CaseTitle(s.LeafNodeText),
		Grade:  framework.Grade(labels),
		Labels: labels,
	}
	if req, found := framework.Contract(c.ID); found {
		c.Requirement = fmt.Sprintf("%s (%s): %s", req.ID, req.Grade, req.Text)
	}
	return c
}

// collect builds the cases of a run from Ginkgo's suite report. selected
// tells which specs the run selected; a selected spec that never ran is
// Skipped, "not run". nil selects what ran.
func collect(r types.Report, selected func(types.SpecReport) bool) []CaseResult {
	var out []CaseResult
	for _, s := range r.SpecReports {
		if selected != nil && s.LeafNodeType == types.NodeTypeIt && !selected(s) {
			continue
		}
		if c, ok := gradeSpec(s); ok {
			out = append(out, c)
		} else if selected != nil && s.LeafNodeType == types.NodeTypeIt {
			c := describeSpec(s)
			c.Requirement = ""
			c.Outcome, c.Message = Skipped, notRunMessage
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(a, b CaseResult) int { return framework.CaseOrder(a.ID, b.ID) })
	return out
}
