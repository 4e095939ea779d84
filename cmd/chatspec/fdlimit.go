package main

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/chatspec/chatspec/loadgen"
)

// fdReserve is what the process needs besides its users' connections:
// the report files, the target probes, the runtime's own descriptors.
const fdReserve = 64

// checkOpenFiles refuses, before anything runs, a plan that cannot fit
// this process's open-file limit: past it every dial fails with "too many
// open files", which says nothing about the target. It counts the fewest
// descriptors the plan needs at its peak: one per connection (two per
// seed-style user), twice that when the server is embedded in this
// process. Polling users can need a second connection at times; that is
// not counted, and a run that meets the limit anyway ends as
// generator_limit.
// limit is the process's limit (loadgen.OpenFileLimit).
func checkOpenFiles(arrivals []loadgen.Arrival, s loadgen.Shard, seedStyle, embedded bool, limit uint64) error {
	peak := peakConcurrentUsers(arrivals, s)
	per := 1
	if seedStyle {
		per = 2
	}
	if embedded {
		per *= 2
	}
	need := uint64(peak*per) + fdReserve
	if need <= limit {
		return nil
	}
	where := "one connection each"
	if per > 1 {
		where = fmt.Sprintf("%d descriptors each", per)
	}
	if embedded {
		where += ", the embedded server's side included"
	}
	return fmt.Errorf("the plan has up to %d users connected at once in this process (%s), at least %d open files, but this process may hold %d (ulimit -n): raise the limit, or split the users over --shard processes", peak, where, need, limit)
}

// peakConcurrentUsers is the most users of shard s present at once: each
// is present from its arrival to its planned leave.
func peakConcurrentUsers(arrivals []loadgen.Arrival, s loadgen.Shard) int {
	type edge struct {
		at    time.Duration
		delta int
	}
	var edges []edge
	for _, a := range arrivals {
		if s.Runs(a.User) {
			edges = append(edges, edge{a.At, 1}, edge{a.Leave, -1})
		}
	}
	// Leaves before arrivals at the same instant.
	slices.SortFunc(edges, func(x, y edge) int {
		if c := cmp.Compare(x.at, y.at); c != 0 {
			return c
		}
		return cmp.Compare(x.delta, y.delta)
	})
	peak, now := 0, 0
	for _, e := range edges {
		now += e.delta
		peak = max(peak, now)
	}
	return peak
}
