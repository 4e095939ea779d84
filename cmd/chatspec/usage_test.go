package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

func usageHint(name string) string { return "Run 'chatspec " + name + " --help' for usage." }

// TestFlagErrorsAreOneLineAndAHint: every subcommand answers a bad flag
// with the error on one line, where the usage is on the next, exit 2, and
// nothing on stdout (the usage itself would bury the error).
func TestFlagErrorsAreOneLineAndAHint(t *testing.T) {
	for _, name := range []string{"serve", "verify", "load", "version"} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{name, "-x"}, &stdout, &stderr)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d", code, ExitUsage)
			}
			want := "chatspec " + name + ": "
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], want) || !strings.Contains(lines[0], "-x") || lines[1] != usageHint(name) {
				t.Errorf("stderr = %q, want %q... and %q", stderr.String(), want, usageHint(name))
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"lod"}, &stdout, &stderr); code != ExitUsage ||
		stderr.String() != "chatspec: unknown command \"lod\"\nRun 'chatspec --help' for usage.\n" {
		t.Errorf("unknown command: exit %d, stderr %q", code, stderr.String())
	}
}

func TestHelpGoesToStdout(t *testing.T) {
	for _, name := range []string{"serve", "verify", "load", "version"} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{name, "--help"}, &stdout, &stderr); code != ExitOK || stdout.Len() == 0 || stderr.Len() != 0 {
			t.Errorf("%s --help: exit %d, %d bytes on stdout, stderr %q", name, code, stdout.Len(), stderr.String())
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != ExitOK {
			t.Fatalf("%v: exit %d, stderr %q", args, code, stderr.String())
		}
		// A test binary has build info with "(devel)" as the main module's
		// version and no VCS stamp.
		re := regexp.MustCompile(`^chatspec \S+\nrevision .+\nbuilt with go\S+ for \S+/\S+\n$`)
		if !re.MatchString(stdout.String()) {
			t.Errorf("%v printed %q", args, stdout.String())
		}
	}
	v := versionInfo{Version: "v1.2.3", Revision: "0123abc", Time: "2026-12-03T20:00:00Z", Modified: true, Go: "go1.26.8"}
	if got := v.String(); !strings.HasPrefix(got, "chatspec v1.2.3\nrevision 0123abc (2026-12-03T20:00:00Z) with local changes\nbuilt with go1.26.8 for ") {
		t.Errorf("String() = %q", got)
	}
}
