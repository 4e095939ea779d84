package loadgen

import (
	"context"
	"runtime"
	"time"
)

// Measure runs e, feeds every result to m, and returns the measured
// Summary (thresholds not yet applied). embedded says that the server
// runs in this process, so the CPU figures include it. It returns when the
// run is over, whatever the reason (see Engine.Run). The engine itself
// never sees the metrics: Measure is where results, process usage and
// the summary meet.
func Measure(ctx context.Context, e *Engine, m *Metrics, embedded bool) *Summary {
	s, _ := MeasureWith(ctx, e, m, embedded, nil)
	return s
}

// MeasureWith is Measure that also hands every result to tee (when not
// nil) before m sees it, as a shard's recorder needs, and returns the
// process usage it measured.
func MeasureWith(ctx context.Context, e *Engine, m *Metrics, embedded bool, tee func(Result)) (*Summary, Usage) {
	cpu0, _ := processRusage()
	results := e.Run(ctx)
	order := NewTimeOrder(OrderHorizon, m.Add)
	for r := range results {
		if tee != nil {
			tee(r)
		}
		order.Add(r)
	}
	order.Flush()
	cpu1, rss := processRusage()
	o := e.Outcome()
	s := &Summary{Ended: o.Ended, EndedDetail: o.Detail, RunID: e.RunID(), Started: e.Started().UTC(),
		Outages: SummarizeOutages(e.Outages(), o.End)}
	wall := time.Since(e.Started())
	u := Usage{CPU: cpu1 - cpu0, Wall: wall, MaxRSS: rss, Cores: runtime.GOMAXPROCS(0), Embedded: embedded}
	m.Close(o.End, u, s)
	return s, u
}
