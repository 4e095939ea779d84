package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/chatspec/chatspec/loadgen"
	"github.com/chatspec/chatspec/loadgen/shard"
	"github.com/chatspec/chatspec/loadgen/threshold"
	"github.com/chatspec/chatspec/reference"
	"github.com/chatspec/chatspec/reports"
	"github.com/chatspec/chatspec/spec/sioclient"
	"github.com/chatspec/chatspec/spec/target"
)

func init() {
	register("load", "simulate many users and measure fan-out latency and delivery", runLoad)
}

const loadUsage = `Usage: chatspec load [flags]

Simulates chat users: they arrive on a plan, connect, emit 'connecting',
send 'writeMessage' every --message-interval for --duration, and leave.
Every receiver measures how long each message took to reach it (from the
message's intended send time) and the run counts, per message, who should
have seen it and who did: delivered, lost, duplicated, reordered.

Without --target, chatspec starts its reference server in-process with
--history-limit (the server then shares this process's CPU: for a real
measurement run the server elsewhere).

Thresholds (repeatable) decide the exit code:
  --threshold 'fanout.p99<250ms' --threshold 'delivery.lost==0'
  grammar: METRIC OP VALUE, OP one of < <= > >= == !=; latencies take
  250ms / 1.5s (bare numbers are ms), ratios 0.001 or 0.1%, counts whole
  numbers, generator.saturated true/false. Metrics:
  {{METRICS}}

Examples:
  chatspec load --users 200 --ramp 20s --duration 1m --message-interval 5s
  chatspec load --target http://127.0.0.1:3000 --users 1000 --ramp 30s --duration 2m \
      --threshold 'fanout.p99<250ms' --threshold 'delivery.loss_ratio<0.001' --report-dir out/
  chatspec load --target http://node1:3000 --target http://node2:3000 --stages 30s:500,2m:500,30s:0
  chatspec load --transport-mix websocket=0.7,polling=0.2,upgrade=0.1 --churn 0.1
  chatspec load --target http://127.0.0.1:3000 --init-path /api/socket --seed-style   # the seed's two-io() clients
  chatspec load --target http://127.0.0.1:3000 --duration 5m --max-outage 30s \
      --threshold 'outage.max<10s' --threshold 'delivery.lost==0'   # ride out a restart
  CHATSPEC_RUN_SECRET=... chatspec load --target https://chat.example.com --users 40000 --ramp 2m \
      --run-id big1 --seed 7 --start-at 2026-12-07T16:00:00Z --shard 0/4 --report-dir out/shard-0
      # one of four shards (0/4 … 3/4, anywhere); then: chatspec merge out/shard-*

A target that stops accepting connections ends the run (exit 3) unless
--max-outage allows it to be down that long: then the outage is reported
(summary.json "outages", thresholds outage.count / outage.max), users
reconnect when it is back, and the run goes on.

Exit codes: 0 every threshold held; 1 a threshold was crossed; 2 usage error
or target unreachable, or a plan past ulimit -n (nothing ran); 3 the run
ended early (Ctrl-C, or a target down longer than --max-outage): the report
holds what was measured; 4 chatspec itself failed (a report not writable,
or this process ran out of open files or local ports: generator_limit).

Flags:
`

// loadFlags is the parsed command line of `chatspec load`.
type loadFlags struct {
	target        target.Options
	users         int
	ramp          time.Duration
	duration      time.Duration
	stages        string
	interval      time.Duration
	pacing        string
	jitter        time.Duration
	messageSize   int
	joinTimeout   time.Duration
	churn         float64
	churnPause    time.Duration
	transport     string
	transportMix  string
	thresholds    threshold.List
	correctness   bool
	reportDir     string
	seed          uint64
	runID         string
	progress      string
	progressEvery time.Duration
	stopTimeout   time.Duration
	historyLimit  int
	maxOutage     time.Duration
	seedStyle     bool
	noAcks        bool
	shardFlag     string
	startAt       string

	shard  loadgen.Shard
	start  time.Time
	secret []byte

	plan  loadgen.Plan
	pacer loadgen.Pacer
	mix   []loadgen.TransportShare
}

