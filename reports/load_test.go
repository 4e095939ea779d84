package reports

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatspec/chatspec/loadgen"
	"github.com/chatspec/chatspec/loadgen/threshold"
)

// loadFixture is a summary with every section filled, as a failing run
// against a lossy server would produce.
func loadFixture(t *testing.T) *loadgen.Summary {
	t.Helper()
	s := &loadgen.Summary{
		Ended:           loadgen.EndedCompleted,
		RunID:           "golden1",
		Started:         time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC),
		DurationSeconds: 12.5,
		Config: loadgen.ConfigSummary{
			Targets: []string{"http://127.0.0.1:3000"}, Users: 100, Ramp: "5s", Duration: "5s",
			MessageInterval: "1s", Pacing: "poisson mean 1s", MessageSize: 64, DeliveryWindowSeconds: 2,
			Transports: map[string]float64{"websocket": 0.8, "polling": 0.2}, MaxOutageSeconds: 10,
		},
		Outages: []loadgen.OutageSummary{{Target: "http://127.0.0.1:3000", StartS: 1.5, EndS: ptr(2.3), DurationMS: 800}},
		Users:   loadgen.UsersSummary{Planned: 100, Connected: 99, ConnectErrors: 1, PeakConnected: 99, Sessions: 99},
		Messages: loadgen.MessagesSummary{Sent: 500, ExpectedDeliveries: 49500, Delivered: 44550, Lost: 4950, LostGaps: 4900, LostTrailing: 50,
			Duplicated: 3, Reordered: 2, Unexpected: 120, LossRatio: 0.1, DeliveryRatio: 0.9,
			Refused: 4, RefusedByCode: map[string]int64{"internal_error": 3, "rate_limited": 1}, OrderConflicts: 2,
			OrderConflictPairs: []loadgen.OrderConflict{{ReceiverA: 3, ReceiverB: 8, Count: 2, Message: "5/7", BeforeA: "2/4", BeforeB: "9/1"}}},
		Sessions: loadgen.SessionsSummary{Connected: 99, Joined: 99, EndedByPlan: 98, EndedByServer: 1, EndedByServerHow: map[string]int64{"ping_timeout": 1}},
		Events:   loadgen.EventsSummary{Repeated: 1, Foreign: 12, Forged: 2},
		LatencyMS: loadgen.LatencySet{
			Connect: loadgen.LatencyStats{P50: 2, P75: 3, P90: 4, P95: 5, P99: 9, P999: 12, Max: 15, Min: 1, Mean: 2.5, Count: 99},
			Join:    loadgen.LatencyStats{P50: 1, P75: 1.5, P90: 2, P95: 3, P99: 4, P999: 5, Max: 6, Min: 0.2, Mean: 1.2, Count: 99},
			Fanout:  loadgen.LatencyStats{P50: 20, P75: 40, P90: 120, P95: 200, P99: 310.5, P999: 420, Max: 450, Min: 1, Mean: 35, Count: 44050},
			Echo:    loadgen.LatencyStats{P50: 18, P75: 30, P90: 100, P95: 180, P99: 300, P999: 400, Max: 410, Min: 1, Mean: 30, Count: 500},
		},
		Generator: loadgen.GeneratorSummary{CPUSeconds: 3.2, CPUUtilization: 0.128, CPUPerDeliveryUS: 71.6, MaxScheduleLagMS: 4.2,
			P99ScheduleLagMS: 1.1, SaturationReasons: []string{}, MaxRSSBytes: 64 << 20, PeakGoroutines: 250, Cores: 2},
		Errors:    []loadgen.ErrorCount{{Kind: "connect_failed", Message: `sioclient: dial: HTTP 503 body "<b>busy</b>"`, Count: 1}},
		PerSender: []loadgen.SenderStats{{User: 7, Sent: 5, Expected: 495, Delivered: 396, Lost: 99, Duplicated: 3, Reordered: 2}},
		Timeline: []loadgen.Interval{
			{T: 1, UsersConnected: 20, Sent: 10, Delivered: 150, FanoutP50: 5, FanoutP90: 9, FanoutP99: 12, FanoutMax: 14, ScheduleLagMax: 1},
			{T: 2, UsersConnected: 60, Sent: 40, Delivered: 2000, Errors: 1, FanoutP50: 15, FanoutP90: 80, FanoutP99: 200, FanoutMax: 260, ScheduleLagMax: 2},
			{T: 3, UsersConnected: 99, Sent: 90, Delivered: 8000, FanoutP50: 30, FanoutP90: 150, FanoutP99: 310, FanoutMax: 450, ScheduleLagMax: 4.2},
		},
	}
	var l threshold.List
	for _, e := range []string{"fanout.p99<250ms", "delivery.lost==0", "connect.errors<=1", "join.p95<1s"} {
		if err := l.Set(e); err != nil {
			t.Fatal(err)
		}
	}
	s.ApplyThresholds(l)
	return s
}

