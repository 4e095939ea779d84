package loadgen

import (
	"time"

	"github.com/chatspec/chatspec/loadgen/threshold"
)

// Summary is the outcome of a load run as plain data; reports render it
// (summary.json is its JSON encoding). README.md documents every field.
type Summary struct {
	// Verdict is "pass" when the run completed and every threshold held,
	// otherwise "fail".
	Verdict string `json:"verdict"`
	// Ended says why the run stopped: "completed", "interrupted" or
	// "target_down"; EndedDetail adds the cause.
	Ended       string `json:"ended"`
	EndedDetail string `json:"ended_detail,omitempty"`
	RunID       string `json:"run_id"`
	// Started is the wall-clock start; DurationSeconds the measured span.
	Started         time.Time        `json:"started"`
	DurationSeconds float64          `json:"duration_seconds"`
	Config          ConfigSummary    `json:"config"`
	Users           UsersSummary     `json:"users"`
	Messages        MessagesSummary  `json:"messages"`
	LatencyMS       LatencySet       `json:"latency_ms"`
	Generator       GeneratorSummary `json:"generator"`
	// Outages lists the periods a target refused connections, in the
	// order they began (see Config.MaxOutage).
	Outages []OutageSummary `json:"outages"`
	// Errors counts errors by kind and message (at most 50 distinct).
	Errors []ErrorCount `json:"errors"`
	// PerSender lists senders with any loss, duplicate or reordering (worst
	// first, at most 100); PerSenderOmitted counts the rest of those.
	PerSender        []SenderStats `json:"per_sender"`
	PerSenderOmitted int           `json:"per_sender_omitted"`
	// Timeline holds one point per interval for the over-time charts.
	Timeline   []Interval         `json:"timeline"`
	Thresholds []threshold.Result `json:"thresholds"`
}

// ConfigSummary records what the run was asked to do.
type ConfigSummary struct {
	Targets               []string           `json:"targets"`
	Embedded              bool               `json:"embedded"`
	Users                 int                `json:"users"`
	Ramp                  string             `json:"ramp,omitempty"`
	Duration              string             `json:"duration,omitempty"`
	Stages                string             `json:"stages,omitempty"`
	MessageInterval       string             `json:"message_interval"`
	Pacing                string             `json:"pacing"`
	MessageSize           int                `json:"message_size"`
	DeliveryWindowSeconds float64            `json:"delivery_window_seconds"`
	Churn                 float64            `json:"churn"`
	Transports            map[string]float64 `json:"transports"`
	// MaxOutageSeconds is how long a target could stay down before the
	// run ended (0: the first outage ended it).
	MaxOutageSeconds float64 `json:"max_outage_seconds"`
	// SeedStyle: every user held two connections and wrote on the one
	// that never joined, as the seed's useSocket hook does.
	SeedStyle bool `json:"seed_style,omitempty"`
}

// OutageSummary is one outage of a target: from the first of two failed
// TCP probes in a row to the first probe that succeeded again.
type OutageSummary struct {
	Target string `json:"target"`
	// StartS and EndS are seconds since the run's start; EndS is nil when
	// the target was still down when the run ended.
	StartS float64  `json:"start_s"`
	EndS   *float64 `json:"end_s"`
	// DurationMS is EndS − StartS, or up to the run's end while still down.
	DurationMS float64 `json:"duration_ms"`
}

// SummarizeOutages turns the engine's outages into their summary form;
// an outage still open counts up to end, the run's end.
func SummarizeOutages(list []Outage, end time.Duration) []OutageSummary {
	out := make([]OutageSummary, 0, len(list))
	for _, o := range list {
		// Milliseconds are the probes' resolution at best: no more digits.
		start, stop := o.Start.Round(time.Millisecond), end.Round(time.Millisecond)
		secs := func(d time.Duration) float64 { return float64(d/time.Millisecond) / 1000 } // 6.887, not 6.8870000000000005
		r := OutageSummary{Target: o.Target, StartS: secs(start)}
		if o.Ended {
			stop = o.End.Round(time.Millisecond)
			e := secs(stop)
			r.EndS = &e
		}
		r.DurationMS = float64(max(stop-start, 0) / time.Millisecond)
		out = append(out, r)
	}
	return out
}