// parseLoadFlags parses and checks the flags; --help prints the usage on
// helpOut (a flag error is the caller's to print, in one line).
func parseLoadFlags(args []string, helpOut io.Writer) (*loadFlags, error) {
	l := &loadFlags{}
	fs := flag.NewFlagSet("chatspec load", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	l.target.RegisterFlags(fs)
	fs.IntVar(&l.users, "users", 50, "number of simulated users (arrivals)")
	fs.DurationVar(&l.ramp, "ramp", 5*time.Second, "users arrive evenly over this time (open model: on schedule, whatever the server does)")
	fs.DurationVar(&l.duration, "duration", 30*time.Second, "how long each user sends messages after joining")
	fs.StringVar(&l.stages, "stages", "", "staged plan instead of --users/--ramp/--duration: 'DUR:USERS,...', e.g. 30s:100,1m:100,30s:0")
	fs.DurationVar(&l.interval, "message-interval", 2*time.Second, "mean time between one user's messages")
	fs.StringVar(&l.pacing, "pacing", "poisson", "message spacing: poisson (exponential gaps) or constant (with --jitter)")
	fs.DurationVar(&l.jitter, "jitter", 0, "with --pacing constant: move each gap by up to ± this much at random")
	fs.IntVar(&l.messageSize, "message-size", 0, "pad message texts to this many bytes (0: the stamp only, ~45 bytes)")
	fs.DurationVar(&l.plan.Linger, "delivery-window", 5*time.Second, "time a message has to reach every user; users stay this long after their last send")
	fs.DurationVar(&l.joinTimeout, "join-timeout", 10*time.Second, "time allowed between 'connecting' and 'connected'")
	fs.Float64Var(&l.churn, "churn", 0, "fraction of users that drop abruptly once and reconnect (0 to 1)")
	fs.DurationVar(&l.churnPause, "churn-pause", time.Second, "how long a dropped user waits before reconnecting")
	fs.StringVar(&l.transport, "transport", string(sioclient.WebSocket), "transport of every user: websocket, polling or upgrade")
	fs.StringVar(&l.transportMix, "transport-mix", "", "weighted transport mix instead of --transport, e.g. websocket=0.8,polling=0.1,upgrade=0.1")
	fs.Var(&l.thresholds, "threshold", "pass/fail expression, e.g. 'fanout.p99<250ms' (repeatable)")
	fs.BoolVar(&l.correctness, "correctness-thresholds", true, "when no --threshold is given, gate on correctness: "+strings.Join(correctnessThresholds, ", "))
	fs.StringVar(&l.reportDir, "report-dir", "", "write summary.json, junit.xml and report.html to this directory")
	fs.Uint64Var(&l.seed, "seed", 0, "random seed for transports, churn and pacing (0: random)")
	fs.StringVar(&l.runID, "run-id", "", "tag for this run's message texts, 1-16 of [a-z0-9] (default: random)")
	fs.StringVar(&l.progress, "progress", "auto", "live progress on stderr: bars (redrawn), lines (one per --progress-interval), off, or auto: bars on a terminal with a size, lines otherwise (on = bars)")
	fs.DurationVar(&l.progressEvery, "progress-interval", 10*time.Second, "with lines: time between two progress lines")
	fs.DurationVar(&l.stopTimeout, "stop-timeout", 5*time.Second, "after the run (or Ctrl-C), time given to connections to close before they are aborted")
	fs.DurationVar(&l.maxOutage, "max-outage", 0, "how long a target may refuse connections before the run ends as target_down; 0 ends it at the first outage, more rides out restarts (users reconnect, the outage is reported)")
	// Seed-style users (issue 16, CONTRACT.md SEED-1).
	// Sharded runs (issue 15, shards.go).
	fs.StringVar(&l.shardFlag, "shard", "", "run only slice I of N of the plan (users I, I+N, I+2N…), I from 0, and record raw results in --report-dir for chatspec merge; needs --target, --run-id, --seed, --start-at and CHATSPEC_RUN_SECRET (the same on every shard)")
	fs.StringVar(&l.startAt, "start-at", "", "start the run at this wall-clock time (RFC 3339, e.g. 2026-12-07T16:00:00Z), the origin of every offset; shards of one run must share it")
	fs.BoolVar(&l.noAcks, "no-acks", false, "send writes without asking for an acknowledgement; by default each write asks, so that a refusal told only in its ack is counted as refused, not lost")
	fs.BoolVar(&l.seedStyle, "seed-style", false, "simulate clients written like the seed's useSocket: two connections per user, joining on one and writing every message on the other, which never joins (the embedded reference then runs with --seed-clients)")
	// The same default as `chatspec serve`: the embedded server is the
	// server people run, not a lighter one.
	fs.IntVar(&l.historyLimit, "history-limit", reference.DefaultConfig().HistoryLimit, "history cap of the embedded reference server (no --target), as chatspec serve's: every broadcast carries the whole history")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(helpOut, strings.Replace(loadUsage, "{{METRICS}}", wrapList(threshold.MetricNames(), 72, "  "), 1))
			fs.SetOutput(helpOut)
			fs.PrintDefaults()
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (targets go in --target URL)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if len(l.thresholds) == 0 && l.correctness {
		// A run in which users could not connect, or messages were lost,
		// must not pass just because nobody wrote a threshold.
		for _, expr := range correctnessThresholds {
			if err := l.thresholds.Set(expr); err != nil {
				return nil, fmt.Errorf("internal: default threshold %q: %w", expr, err)
			}
		}
	}
	if l.stages != "" {
		if set["users"] || set["ramp"] || set["duration"] {
			return nil, errors.New("--stages replaces --users, --ramp and --duration: give one or the other")
		}
		st, err := loadgen.ParseStages(l.stages)
		if err != nil {
			return nil, fmt.Errorf("--stages: %w", err)
		}
		l.plan.Stages = st
	} else {
		l.plan.Users, l.plan.Ramp, l.plan.Duration = l.users, l.ramp, l.duration
	}
	// The delivery window lives in one place, the plan's Linger (users
	// stay one window after their last send); the engine and the metrics
	// take it from there.
	if l.plan.Linger <= 0 {
		return nil, fmt.Errorf("--delivery-window %v: must be positive", l.plan.Linger)
	}
	if _, err := l.plan.Arrivals(); err != nil {
		return nil, err
	}
	if l.interval <= 0 {
		return nil, fmt.Errorf("--message-interval %v: must be positive", l.interval)
	}
	switch l.pacing {
	case "poisson":
		if set["jitter"] {
			return nil, errors.New("--jitter applies to --pacing constant only")
		}
		l.pacer = loadgen.PoissonPacer{Mean: l.interval}
	case "constant":
		if l.jitter < 0 || l.jitter >= l.interval {
			return nil, fmt.Errorf("--jitter %v: want 0 <= jitter < --message-interval", l.jitter)
		}
		l.pacer = loadgen.ConstantPacer{Interval: l.interval, Jitter: l.jitter}
	default:
		return nil, fmt.Errorf("--pacing %q: want poisson or constant", l.pacing)
	}
	if l.messageSize < 0 || l.messageSize > 1<<20 {
		return nil, fmt.Errorf("--message-size %d: want 0 to 1048576", l.messageSize)
	}
	if l.joinTimeout <= 0 || l.stopTimeout <= 0 || l.churnPause <= 0 {
		return nil, errors.New("--join-timeout, --stop-timeout and --churn-pause must be positive")
	}
	if l.churn < 0 || l.churn > 1 {
		return nil, fmt.Errorf("--churn %v: want a fraction from 0 to 1", l.churn)
	}
	if l.transportMix != "" {
		if set["transport"] {
			return nil, errors.New("--transport-mix replaces --transport: give one or the other")
		}
		mix, err := parseTransportMix(l.transportMix)
		if err != nil {
			return nil, err
		}
		l.mix = mix
	} else {
		switch t := sioclient.Transport(l.transport); t {
		case sioclient.WebSocket, sioclient.Polling, sioclient.Upgrade:
			l.mix = []loadgen.TransportShare{{Transport: t, Weight: 1}}
		default:
			return nil, fmt.Errorf("--transport %q: want websocket, polling or upgrade", l.transport)
		}
	}
	if l.runID == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		l.runID = hex.EncodeToString(b[:])
	} else if !loadgen.ValidRunID(l.runID) {
		return nil, fmt.Errorf("--run-id %q: want 1-16 characters of [a-z0-9]", l.runID)
	}
	if l.seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		for _, x := range b {
			l.seed = l.seed<<8 | uint64(x)
		}
	}
	switch l.progress {
	case "auto", "bars", "on", "lines", "off":
	default:
		return nil, fmt.Errorf("--progress %q: want auto, bars, lines or off", l.progress)
	}
	if l.progressEvery <= 0 {
		return nil, fmt.Errorf("--progress-interval %v: must be positive", l.progressEvery)
	}
	if l.maxOutage < 0 {
		return nil, fmt.Errorf("--max-outage %v: must not be negative", l.maxOutage)
	}
	if l.historyLimit <= 0 {
		return nil, fmt.Errorf("--history-limit %d: must be positive", l.historyLimit)
	}
	if err := l.target.Validate(); err != nil {
		return nil, err
	}
	if err := l.checkShard(set, os.Getenv(runSecretEnv)); err != nil {
		return nil, err
	}
	return l, nil
}

