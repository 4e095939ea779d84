package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/onsi/ginkgo/v2/formatter"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/chatspec/chatspec/reference"
	"github.com/chatspec/chatspec/reports"
	"github.com/chatspec/chatspec/spec"
	"github.com/chatspec/chatspec/spec/framework"
	"github.com/chatspec/chatspec/spec/sioclient"
	"github.com/chatspec/chatspec/spec/target"
)

func init() {
	register("verify", "check a chat server against spec/CONTRACT.md", runVerify)
}

const verifyUsage = `Usage: chatspec verify [flags]

Checks a Socket.IO chat server against spec/CONTRACT.md and prints one line
per case, a per-case table and every failure in detail.

Without --target, chatspec starts its reference server in-process (with a
short heartbeat) and verifies that.

Profiles: core = the MUSTs; strict = core + the SHOULDs; all = strict +
robustness, security and informational cases (info never fails).

Examples:
  chatspec verify
  chatspec verify --target http://127.0.0.1:3000 --profile strict
  chatspec verify --target http://localhost:3000 --init-path /api/socket --report-dir out/
  chatspec verify --target http://node1:3000 --target http://node2:3000 --profile all
  chatspec verify --target https://chat.example.com --header 'Authorization: Bearer X' --auth '{"token":"abc"}'
  chatspec verify --list --profile all
  chatspec verify --focus 'JOIN|USER-4'
  chatspec verify --profile all --focus EXPLORE --explore 2m --explore-seed 42
  chatspec verify --target http://127.0.0.1:3000 --profile all --explore-replay out/explore-seed-42.json

Exit codes: 0 every graded case passed; 1 a case failed; 2 usage error or
target unreachable (nothing ran); 3 the run ended early (interrupted, or the
target went down mid-run); 4 chatspec itself failed (e.g. report not writable).

Flags:
`

// verifyFlags is the parsed command line of `chatspec verify`.
type verifyFlags struct {
	target     target.Options
	profile    string
	reportDir  string
	list       bool
	focus      string
	step       time.Duration
	runTimeout time.Duration
	maxWait    time.Duration
	transport  string
	explore    exploreFlags
}

