package selftest

import (
	"slices"
	"testing"
)

// TestMatches pins the matching rule of the package comment: an expected
// contract ID covers its suffixed variants, and nothing else.
func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		expected, id string
		want         bool
	}{
		{"JOIN-1", "JOIN-1", true},
		{"JOIN-1", "JOIN-1/polling", true},
		{"JOIN-1", "JOIN-1.ws", true},
		{"JOIN-1", "JOIN-10", false},
		{"JOIN-1", "JOIN-12/polling", false},
		{"JOIN-1", "JOIN-2", false},
		{"JOIN-1", "XJOIN-1", false},
		{"JOIN-1/polling", "JOIN-1/polling", true},
		{"JOIN-1/polling", "JOIN-1/websocket", false},
		{"JOIN-1/polling", "JOIN-1", false},
		{"USER-4", "", false},
	} {
		if got := matches(tc.expected, tc.id); got != tc.want {
			t.Errorf("matches(%q, %q) = %v, want %v", tc.expected, tc.id, got, tc.want)
		}
	}
}

// TestDiff checks that diff reports both directions of a mismatch.
func TestDiff(t *testing.T) {
	r := run{results: results{Cases: []caseResult{
		{ID: "JOIN-1", Outcome: "failed"},
		{ID: "JOIN-3/polling", Outcome: "failed"},
		{ID: "USER-1", Outcome: "passed"},
		{ID: "USER-2", Outcome: "skipped", Message: "why"},
	}}}
	unexpected, missed := diff(r, []string{"JOIN-3", "USER-1", "USER-2", "HIST-9"})
	var got []string
	for _, c := range unexpected {
		got = append(got, c.ID)
	}
	if want := []string{"JOIN-1"}; !slices.Equal(got, want) {
		t.Errorf("unexpected = %v, want %v", got, want)
	}
	want := []string{
		"USER-1: USER-1 passed",
		"USER-2: USER-2 skipped: why",
		"HIST-9: no case with this ID ran",
	}
	if !slices.Equal(missed, want) {
		t.Errorf("missed = %q, want %q", missed, want)
	}
}
