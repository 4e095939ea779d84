package reports

import (
	"testing"

	"github.com/chatspec/chatspec/loadgen"
	"github.com/chatspec/chatspec/loadgen/threshold"
)

func TestInlineMarkdown(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"plain", "plain"},
		{"emits `connecting` first", "emits <code>connecting</code> first"},
		{"a **username** is *joined*", "a <strong>username</strong> is <em>joined</em>"},
		{"HTML (`<b>`), <i>x</i>", "HTML (<code>&lt;b&gt;</code>), &lt;i&gt;x&lt;/i&gt;"},
		{"code keeps `a*b*c` literal", "code keeps <code>a*b*c</code> literal"},
		{"pingInterval + pingTimeout * 2", "pingInterval + pingTimeout * 2"},
		{"`<script>alert(1)</script>`", "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>"},
	} {
		if got := string(inlineMarkdown(tt.in)); got != tt.want {
			t.Errorf("inlineMarkdown(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAxisLabels(t *testing.T) {
	for _, tt := range []struct {
		got, want string
	}{
		{humanMS(0), "0 ms"}, {humanMS(2.5), "2.5 ms"}, {humanMS(250), "250 ms"}, {humanMS(1250), "1.25 s"},
		{humanMS(10000), "10 s"}, {humanMS(180000), "3 min"},
		{humanCount(0), "0"}, {humanCount(0.25), "0.25"}, {humanCount(37.5), "38"}, {humanCount(1500), "1.5k"},
		{humanCount(10000), "10k"}, {humanCount(2.5e6), "2.5M"},
		{humanSeconds(7.5, 1), "7.5s"}, {humanSeconds(90, 0), "1m30s"}, {humanSeconds(600, 0), "10m"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestVerdictReasons(t *testing.T) {
	pass := &loadgen.Summary{Ended: loadgen.EndedCompleted, Thresholds: []threshold.Result{{Expr: "delivery.lost==0", OK: true, Measured: true}}}
	if got := verdictReasons(pass); len(got) != 1 || got[0] != "the run completed and its threshold held" {
		t.Errorf("pass: %q", got)
	}
	fail := &loadgen.Summary{Ended: loadgen.EndedCompleted, Thresholds: []threshold.Result{
		{Expr: "fanout.p99<250ms", Value: 812.5, OK: false, Measured: true},
		{Expr: "delivery.lost==0", OK: true, Measured: true},
	}}
	if got := verdictReasons(fail); len(got) != 1 || got[0] != "threshold fanout.p99<250ms crossed (measured 812.5)" {
		t.Errorf("crossed: %q", got)
	}
	behind := &loadgen.Summary{Ended: loadgen.EndedCompleted,
		Thresholds: []threshold.Result{{Expr: "delivery.lost==0", Value: 12, OK: false, Measured: true}},
		Messages:   loadgen.MessagesSummary{Lost: 12, LostTrailing: 12},
		LatencyMS:  loadgen.LatencySet{Fanout: loadgen.LatencyStats{P99: 7400, Count: 100}},
		Config:     loadgen.ConfigSummary{DeliveryWindowSeconds: 5},
	}
	if got := verdictReasons(behind); len(got) != 2 || got[1] != "the server fell behind (fan-out p99 7.4 s, over the 5 s delivery window)" {
		t.Errorf("behind: %q", got)
	}
	early := &loadgen.Summary{Ended: loadgen.EndedTargetDown, EndedDetail: "127.0.0.1:3000 refused connections"}
	if got := verdictReasons(early); len(got) != 1 || got[0] != "the run ended early (target_down): 127.0.0.1:3000 refused connections" {
		t.Errorf("early: %q", got)
	}
}
