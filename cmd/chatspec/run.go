package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
)

// command is one subcommand. Each lives in its own file (serve.go,
// verify.go, load.go), parses its own flags and returns an exit code.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func register(name, summary string, run func(context.Context, []string, io.Writer, io.Writer) int) {
	commands[name] = command{summary: summary, run: run}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return ExitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return ExitOK
	case "-version", "--version":
		return runVersion(ctx, args[1:], stdout, stderr)
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "chatspec: unknown command %q\nRun 'chatspec --help' for usage.\n", args[0])
		return ExitUsage
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

// usageError reports a bad command line the way every subcommand does: the
// error in one line, then where the usage is (never the whole usage, which
// would bury the error), and exit code 2.
func usageError(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "chatspec %s: %v\nRun 'chatspec %s --help' for usage.\n", name, err, name)
	return ExitUsage
}

func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("Usage: chatspec <command> [flags]\n\nCommands:\n")
	for _, name := range names {
		fmt.Fprintf(&b, "  %-8s %s\n", name, commands[name].summary)
	}
	b.WriteString(`
Run 'chatspec <command> --help' for the flags and examples of a command.

Exit codes:
  0  passed / clean shutdown
  1  the target failed: a spec case failed (a target that died from a case's
     input failed that case) or a load threshold was crossed
  2  usage error, or the target was unreachable before anything ran
  3  the run ended early (interrupted, run timeout, or the target went away on
     its own); the report is partial
  4  chatspec itself failed (e.g. address in use, report not writable, the
     load generator out of open files or local ports)
`)
	io.WriteString(w, b.String())
}
