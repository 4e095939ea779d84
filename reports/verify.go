package reports

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chatspec/chatspec/spec"
)

// Outcomes of a verify case (spec.Outcome, as strings).
const (
	OutcomePassed  = string(spec.Passed)
	OutcomeFailed  = string(spec.Failed)
	OutcomeSkipped = string(spec.Skipped)
	// OutcomeInfo is the outcome of an info-grade case: a finding, never a
	// failure.
	OutcomeInfo = string(spec.Info)
)

// VerifyReport is the result of one `chatspec verify` run. It is plain
// data: results.json is its JSON encoding, and the console, JUnit and HTML
// renderers all read it.
type VerifyReport struct {
	// Targets are the base URLs verified (one cluster); with Embedded set,
	// the in-process reference server's URL.
	Targets  []string `json:"targets"`
	Embedded bool     `json:"embedded,omitempty"`
	Profile  string   `json:"profile"`
	Focus    string   `json:"focus,omitempty"`
	// RunID is the nonce in this run's usernames and message texts.
	RunID      string    `json:"run_id"`
	Started    time.Time `json:"started"`
	DurationMS int64     `json:"duration_ms"`
	// Passed is true when every graded case of the profile passed.
	Passed bool `json:"passed"`
	// Stopped says why the run ended early ("" when it did not).
	Stopped string       `json:"stopped,omitempty"`
	Counts  VerifyCounts `json:"counts"`
	Cases   []VerifyCase `json:"cases"`
}

// VerifyCounts counts cases by outcome.
type VerifyCounts struct {
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
	Info    int `json:"info"`
}

// VerifyCase is one case of the run.
type VerifyCase struct {
	// ID is the contract case ID ("JOIN-1").
	ID    string `json:"id"`
	Title string `json:"title"`
	// Level is the grade: core, strict, robust, security or info.
	Level string `json:"level"`
	// Outcome is passed, failed, skipped or info.
	Outcome string `json:"outcome"`
	// Message says why a case failed or was skipped, or what an info case
	// found; it is "" for a plain pass.
	Message    string `json:"message"`
	DurationMS int64  `json:"duration_ms"`
	// Requirement is the text of the contract requirement the case checks.
	Requirement string `json:"requirement,omitempty"`
	// Findings are informational notes the case recorded.
	Findings []string `json:"findings,omitempty"`
	Labels   []string `json:"labels,omitempty"`
}

// VerifyCaseFrom renders one graded case of spec.Run as a report case.
func VerifyCaseFrom(c spec.CaseResult) VerifyCase {
	return VerifyCase{
		ID: c.ID, Title: c.Title, Level: c.Grade, Outcome: string(c.Outcome), Message: c.Message,
		DurationMS: c.Duration.Milliseconds(), Requirement: c.Requirement, Findings: c.Findings, Labels: c.Labels,
	}
}

// NewVerifyReport builds the report of a run from spec.Run's result. The
// caller fills in what the suite does not know (targets, profile, run id).
func NewVerifyReport(r spec.Result) VerifyReport {
	out := VerifyReport{Started: r.Started, DurationMS: r.Duration.Milliseconds(), Stopped: r.Stop.Reason}
	for _, c := range r.Cases {
		out.Cases = append(out.Cases, VerifyCaseFrom(c))
	}
	out.Tally()
	return out
}

// Tally recomputes Counts and Passed from Cases.
func (r *VerifyReport) Tally() {
	r.Counts = VerifyCounts{}
	for _, c := range r.Cases {
		switch c.Outcome {
		case OutcomePassed:
			r.Counts.Passed++
		case OutcomeFailed:
			r.Counts.Failed++
		case OutcomeSkipped:
			r.Counts.Skipped++
		case OutcomeInfo:
			r.Counts.Info++
		}
	}
	r.Passed = r.Counts.Failed == 0 && r.Stopped == ""
}

// WriteVerifyJSON writes results.json.
func WriteVerifyJSON(w io.Writer, r VerifyReport) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if r.Cases == nil {
		r.Cases = []VerifyCase{}
	}
	return enc.Encode(struct {
		SchemaVersion int `json:"schema_version"`
		VerifyReport
	}{ResultsSchemaVersion, r})
}

