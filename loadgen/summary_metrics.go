package loadgen

import "github.com/chatspec/chatspec/loadgen/threshold"

// summaryMetric is one metric a threshold may name: its kind, and how to
// read it from a Summary (ok false: not measured, e.g. a latency with no
// samples, which fails any threshold on it).
type summaryMetric struct {
	kind  threshold.Kind
	value func(s *Summary) (v float64, ok bool)
}

// summaryMetrics is the one table of threshold metrics: init registers
// each with the threshold package, and Summary.Metric reads them here.
var summaryMetrics = func() map[string]summaryMetric {
	count := func(f func(s *Summary) int64) summaryMetric {
		return summaryMetric{threshold.Count, func(s *Summary) (float64, bool) { return float64(f(s)), true }}
	}
	m := map[string]summaryMetric{
		"connect.errors":         count(func(s *Summary) int64 { return s.Users.ConnectErrors }),
		"join.errors":            count(func(s *Summary) int64 { return s.Users.JoinErrors }),
		"delivery.expected":      count(func(s *Summary) int64 { return s.Messages.ExpectedDeliveries }),
		"delivery.delivered":     count(func(s *Summary) int64 { return s.Messages.Delivered }),
		"delivery.lost":          count(func(s *Summary) int64 { return s.Messages.Lost }),
		"delivery.lost_gaps":     count(func(s *Summary) int64 { return s.Messages.LostGaps }),
		"delivery.lost_trailing": count(func(s *Summary) int64 { return s.Messages.LostTrailing }),
		"delivery.duplicated":    count(func(s *Summary) int64 { return s.Messages.Duplicated }),
		"delivery.reordered":     count(func(s *Summary) int64 { return s.Messages.Reordered }),
		"delivery.loss_ratio": {threshold.Ratio, func(s *Summary) (float64, bool) {
			return s.Messages.LossRatio, s.Messages.ExpectedDeliveries > 0
		}},
		"delivery.ratio": {threshold.Ratio, func(s *Summary) (float64, bool) {
			return s.Messages.DeliveryRatio, s.Messages.ExpectedDeliveries > 0
		}},
		"messages.sent":            count(func(s *Summary) int64 { return s.Messages.Sent }),
		"messages.send_errors":     count(func(s *Summary) int64 { return s.Messages.SendErrors }),
		"messages.unconfirmed":     count(func(s *Summary) int64 { return s.Messages.Unconfirmed }),
		"users.planned":            count(func(s *Summary) int64 { return int64(s.Users.Planned) }),
		"users.connected":          count(func(s *Summary) int64 { return int64(s.Users.Connected) }),
		"users.dropped":            count(func(s *Summary) int64 { return s.Users.Dropped }),
		"sessions.dropped":         count(func(s *Summary) int64 { return s.Sessions.EndedByServer }),
		"sessions.join_failed":     count(func(s *Summary) int64 { return s.Sessions.JoinFailed }),
		"sessions.joined":          count(func(s *Summary) int64 { return s.Sessions.Joined }),
		"messages.refused":         count(func(s *Summary) int64 { return s.Messages.Refused }),
		"delivery.order_conflicts": count(func(s *Summary) int64 { return s.Messages.OrderConflicts }),
		"delivery.unmeasured": {threshold.Flag, func(s *Summary) (float64, bool) {
			if s.Messages.Unmeasured {
				return 1, true
			}
			return 0, true
		}},
		"events.repeated":        count(func(s *Summary) int64 { return s.Events.Repeated }),
		"events.foreign":         count(func(s *Summary) int64 { return s.Events.Foreign }),
		"events.forged":          count(func(s *Summary) int64 { return s.Events.Forged }),
		"events.out_of_contract": count(func(s *Summary) int64 { return s.Events.OutOfContract }),
		"errors.total": count(func(s *Summary) int64 {
			var n int64
			for _, e := range s.Errors {
				n += e.Count
			}
			return n
		}),
		"generator.saturated": {threshold.Flag, func(s *Summary) (float64, bool) {
			if s.Generator.Saturated {
				return 1, true
			}
			return 0, true
		}},
		"generator.max_schedule_lag": {threshold.Latency, func(s *Summary) (float64, bool) { return s.Generator.MaxScheduleLagMS, true }},
		"outage.count":               count(func(s *Summary) int64 { return int64(len(s.Outages)) }),
		// Measured even with no outage: "the longest outage" of a run
		// without one is 0, which any outage.max<… gate should pass.
		"outage.max": {threshold.Latency, func(s *Summary) (float64, bool) {
			var longest float64
			for _, o := range s.Outages {
				longest = max(longest, o.DurationMS)
			}
			return longest, true
		}},
		"outage.total": {threshold.Latency, func(s *Summary) (float64, bool) {
			var total float64
			for _, o := range s.Outages {
				total += o.DurationMS
			}
			return total, true
		}},
	}
	latencies := map[string]func(s *Summary) LatencyStats{
		"connect": func(s *Summary) LatencyStats { return s.LatencyMS.Connect },
		"join":    func(s *Summary) LatencyStats { return s.LatencyMS.Join },
		"fanout":  func(s *Summary) LatencyStats { return s.LatencyMS.Fanout },
		"echo":    func(s *Summary) LatencyStats { return s.LatencyMS.Echo },
	}
	fields := map[string]func(l LatencyStats) float64{
		"p50": func(l LatencyStats) float64 { return l.P50 }, "p75": func(l LatencyStats) float64 { return l.P75 },
		"p90": func(l LatencyStats) float64 { return l.P90 }, "p95": func(l LatencyStats) float64 { return l.P95 },
		"p99": func(l LatencyStats) float64 { return l.P99 }, "p999": func(l LatencyStats) float64 { return l.P999 },
		"max": func(l LatencyStats) float64 { return l.Max }, "min": func(l LatencyStats) float64 { return l.Min },
		"mean": func(l LatencyStats) float64 { return l.Mean },
	}
	for group, stats := range latencies {
		for field, get := range fields {
			m[group+"."+field] = summaryMetric{threshold.Latency, func(s *Summary) (float64, bool) {
				l := stats(s)
				return get(l), l.Count > 0
			}}
		}
		m[group+".count"] = count(func(s *Summary) int64 { return stats(s).Count })
	}
	return m
}()

func init() {
	for name, m := range summaryMetrics {
		threshold.Register(name, m.kind)
	}
}

// Metric returns the value of a threshold metric (see summaryMetrics)
// and whether it was measured: a latency with no samples is not.
func (s *Summary) Metric(name string) (float64, bool) {
	m, ok := summaryMetrics[name]
	if !ok {
		return 0, false
	}
	return m.value(s)
}
