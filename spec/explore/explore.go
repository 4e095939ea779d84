package explore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Options configures one exploration.
type Options struct {
	Runner *Runner
	// Budget bounds the exploring (new scenarios start only while it lasts).
	Budget time.Duration
	// ShrinkBudget bounds the shrinking of a failure (default: Budget, at
	// least 30 s).
	ShrinkBudget time.Duration
	// Seed is the first scenario's seed; the next ones use Seed+1, Seed+2...
	Seed int64
	// Replay, when set, runs only this scenario (up to Attempts times,
	// until it fails) and shrinks nothing.
	Replay *Scenario
	// Attempts is how often a replay runs before it counts as passing
	// (default 3): concurrency makes some failures show only sometimes.
	Attempts int
	// Scenarios, when > 0, is the exploring budget counted in work done:
	// exactly this many scenarios run, however long they take (Budget is
	// then ignored). A defect that needs volume (a chatty scenario's
	// thousand messages) is then reached on a slow machine too.
	Scenarios int
	// MinScenarios, when > 0, keeps a wall-clock Budget going until at
	// least this many scenarios ran (NumShapes: one of each shape).
	MinScenarios int
	// Progress, when set, receives one line per scenario.
	Progress func(string)
}

// Finding is a failure exploration found.
type Finding struct {
	Seed  int64
	Shape string
	// Violations of the failing run, and the contract IDs they name.
	Violations []Violation
	IDs        []string
	// Shrunk is the smallest scenario found that still fails with the
	// first violation's ID; Minimal its violations and Trace its ops and
	// events, rendered.
	Shrunk      Scenario
	Minimal     []Violation
	Trace       string
	ShrinkRuns  int
	ShrinkTime  time.Duration
	OriginalOps int
}

// Result is what one exploration did.
type Result struct {
	Heartbeat Heartbeat
	Scenarios int
	Sockets   int
	Writes    int
	Duration  time.Duration
	// FirstFailure is how long exploration ran before the failing
	// scenario ended.
	FirstFailure time.Duration
	Finding      *Finding
	// Notes are findings that fail nothing (runs the server disturbed).
	Notes []string
	// SetAside counts failing runs not judged because the harness
	// stalled for long enough to miss the server's heartbeat (judge).
	SetAside int
	// Unverified counts scenarios whose every run was set aside.
	Unverified int
}

// Explore runs scenarios against the server until the budget is spent or
// one fails, then shrinks the failure.
func Explore(ctx context.Context, o Options) (Result, error) {
	start := time.Now()
	var res Result
	hb, err := o.Runner.Probe(ctx)
	if err != nil {
		return res, fmt.Errorf("explore: %w", err)
	}
	res.Heartbeat = hb
	gen := GenOptions{SilentDrops: hb.Sum() <= 8*time.Second}
	if !gen.SilentDrops {
		res.Notes = append(res.Notes, fmt.Sprintf("silent drops left out: the server's pingInterval+pingTimeout (%s) is too long for the budget", hb.Sum()))
	}
	progress := o.Progress
	if progress == nil {
		progress = func(string) {}
	}
	attempts := max(o.Attempts, 1)
	if o.Replay != nil && o.Attempts == 0 {
		attempts = 3
	}
	covered := map[Shape]bool{}
	for k := int64(0); ; k++ {
		var s Scenario
		if o.Replay != nil {
			if int(k) >= attempts {
				break
			}
			s = *o.Replay
		} else {
			if o.Scenarios > 0 && int(k) >= o.Scenarios || o.Scenarios <= 0 && time.Since(start) >= o.Budget && k > 0 && int(k) >= o.MinScenarios {
				break
			}
			s = Generate(o.Seed+k, gen)
		}
		runStart := time.Now()
		t, vs, setAside, err := judge(ctx, o.Runner.Run, s, hb)
		res.SetAside += setAside
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return res, err
		}
		res.Scenarios++
		res.Sockets += t.Scenario.Clients()
		res.Writes += t.Scenario.Writes()
		covered[ShapeOf(s.Seed)] = true
		progress(fmt.Sprintf("explore: seed %d (%s): %d sockets, %d writes, %s: %s", s.Seed, ShapeOf(s.Seed), t.Scenario.Clients(), t.Scenario.Writes(), time.Since(runStart).Round(100*time.Millisecond), verdict(vs)))
		if setAside > 0 {
			note := fmt.Sprintf("seed %d: %d failing run(s) set aside, not judged: the harness stalled for %s or more, near the server's ping timeout (%s), so the server may rightly have dropped a socket whose pong came late", s.Seed, setAside, stallLimit(hb).Round(time.Millisecond), hb.PingTimeout)
			if setAside >= maxJudgeRuns {
				res.Unverified++
				note += "; the scenario was not verified"
			}
			res.Notes = append(res.Notes, note)
		}
		for ci, c := range t.Clients {
			if c.Ended != "" && len(vs) == 0 {
				res.Notes = append(res.Notes, fmt.Sprintf("seed %d: the server ended socket c%d (%s); presence after that was not judged", s.Seed, ci, c.Ended))
			}
		}
		if len(vs) == 0 {
			continue
		}
		res.FirstFailure = time.Since(start)
		f := &Finding{Seed: s.Seed, Shape: ShapeOf(s.Seed).String(), Violations: vs, IDs: idsOf(vs), OriginalOps: len(t.Scenario.Ops)}
		f.Shrunk, f.Minimal, f.Trace = t.Scenario, vs, Render(t, vs)
		if o.Replay == nil {
			budget := o.ShrinkBudget
			if budget <= 0 {
				budget = max(o.Budget, 30*time.Second)
			}
			shrink(ctx, o.Runner, hb, f, budget, progress)
		}
		res.Finding = f
		break
	}
	if o.Replay == nil && res.Finding == nil && res.Scenarios > 0 && len(covered) < int(numShapes) {
		var missing []string
		for sh := range numShapes {
			if !covered[sh] {
				missing = append(missing, sh.String())
			}
		}
		res.Notes = append(res.Notes, fmt.Sprintf("the budget ran %d scenarios: shapes %s not explored (a longer --explore covers them; seeds cycle through the %d shapes)", res.Scenarios, strings.Join(missing, ", "), numShapes))
	}
	res.Duration = time.Since(start)
	return res, nil
}