// UsersSummary counts simulated users and their sessions.
type UsersSummary struct {
	Planned       int   `json:"planned"`
	Connected     int   `json:"connected"`
	ConnectErrors int64 `json:"connect_errors"`
	JoinErrors    int64 `json:"join_errors"`
	PeakConnected int   `json:"peak_connected"`
	Sessions      int   `json:"sessions"`
	Reconnects    int64 `json:"reconnects"`
	Dropped       int64 `json:"dropped"`
}

// MessagesSummary is the delivery accounting of the run.
type MessagesSummary struct {
	Sent               int64 `json:"sent"`
	SendErrors         int64 `json:"send_errors"`
	Skipped            int64 `json:"skipped"`
	ExpectedDeliveries int64 `json:"expected_deliveries"`
	Delivered          int64 `json:"delivered"`
	Lost               int64 `json:"lost"`
	// LostGaps + LostTrailing = Lost: a gap is a delivery that never came
	// although something sent later did (dropped); a trailing one was owed
	// to a session that received nothing sent after it before leaving (the
	// server was behind or had stopped sending to it: queued or dropped).
	LostGaps      int64   `json:"lost_gaps"`
	LostTrailing  int64   `json:"lost_trailing"`
	Duplicated    int64   `json:"duplicated"`
	Reordered     int64   `json:"reordered"`
	Unexpected    int64   `json:"unexpected"`
	Unconfirmed   int64   `json:"unconfirmed"`
	LossRatio     float64 `json:"loss_ratio"`
	DeliveryRatio float64 `json:"delivery_ratio"`
}

// LatencySet holds the latency distributions, in milliseconds.
type LatencySet struct {
	Connect LatencyStats `json:"connect"`
	Join    LatencyStats `json:"join"`
	Fanout  LatencyStats `json:"fanout"`
	Echo    LatencyStats `json:"echo"`
}