// parseTransportMix parses "websocket=0.8,polling=0.2".
func parseTransportMix(s string) ([]loadgen.TransportShare, error) {
	var mix []loadgen.TransportShare
	total := 0.0
	for _, part := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		weight, err := strconv.ParseFloat(w, 64)
		t := sioclient.Transport(name)
		switch {
		case !ok || err != nil || weight < 0:
			return nil, fmt.Errorf("--transport-mix %q: want NAME=WEIGHT pairs, e.g. websocket=0.8,polling=0.2", s)
		case t != sioclient.WebSocket && t != sioclient.Polling && t != sioclient.Upgrade:
			return nil, fmt.Errorf("--transport-mix %q: unknown transport %q (want websocket, polling or upgrade)", s, name)
		}
		mix = append(mix, loadgen.TransportShare{Transport: t, Weight: weight})
		total += weight
	}
	if total <= 0 {
		return nil, fmt.Errorf("--transport-mix %q: the weights add up to 0", s)
	}
	return mix, nil
}

func wrapList(items []string, width int, indent string) string {
	var b strings.Builder
	line := 0
	for i, it := range items {
		if i > 0 {
			if line+len(it)+2 > width {
				b.WriteString(",\n" + indent)
				line = 0
			} else {
				b.WriteString(", ")
				line += 2
			}
		}
		b.WriteString(it)
		line += len(it)
	}
	return b.String()
}

