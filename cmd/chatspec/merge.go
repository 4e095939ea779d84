package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/chatspec/chatspec/loadgen"
	"github.com/chatspec/chatspec/loadgen/shard"
	"github.com/chatspec/chatspec/loadgen/threshold"
	"github.com/chatspec/chatspec/reports"
)

func init() {
	register("merge", "merge the shards of a sharded load run into one report", runMerge)
}

const mergeUsage = `Usage: chatspec merge [flags] SHARD_DIR...

Merges the report directories of the shards of one load run
(chatspec load --shard I/N --report-dir SHARD_DIR) into one report, as one
process running the whole plan would have written it: every shard's raw
results are replayed, in time order, through one measurement, so a message
sent on one shard is owed to the users of every shard, and the delivery
accounting and the latency histograms are those of the whole run.

Shards that are not of one run (run ID, plan, seed, start, secret or shard
count differ), a shard given twice, a missing shard, or a shard that did not
finish writing (no shard.json) are refused: nothing is merged.

Thresholds: --threshold (repeatable) if given, otherwise the shards' own
(the --threshold flags, or the default correctness gate, they were run
with). Same grammar and metrics as chatspec load.

Examples:
  chatspec merge --report-dir merged/ shard-0/ shard-1/ shard-2/
  chatspec merge --threshold 'fanout.p99<250ms' --threshold 'delivery.lost==0' out/shard-*

Exit codes: 0 every threshold held; 1 a threshold was crossed; 2 usage
error, or shards that cannot be merged (the report says why); 3 a shard's
run ended early (the merged report holds what was measured); 4 chatspec
itself failed (a report not writable, or a shard's generator ran out of
open files or local ports).

Flags:
`

func runMerge(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chatspec merge", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var reportDir string
	var thresholds threshold.List
	fs.StringVar(&reportDir, "report-dir", "", "write the merged summary.json, junit.xml and report.html to this directory")
	fs.Var(&thresholds, "threshold", "pass/fail expression on the merged figures, e.g. 'fanout.p99<250ms' (repeatable); default: the shards' own")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, mergeUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return ExitOK
		}
		return usageError(stderr, "merge", err)
	}
	dirs := fs.Args()
	if len(dirs) == 0 {
		return usageError(stderr, "merge", errors.New("no shard directories given"))
	}
	if reportDir != "" {
		if err := os.MkdirAll(reportDir, 0o755); err != nil {
			fmt.Fprintf(stderr, "chatspec merge: --report-dir: %v\n", err)
			return ExitError
		}
	}
	var once reportOnce
	merged, err := shard.Merge(dirs)
	if err != nil {
		fmt.Fprintf(stderr, "chatspec merge: %v\n", err)
		s := &loadgen.Summary{Verdict: "fail", Ended: loadgen.EndedNotStarted, EndedDetail: err.Error(), Thresholds: nil}
		if werr := writeLoadReports(reportDir, s, &once, stdout); werr != nil {
			fmt.Fprintf(stderr, "chatspec merge: %v\n", werr)
			return ExitError
		}
		if errors.Is(err, loadgen.ErrShard) {
			return ExitUsage
		}
		return ExitError
	}
	list := thresholds
	if len(list) == 0 {
		if !merged.Agree {
			fmt.Fprintln(stderr, "chatspec merge: the shards were run with different --threshold flags: give the merge its own --threshold")
			return ExitUsage
		}
		for _, expr := range merged.Thresholds {
			if err := list.Set(expr); err != nil {
				fmt.Fprintf(stderr, "chatspec merge: a shard's threshold %q: %v\n", expr, err)
				return ExitUsage
			}
		}
	}
	s := merged.Summary
	s.ApplyThresholds(list)
	fmt.Fprintf(stdout, "chatspec merge: run %s, %d shards (%s)\n", s.RunID, len(merged.Manifests), strings.Join(dirs, " "))
	if err := reports.WriteLoadConsole(stdout, s); err != nil {
		fmt.Fprintf(stderr, "chatspec merge: writing the summary: %v\n", err)
		return ExitError
	}
	if err := writeLoadReports(reportDir, s, &once, stdout); err != nil {
		fmt.Fprintf(stderr, "chatspec merge: %v\n", err)
		return ExitError
	}
	switch {
	case s.Ended == loadgen.EndedGeneratorLimit:
		fmt.Fprintf(stderr, "chatspec merge: a shard's generator ran out of a resource of its own (%s): %s\n", s.Ended, s.EndedDetail)
		return ExitError
	case s.Ended != loadgen.EndedCompleted:
		fmt.Fprintf(stderr, "chatspec merge: a shard's run ended early (%s): %s\n", s.Ended, s.EndedDetail)
		return ExitInterrupted
	case !s.Passed():
		return ExitFailed
	}
	return ExitOK
}