// LatencyStats summarises one histogram, in milliseconds.
type LatencyStats struct {
	P50   float64 `json:"p50"`
	P75   float64 `json:"p75"`
	P90   float64 `json:"p90"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	Count int64   `json:"count"`
}

// GeneratorSummary is the generator's self-check.
type GeneratorSummary struct {
	CPUSeconds        float64  `json:"cpu_seconds"`
	CPUUtilization    float64  `json:"cpu_utilization"`
	CPUPerDeliveryUS  float64  `json:"cpu_per_delivery_us"`
	MaxScheduleLagMS  float64  `json:"max_schedule_lag_ms"`
	P99ScheduleLagMS  float64  `json:"p99_schedule_lag_ms"`
	Saturated         bool     `json:"saturated"`
	SaturationReasons []string `json:"saturation_reasons"`
	MaxRSSBytes       int64    `json:"max_rss_bytes"`
	PeakGoroutines    int      `json:"peak_goroutines"`
	Cores             int      `json:"cores"`
	EmbeddedServer    bool     `json:"embedded_server"`
}

// ErrorCount is how often one error occurred.
type ErrorCount struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	Count   int64  `json:"count"`
}

// Interval is one point of the timeline.
type Interval struct {
	// T is the interval's end, in seconds since the start.
	T              float64 `json:"t"`
	UsersConnected int     `json:"users_connected"`
	Sent           int64   `json:"sent"`
	Delivered      int64   `json:"delivered"`
	Errors         int64   `json:"errors"`
	FanoutP50      float64 `json:"fanout_p50_ms"`
	FanoutP90      float64 `json:"fanout_p90_ms"`
	FanoutP99      float64 `json:"fanout_p99_ms"`
	FanoutMax      float64 `json:"fanout_max_ms"`
	ScheduleLagMax float64 `json:"schedule_lag_max_ms"`
}

// Metric returns the value of a threshold metric (see threshold.Metrics)
// and whether it was measured: a latency with no samples is not.
func (s *Summary) Metric(name string) (float64, bool) {
	lat := map[string]LatencyStats{"connect": s.LatencyMS.Connect, "join": s.LatencyMS.Join, "fanout": s.LatencyMS.Fanout, "echo": s.LatencyMS.Echo}
	group, field := name, ""
	for i := range name {
		if name[i] == '.' {
			group, field = name[:i], name[i+1:]
			break
		}
	}
	if l, ok := lat[group]; ok {
		if field == "count" {
			return float64(l.Count), true
		}
		if field == "errors" {
			switch group {
			case "connect":
				return float64(s.Users.ConnectErrors), true
			case "join":
				return float64(s.Users.JoinErrors), true
			}
			return 0, false
		}
		if l.Count == 0 {
			return 0, false
		}
		v, ok := map[string]float64{"p50": l.P50, "p75": l.P75, "p90": l.P90, "p95": l.P95, "p99": l.P99, "p999": l.P999, "max": l.Max, "min": l.Min, "mean": l.Mean}[field]
		return v, ok
	}
	m := s.Messages
	switch name {
	case "delivery.expected":
		return float64(m.ExpectedDeliveries), true
	case "delivery.delivered":
		return float64(m.Delivered), true
	case "delivery.lost":
		return float64(m.Lost), true
	case "delivery.lost_gaps":
		return float64(m.LostGaps), true
	case "delivery.lost_trailing":
		return float64(m.LostTrailing), true
	case "delivery.duplicated":
		return float64(m.Duplicated), true
	case "delivery.reordered":
		return float64(m.Reordered), true
	case "delivery.loss_ratio":
		return m.LossRatio, m.ExpectedDeliveries > 0
	case "delivery.ratio":
		return m.DeliveryRatio, m.ExpectedDeliveries > 0
	case "messages.sent":
		return float64(m.Sent), true
	case "messages.send_errors":
		return float64(m.SendErrors), true
	case "messages.unconfirmed":
		return float64(m.Unconfirmed), true
	case "users.planned":
		return float64(s.Users.Planned), true
	case "users.connected":
		return float64(s.Users.Connected), true
	case "users.dropped":
		return float64(s.Users.Dropped), true
	case "errors.total":
		var n int64
		for _, e := range s.Errors {
			n += e.Count
		}
		return float64(n), true
	case "generator.saturated":
		if s.Generator.Saturated {
			return 1, true
		}
		return 0, true
	case "generator.max_schedule_lag":
		return s.Generator.MaxScheduleLagMS, true
	case "outage.count":
		return float64(len(s.Outages)), true
	case "outage.max", "outage.total":
		// Measured even with no outage: "the longest outage" of a run
		// without one is 0, which any outage.max<… gate should pass.
		var longest, total float64
		for _, o := range s.Outages {
			longest, total = max(longest, o.DurationMS), total+o.DurationMS
		}
		if name == "outage.max" {
			return longest, true
		}
		return total, true
	}
	return 0, false
}

// ApplyThresholds evaluates list against s, stores the results and sets
// the verdict.
func (s *Summary) ApplyThresholds(list []threshold.Threshold) {
	s.Thresholds = threshold.Evaluate(list, s.Metric)
	s.Verdict = "pass"
	if s.Ended != EndedCompleted {
		s.Verdict = "fail"
	}
	for _, r := range s.Thresholds {
		if !r.OK {
			s.Verdict = "fail"
		}
	}
}

// Passed reports whether every threshold held (whatever the ending).
func (s *Summary) Passed() bool {
	for _, r := range s.Thresholds {
		if !r.OK {
			return false
		}
	}
	return true
}

// Reasons a run ends, as written to Summary.Ended.
const (
	EndedCompleted   = "completed"
	EndedInterrupted = "interrupted"
	EndedTargetDown  = "target_down"
)
