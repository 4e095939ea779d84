package spec

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/chatspec/chatspec/spec/framework"
)

func TestGradeSpecOutcomes(t *testing.T) {
	base := types.SpecReport{LeafNodeType: types.NodeTypeIt, RunTime: 5 * time.Millisecond}
	for _, tc := range []struct {
		name   string
		text   string
		labels []string
		state  types.SpecState
		msg    string
		want   Outcome
		ok     bool
	}{
		{"pass", "JOIN-1 x", []string{"core"}, types.SpecStatePassed, "", Passed, true},
		{"fail", "JOIN-1 x", []string{"core"}, types.SpecStateFailed, "boom", Failed, true},
		{"skip", "RECON-2 x", []string{"strict"}, types.SpecStateSkipped, "too slow", Skipped, true},
		{"info passes as info", "TRANS-4 x", []string{"info"}, types.SpecStatePassed, "", Info, true},
		{"info never fails", "RECON-3 x", []string{"info"}, types.SpecStateFailed, "boom", Info, true},
		{"timed out", "JOIN-1 x", []string{"core"}, types.SpecStateTimedout, "slow", Failed, true},
		{"interrupted has no verdict", "JOIN-1 x", []string{"core"}, types.SpecStateInterrupted, "Interrupted by User", Skipped, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			s.LeafNodeText, s.LeafNodeLabels, s.State = tc.text, tc.labels, tc.state
			s.Failure.Message = tc.msg
			c, ok := gradeSpec(s)
			if ok != tc.ok || c.Outcome != tc.want {
				t.Errorf("got %q (ok %v), want %q (ok %v)", c.Outcome, ok, tc.want, tc.ok)
			}
		})
	}
	filtered := base
	filtered.LeafNodeText, filtered.State, filtered.RunTime = "JOIN-1 x", types.SpecStateSkipped, 0
	if _, ok := gradeSpec(filtered); ok {
		t.Error("a spec the profile filtered out is not a case of the run")
	}
}

func TestCollectNamesCasesAStoppedRunNeverReached(t *testing.T) {
	spec := func(text string, labels []string, state types.SpecState, run time.Duration) types.SpecReport {
		return types.SpecReport{LeafNodeType: types.NodeTypeIt, LeafNodeText: text, LeafNodeLabels: labels, State: state, RunTime: run}
	}
	r := types.Report{SpecReports: []types.SpecReport{
		spec("RECON-1 ran", []string{"core"}, types.SpecStatePassed, time.Millisecond),
		spec("JOIN-1 not reached", []string{"core"}, types.SpecStateSkipped, 0),
		spec("USER-4 filtered out", []string{"strict"}, types.SpecStateSkipped, 0),
	}}
	core := func(s types.SpecReport) bool { return slices.Contains(s.Labels(), "core") }
	var ids []string
	for _, c := range collect(r, core) {
		ids = append(ids, c.ID+"="+string(c.Outcome))
	}
	if want := []string{"JOIN-1=skipped", "RECON-1=passed"}; !slices.Equal(ids, want) {
		t.Errorf("cases %q, want %q (sorted, the unrun one skipped, the filtered one absent)", ids, want)
	}
}

// A target that dies from a case's bad input fails that case, even one
// whose own checks passed before the target went; the case that merely
// found it gone did not run. One that goes on its own ends the run early.
func TestOutageStopBlamesTheCaseWhoseInputKilledTheTarget(t *testing.T) {
	cases := []CaseResult{
		{ID: "ROB-1", Grade: "robust", Outcome: Passed},
		{ID: "ROB-2", Grade: "robust", Outcome: Failed, Message: "target unreachable since ROB-2: refused"},
		{ID: "ROB-3", Grade: "robust", Outcome: Skipped, Message: "not run: target unreachable since ROB-2: refused"},
	}
	dead := errors.New("target unreachable since ROB-2: refused")
	stop, got := outageStop(framework.Outage{Err: dead, FoundIn: "ROB-2", Culprit: "ROB-1"}, slices.Clone(cases))
	if stop.Kind != StopTargetKilled || stop.Case != "ROB-1" || stop.EndedEarly() {
		t.Errorf("stop %+v: want target_killed by ROB-1, a verdict", stop)
	}
	if got[0].Outcome != Failed || got[1].Outcome != Skipped || got[2].Outcome != Skipped {
		t.Errorf("outcomes %s %s %s; want failed skipped skipped", got[0].Outcome, got[1].Outcome, got[2].Outcome)
	}
	stop, got = outageStop(framework.Outage{Err: dead, FoundIn: "ROB-2"}, slices.Clone(cases))
	if stop.Kind != StopTargetGone || !stop.EndedEarly() || got[0].Outcome != Passed {
		t.Errorf("stop %+v, ROB-1 %s: want target_gone (ended early) and ROB-1 untouched", stop, got[0].Outcome)
	}
}
