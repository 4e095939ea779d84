package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

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

Exit codes: 0 every graded case passed; 1 a case failed (a target that died
from a case's bad input failed that case); 2 usage error or target
unreachable (nothing ran); 3 the run ended early (interrupted, the run
timeout, or the target went away on its own mid-run); 4 chatspec itself
failed (e.g. report not writable). Once the flags parse, --report-dir is
written whatever the exit code (the report says why nothing ran, or where
the run stopped).

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
	fs.StringVar(&v.transport, "transport", string(framework.TransportAuto), "transport of the clients in cases that do not test transports: auto (websocket when a direct WebSocket connection works, else polling), websocket, polling or upgrade")
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
	case framework.TransportAuto, sioclient.WebSocket, sioclient.Polling, sioclient.Upgrade:
	default:
		return nil, fmt.Errorf("--transport %q: want auto, websocket, polling or upgrade", v.transport)
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
		return usageError(stderr, "verify", err)
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
	out := &verifyOutput{v: v, stdout: stdout, stderr: stderr, started: time.Now()}
	// A second signal ends the process before the run stops: the report
	// then holds the cases that finished.
	defer setLastWords(out.lastWords)()

	embedded := len(v.target.Targets) == 0
	if embedded {
		srv, initPath, err := startEmbedded(ctx, func(cfg *reference.Config) {
			cfg.PingInterval = embeddedPingInterval
			cfg.PingTimeout = embeddedPingTimeout
		})
		if err != nil {
			return out.nothingRan(ExitError, fmt.Sprintf("starting the embedded reference server: %v", err))
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Stop(stopCtx)
		}()
		out.mu.Lock()
		v.target.Targets = []string{srv.URL()}
		out.embedded = true
		out.mu.Unlock()
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
			return out.nothingRan(ExitInterrupted, "interrupted before any case ran")
		}
		return out.nothingRan(ExitUsage, err.Error())
	}

	cfg := framework.Config{
		Target:      &v.target,
		InitPath:    v.target.InitPath,
		Transport:   sioclient.Transport(v.transport),
		StepTimeout: v.step,
		MaxWait:     v.maxWait,
	}
	if err := cfg.Validate(); err != nil {
		return out.nothingRan(ExitUsage, err.Error())
	}
	out.mu.Lock()
	out.runID = cfg.RunID
	out.mu.Unlock()
	runCtx, cancelRun := context.WithTimeout(ctx, v.runTimeout)
	defer cancelRun()
	fmt.Fprintf(stdout, "chatspec verify: profile %s against %s (run %s, per-event timeout %s)\n",
		v.profile, strings.Join(v.target.Targets, ", "), cfg.RunID, v.step)
	opts.OnCase = out.caseDone
	var res spec.Result
	if v.explore.replay == "" { // a replay runs only the exploration
		var err error
		if res, err = spec.Run(runCtx, cfg, opts); err != nil {
			return out.nothingRan(ExitError, err.Error())
		}
	}
	rep := reports.NewVerifyReport(res)
	if res.Stop.Kind == spec.NotStopped && v.explore.wanted(v.profile, v.focus) {
		c := runExplore(runCtx, &v.explore, &v.target, v.step, v.reportDir, embedded, stdout)
		out.exploreDone(c)
		rep.Cases = append(rep.Cases, c)
		rep.DurationMS += c.DurationMS // the run's time includes the exploration's
		switch {
		case ctx.Err() != nil:
			res.Stop = spec.Stop{Kind: spec.StopInterrupted, Reason: "interrupted"}
			rep.Stopped = res.Stop.Reason
		case runCtx.Err() != nil:
			res.Stop = spec.Stop{Kind: spec.StopRunTimeout, Reason: fmt.Sprintf("the run took longer than --run-timeout %s", v.runTimeout)}
			rep.Stopped = res.Stop.Reason
		}
	}
	rep = out.report(rep)
	fmt.Fprintln(stdout)
	if err := reports.WriteVerifyConsole(stdout, rep); err != nil {
		fmt.Fprintf(stderr, "chatspec verify: writing the summary: %v\n", err)
		return ExitError
	}
	if err := out.write(rep); err != nil {
		fmt.Fprintf(stderr, "chatspec verify: %v\n", err)
		return ExitError
	}
	switch {
	case res.Stop.EndedEarly():
		return ExitInterrupted
	case !rep.Passed:
		// Failed cases, or a target that died from a case's input (that
		// case failed; Stopped names it).
		return ExitFailed
	}
	return ExitOK
}

