package threshold

// The metrics these tests parse; a real program registers its own (the
// load generator's table is in loadgen/summary_metrics.go).
func init() {
	for _, g := range []string{"connect", "join", "fanout", "echo"} {
		for _, f := range []string{"p50", "p75", "p90", "p95", "p99", "p999", "max", "min", "mean"} {
			Register(g+"."+f, Latency)
		}
		Register(g+".count", Count)
	}
	Register("connect.errors", Count)
	Register("delivery.lost", Count)
	Register("delivery.loss_ratio", Ratio)
	Register("delivery.ratio", Ratio)
	Register("generator.saturated", Flag)
}
