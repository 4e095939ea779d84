package interop

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// PythonBin is the interpreter the Python fixture runs on: Debian's, whose
// python3-socketio and python3-aiohttp packages the fixture uses (a python3
// earlier on PATH, from pyenv or a virtualenv, does not see them).
const PythonBin = "/usr/bin/python3"

// PythonInstallHint is the command that installs the Python fixture's
// dependencies (scripts/test.sh runs it when they are missing).
const PythonInstallHint = "apt-get install -y python3-socketio python3-aiohttp"

// ErrPythonSetup reports that the Python fixture cannot run. Errors
// wrapping it say why and how to install what is missing.
var ErrPythonSetup = errors.New("python fixture not installed")

// CheckPythonSetup reports whether PythonBin can import python-socketio 5
// and aiohttp, which spec/testdata/pyserver/server.py needs.
func CheckPythonSetup(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, PythonBin, "-c",
		"import socketio, engineio, aiohttp; from importlib.metadata import version; print(version('python-socketio'))").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s cannot import socketio and aiohttp (%v: %s); install them with: %s",
			ErrPythonSetup, PythonBin, err, strings.TrimSpace(lastLine(string(out))), PythonInstallHint)
	}
	if v := strings.TrimSpace(string(out)); !strings.HasPrefix(v, "5.") {
		return fmt.Errorf("%w: python-socketio %s, want 5.x (Socket.IO protocol v5)", ErrPythonSetup, v)
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// StartPythonServer runs spec/testdata/pyserver/server.py (dir is that
// directory) with args and returns once it prints its "listening" line;
// the returned process behaves as StartNodeServer's. Pass "--port", "0" to
// let it pick a free port.
func StartPythonServer(ctx context.Context, dir string, args ...string) (*NodeServer, error) {
	if err := CheckPythonSetup(ctx); err != nil {
		return nil, err
	}
	return startServerProcess(ctx, dir, "python server.py", PythonBin, append([]string{"-u", "server.py"}, args...)...)
}
