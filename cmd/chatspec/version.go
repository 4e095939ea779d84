package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

func init() { register("version", "print chatspec's version and source revision", runVersion) }

// versionInfo describes this binary from the build information the Go
// toolchain embeds: the module version (a tag for `go install ...@v1.2.3`,
// "(devel)" for a build from a clone) and, for a build from a git
// checkout, the commit, its time and whether the tree had local changes.
type versionInfo struct {
	Version  string
	Revision string
	Time     string
	Modified bool
	Go       string
}

func readVersion() versionInfo {
	v := versionInfo{Version: "unknown", Go: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if info.Main.Version != "" {
		v.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func (v versionInfo) String() string {
	s := "chatspec " + v.Version + "\n"
	if v.Revision != "" {
		s += "revision " + v.Revision
		if v.Time != "" {
			s += " (" + v.Time + ")"
		}
		if v.Modified {
			s += " with local changes"
		}
		s += "\n"
	} else {
		s += "revision unknown (built outside a git checkout, or with -buildvcs=false)\n"
	}
	return s + fmt.Sprintf("built with %s for %s/%s\n", v.Go, runtime.GOOS, runtime.GOARCH)
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			fmt.Fprintln(stdout, "Usage: chatspec version\n\nPrints the version, the source revision and the Go toolchain of this binary.")
			return ExitOK
		}
		return usageError(stderr, "version", fmt.Errorf("unexpected argument %q (version takes none)", args[0]))
	}
	io.WriteString(stdout, readVersion().String())
	return ExitOK
}