// progressMode resolves --progress: "auto" draws bars only on a terminal
// whose size is known (a pseudo-terminal of 0x0, as some CI runners
// allocate, would show nothing), and prints lines everywhere else.
func progressMode(flagValue string, stderr io.Writer) string {
	switch flagValue {
	case "on", "bars":
		return "bars"
	case "auto":
		if cols, rows, ok := terminalSize(stderr); ok && cols > 0 && rows > 0 {
			return "bars"
		}
		return "lines"
	}
	return flagValue
}

// correctnessThresholds gate a run that names no threshold of its own.
var correctnessThresholds = []string{
	"connect.errors==0", "join.errors==0", "sessions.dropped==0", "delivery.unmeasured==false",
	"delivery.lost==0", "delivery.duplicated==0", "delivery.reordered==0", "delivery.order_conflicts==0",
	"messages.refused==0", "events.out_of_contract==0",
}

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	l, err := parseLoadFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		return usageError(stderr, "load", err)
	}
	arrivals, err := l.plan.Arrivals()
	if err != nil { // checked in parseLoadFlags; kept for safety
		fmt.Fprintf(stderr, "chatspec load: %v\n", err)
		return ExitUsage
	}
	if l.reportDir != "" {
		if err := os.MkdirAll(l.reportDir, 0o755); err != nil {
			fmt.Fprintf(stderr, "chatspec load: --report-dir: %v\n", err)
			return ExitError
		}
	}
	started := time.Now()
	var once reportOnce
	// notRun ends a run that never started (or that a second signal ended
	// before its summary existed) with a report saying why.
	notRun := func(code int, ended, why string) int {
		if code != ExitInterrupted || ended != loadgen.EndedInterrupted {
			fmt.Fprintf(stderr, "chatspec load: %s\n", why)
		}
		s := &loadgen.Summary{Verdict: "fail", Ended: ended, EndedDetail: why, RunID: l.runID, Started: started,
			Config: loadConfigSummary(l, len(l.target.Targets) == 0, len(arrivals))}
		if err := writeLoadReports(l.reportDir, s, &once, stdout); err != nil {
			fmt.Fprintf(stderr, "chatspec load: %v\n", err)
			return ExitError
		}
		return code
	}
	defer setLastWords(func() {
		notRun(ExitInterrupted, loadgen.EndedInterrupted, "interrupted: a second signal ended the process before the run stopped; nothing was summarised")
	})()
	embedded := len(l.target.Targets) == 0
	if limit, ok := loadgen.OpenFileLimit(); ok {
		if err := checkOpenFiles(arrivals, l.shard, l.seedStyle, embedded, limit); err != nil {
			return notRun(ExitUsage, loadgen.EndedNotStarted, err.Error())
		}
	}
	if embedded {
		srv, initPath, err := startEmbedded(ctx, func(cfg *reference.Config) {
			// No per-socket rate limit: the plan, not the server, sets the
			// message rate.
			cfg.HistoryLimit = l.historyLimit
			cfg.Rate = 0
			cfg.BroadcastRate = 0
			cfg.SeedClients = l.seedStyle // seed-style users need it to chat
		})
		if err != nil {
			return notRun(ExitError, loadgen.EndedNotStarted, fmt.Sprintf("starting the embedded reference server: %v", err))
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Stop(stopCtx)
		}()
		l.target.Targets = []string{srv.URL()}
		if l.target.InitPath == "" {
			l.target.InitPath = initPath
		}
		fmt.Fprintf(stdout, "no --target given: loading the embedded reference server at %s (history limit %d; it shares this process's CPU)\n", srv.URL(), l.historyLimit)
	}
	probeCtx, cancel := context.WithTimeout(ctx, l.target.ConnectTimeout+time.Second)
	err = l.target.Probe(probeCtx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return notRun(ExitInterrupted, loadgen.EndedNotStarted, "interrupted before the run started")
		}
		return notRun(ExitUsage, loadgen.EndedNotStarted, err.Error())
	}

	var initFn func(context.Context, int) error
	if l.target.InitPath != "" {
		initFn = l.target.Init
	}
	if l.shard.Count > 0 && l.start.IsZero() {
		// --shard 0/1 alone: the manifest needs the origin, so fix it now.
		l.start = time.Now()
	}
	eng, err := loadgen.New(loadgen.Config{
		RunID:       l.runID,
		Arrivals:    arrivals,
		Pacer:       l.pacer,
		MessageSize: l.messageSize,
		Window:      l.plan.Linger, // the plan's users stay one delivery window after their last send
		JoinTimeout: l.joinTimeout,
		Churn:       l.churn,
		ChurnPause:  l.churnPause,
		Transports:  l.mix,
		Seed:        l.seed,
		Dial:        l.target.DialOptions,
		Init:        initFn,
		StopTimeout: l.stopTimeout,
		MaxOutage:   l.maxOutage,
		SeedStyle:   l.seedStyle,
		NoAcks:      l.noAcks,
		Shard:       l.shard,
		Start:       l.start,
		Secret:      l.secret,
	})
	if err != nil {
		return notRun(ExitUsage, loadgen.EndedNotStarted, err.Error())
	}
	var length time.Duration
	for _, a := range arrivals {
		length = max(length, a.Leave)
	}
	metrics := loadgen.NewMetrics(eng.MetricsConfig())
	var rec *shard.Recorder
	if l.shard.Count > 0 {
		if rec, err = startShardRecord(l, len(arrivals), eng.MetricsConfig()); err != nil {
			return notRun(ExitError, loadgen.EndedNotStarted, err.Error())
		}
	}
	fmt.Fprintf(stdout, "chatspec load: run %s, %d users against %s, about %v; messages %s\n",
		l.runID, len(arrivals), strings.Join(l.target.Targets, ", "), length.Round(time.Second), l.pacer)
	if l.shard.Count > 0 {
		fmt.Fprintf(stdout, "chatspec load: shard %s: %d of the %d users; raw results in %s for chatspec merge\n",
			l.shard, shardUsers(l.shard, len(arrivals)), len(arrivals), l.reportDir)
	}
	if !l.start.IsZero() {
		if wait := time.Until(l.start); wait > 0 {
			fmt.Fprintf(stdout, "chatspec load: waiting %v for --start-at %s\n", wait.Round(time.Millisecond), l.start.Format(time.RFC3339Nano))
		} else if wait < -time.Second {
			fmt.Fprintf(stderr, "chatspec load: --start-at %s was %v ago: the arrivals and messages already due start at once, late (the schedule lag shows it)\n", l.start.Format(time.RFC3339Nano), (-wait).Round(time.Millisecond))
		}
	}
	if l.seedStyle {
		fmt.Fprintln(stdout, "chatspec load: seed-style users: two connections each, every message written on the one that never joins")
	}
	var progress interface{ Stop() }
	switch progressMode(l.progress, stderr) {
	case "bars":
		progress = reports.StartLoadProgress(stderr, len(arrivals), length, metrics.Live)
	case "lines":
		progress = reports.StartLoadProgressLines(stderr, len(arrivals), l.progressEvery, metrics.Live)
	}
	var tee func(loadgen.Result)
	if rec != nil {
		tee = rec.Record
	}
	summary, usage := loadgen.MeasureWith(ctx, eng, metrics, embedded, tee)
	if progress != nil {
		progress.Stop()
	}
	summary.Config = loadConfigSummary(l, embedded, len(arrivals))
	var recordErr error
	if rec != nil {
		// A failed record still leaves the shard's own reports to write
		// below; the exit code then says chatspec failed.
		recordErr = rec.Finish(shard.End{Outcome: eng.Outcome(), Outages: eng.Outages(), Usage: usage, Saturated: summary.Generator.Saturated})
		// A shard's own figures miss what only other shards saw: the merge
		// gates, not the shard.
		summary.Shards = &loadgen.ShardsSummary{Count: l.shard.Count, Index: l.shard.Index}
		summary.ApplyThresholds(nil)
		summary.Verdict = "partial"
	} else {
		summary.ApplyThresholds(l.thresholds)
	}

	fmt.Fprintln(stdout)
	if err := reports.WriteLoadConsole(stdout, summary); err != nil {
		fmt.Fprintf(stderr, "chatspec load: writing the summary: %v\n", err)
		return ExitError
	}
	if err := writeLoadReports(l.reportDir, summary, &once, stdout); err != nil {
		fmt.Fprintf(stderr, "chatspec load: %v\n", err)
		return ExitError
	}
	if recordErr != nil {
		fmt.Fprintf(stderr, "chatspec load: shard %s: %v (chatspec merge will refuse this shard)\n", l.shard, recordErr)
		return ExitError
	}
	switch {
	case summary.Ended == loadgen.EndedGeneratorLimit:
		fmt.Fprintf(stderr, "chatspec load: the run ended early (%s): %s\n", summary.Ended, summary.EndedDetail)
		return ExitError
	case summary.Ended != loadgen.EndedCompleted:
		fmt.Fprintf(stderr, "chatspec load: the run ended early (%s): %s\n", summary.Ended, summary.EndedDetail)
		return ExitInterrupted
	case !summary.Passed():
		return ExitFailed
	}
	return ExitOK
}

