package lag

import (
	"testing"
	"time"
)

func TestMonitorSumsLateTicksInAWindow(t *testing.T) {
	m := &Monitor{}
	base := time.Now()
	for i, late := range []time.Duration{100, 200, 300} {
		m.add(sample{at: base.Add(time.Duration(i+1) * time.Second), late: late * time.Millisecond})
	}
	for _, tc := range []struct {
		from, to time.Duration
		want     time.Duration
	}{
		{0, 4 * time.Second, 600 * time.Millisecond},
		{1500 * time.Millisecond, 2500 * time.Millisecond, 200 * time.Millisecond},
		// A late tick counts only for the part of it inside the window.
		{2950 * time.Millisecond, 4 * time.Second, 50 * time.Millisecond},
		{5 * time.Second, 6 * time.Second, 0},
	} {
		if got := m.During(base.Add(tc.from), base.Add(tc.to)); got != tc.want {
			t.Errorf("during(+%s, +%s) = %s, want %s", tc.from, tc.to, got, tc.want)
		}
	}
	var nilMonitor *Monitor
	if got := nilMonitor.During(base, base.Add(time.Hour)); got != 0 {
		t.Errorf("a nil monitor reports %s, want 0", got)
	}
}

func TestLongestIsTheLongestStallInAWindow(t *testing.T) {
	m := &Monitor{}
	base := time.Now()
	for i, late := range []time.Duration{100, 700, 300} {
		m.add(sample{at: base.Add(time.Duration(i+1) * time.Second), late: late * time.Millisecond})
	}
	if got := m.Longest(base, base.Add(4*time.Second)); got != 700*time.Millisecond {
		t.Errorf("Longest over all = %s, want 700ms", got)
	}
	if got := m.Longest(base.Add(2500*time.Millisecond), base.Add(4*time.Second)); got != 300*time.Millisecond {
		t.Errorf("Longest after the 700ms stall = %s, want 300ms", got)
	}
	var nilMonitor *Monitor
	if got := nilMonitor.Longest(base, base.Add(time.Hour)); got != 0 {
		t.Errorf("a nil monitor reports %s, want 0", got)
	}
}
