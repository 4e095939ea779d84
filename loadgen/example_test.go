package loadgen_test

import (
	"context"
	"fmt"
	"time"

	"github.com/chatspec/chatspec/loadgen"
	"github.com/chatspec/chatspec/loadgen/threshold"
	"github.com/chatspec/chatspec/reference"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// Example shows the whole pipeline against a reference server on a free
// loopback port: a plan, an engine, metrics, thresholds. Three users write
// for a second; every owed delivery arrives.
func Example() {
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	server, err := reference.Start(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer server.Stop(context.Background())

	arrivals, err := loadgen.Plan{Users: 3, Ramp: 0, Duration: time.Second, Linger: 2 * time.Second}.Arrivals()
	if err != nil {
		fmt.Println(err)
		return
	}
	eng, err := loadgen.New(loadgen.Config{
		RunID:    "example1",
		Arrivals: arrivals,
		Pacer:    loadgen.ConstantPacer{Interval: 250 * time.Millisecond},
		Window:   2 * time.Second, // as long as users linger after their last send
		Dial: func(user int) sioclient.Options {
			return sioclient.Options{URL: server.URL()}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	metrics := loadgen.NewMetrics(eng.MetricsConfig())
	summary := loadgen.Measure(context.Background(), eng, metrics, false)

	var gates threshold.List
	_ = gates.Set("delivery.lost==0")
	_ = gates.Set("delivery.duplicated==0")
	summary.ApplyThresholds(gates)
	fmt.Println(summary.Verdict, summary.Messages.Delivered == summary.Messages.ExpectedDeliveries)
	// Output: pass true
}