// writeLoadReports writes the report directory (if one was asked for),
// once per run.
func writeLoadReports(dir string, s *loadgen.Summary, once *reportOnce, stdout io.Writer) error {
	if dir == "" {
		return nil
	}
	return once.write(func() error {
		if err := writeReports(dir, s, []reportFile[*loadgen.Summary]{
			{"summary.json", reports.WriteLoadJSON},
			{"junit.xml", reports.WriteLoadJUnit},
			{"report.html", reports.WriteLoadHTML},
		}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "reports written to %s (summary.json, junit.xml, report.html)\n", dir)
		return nil
	})
}

func loadConfigSummary(l *loadFlags, embedded bool, users int) loadgen.ConfigSummary {
	c := loadgen.ConfigSummary{
		Targets:               l.target.Targets,
		Embedded:              embedded,
		Users:                 users,
		MessageInterval:       l.interval.String(),
		Pacing:                l.pacer.String(),
		MessageSize:           l.messageSize,
		DeliveryWindowSeconds: l.plan.Linger.Seconds(),
		Churn:                 l.churn,
		Transports:            map[string]float64{},
		MaxOutageSeconds:      l.maxOutage.Seconds(),
		SeedStyle:             l.seedStyle,
		AsksAcks:              !l.noAcks && !l.seedStyle,
	}
	if len(l.plan.Stages) > 0 {
		c.Stages = loadgen.FormatStages(l.plan.Stages)
	} else {
		c.Ramp, c.Duration = l.ramp.String(), l.duration.String()
	}
	for _, t := range l.mix {
		c.Transports[string(t.Transport)] += t.Weight
	}
	return c
}
