package reports

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/onsi/ginkgo/v2/reporters"

	"github.com/chatspec/chatspec/loadgen"
)

// WriteLoadJSON writes summary.json: the load Summary as indented JSON.
func WriteLoadJSON(w io.Writer, s *loadgen.Summary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		SchemaVersion int `json:"schema_version"`
		*loadgen.Summary
	}{SummarySchemaVersion, s})
}

// WriteLoadJUnit writes junit.xml for a load run: one testcase per
// threshold, failed when the threshold was crossed; when the run ended
// early, one more testcase "run completed" carries the reason as an error,
// so CI shows a partial run as such.
func WriteLoadJUnit(w io.Writer, s *loadgen.Summary) error {
	suite := reporters.JUnitTestSuite{
		Name:      "chatspec load",
		Package:   strings.Join(s.Config.Targets, ","),
		Timestamp: s.Started.UTC().Format("2006-01-02T15:04:05"),
		Time:      s.DurationSeconds,
		Properties: reporters.JUnitProperties{Properties: []reporters.JUnitProperty{
			{Name: "run_id", Value: s.RunID},
			{Name: "targets", Value: strings.Join(s.Config.Targets, " ")},
			{Name: "users", Value: strconv.Itoa(s.Users.Planned)},
			{Name: "ended", Value: s.Ended},
			{Name: "verdict", Value: s.Verdict},
		}},
	}
	for _, t := range s.Thresholds {
		tc := reporters.JUnitTestCase{Name: t.Expr, Classname: "chatspec.load.threshold", Status: "passed", SystemOut: "measured " + loadValue(t.Value, t.Measured)}
		if !t.OK {
			tc.Status = "failed"
			suite.Failures++
			msg := fmt.Sprintf("threshold %s crossed: measured %s", t.Expr, loadValue(t.Value, t.Measured))
			tc.Failure = &reporters.JUnitFailure{Message: msg, Type: "threshold", Description: msg}
		}
		suite.Tests++
		suite.TestCases = append(suite.TestCases, tc)
	}
	if s.Ended != loadgen.EndedCompleted {
		suite.Tests++
		suite.Errors++
		msg := "run ended early: " + s.Ended
		if s.EndedDetail != "" {
			msg += ": " + s.EndedDetail
		}
		suite.TestCases = append(suite.TestCases, reporters.JUnitTestCase{
			Name: "run completed", Classname: "chatspec.load.run", Status: "errored",
			Error: &reporters.JUnitError{Message: msg, Type: s.Ended, Description: msg},
		})
	}
	doc := reporters.JUnitTestSuites{Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors, Time: suite.Time, TestSuites: []reporters.JUnitTestSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func loadValue(v float64, measured bool) string {
	if !measured {
		return "nothing (no samples)"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// WriteLoadConsole writes the end-of-run summary for a terminal: users,
// delivery accounting, latency table, generator self-check, thresholds and
// the verdict.
func WriteLoadConsole(w io.Writer, s *loadgen.Summary) error {
	ew := &errWriter{w: w}
	p := func(format string, a ...any) { fmt.Fprintf(ew, format, a...) }
	p("chatspec load: run %s against %s, %.1fs, ended: %s", s.RunID, loadTargets(s), s.DurationSeconds, s.Ended)
	if s.EndedDetail != "" {
		p(" (%s)", s.EndedDetail)
	}
	p("\n\n")
	u := s.Users
	p("users     planned %d, connected %d (peak %d at once), connect errors %d, join errors %d, sessions %d, reconnects %d, dropped %d\n",
		u.Planned, u.Connected, u.PeakConnected, u.ConnectErrors, u.JoinErrors, u.Sessions, u.Reconnects, u.Dropped)
	m := s.Messages
	p("messages  sent %d (send errors %d, skipped %d)\n", m.Sent, m.SendErrors, m.Skipped)
	p("delivery  expected %d, delivered %d, lost %d (%.4f%%), duplicated %d, reordered %d\n",
		m.ExpectedDeliveries, m.Delivered, m.Lost, 100*m.LossRatio, m.Duplicated, m.Reordered)
	if m.Lost > 0 {
		p("          lost: %d gaps (a later message of the same sender arrived, these never did), %d trailing (nothing the sender wrote later reached the receiver before it left)\n", m.LostGaps, m.LostTrailing)
	}
	if hint := behindHint(s); hint != "" {
		p("          %s\n", hint)
	}
	p("          not owed %d (joined after or left within the window), unconfirmed sends %d\n", m.Unexpected, m.Unconfirmed)
	for i, o := range s.Outages {
		label := "outages  "
		if i > 0 {
			label = "         "
		}
		p("%s %s\n", label, outageText(o))
	}
	p("\n")
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "latency (ms)\tcount\tp50\tp90\tp99\tp99.9\tmax\t")
	for _, row := range []struct {
		name string
		l    loadgen.LatencyStats
	}{{"connect", s.LatencyMS.Connect}, {"join", s.LatencyMS.Join}, {"fanout", s.LatencyMS.Fanout}, {"echo", s.LatencyMS.Echo}} {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", row.name, row.l.Count, row.l.P50, row.l.P90, row.l.P99, row.l.P999, row.l.Max)
	}
	tw.Flush()
	g := s.Generator
	p("\ngenerator cpu %.2fs (%.0f%% of %d cores), %.1fµs per delivery, max RSS %.0f MiB, schedule lag p99 %.1fms max %.1fms",
		g.CPUSeconds, 100*g.CPUUtilization, g.Cores, g.CPUPerDeliveryUS, float64(g.MaxRSSBytes)/(1<<20), g.P99ScheduleLagMS, g.MaxScheduleLagMS)
	if g.EmbeddedServer {
		p(" (server in-process: figures include it)")
	}
	p("\n")
	if g.Saturated {
		p("generator SATURATED: %s: latencies above may be the generator's, not the server's\n", strings.Join(g.SaturationReasons, "; "))
	}
	if len(s.Errors) > 0 {
		p("\nerrors:\n")
		for i, e := range s.Errors {
			if i == 10 {
				p("  … %d more kinds in summary.json\n", len(s.Errors)-10)
				break
			}
			p("  %6d  %s: %s\n", e.Count, e.Kind, e.Message)
		}
	}
	if len(s.Thresholds) > 0 {
		p("\nthresholds:\n")
		for _, t := range s.Thresholds {
			mark := "ok  "
			if !t.OK {
				mark = "FAIL"
			}
			p("  %s %-32s measured %s\n", mark, t.Expr, loadValue(t.Value, t.Measured))
		}
	}
	p("\nverdict: %s\n", strings.ToUpper(s.Verdict))
	return ew.err
}

// outageText says when a target was down, in seconds since the start.
func outageText(o loadgen.OutageSummary) string {
	if o.EndS == nil {
		return fmt.Sprintf("%s down from %.1fs, still down at the end (%s)", o.Target, o.StartS, outageDuration(o.DurationMS))
	}
	return fmt.Sprintf("%s down from %.1fs to %.1fs (%s)", o.Target, o.StartS, *o.EndS, outageDuration(o.DurationMS))
}

func outageDuration(ms float64) string {
	if ms < 1000 {
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	}
	return strconv.FormatFloat(ms/1000, 'f', 1, 64) + "s"
}

func loadTargets(s *loadgen.Summary) string {
	t := strings.Join(s.Config.Targets, ", ")
	if s.Config.Embedded {
		t = "the embedded reference server (" + t + ")"
	}
	return t
}

// behindHint explains trailing losses when fan-out latency outgrew the
// delivery window: the server was falling behind, so what receivers did
// not get before leaving may have been queued, not dropped.
func behindHint(s *loadgen.Summary) string {
	m, f := s.Messages, s.LatencyMS.Fanout
	window := s.Config.DeliveryWindowSeconds * 1000
	if m.LostTrailing == 0 || f.Count == 0 || window <= 0 || f.P99 <= window {
		return ""
	}
	return fmt.Sprintf("the server fell behind: fan-out p99 %.0fms is over the %.0fms delivery window, so trailing losses may be messages still queued when receivers left (lower the load, or raise --delivery-window to tell queued from dropped)", f.P99, window)
}