func ptr[T any](v T) *T { return &v }

func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n- " + w + "\n+ " + g
		}
	}
	return ""
}

func TestLoadReportsGolden(t *testing.T) {
	s := loadFixture(t)
	for _, f := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"load_summary.json.golden", func(b *bytes.Buffer) error { return WriteLoadJSON(b, s) }},
		{"load_junit.xml.golden", func(b *bytes.Buffer) error { return WriteLoadJUnit(b, s) }},
		{"load_console.txt.golden", func(b *bytes.Buffer) error { return WriteLoadConsole(b, s) }},
		{"load_report.html.golden", func(b *bytes.Buffer) error { return WriteLoadHTML(b, s) }},
	} {
		t.Run(f.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := f.write(&b); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, f.name, b.Bytes())
		})
	}
}

func TestLoadJSONHasTheDocumentedFields(t *testing.T) {
	var b bytes.Buffer
	if err := WriteLoadJSON(&b, loadFixture(t)); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"verdict", "users.planned", "users.connected", "users.connect_errors",
		"messages.sent", "messages.expected_deliveries", "messages.delivered", "messages.lost", "messages.duplicated", "messages.reordered",
		"latency_ms.connect.p50", "latency_ms.join.p90", "latency_ms.fanout.p99", "latency_ms.fanout.p999", "latency_ms.fanout.max", "latency_ms.fanout.count",
		"generator.cpu_seconds", "generator.max_schedule_lag_ms", "generator.saturated", "config.max_outage_seconds",
	} {
		var v any = doc
		for _, k := range strings.Split(path, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = m[k]
		}
		if v == nil {
			t.Errorf("summary.json lacks %s", path)
		}
	}
	if o, ok := doc["outages"].([]any); !ok || len(o) != 1 {
		t.Errorf("outages = %v, want the fixture's one", doc["outages"])
	}
	th, ok := doc["thresholds"].([]any)
	if !ok || len(th) != 4 {
		t.Fatalf("thresholds = %v, want a list of 4", doc["thresholds"])
	}
	first := th[0].(map[string]any)
	if first["expr"] != "fanout.p99<250ms" || first["value"] != 310.5 || first["ok"] != false {
		t.Errorf("first threshold = %v", first)
	}
	if doc["verdict"] != "fail" {
		t.Errorf("verdict = %v, want fail", doc["verdict"])
	}
}

func TestLoadJUnitOneTestcasePerThreshold(t *testing.T) {
	s := loadFixture(t)
	s.Ended, s.EndedDetail = loadgen.EndedTargetDown, "target http://127.0.0.1:3000 stopped accepting connections"
	var b bytes.Buffer
	if err := WriteLoadJUnit(&b, s); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Errors   int `xml:"errors,attr"`
			Cases    []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
				Error   *struct{} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	suite := doc.Suites[0]
	if suite.Tests != 5 || suite.Failures != 2 || suite.Errors != 1 {
		t.Errorf("tests %d failures %d errors %d, want 5, 2, 1", suite.Tests, suite.Failures, suite.Errors)
	}
	if c := suite.Cases[4]; c.Name != "run completed" || c.Error == nil {
		t.Errorf("last case = %+v, want the early end as an error", c)
	}
}

func TestLoadHTMLIsSelfContained(t *testing.T) {
	var b bytes.Buffer
	if err := WriteLoadHTML(&b, loadFixture(t)); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, bad := range []string{"<script", "http://", "https://", "src=", "<b>busy"} {
		if bad == "http://" || bad == "https://" {
			// The only URLs allowed are the target's, as text.
			html2 := strings.ReplaceAll(html, "http://127.0.0.1:3000", "")
			html2 = strings.ReplaceAll(html2, "http://www.w3.org/2000/svg", "")
			if strings.Contains(html2, bad) {
				t.Errorf("report.html refers to %s", bad)
			}
			continue
		}
		if strings.Contains(html, bad) {
			t.Errorf("report.html contains %q", bad)
		}
	}
	if got := strings.Count(html, "<polyline"); got != 8 {
		t.Errorf("%d chart lines, want 8 (3 latency percentiles, users, 2 rates, errors, lag)", got)
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("disk full")
	}
	f.after--
	return len(p), nil
}