func parseVerifyFlags(args []string, stdout io.Writer) (*verifyFlags, error) {
	v := &verifyFlags{}
	fs := flag.NewFlagSet("chatspec verify", flag.ContinueOnError)
	// The flag package's own messages are replaced by one line from
	// runVerify; --help prints the usage to stdout.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	v.target.RegisterFlags(fs)
	fs.StringVar(&v.profile, "profile", "core", "which cases to run: core, strict or all")
	fs.StringVar(&v.reportDir, "report-dir", "", "write junit.xml, results.json and report.html to this directory")
	fs.BoolVar(&v.list, "list", false, "print the cases of the profile (ID, grade, title) and exit")
	fs.StringVar(&v.focus, "focus", "", "run only the cases whose name matches this regular expression (e.g. 'JOIN|RECON-1')")
	fs.DurationVar(&v.step, "timeout", framework.DefaultStepTimeout, "how long to wait for each expected event")
	fs.DurationVar(&v.runTimeout, "run-timeout", 10*time.Minute, "deadline for the whole run")
	fs.DurationVar(&v.maxWait, "max-wait", framework.DefaultMaxWait, "longest wait for a server's ping timeout (RECON-2, RECON-3); slower servers get those cases skipped")
	fs.StringVar(&v.transport, "transport", string(sioclient.WebSocket), "transport of the clients in cases that do not test transports: websocket, polling or upgrade")
	v.explore.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, verifyUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (targets go in --target URL)", fs.Arg(0))
	}
	if _, ok := framework.Profiles[v.profile]; !ok {
		return nil, fmt.Errorf("--profile %q: want core, strict or all", v.profile)
	}
	if v.focus != "" {
		if _, err := regexp.Compile(v.focus); err != nil {
			return nil, fmt.Errorf("--focus %q: %w", v.focus, err)
		}
	}
	if v.step <= 0 {
		return nil, fmt.Errorf("--timeout %s: must be positive", v.step)
	}
	if v.runTimeout <= 0 {
		return nil, fmt.Errorf("--run-timeout %s: must be positive", v.runTimeout)
	}
	if v.maxWait <= 0 {
		return nil, fmt.Errorf("--max-wait %s: must be positive", v.maxWait)
	}
	switch sioclient.Transport(v.transport) {
	case sioclient.WebSocket, sioclient.Polling, sioclient.Upgrade:
	default:
		return nil, fmt.Errorf("--transport %q: want websocket, polling or upgrade", v.transport)
	}
	if err := v.explore.validate(); err != nil {
		return nil, err
	}
	if err := v.target.Validate(); err != nil {
		return nil, err
	}
	return v, nil
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	v, err := parseVerifyFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "chatspec verify: %v\n(run 'chatspec verify --help' for the flags)\n", err)
		return ExitUsage
	}
	opts := spec.RunOptions{Profile: v.profile, Focus: v.focus, Timeout: v.runTimeout}
	if v.list {
		return listCases(opts, stdout, stderr)
	}
	if v.reportDir != "" {
		if err := os.MkdirAll(v.reportDir, 0o755); err != nil {
			fmt.Fprintf(stderr, "chatspec verify: --report-dir: %v\n", err)
			return ExitError
		}
	}

	embedded := len(v.target.Targets) == 0
	if embedded {
		srv, initPath, err := startEmbedded(ctx, func(cfg *reference.Config) {
			cfg.PingInterval = embeddedPingInterval
			cfg.PingTimeout = embeddedPingTimeout
		})
		if err != nil {
			fmt.Fprintf(stderr, "chatspec verify: starting the embedded reference server: %v\n", err)
			return ExitError
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Stop(stopCtx)
		}()
		v.target.Targets = []string{srv.URL()}
		if v.target.InitPath == "" {
			v.target.InitPath = initPath
		}
		fmt.Fprintf(stdout, "no --target given: verifying the embedded reference server at %s\n", srv.URL())
	}

	probeCtx, cancel := context.WithTimeout(ctx, v.target.ConnectTimeout+time.Second)
	err = framework.Reachable(probeCtx, &v.target)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "chatspec verify: interrupted before any case ran")
			return ExitInterrupted
		}
		fmt.Fprintf(stderr, "chatspec verify: %v\n", err)
		return ExitUsage
	}

	cfg := framework.Config{
		Target:      &v.target,
		InitPath:    v.target.InitPath,
		Transport:   sioclient.Transport(v.transport),
		StepTimeout: v.step,
		MaxWait:     v.maxWait,
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "chatspec verify: %v\n", err)
		return ExitUsage
	}
	runCtx, cancelRun := context.WithTimeout(ctx, v.runTimeout)
	defer cancelRun()
	fmt.Fprintf(stdout, "chatspec verify: profile %s against %s (run %s, per-event timeout %s)\n",
		v.profile, strings.Join(v.target.Targets, ", "), cfg.RunID, v.step)
	opts.OnCase = func(s types.SpecReport) {
		if c, ok := reports.VerifyCaseFromSpec(s); ok {
			fmt.Fprintln(stdout, reports.VerifyProgressLine(c))
		}
	}
	// Ginkgo's own reporter would print to the process's stdout; this
	// command prints its own progress and summary instead.
	formatter.ColorableStdOut = io.Discard
	started := time.Now()
	var rep reports.VerifyReport
	if v.explore.replay == "" { // a replay runs only the exploration
		greport, err := spec.Run(runCtx, cfg, opts)
		if err != nil {
			fmt.Fprintf(stderr, "chatspec verify: %v\n", err)
			return ExitError
		}
		selected, err := spec.Selector(opts)
		if err != nil {
			fmt.Fprintf(stderr, "chatspec verify: %v\n", err)
			return ExitError
		}
		rep = reports.NewVerifyReport(greport, selected)
	}
	rep.Targets, rep.Embedded, rep.Profile, rep.Focus, rep.RunID = v.target.Targets, embedded, v.profile, v.focus, cfg.RunID
	if rep.Started.IsZero() {
		rep.Started = started
	}
	switch {
	case framework.TargetDown() != nil:
		rep.Stopped = framework.TargetDown().Error()
	case ctx.Err() != nil:
		rep.Stopped = "interrupted"
	case runCtx.Err() != nil:
		rep.Stopped = fmt.Sprintf("the run took longer than --run-timeout %s", v.runTimeout)
	}
	if rep.Stopped == "" && v.explore.wanted(v.profile, v.focus) {
		c := runExplore(runCtx, &v.explore, &v.target, v.step, v.reportDir, embedded, stdout)
		fmt.Fprintln(stdout, reports.VerifyProgressLine(c))
		rep.Cases = append(rep.Cases, c)
	}
	rep.Tally()
	fmt.Fprintln(stdout)
	if err := reports.WriteVerifyConsole(stdout, rep); err != nil {
		fmt.Fprintf(stderr, "chatspec verify: writing the summary: %v\n", err)
		return ExitError
	}
	if v.reportDir != "" {
		if err := writeReports(v.reportDir, rep, []reportFile[reports.VerifyReport]{
			{"junit.xml", reports.WriteVerifyJUnit},
			{"results.json", reports.WriteVerifyJSON},
			{"report.html", reports.WriteVerifyHTML},
		}); err != nil {
			fmt.Fprintf(stderr, "chatspec verify: %v\n", err)
			return ExitError
		}
		fmt.Fprintf(stdout, "reports written to %s (junit.xml, results.json, report.html)\n", v.reportDir)
	}
	switch {
	case rep.Stopped != "":
		return ExitInterrupted
	case !rep.Passed:
		return ExitFailed
	}
	return ExitOK
}

// The embedded reference server's heartbeat: short, so that RECON-2 and
// RECON-3 (which wait for a silent client to time out) take about two
// seconds, with a timeout long enough that a busy machine's late ping or
// pong does not drop a client in the middle of a heavy case.
const (
	embeddedPingInterval = 500 * time.Millisecond
	embeddedPingTimeout  = 1500 * time.Millisecond
)

func listCases(opts spec.RunOptions, stdout, stderr io.Writer) int {
	cases, err := spec.List(opts)
	if err != nil {
		fmt.Fprintf(stderr, "chatspec verify: %v\n", err)
		return ExitUsage
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tGRADE\tTITLE")
	for _, c := range cases {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.ID, c.Grade, c.Title)
	}
	if err := tw.Flush(); err != nil {
		fmt.Fprintf(stderr, "chatspec verify: %v\n", err)
		return ExitError
	}
	fmt.Fprintf(stdout, "%d cases in profile %s\n", len(cases), opts.Profile)
	return ExitOK
}