// stallLimit is the harness stall from which a failing run proves nothing:
// half the server's ping timeout, beyond which a pong may have gone out
// too late for the server to keep the socket.
func stallLimit(hb Heartbeat) time.Duration { return hb.PingTimeout / 2 }

// runFunc performs a scenario (Runner.Run).
type runFunc func(context.Context, Scenario, Heartbeat) (*Trace, error)

// heartbeatExplains reports whether a server's rightful drop of a socket
// whose pong came late could cause v: presence (JOIN, USER, RECON) and
// the deliveries owed to that socket (MSG-1, HIST-2).
func heartbeatExplains(v Violation) bool {
	return strings.HasPrefix(v.ID, "JOIN-") || strings.HasPrefix(v.ID, "USER-") || strings.HasPrefix(v.ID, "RECON-") || v.ID == "MSG-1" || v.ID == "HIST-2"
}

// maxJudgeRuns bounds how often judge runs one scenario.
const maxJudgeRuns = 3

// judge runs s and checks it. A run whose harness stalled for stallLimit
// or more and whose violations a late pong can all explain
// (heartbeatExplains) is set aside and s is run again (at most
// maxJudgeRuns in all): a slow harness is not a slow server. It returns
// the last run's trace and its violations (none when every failing run
// was set aside) and how many runs it set aside.
func judge(ctx context.Context, run runFunc, s Scenario, hb Heartbeat) (*Trace, []Violation, int, error) {
	setAside := 0
	for {
		t, err := run(ctx, s, hb)
		if err != nil {
			return nil, nil, setAside, err
		}
		vs := Check(t)
		if len(vs) == 0 || t.Stall < stallLimit(hb) {
			return t, vs, setAside, nil
		}
		// A late pong explains only what a socket the server dropped
		// changes: presence, and deliveries to it. Anything else (a
		// second cap, a rewritten text, a forged name accepted) stands.
		if rest := slices.DeleteFunc(slices.Clone(vs), heartbeatExplains); len(rest) > 0 {
			return t, rest, setAside, nil
		}
		setAside++
		if setAside >= maxJudgeRuns {
			return t, nil, setAside, nil
		}
	}
}

func verdict(vs []Violation) string {
	if len(vs) == 0 {
		return "ok"
	}
	return fmt.Sprintf("%d violations (%s)", len(vs), strings.Join(idsOf(vs), ", "))
}

func idsOf(vs []Violation) []string {
	var ids []string
	for _, v := range vs {
		if !slices.Contains(ids, v.ID) {
			ids = append(ids, v.ID)
		}
	}
	return ids
}

