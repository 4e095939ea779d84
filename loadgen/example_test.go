package loadgen_test

import (
	"context"
	"fmt"
	"time"

	"github.com/chatspec/chatspec/loadgen"
	"github.com/chatspec/chatspec/loadgen/threshold"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// Example shows the whole pipeline: a plan, an engine, metrics, thresholds.
// (It needs a chat server at the URL, so it has no checked output.)
func Example() {
	arrivals, err := loadgen.Plan{Users: 100, Ramp: 10 * time.Second, Duration: 30 * time.Second, Linger: 5 * time.Second}.Arrivals()
	if err != nil {
		panic(err)
	}
	eng, err := loadgen.New(loadgen.Config{
		RunID:    "example1",
		Arrivals: arrivals,
		Pacer:    loadgen.PoissonPacer{Mean: 2 * time.Second},
		Window:   5 * time.Second,
		Dial: func(user int) sioclient.Options {
			return sioclient.Options{URL: "http://127.0.0.1:3000"}
		},
	})
	if err != nil {
		panic(err)
	}
	metrics := loadgen.NewMetrics(eng.MetricsConfig())
	summary := loadgen.Measure(context.Background(), eng, metrics, false)

	var gates threshold.List
	_ = gates.Set("fanout.p99<250ms")
	_ = gates.Set("delivery.lost==0")
	summary.ApplyThresholds(gates)
	fmt.Println(summary.Verdict, summary.Messages.Lost, summary.LatencyMS.Fanout.P99)
}
