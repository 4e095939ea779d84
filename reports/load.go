package reports

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

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
	suite := junitTestSuite{
		Name:      "chatspec load",
		Package:   strings.Join(s.Config.Targets, ","),
		Timestamp: s.Started.UTC().Format("2006-01-02T15:04:05"),
		Time:      s.DurationSeconds,
		Properties: junitProperties{Properties: []junitProperty{
			{Name: "run_id", Value: s.RunID},
			{Name: "targets", Value: strings.Join(s.Config.Targets, " ")},
			{Name: "users", Value: strconv.Itoa(s.Users.Planned)},
			{Name: "ended", Value: s.Ended},
			{Name: "verdict", Value: s.Verdict},
		}},
	}
	for _, t := range s.Thresholds {
		tc := junitTestCase{Name: t.Expr, Classname: "chatspec.load.threshold", Status: "passed", SystemOut: "measured " + loadValue(t.Value, t.Measured)}
		if !t.OK {
			tc.Status = "failed"
			suite.Failures++
			msg := fmt.Sprintf("threshold %s crossed: measured %s", t.Expr, loadValue(t.Value, t.Measured))
			tc.Failure = &junitFailure{Message: msg, Type: "threshold", Description: msg}
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
		suite.TestCases = append(suite.TestCases, junitTestCase{
			Name: "run completed", Classname: "chatspec.load.run", Status: "errored",
			Error: &junitError{Message: msg, Type: s.Ended, Description: msg},
		})
	}
	doc := junitTestSuites{Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors, Time: suite.Time, TestSuites: []junitTestSuite{suite}}
	return writeJUnit(w, doc)
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
	if m.Refused > 0 {
		p("          refused %d writes (%s): the server said no; owed to nobody, not in lost\n", m.Refused, countsText(m.RefusedByCode))
	}
	if m.Unmeasured {
		p("          NOTHING MEASURED: messages were due but no delivery was owed to anyone (sessions ended or never joined)\n")
	}
	ss := s.Sessions
	p("sessions  connected %d, joined %d, join failed %d, ended by the plan %d, ended by the server %d", ss.Connected, ss.Joined, ss.JoinFailed, ss.EndedByPlan, ss.EndedByServer)
	if ss.EndedByServer > 0 {
		p(" (%s)", countsText(ss.EndedByServerHow))
	}
	p("\n")
	ev := s.Events
	p("events    repeated %d, out of contract %d (shrunk lists %d, second connected %d), foreign %d, forged %d\n",
		ev.Repeated, ev.OutOfContract, ev.Shrunk, ev.ConnectedTwice, ev.Foreign, ev.Forged)
	if m.OrderConflicts > 0 {
		p("order     %d conflicts with one history order (HIST-1), between receivers:\n", m.OrderConflicts)
		for i, c := range m.OrderConflictPairs {
			if i == 5 {
				p("          … %d more pairs in summary.json\n", len(m.OrderConflictPairs)-5+int(m.OrderConflictPairsOmitted))
				break
			}
			p("          users %d and %d: %d, e.g. message %s came after %s for %d, after %s for %d\n",
				c.ReceiverA, c.ReceiverB, c.Count, c.Message, c.BeforeA, c.ReceiverA, c.BeforeB, c.ReceiverB)
		}
	}
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
	if sh := s.Shards; sh != nil {
		if sh.Merged {
			p("\nshards: %d merged; %d deliveries crossed shards\n", sh.Count, sh.CrossShardDelivered)
		} else {
			p("\nshard %d/%d: these figures cover only this shard's sessions; chatspec merge gives the run's\n", sh.Index, sh.Count)
		}
	}
	p("\nverdict: %s", strings.ToUpper(s.Verdict))
	var crossed []string
	for _, t := range s.Thresholds {
		if !t.OK {
			crossed = append(crossed, t.Expr)
		}
	}
	if len(crossed) > 0 {
		p(" (crossed: %s)", strings.Join(crossed, ", "))
	}
	p("\n")
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

// countsText renders a count per name, largest first: "a 3, b 1".
func countsText(m map[string]int64) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if m[names[i]] != m[names[j]] {
			return m[names[i]] > m[names[j]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, m[n])
	}
	return strings.Join(parts, ", ")
}