// shrink reduces f.Shrunk by delta debugging over its operations: a
// candidate is kept when a live run of it still violates the first
// violation's contract ID. Bounded by budget.
func shrink(ctx context.Context, r *Runner, hb Heartbeat, f *Finding, budget time.Duration, progress func(string)) {
	start := time.Now()
	target := f.Violations[0].ID
	cur := Normalize(f.Shrunk)
	tried := map[string]bool{}
	// A violation seen after operation w needs nothing after w: cut there
	// first (the cheapest, largest step).
	first := -1
	for _, v := range f.Violations {
		if v.ID == target && v.Window >= 0 {
			first = v.Window
			break
		}
	}
	test := func(ops []Op) bool {
		cand := Normalize(Scenario{Seed: cur.Seed, Users: cur.Users, Ops: ops})
		key := fmt.Sprint(cand.Ops)
		if len(cand.Ops) == 0 || tried[key] || len(cand.Ops) >= len(cur.Ops) {
			return false
		}
		tried[key] = true
		if time.Since(start) > budget || ctx.Err() != nil {
			return false
		}
		f.ShrinkRuns++
		t, vs, _, err := judge(ctx, r.Run, cand, hb)
		if err != nil {
			return false
		}
		if !slices.ContainsFunc(vs, func(v Violation) bool { return v.ID == target }) {
			return false
		}
		cur = t.Scenario
		f.Minimal, f.Trace = vs, Render(t, vs)
		progress(fmt.Sprintf("explore: shrunk to %d operations (%s)", len(cur.Ops), target))
		return true
	}
	if first >= 0 && first+1 < len(cur.Ops) {
		test(cur.Ops[:first+1])
	}
	n := 2
	for len(cur.Ops) >= 2 && time.Since(start) < budget && ctx.Err() == nil {
		ops := cur.Ops
		chunk := (len(ops) + n - 1) / n
		reduced := false
		for i := 0; i < len(ops) && !reduced; i += chunk {
			cand := slices.Concat(ops[:i], ops[min(i+chunk, len(ops)):])
			reduced = test(cand)
		}
		if reduced {
			n = max(n-1, 2)
			continue
		}
		if n >= len(ops) {
			break
		}
		n = min(2*n, len(ops))
	}
	f.Shrunk = cur
	f.ShrinkTime = time.Since(start)
}

// Render returns a trace's operations, each followed by the events of this
// run it caused, and the violations, for a report (bounded in size).
func Render(t *Trace, vs []Violation) string {
	var b strings.Builder
	m := newModelQuiet(t)
	const maxLines = 150
	lines := 0
	line := func(format string, args ...any) {
		lines++
		if lines <= maxLines {
			fmt.Fprintf(&b, format+"\n", args...)
		}
	}
	fmt.Fprintf(&b, "usernames end in ~%s-<tag>; messages start with ~%s-w<id>~\n", t.Nonce, t.Nonce)
	for i, op := range t.Scenario.Ops {
		skip := ""
		if t.skipped(i) {
			skip = " (skipped)"
		}
		line("op %d: %s%s", i, t.Scenario.Describe(op), skip)
		for ci := range t.Clients {
			for _, ev := range t.Clients[ci].Events {
				if ev.Window != i {
					continue
				}
				switch {
				case ev.Malformed != "":
					line("    c%d <- %s MALFORMED: %s", ci, ev.Name, ev.Malformed)
				case ev.Name == "messageWritten":
					last := "(empty)"
					if n := len(ev.Msgs); n > 0 {
						last = fmt.Sprintf("{%q: %s}", clipS(ev.Msgs[n-1].Username), clipQ(ev.Msgs[n-1].Message))
					}
					line("    c%d <- messageWritten (%d entries, last %s)", ci, len(ev.Msgs), last)
				case isChatEvent(ev.Name):
					extra := ""
					if ev.Name == "connected" {
						extra = fmt.Sprintf(", %d messages", len(ev.Msgs))
					}
					line("    c%d <- %s %s%s", ci, ev.Name, quoteList(m.oursQuiet(ev.Users)), extra)
				default:
					line("    c%d <- %s (not a chat event: a refusal report or an extra event)", ci, ev.Name)
				}
			}
		}
	}
	if lines > maxLines {
		fmt.Fprintf(&b, "... (%d more lines)\n", lines-maxLines)
	}
	b.WriteString("violations:\n")
	for i, v := range vs {
		if i == 20 {
			fmt.Fprintf(&b, "  ... and %d more\n", len(vs)-20)
			break
		}
		fmt.Fprintf(&b, "  %s\n", v)
	}
	return b.String()
}
