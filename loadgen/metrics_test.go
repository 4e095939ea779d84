package loadgen

import (
	"strings"
	"testing"
	"time"
)

// The self-check: a lagging generator is saturated; when it lagged while
// using little CPU itself, the report blames the machine, not the
// generator's own work.
func TestGeneratorSelfCheck(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lag       time.Duration
		usage     Usage
		saturated bool
		starved   bool
	}{
		{"on time", time.Millisecond, Usage{CPU: 2 * time.Second, Wall: 10 * time.Second, Cores: 2}, false, false},
		{"lagging and busy", 200 * time.Millisecond, Usage{CPU: 15 * time.Second, Wall: 10 * time.Second, Cores: 2}, true, false},
		{"lagging and idle", 200 * time.Millisecond, Usage{CPU: 2 * time.Second, Wall: 10 * time.Second, Cores: 2}, true, true},
		{"lagging, embedded server", 200 * time.Millisecond, Usage{CPU: 2 * time.Second, Wall: 10 * time.Second, Cores: 2, Embedded: true}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMetrics(MetricsConfig{Users: 1, Window: time.Second})
			for i := range 100 {
				at := time.Duration(i+1) * 100 * time.Millisecond
				m.Add(Result{Kind: Tick, Intended: at, At: at + tc.lag})
			}
			s := &Summary{}
			m.Close(10*time.Second+tc.lag, tc.usage, s)
			g := s.Generator
			starved := strings.Contains(strings.Join(g.SaturationReasons, "; "), "other processes")
			if g.Saturated != tc.saturated || starved != tc.starved {
				t.Errorf("saturated %v (want %v), starved %v (want %v): %q", g.Saturated, tc.saturated, starved, tc.starved, g.SaturationReasons)
			}
		})
	}
}
