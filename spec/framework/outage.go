package framework

import (
	"context"
	"fmt"
)

// Outage is what the run learned when the target stopped answering
// mid-run: when it was found, and whether a case's bad input is the likely
// cause. A server that dies from a case's input has failed that case; one
// that goes away on its own leaves the run without a verdict.
type Outage struct {
	// Err is the message every later case is skipped with ("target
	// unreachable since CASE: ...").
	Err error
	// FoundIn is the case whose connection attempt found the target gone.
	FoundIn string
	// Culprit is the case whose bad input the target died from: a robust
	// or security case during which it went, or the one right before the
	// case that found it (before that case connected anything). "" when the
	// target went away on its own.
	Culprit string
}

// caseTrack is the case running now and the one before it, for telling
// an outage a case caused from one that just happened.
type caseTrack struct {
	cur, prev           string
	curGrade, prevGrade string
}

// sendsBadInput reports the grades whose cases send deliberately bad input.
func sendsBadInput(grade string) bool {
	return grade == GradeRobust || grade == GradeSecurity
}

// enterCase records that caseID (of grade) starts now.
func (r *run) enterCase(caseID, grade string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cases.prev, r.cases.prevGrade = r.cases.cur, r.cases.curGrade
	r.cases.cur, r.cases.curGrade = caseID, grade
}

// TargetOutage returns the outage that marked the target down mid-run,
// and false while the target is up.
func TargetOutage() (Outage, bool) {
	r := currentRun()
	if r == nil {
		return Outage{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.outage, r.dead != nil
}

// noteDialError is called when a connection attempt of caseID failed;
// connected says whether the case had connected a client before. It probes
// the target once; if the probe fails too, the target is marked down so
// that every later case is skipped at once with one clear message instead
// of each waiting out its own timeout.
func (r *run) noteDialError(caseID string, connected bool, dialErr error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead != nil {
		return r.dead
	}
	if r.ctx.Err() != nil {
		// The run was stopped: the dial failed for that, and a probe now
		// would fail for the same reason, not because the target went.
		return nil
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.StepTimeout)
	defer cancel()
	if err := Reachable(ctx, r.cfg.Target); err != nil {
		r.dead = fmt.Errorf("target unreachable since %s: %w", caseID, err)
		r.outage = Outage{Err: r.dead, FoundIn: caseID}
		switch {
		case connected && caseID == r.cases.cur && sendsBadInput(r.cases.curGrade):
			// It died while this case was sending it bad input.
			r.outage.Culprit = caseID
		case !connected && sendsBadInput(r.cases.prevGrade):
			// This case sent nothing yet: the input of the case before
			// it is the likely cause.
			r.outage.Culprit = r.cases.prev
		}
		return r.dead
	}
	return nil
}
