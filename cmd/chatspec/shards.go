package main

import (
	"fmt"
	"time"

	"github.com/chatspec/chatspec/loadgen"
	"github.com/chatspec/chatspec/loadgen/shard"
)

// runSecretEnv names the environment variable that holds the secret the
// shards of one run share: their stamps are authenticated with it, so each
// accepts the others' messages and no other chat participant can forge
// one. An environment variable rather than a flag keeps it out of process
// listings and lets Kubernetes fill it from a Secret.
const runSecretEnv = "CHATSPEC_RUN_SECRET"

// checkShard checks --shard and --start-at and what a shard needs: every
// shard must compute the same plan (run ID, seed, start) and write its
// raw results somewhere the merge can read them.
func (l *loadFlags) checkShard(set map[string]bool, secret string) error {
	if l.startAt != "" {
		t, err := time.Parse(time.RFC3339Nano, l.startAt)
		if err != nil {
			return fmt.Errorf("--start-at %q: want an RFC 3339 time, e.g. 2026-12-07T16:00:00Z", l.startAt)
		}
		l.start = t
	}
	if l.shardFlag == "" {
		return nil
	}
	sh, err := loadgen.ParseShard(l.shardFlag)
	if err != nil {
		return fmt.Errorf("--shard %w", err)
	}
	l.shard = sh
	arrivals, _ := l.plan.Arrivals() // checked before
	if sh.Count > len(arrivals) {
		return fmt.Errorf("--shard %s: more shards than the plan's %d users", l.shardFlag, len(arrivals))
	}
	var missing []string
	if len(l.target.Targets) == 0 {
		missing = append(missing, "--target (shards load one server; an embedded one per shard would be N servers)")
	}
	if !set["run-id"] {
		missing = append(missing, "--run-id (the same on every shard)")
	}
	if !set["seed"] {
		missing = append(missing, "--seed (the same on every shard: it decides transports, churn and pacing)")
	}
	if l.reportDir == "" {
		missing = append(missing, "--report-dir (where this shard's raw results go)")
	}
	if sh.Count > 1 && l.startAt == "" {
		missing = append(missing, "--start-at (the same on every shard: the schedule's origin)")
	}
	if sh.Count > 1 && secret == "" {
		missing = append(missing, runSecretEnv+" in the environment (the same on every shard)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("--shard %s needs %s", l.shardFlag, joinAnd(missing))
	}
	if secret != "" {
		if len(secret) < loadgen.MinSharedSecret {
			return fmt.Errorf("%s: %d characters; want at least %d (e.g. openssl rand -hex 16)", runSecretEnv, len(secret), loadgen.MinSharedSecret)
		}
		l.secret = []byte(secret)
	}
	return nil
}

func joinAnd(items []string) string {
	switch len(items) {
	case 1:
		return items[0]
	case 2:
		return items[0] + " and " + items[1]
	}
	out := ""
	for i, it := range items {
		switch {
		case i == len(items)-1:
			out += ", and " + it
		case i > 0:
			out += ", " + it
		default:
			out = it
		}
	}
	return out
}

// shardUsers counts the users of a plan of n users that shard s runs.
func shardUsers(s loadgen.Shard, n int) int {
	k := 0
	for i := range n {
		if s.Runs(i) {
			k++
		}
	}
	return k
}

// shardPlan is what every shard of the run must agree on.
func shardPlan(l *loadFlags, users int) shard.Plan {
	return shard.Plan{
		RunID: l.runID, Count: l.shard.Count, Start: l.start, Seed: l.seed,
		Config: loadConfigSummary(l, false, users),
		Extra:  fmt.Sprintf("join-timeout=%v churn-pause=%v no-acks=%v", l.joinTimeout, l.churnPause, l.noAcks),
	}
}

// startShardRecord opens the shard's raw results in --report-dir; mc is
// the engine's metrics configuration, which the merge must use too.
func startShardRecord(l *loadFlags, users int, mc loadgen.MetricsConfig) (*shard.Recorder, error) {
	var thresholds []string
	for _, t := range l.thresholds {
		thresholds = append(thresholds, t.Expr)
	}
	m := shard.Manifest{
		RunID: l.runID, Index: l.shard.Index, Count: l.shard.Count, Start: l.start.UTC(),
		PlanDigest: shardPlan(l, users).Digest(), SecretDigest: shard.SecretDigest(l.secret),
		Users: mc.Users, ShardUsers: shardUsers(l.shard, users), WindowNS: int64(mc.Window), IntervalNS: int64(mc.Interval),
		Config: loadConfigSummary(l, false, users), Thresholds: thresholds,
	}
	rec, err := shard.Create(l.reportDir, m)
	if err != nil {
		return nil, fmt.Errorf("shard %s: %w", l.shard, err)
	}
	return rec, nil
}