func TestLoadRenderersReturnWriteErrors(t *testing.T) {
	s := loadFixture(t)
	for name, write := range map[string]func(*failWriter) error{
		"json":    func(w *failWriter) error { return WriteLoadJSON(w, s) },
		"junit":   func(w *failWriter) error { return WriteLoadJUnit(w, s) },
		"console": func(w *failWriter) error { return WriteLoadConsole(w, s) },
		"html":    func(w *failWriter) error { return WriteLoadHTML(w, s) },
	} {
		for _, after := range []int{0, 1} {
			if name == "json" && after > 0 {
				continue // the encoder writes the document in one call
			}
			if err := write(&failWriter{after: after}); err == nil {
				t.Errorf("%s: no error from a writer failing after %d writes", name, after)
			}
		}
	}
}

// TestLoadReportsSayATargetIsStillDown: an outage open at the end (the
// run ended target_down) is null in summary.json and said as such on the
// console and in report.html, its band reaching the end of the charts.
func TestLoadReportsSayATargetIsStillDown(t *testing.T) {
	s := loadFixture(t)
	s.Ended, s.EndedDetail = loadgen.EndedTargetDown, "target http://127.0.0.1:3000 down for 10s, longer than the allowed outage (max outage 10s)"
	s.Outages = append(s.Outages, loadgen.OutageSummary{Target: "http://127.0.0.1:3001", StartS: 2.5, DurationMS: 10000})
	var js, console, html bytes.Buffer
	if err := WriteLoadJSON(&js, s); err != nil {
		t.Fatal(err)
	}
	if err := WriteLoadConsole(&console, s); err != nil {
		t.Fatal(err)
	}
	if err := WriteLoadHTML(&html, s); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Outages []map[string]any `json:"outages"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Outages) != 2 {
		t.Fatalf("outages = %v, want 2", doc.Outages)
	}
	if end, ok := doc.Outages[1]["end_s"]; !ok || end != nil || doc.Outages[1]["duration_ms"] != 10000.0 {
		t.Errorf("open outage = %v, want end_s null and the duration so far", doc.Outages[1])
	}
	for _, want := range []string{
		"outages   http://127.0.0.1:3000 down from 1.5s to 2.3s (800ms)\n",
		"          http://127.0.0.1:3001 down from 2.5s, still down at the end (10.0s)\n",
	} {
		if !strings.Contains(console.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, console.String())
		}
	}
	h := html.String()
	if !strings.Contains(h, "<td>http://127.0.0.1:3001</td><td>2.5 s</td><td>still down at the end</td><td>10.0s</td>") {
		t.Errorf("report.html does not list the open outage")
	}
	// 5 charts, 2 outages each; the open one runs to the right edge
	// (x 1034 = chartW - chartRight: the timeline ends at 3s, before the run's end).
	if got := strings.Count(h, `<rect class="outage"`); got != 10 {
		t.Errorf("%d outage bands, want 10", got)
	}
	if !strings.Contains(h, `<rect class="outage" x="872.3" y="12" width="161.7" height="180"><title>http://127.0.0.1:3001 down from 2.5s, still down at the end</title>`) {
		t.Errorf("the open outage's band is not drawn to the end of the chart:\n%s", h)
	}
}

// When fan-out latency outgrew the delivery window, the reports say that
// trailing losses may be queued messages; otherwise they say nothing.
func TestLoadReportsExplainAServerFallingBehind(t *testing.T) {
	for _, tc := range []struct {
		name     string
		p99      float64
		trailing int64
		want     bool
	}{
		{"behind", 8000, 50, true},
		{"within the window", 1500, 50, false},
		{"no trailing losses", 8000, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := loadFixture(t)
			s.LatencyMS.Fanout.P99 = tc.p99
			s.Messages.LostGaps, s.Messages.LostTrailing = s.Messages.Lost-tc.trailing, tc.trailing
			var console, html bytes.Buffer
			if err := WriteLoadConsole(&console, s); err != nil {
				t.Fatal(err)
			}
			if err := WriteLoadHTML(&html, s); err != nil {
				t.Fatal(err)
			}
			const hint = "the server fell behind: fan-out p99 8000ms is over the 2000ms delivery window"
			if got := strings.Contains(console.String(), hint); got != tc.want {
				t.Errorf("console has the hint: %v, want %v:\n%s", got, tc.want, console.String())
			}
			if got := strings.Contains(html.String(), hint); got != tc.want {
				t.Errorf("report.html has the hint: %v, want %v", got, tc.want)
			}
		})
	}
}
