package main

// Exit codes. They let CI tell "the target failed" apart from "chatspec
// could not do its job"; README.md documents them.
const (
	// ExitOK: verify passed every graded case of the profile; load held
	// every threshold; serve shut down cleanly.
	ExitOK = 0
	// ExitFailed: verify found a failing case (a target that died from a
	// case's input failed that case), or load crossed a threshold.
	ExitFailed = 1
	// ExitUsage: bad flags or arguments, or the target was unreachable
	// before anything ran. Nothing was measured (a --report-dir says why).
	ExitUsage = 2
	// ExitInterrupted: the run ended early without a verdict (Ctrl-C,
	// SIGTERM, the run timeout, or the target went away on its own
	// mid-run). The report holds what was measured up to then.
	ExitInterrupted = 3
	// ExitError: chatspec itself failed (a port already in use, a report
	// that could not be written, a load generator that ran out of open
	// files or local ports: generator_limit).
	ExitError = 4
)
