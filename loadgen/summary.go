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
	// Ended says why the run stopped: "completed", "interrupted",
	// "target_down", "generator_limit" or "not_started"; EndedDetail adds
	// the cause.
	Ended       string `json:"ended"`
	EndedDetail string `json:"ended_detail,omitempty"`
	RunID       string `json:"run_id"`
	// Started is the wall-clock start; DurationSeconds the measured span.
	Started         time.Time        `json:"started"`
	DurationSeconds float64          `json:"duration_seconds"`
	Config          ConfigSummary    `json:"config"`
	Users           UsersSummary     `json:"users"`
	Sessions        SessionsSummary  `json:"sessions"`
	Messages        MessagesSummary  `json:"messages"`
	Events          EventsSummary    `json:"events"`
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
	// Shards is set on a report merged from shards (chatspec merge), and
	// on one shard's own report (Count > 1, Merged false).
	Shards *ShardsSummary `json:"shards,omitempty"`
}

// ShardsSummary describes the shards a report covers.
type ShardsSummary struct {
	Count int `json:"count"`
	// Merged: the figures cover every shard (chatspec merge). A shard's
	// own report (false) covers only its sessions: messages from other
	// shards' users that none of its sessions received are missing from
	// it, so it applies no thresholds.
	Merged bool `json:"merged"`
	// Index is the shard of a shard's own report.
	Index int `json:"index,omitempty"`
	// CrossShardDelivered: counted deliveries whose sender ran on
	// another shard than the receiver (merged reports only).
	CrossShardDelivered int64 `json:"cross_shard_delivered"`
	// PerShard: each shard's process, in shard order (merged reports).
	PerShard []ShardRun `json:"per_shard,omitempty"`
}

// ShardRun is one shard's process as its manifest recorded it.
type ShardRun struct {
	Index       int     `json:"index"`
	Users       int     `json:"users"`
	Records     int64   `json:"records"`
	Ended       string  `json:"ended"`
	CPUSeconds  float64 `json:"cpu_seconds"`
	MaxRSSBytes int64   `json:"max_rss_bytes"`
	Saturated   bool    `json:"saturated"`
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
	// AsksAcks: writes asked for an acknowledgement, so refusals told
	// only in acks were counted (false with --no-acks or --seed-style).
	AsksAcks bool `json:"asks_acks"`
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

// SessionsSummary accounts for every session (one connection of one
// user): how far it got and who ended it.
type SessionsSummary struct {
	// Connected counts connections made; Joined those that got
	// `connected`; JoinFailed those that never did (users.join_errors).
	Connected  int64 `json:"connected"`
	Joined     int64 `json:"joined"`
	JoinFailed int64 `json:"join_failed"`
	// EndedByPlan: the generator closed them (leave, churn, the run's
	// end). EndedByServer: the server ended them (users.dropped), by how
	// (see EndedHow).
	EndedByPlan      int64            `json:"ended_by_plan"`
	EndedByServer    int64            `json:"ended_by_server"`
	EndedByServerHow map[string]int64 `json:"ended_by_server_how"`
}

// EventsSummary counts messageWritten and connected events that brought
// no new message of this run, by kind (see EventNote).
type EventsSummary struct {
	// Repeated: events that repeated a message the receiver already had
	// from an earlier messageWritten (also counted in messages.duplicated).
	Repeated int64 `json:"repeated"`
	// Foreign: events caused by someone else's message; Forged: by a text
	// shaped like this run's stamp whose tag is wrong. Both ignored.
	Foreign int64 `json:"foreign"`
	Forged  int64 `json:"forged"`
	// Shrunk: lists that lost a message the receiver had seen;
	// ConnectedTwice: a second `connected` on a joined session;
	// OutOfContract is their sum.
	Shrunk         int64 `json:"shrunk"`
	ConnectedTwice int64 `json:"connected_twice"`
	OutOfContract  int64 `json:"out_of_contract"`
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
	// Refused: writes the server refused (chatError), by its code; owed
	// to nobody, so never in Lost.
	Refused       int64            `json:"refused"`
	RefusedByCode map[string]int64 `json:"refused_by_code"`
	// OrderConflicts: messages for which a receiver saw a different
	// predecessor than the first receiver to report one (HIST-1), with the
	// worst pairs of receivers (at most 20) and an example each.
	OrderConflicts            int64           `json:"order_conflicts"`
	OrderConflictPairs        []OrderConflict `json:"order_conflict_pairs"`
	OrderConflictPairsOmitted int64           `json:"order_conflict_pairs_omitted"`
	// Unmeasured: messages were due but no delivery was owed to anyone,
	// so the figures above say nothing.
	Unmeasured bool `json:"unmeasured"`
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
	// EndedGeneratorLimit: the generator ran out of a resource of its
	// own (open files, local ports) and stopped, rather than count its
	// own failed dials against the target.
	EndedGeneratorLimit = "generator_limit"
	// EndedNotStarted: nothing ran (target unreachable, a bad setup);
	// EndedDetail says why. Written by chatspec load, never by Execute.
	EndedNotStarted = "not_started"
)
