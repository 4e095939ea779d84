package loadgen

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chatspec/chatspec/loadgen/threshold"
)

func thresholdMetricNames() []string { return threshold.MetricNames() }

func TestPlanArrivals(t *testing.T) {
	got, err := Plan{Users: 4, Ramp: 4 * time.Second, Duration: 10 * time.Second, Linger: time.Second}.Arrivals()
	if err != nil {
		t.Fatal(err)
	}
	want := []Arrival{
		{0, 0, 10 * time.Second, 11 * time.Second},
		{1, time.Second, 11 * time.Second, 12 * time.Second},
		{2, 2 * time.Second, 12 * time.Second, 13 * time.Second},
		{3, 3 * time.Second, 13 * time.Second, 14 * time.Second},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("arrivals (-want +got):\n%s", diff)
	}
}

func TestStagedPlan(t *testing.T) {
	st, err := ParseStages("2s:2, 2s:2, 2s:0")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Plan{Stages: st, Linger: 500 * time.Millisecond}.Arrivals()
	if err != nil {
		t.Fatal(err)
	}
	// Two arrive over the first stage, stay, and leave first-in first-out
	// over the last one.
	want := []Arrival{
		{0, 0, 4500 * time.Millisecond, 5 * time.Second},
		{1, time.Second, 5500 * time.Millisecond, 6 * time.Second},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("arrivals (-want +got):\n%s", diff)
	}
	if s := FormatStages(st); s != "2s:2,2s:2,2s:0" {
		t.Errorf("FormatStages = %q", s)
	}
}

func TestPlanErrors(t *testing.T) {
	for name, p := range map[string]Plan{
		"no users":        {Users: 0, Duration: time.Second},
		"too many":        {Users: MaxUsers + 1, Duration: time.Second},
		"no duration":     {Users: 1},
		"negative ramp":   {Users: 1, Ramp: -1, Duration: time.Second},
		"stages never up": {Stages: []Stage{{time.Second, 0}}},
		"zero stage":      {Stages: []Stage{{0, 3}}},
		"negative linger": {Users: 1, Duration: time.Second, Linger: -1},
	} {
		if _, err := p.Arrivals(); !errors.Is(err, ErrPlan) {
			t.Errorf("%s: error = %v, want ErrPlan", name, err)
		}
	}
	for _, s := range []string{"", "10s", "10s:x", "x:10", "-1s:3", "1s:-3", "1s:3,"} {
		if _, err := ParseStages(s); !errors.Is(err, ErrPlan) {
			t.Errorf("ParseStages(%q) error = %v, want ErrPlan", s, err)
		}
	}
}

func TestPacers(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := ConstantPacer{Interval: time.Second, Jitter: 100 * time.Millisecond}
	for range 1000 {
		if d := c.Next(r); d < 900*time.Millisecond || d > 1100*time.Millisecond {
			t.Fatalf("constant pacer gap %v outside 1s±100ms", d)
		}
	}
	if d := (ConstantPacer{Interval: time.Second}).Next(r); d != time.Second {
		t.Errorf("constant pacer without jitter = %v", d)
	}
	p := PoissonPacer{Mean: time.Second}
	var sum time.Duration
	const n = 20000
	for range n {
		sum += p.Next(r)
	}
	if mean := sum / n; math.Abs(float64(mean-time.Second)) > float64(50*time.Millisecond) {
		t.Errorf("poisson pacer mean %v, want about 1s", mean)
	}
}