// verifyOutput is what one verify run reports, whatever ends it: the
// finished run, a run that never started (the report says why), or a
// second signal (the cases finished so far).
type verifyOutput struct {
	v              *verifyFlags
	stdout, stderr io.Writer
	started        time.Time
	embedded       bool
	runID          string
	once           reportOnce

	// mu guards what the last words read while the run goes on: the
	// cases finished so far, and the fields report fills in.
	mu   sync.Mutex
	done []reports.VerifyCase
}

// caseDone prints one finished case and keeps it for the last words.
func (o *verifyOutput) caseDone(c spec.CaseResult) {
	vc := reports.VerifyCaseFrom(c)
	o.mu.Lock()
	o.done = append(o.done, vc)
	o.mu.Unlock()
	fmt.Fprintln(o.stdout, reports.VerifyProgressLine(vc))
}

// exploreDone prints the exploration's case and keeps it for the last words.
func (o *verifyOutput) exploreDone(c reports.VerifyCase) {
	o.mu.Lock()
	o.done = append(o.done, c)
	o.mu.Unlock()
	fmt.Fprintln(o.stdout, reports.VerifyProgressLine(c))
}

// report fills in what the suite does not know.
func (o *verifyOutput) report(r reports.VerifyReport) reports.VerifyReport {
	o.mu.Lock()
	defer o.mu.Unlock()
	r.Targets, r.Embedded, r.Profile, r.Focus, r.RunID = o.v.target.Targets, o.embedded, o.v.profile, o.v.focus, o.runID
	if r.Started.IsZero() {
		r.Started = o.started
		r.DurationMS = time.Since(o.started).Milliseconds()
	}
	r.Tally()
	return r
}

// write writes the report directory, once.
func (o *verifyOutput) write(r reports.VerifyReport) error {
	if o.v.reportDir == "" {
		return nil
	}
	return o.once.write(func() error {
		if err := writeReports(o.v.reportDir, r, []reportFile[reports.VerifyReport]{
			{"junit.xml", reports.WriteVerifyJUnit},
			{"results.json", reports.WriteVerifyJSON},
			{"report.html", reports.WriteVerifyHTML},
		}); err != nil {
			return err
		}
		fmt.Fprintf(o.stdout, "reports written to %s (junit.xml, results.json, report.html)\n", o.v.reportDir)
		return nil
	})
}

// nothingRan ends a run in which no case ran: one line on stderr, and a
// report that says why (CI keeps it as the run's artifact).
func (o *verifyOutput) nothingRan(code int, why string) int {
	fmt.Fprintf(o.stderr, "chatspec verify: %s\n", why)
	r := o.report(reports.VerifyReport{Stopped: "nothing ran: " + why})
	if err := o.write(r); err != nil {
		fmt.Fprintf(o.stderr, "chatspec verify: %v\n", err)
		return ExitError
	}
	return code
}

// lastWords writes the cases finished so far when a second signal ends
// the process.
func (o *verifyOutput) lastWords() {
	o.mu.Lock()
	r := reports.VerifyReport{Cases: slices.Clone(o.done), Stopped: "interrupted: a second signal ended the process before the run stopped; the cases after these did not finish"}
	o.mu.Unlock()
	r = o.report(r)
	if err := o.write(r); err != nil {
		fmt.Fprintf(o.stderr, "chatspec verify: %v\n", err)
	}
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