// WriteVerifyJUnit writes junit.xml: one testcase per case, named with the
// case ID first, classed by grade; info findings go to system-out.
func WriteVerifyJUnit(w io.Writer, r VerifyReport) error {
	suite := junitTestSuite{
		Name:      "chatspec verify (" + r.Profile + ")",
		Package:   strings.Join(r.Targets, ","),
		Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05"),
		Time:      float64(r.DurationMS) / 1000,
		Properties: junitProperties{Properties: []junitProperty{
			{Name: "profile", Value: r.Profile},
			{Name: "targets", Value: strings.Join(r.Targets, " ")},
			{Name: "run_id", Value: r.RunID},
		}},
	}
	for _, c := range r.Cases {
		tc := junitTestCase{
			Name:      strings.TrimSpace(c.ID + " " + c.Title),
			Classname: "chatspec." + c.Level,
			Status:    c.Outcome,
			Time:      float64(c.DurationMS) / 1000,
			SystemOut: strings.Join(c.Findings, "\n"),
		}
		switch c.Outcome {
		case OutcomeFailed:
			suite.Failures++
			first, _, _ := strings.Cut(c.Message, "\n")
			tc.Failure = &junitFailure{Message: first, Type: "failed", Description: c.Requirement + "\n\n" + c.Message}
		case OutcomeSkipped:
			suite.Skipped++
			tc.Skipped = &junitSkipped{Message: "skipped - " + c.Message}
		}
		suite.Tests++
		suite.TestCases = append(suite.TestCases, tc)
	}
	doc := junitTestSuites{
		Tests: suite.Tests, Failures: suite.Failures, Disabled: suite.Skipped,
		Time: suite.Time, TestSuites: []junitTestSuite{suite},
	}
	return writeJUnit(w, doc)
}

// VerifyProgressLine renders one finished case for the console's progress
// output.
func VerifyProgressLine(c VerifyCase) string {
	mark := map[string]string{OutcomePassed: "ok  ", OutcomeFailed: "FAIL", OutcomeSkipped: "skip", OutcomeInfo: "info"}[c.Outcome]
	return fmt.Sprintf("%s %-10s %-8s %5dms  %s", mark, c.ID, c.Level, c.DurationMS, c.Title)
}

// WriteVerifyConsole writes the end-of-run console summary: a table of
// every case, the failures in detail (case ID, contract text, expected,
// seen, the events the clients received), skips and findings, and one
// verdict line.
func WriteVerifyConsole(w io.Writer, r VerifyReport) error {
	ew := &errWriter{w: w}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tGRADE\tOUTCOME\tTIME\tTITLE")
	for _, c := range r.Cases {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%dms\t%s\n", c.ID, c.Level, strings.ToUpper(c.Outcome), c.DurationMS, c.Title)
	}
	tw.Flush()
	// Failures with the same message (every case after a target went
	// down, say) are told once, naming all their cases.
	shown := map[string]bool{}
	for i, c := range r.Cases {
		if c.Outcome != OutcomeFailed || shown[c.ID] {
			continue
		}
		var same []string
		for _, d := range r.Cases[i+1:] {
			if d.Outcome == OutcomeFailed && d.Message == c.Message && !shown[d.ID] {
				same = append(same, d.ID)
				shown[d.ID] = true
			}
		}
		fmt.Fprintf(ew, "\n--- FAIL %s (%s): %s\n", c.ID, c.Level, c.Title)
		if c.Requirement != "" {
			fmt.Fprintf(ew, "contract: %s\n", c.Requirement)
		}
		fmt.Fprintf(ew, "%s\n", verifyIndent(c.Message, ""))
		if len(same) > 0 {
			fmt.Fprintf(ew, "(the same failure also for %s)\n", strings.Join(same, ", "))
		}
	}
	var notes []string
	skips := map[string][]string{} // message → case IDs, told once
	var skipOrder []string
	for _, c := range r.Cases {
		switch {
		case c.Outcome == OutcomeSkipped:
			if skips[c.Message] == nil {
				skipOrder = append(skipOrder, c.Message)
			}
			skips[c.Message] = append(skips[c.Message], c.ID)
		case len(c.Findings) > 0:
			for _, f := range c.Findings {
				notes = append(notes, fmt.Sprintf("%s %s: %s", c.Outcome, c.ID, f))
			}
		}
	}
	for _, msg := range skipOrder {
		notes = append(notes, fmt.Sprintf("skipped %s: %s", strings.Join(skips[msg], ", "), msg))
	}
	if len(notes) > 0 {
		fmt.Fprintf(ew, "\n%s\n", strings.Join(notes, "\n"))
	}
	verdict := "PASS"
	if !r.Passed {
		verdict = "FAIL"
	}
	fmt.Fprintf(ew, "\n%s: profile %s against %s: %d passed, %d failed, %d skipped, %d info in %s\n",
		verdict, r.Profile, verifyTargetsText(r), r.Counts.Passed, r.Counts.Failed, r.Counts.Skipped, r.Counts.Info,
		(time.Duration(r.DurationMS) * time.Millisecond).Round(time.Millisecond))
	if r.Stopped != "" {
		fmt.Fprintf(ew, "the run ended early: %s\n", r.Stopped)
	}
	return ew.err
}

func verifyTargetsText(r VerifyReport) string {
	t := strings.Join(r.Targets, ", ")
	if r.Embedded {
		t = "the embedded reference server (" + t + ")"
	}
	if t == "" {
		t = "(no target)"
	}
	return t
}

func verifyIndent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}
