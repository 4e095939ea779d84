package reports

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/chatspec/chatspec/spec"
)

// sampleVerifyReport has one case of each outcome, and a failure quoting
// hostile server text, which every renderer must show verbatim or escaped.
func sampleVerifyReport() VerifyReport {
	r := VerifyReport{
		Targets: []string{"http://127.0.0.1:3000"}, Profile: "all", RunID: "abc123",
		Started: time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC), DurationMS: 4321,
		Cases: []VerifyCase{
			{ID: "JOIN-1", Title: "the joiner receives connected exactly once", Level: "core", Outcome: OutcomePassed, DurationMS: 12,
				Requirement: "JOIN-1 (core, MUST): that socket receives `connected` exactly once."},
			{ID: "USER-4", Title: "closing one of two sockets keeps the user listed", Level: "strict", Outcome: OutcomeFailed, DurationMS: 230,
				Requirement: "USER-4 (strict, SHOULD): a disconnect of one of its sockets does not remove it.",
				Message:     "expected: any disconnected still lists \"alice\"\nseen: observer's disconnected #3 lists [\"<script>alert(1)</script>\"]\nevents received:\n  #3 disconnected users(1)=\"<b>x</b>\""},
			{ID: "RECON-2", Title: "an old session timing out does not remove the user", Level: "strict", Outcome: OutcomeSkipped, DurationMS: 1,
				Message: "the server's pingInterval 25s + pingTimeout 20s need a wait of about 54s, more than --max-wait 15s"},
			{ID: "TRANS-4", Title: "handshake settings", Level: "info", Outcome: OutcomeInfo, DurationMS: 3,
				Message: "pingInterval 25s", Findings: []string{"pingInterval 25s"}},
		},
	}
	r.Tally()
	return r
}

func TestVerifyRenderersGolden(t *testing.T) {
	r := sampleVerifyReport()
	for _, tc := range []struct {
		file  string
		write func(*bytes.Buffer, VerifyReport) error
	}{
		{"verify_results.json.golden", func(b *bytes.Buffer, r VerifyReport) error { return WriteVerifyJSON(b, r) }},
		{"verify_junit.xml.golden", func(b *bytes.Buffer, r VerifyReport) error { return WriteVerifyJUnit(b, r) }},
		{"verify_report.html.golden", func(b *bytes.Buffer, r VerifyReport) error { return WriteVerifyHTML(b, r) }},
		{"verify_console.txt.golden", func(b *bytes.Buffer, r VerifyReport) error { return WriteVerifyConsole(b, r) }},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.write(&b, r); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.file, b.Bytes())
		})
	}
}

func TestVerifyJSONHasTheDocumentedFields(t *testing.T) {
	var b bytes.Buffer
	if err := WriteVerifyJSON(&b, sampleVerifyReport()); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Passed bool             `json:"passed"`
		Cases  []map[string]any `json:"cases"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Passed {
		t.Error("a report with a failed case must not be passed")
	}
	for _, c := range doc.Cases {
		for _, k := range []string{"id", "title", "level", "outcome", "message", "duration_ms"} {
			if _, ok := c[k]; !ok {
				t.Errorf("case %v lacks %q", c["id"], k)
			}
		}
	}
}

func TestVerifyJUnitNamesStartWithTheCaseID(t *testing.T) {
	var b bytes.Buffer
	if err := WriteVerifyJUnit(&b, sampleVerifyReport()); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Failures int `xml:"failures,attr"`
		Cases    []struct {
			Name    string    `xml:"name,attr"`
			Failure *struct{} `xml:"failure"`
			Skipped *struct{} `xml:"skipped"`
		} `xml:"testsuite>testcase"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Failures != 1 || len(doc.Cases) != 4 {
		t.Fatalf("failures %d, cases %d; want 1 and 4", doc.Failures, len(doc.Cases))
	}
	for i, id := range []string{"JOIN-1 ", "USER-4 ", "RECON-2 ", "TRANS-4 "} {
		if !strings.HasPrefix(doc.Cases[i].Name, id) {
			t.Errorf("testcase %d is named %q, want it to start with %q", i, doc.Cases[i].Name, id)
		}
	}
	if doc.Cases[1].Failure == nil || doc.Cases[2].Skipped == nil || doc.Cases[3].Failure != nil {
		t.Error("failure/skipped elements do not match the outcomes")
	}
}

func TestVerifyHTMLEscapesServerText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteVerifyHTML(&b, sampleVerifyReport()); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	if strings.Contains(html, "<script>alert(1)") || strings.Contains(html, "<b>x</b>") {
		t.Error("server-provided text reached the HTML unescaped")
	}
	if !strings.Contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the escaped server text is missing")
	}
	for _, remote := range []string{"<script", "<link", `src="`, "@import"} {
		if strings.Contains(html, remote) {
			t.Errorf("report.html contains %q: it must be self-contained", remote)
		}
	}
}

func TestVerifyConsoleGroupsIdenticalFailures(t *testing.T) {
	r := sampleVerifyReport()
	down := "target unreachable since JOIN-1: connection refused"
	r.Cases = append(r.Cases,
		VerifyCase{ID: "MSG-1", Level: "core", Outcome: OutcomeFailed, Message: down},
		VerifyCase{ID: "MSG-2", Level: "core", Outcome: OutcomeFailed, Message: down},
		VerifyCase{ID: "HIST-1", Level: "core", Outcome: OutcomeFailed, Message: down})
	r.Stopped = down
	r.Tally()
	var b bytes.Buffer
	if err := WriteVerifyConsole(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if n := strings.Count(out, down); n != 2 { // once as a failure, once as the reason the run stopped
		t.Errorf("the shared failure is printed %d times, want 2:\n%s", n, out)
	}
	if !strings.Contains(out, "(the same failure also for MSG-2, HIST-1)") {
		t.Errorf("the grouped cases are not named:\n%s", out)
	}
	if !strings.Contains(out, "FAIL: profile all") || !strings.Contains(out, "the run ended early") {
		t.Errorf("verdict lines missing:\n%s", out)
	}
}

func TestNewVerifyReportCarriesTheRunsResult(t *testing.T) {
	res := spec.Result{
		Started: time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC), Duration: 1500 * time.Millisecond,
		Cases: []spec.CaseResult{
			{ID: "JOIN-1", Grade: "core", Outcome: spec.Passed, Duration: 3 * time.Millisecond},
			{ID: "ROB-1", Grade: "robust", Outcome: spec.Failed, Message: "the target stopped answering"},
			{ID: "ROB-2", Grade: "robust", Outcome: spec.Skipped, Message: "not run: target unreachable since ROB-2"},
		},
		Stop: spec.Stop{Kind: spec.StopTargetKilled, Reason: "the target stopped answering after ROB-1's bad input", Case: "ROB-1"},
	}
	got := NewVerifyReport(res)
	if got.Counts != (VerifyCounts{Passed: 1, Failed: 1, Skipped: 1}) || got.Passed {
		t.Errorf("counts %+v passed %v; want 1/1/1 and not passed", got.Counts, got.Passed)
	}
	if got.Stopped != res.Stop.Reason || got.DurationMS != 1500 || got.Cases[1].Level != "robust" {
		t.Errorf("report %+v does not carry the result", got)
	}
}
