package threshold

import (
	"errors"
	"flag"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Threshold
	}{
		{"latency ms", "fanout.p99<250ms", Threshold{Expr: "fanout.p99<250ms", Metric: "fanout.p99", Kind: Latency, Op: Less, Value: 250}},
		{"latency seconds with spaces", " join.p95 <= 1.5s ", Threshold{Expr: "join.p95 <= 1.5s", Metric: "join.p95", Kind: Latency, Op: LessEqual, Value: 1500}},
		{"latency bare number is ms", "connect.max>=30", Threshold{Expr: "connect.max>=30", Metric: "connect.max", Kind: Latency, Op: GreaterEqual, Value: 30}},
		{"latency microseconds", "echo.p50<500us", Threshold{Expr: "echo.p50<500us", Metric: "echo.p50", Kind: Latency, Op: Less, Value: 0.5}},
		{"latency minutes", "fanout.p999<1m", Threshold{Expr: "fanout.p999<1m", Metric: "fanout.p999", Kind: Latency, Op: Less, Value: 60000}},
		{"count", "delivery.lost==0", Threshold{Expr: "delivery.lost==0", Metric: "delivery.lost", Kind: Count, Op: Equal, Value: 0}},
		{"count not equal", "connect.errors != 3", Threshold{Expr: "connect.errors != 3", Metric: "connect.errors", Kind: Count, Op: NotEqual, Value: 3}},
		{"ratio", "delivery.loss_ratio<0.001", Threshold{Expr: "delivery.loss_ratio<0.001", Metric: "delivery.loss_ratio", Kind: Ratio, Op: Less, Value: 0.001}},
		{"ratio percent", "delivery.ratio>99.5%", Threshold{Expr: "delivery.ratio>99.5%", Metric: "delivery.ratio", Kind: Ratio, Op: Greater, Value: 0.995}},
		{"flag", "generator.saturated==false", Threshold{Expr: "generator.saturated==false", Metric: "generator.saturated", Kind: Flag, Op: Equal, Value: 0}},
		{"latency count", "fanout.count>100", Threshold{Expr: "fanout.count>100", Metric: "fanout.count", Kind: Count, Op: Greater, Value: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrSyntax},
		{"no operator", "fanout.p99 250ms", ErrSyntax},
		{"no metric", "<250ms", ErrSyntax},
		{"no value", "fanout.p99<", ErrSyntax},
		{"no group", "p99<250ms", ErrSyntax},
		{"two operators", "fanout.p99<250ms<3", ErrSyntax},
		{"bad operator", "fanout.p99=250ms", ErrSyntax},
		{"arrow", "fanout.p99=>250ms", ErrSyntax},
		{"unknown metric", "fanout.p98<250ms", ErrUnknownMetric},
		{"unknown group", "latency.p99<250ms", ErrUnknownMetric},
		{"bad unit", "fanout.p99<250h", ErrValue},
		{"negative", "fanout.p99<-1ms", ErrValue},
		{"count with unit", "delivery.lost<5ms", ErrValue},
		{"fractional count", "delivery.lost<0.5", ErrValue},
		{"ratio above one", "delivery.loss_ratio<2", ErrValue},
		{"percent above 100", "delivery.ratio>101%", ErrValue},
		{"flag value", "generator.saturated==0", ErrValue},
		{"flag ordering", "generator.saturated<true", ErrValue},
		{"exponent", "delivery.loss_ratio<1e-3", ErrValue},
		{"trailing dot", "fanout.p99<1.ms", ErrValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse(%q) error = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func TestErrorQuotesInput(t *testing.T) {
	_, err := Parse("fanout.p98<1s")
	if got, want := err.Error(), `threshold "fanout.p98<1s": unknown metric "fanout.p98" (known in fanout: `; len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("error = %q, want prefix %q", got, want)
	}
}

func TestListIsAFlag(t *testing.T) {
	var l List
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&l, "threshold", "")
	if err := fs.Parse([]string{"--threshold", "fanout.p99<250ms", "--threshold=delivery.lost==0"}); err != nil {
		t.Fatal(err)
	}
	if got, want := l.String(), "fanout.p99<250ms,delivery.lost==0"; got != want {
		t.Errorf("List = %q, want %q", got, want)
	}
	// The flag package does not wrap Set's error, so check its text.
	err := fs.Parse([]string{"--threshold", "nope"})
	if err == nil || !strings.Contains(err.Error(), `threshold "nope": syntax error`) {
		t.Errorf("bad flag error = %v, want the parse error", err)
	}
}

func TestEvaluate(t *testing.T) {
	var l List
	for _, e := range []string{"fanout.p99<250ms", "delivery.lost==0", "join.p95<1s", "generator.saturated==false", "fanout.p99<=300"} {
		if err := l.Set(e); err != nil {
			t.Fatal(err)
		}
	}
	values := map[string]float64{"fanout.p99": 300, "delivery.lost": 0, "generator.saturated": 0, "join.p95": math.NaN()}
	got := Evaluate(l, func(m string) (float64, bool) {
		v, ok := values[m]
		return v, ok && !math.IsNaN(v)
	})
	want := []bool{false, true, false, true, true}
	for i, r := range got {
		if r.OK != want[i] {
			t.Errorf("%s: OK = %v, want %v (value %v)", r.Expr, r.OK, want[i], r.Value)
		}
	}
	if got[2].Measured {
		t.Errorf("join.p95 with no samples should be unmeasured")
	}
}

func TestEveryOperator(t *testing.T) {
	tests := []struct {
		op       Op
		a, b     float64
		wantHold bool
	}{
		{Less, 1, 2, true}, {Less, 2, 2, false},
		{LessEqual, 2, 2, true}, {LessEqual, 3, 2, false},
		{Greater, 3, 2, true}, {Greater, 2, 2, false},
		{GreaterEqual, 2, 2, true}, {GreaterEqual, 1, 2, false},
		{Equal, 2, 2, true}, {Equal, 1, 2, false},
		{NotEqual, 1, 2, true}, {NotEqual, 2, 2, false},
	}
	for _, tt := range tests {
		if got := tt.op.Holds(tt.a, tt.b); got != tt.wantHold {
			t.Errorf("%v %v %v = %v, want %v", tt.a, tt.op, tt.b, got, tt.wantHold)
		}
	}
}
