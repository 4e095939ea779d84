package loadgen

import (
	"context"
	"runtime"
	"time"
)

// Execute runs e, feeds every result to m, and returns the measured
// Summary (thresholds not yet applied). embedded says that the server
// runs in this process, so the CPU figures include it. It returns when the
// run is over, whatever the reason (see Engine.Run).
func (e *Engine) Execute(ctx context.Context, m *Metrics, embedded bool) *Summary {
	cpu0, _ := processUsage()
	results := e.Run(ctx)
	for r := range results {
		m.Add(r)
	}
	cpu1, rss := processUsage()
	o := e.Outcome()
	s := &Summary{Ended: o.Ended, EndedDetail: o.Detail, RunID: e.cfg.RunID, Started: e.start.UTC(),
		Outages: SummarizeOutages(e.Outages(), o.End)}
	wall := time.Since(e.start)
	m.Close(o.End, Usage{CPU: cpu1 - cpu0, Wall: wall, MaxRSS: rss, Cores: runtime.GOMAXPROCS(0), Embedded: embedded}, s)
	return s
}
