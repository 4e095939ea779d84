// Package interop runs chatspec against the Node side of the Socket.IO world:
// an independent Node implementation of spec/CONTRACT.md
// (spec/testdata/nodeserver) and a conformance check that drives the official
// socket.io-client (spec/testdata/jsclient).
//
// Its tests prove two things: the Node server and check.js agree on every
// transport, and the official JS client finds the Go reference correct. The
// exported API lets other suites (the Ginkgo conformance suite in CI) start
// the Node server as a second, independently written target, so the suite is
// not tuned to one server.
//
// The Node fixtures need their dependencies installed once:
//
//	npm ci --prefix spec/testdata/nodeserver && npm ci --prefix spec/testdata/jsclient
package interop

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// InstallHint is the command that installs the Node fixtures' dependencies,
// run from the module root.
const InstallHint = "npm ci --prefix spec/testdata/nodeserver && npm ci --prefix spec/testdata/jsclient"

// ErrNodeSetup reports that Node or a fixture's node_modules is missing.
// Errors wrapping it say which, and how to install it (InstallHint).
var ErrNodeSetup = errors.New("node fixtures not installed")

// CheckNodeSetup reports whether `node` is on PATH and every fixture
// directory in dirs has its node_modules installed. The error wraps
// ErrNodeSetup and names InstallHint, so callers can fail with it as is.
func CheckNodeSetup(dirs ...string) error {
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("%w: node is not on PATH (%v); install Node 20+, then run: %s", ErrNodeSetup, err, InstallHint)
	}
	// The fixtures use node:util parseArgs (Node 18.3+); an older Node
	// would fail each test with a syntax or require error instead.
	out, err := exec.Command("node", "-p", "process.versions.node").Output()
	if err != nil {
		return fmt.Errorf("%w: node -p process.versions.node: %v", ErrNodeSetup, err)
	}
	version := strings.TrimSpace(string(out))
	var major, minor int
	if _, err := fmt.Sscanf(version, "%d.%d", &major, &minor); err != nil || major < 18 || (major == 18 && minor < 3) {
		return fmt.Errorf("%w: Node %s is too old: the fixtures need Node 18.3 or later (20+ recommended)", ErrNodeSetup, version)
	}
	for _, dir := range dirs {
		nm := filepath.Join(dir, "node_modules")
		if st, err := os.Stat(nm); err != nil || !st.IsDir() {
			return fmt.Errorf("%w: %s is missing; run: %s", ErrNodeSetup, nm, InstallHint)
		}
	}
	return nil
}

// startTimeout bounds how long a Node process may take to print its
// "listening" line. Node starts in well under a second; the rest is slack for
// a loaded CI machine.
const startTimeout = 20 * time.Second

// stopGrace is how long Stop waits after SIGTERM before killing.
const stopGrace = 3 * time.Second

// NodeServer is a running Node chat server process (server.js, or another
// script that prints "listening http://127.0.0.1:N" once it accepts
// connections).
type NodeServer struct {
	url  string
	cmd  *exec.Cmd
	out  *capture
	done chan struct{} // closed when the process has been waited for
	err  error         // Wait's result; valid once done is closed
	ctx  context.Context

	stopOnce sync.Once
}

// StartNodeServer runs `node server.js args...` in dir (the nodeserver
// fixture directory, e.g. "spec/testdata/nodeserver" from the module root)
// and returns once the server printed its "listening" line. Pass
// "--port", "0" to let it pick a free port; URL reports the one it chose.
//
// The process lives until Stop is called or ctx is done (then it gets
// SIGTERM, and SIGKILL after a short grace). Startup is bounded: if the
// line does not come within 20 s, the process is killed and the error
// carries what it printed.
func StartNodeServer(ctx context.Context, dir string, args ...string) (*NodeServer, error) {
	return StartNodeScript(ctx, dir, "server.js", args...)
}

// StartNodeScript is StartNodeServer for another script in dir, such as
// seed.js, the seed's own server kept as a known-imperfect target.
func StartNodeScript(ctx context.Context, dir, script string, args ...string) (*NodeServer, error) {
	if err := CheckNodeSetup(dir); err != nil {
		return nil, err
	}
	return startServerProcess(ctx, dir, "node "+script, "node", append([]string{script}, args...)...)
}

// startServerProcess runs name with args in dir and returns once it printed
// "listening http://HOST:PORT"; what names it in errors ("node server.js").
func startServerProcess(ctx context.Context, dir, what, name string, args ...string) (*NodeServer, error) {
	script := what
	ready := make(chan string, 1)
	out := &capture{onLine: func(line string) {
		if url, ok := strings.CutPrefix(line, "listening "); ok {
			select {
			case ready <- strings.TrimSpace(url):
			default:
			}
		}
	}}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out.stderr()
	// Graceful first: server.js closes its sockets on SIGTERM.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopGrace
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", script, dir, err)
	}
	s := &NodeServer{cmd: cmd, out: out, done: make(chan struct{}), ctx: ctx}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case s.url = <-ready:
		if !strings.HasPrefix(s.url, "http://") {
			_ = s.kill()
			return nil, fmt.Errorf("%s printed \"listening %s\", want \"listening http://HOST:PORT\"", script, s.url)
		}
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("%s exited before listening (%v); output:\n%s", script, s.err, out)
	case <-timer.C:
		_ = s.kill()
		return nil, fmt.Errorf("%s did not print \"listening\" within %v; output:\n%s", script, startTimeout, out)
	case <-ctx.Done():
		<-s.done // CommandContext stops the process.
		return nil, fmt.Errorf("%s: %w; output:\n%s", script, ctx.Err(), out)
	}
}

// URL is the server's base URL, e.g. "http://127.0.0.1:40123".
func (s *NodeServer) URL() string { return s.url }

// Output is everything the process printed so far (stdout and stderr,
// interleaved, the newest 64 KiB), for test failure logs.
func (s *NodeServer) Output() string { return s.out.String() }

// Stop sends SIGTERM, waits for the process to exit (killing it after a
// short grace) and reports how it ended: nil for a clean exit, for a stop by
// signal, or for a stop because StartNodeServer's ctx ended; otherwise the
// exit error (the server crashed). Calling Stop again returns the same.
func (s *NodeServer) Stop() error {
	s.stopOnce.Do(func() {
		select {
		case <-s.done:
			return
		default:
		}
		// Once the start context is done, CommandContext has sent (or is
		// sending) the SIGTERM; a second one would make server.js exit at
		// once with 130 ("a second signal means now"). A test's context
		// ends just before its cleanups, so this is the usual path there.
		if s.ctx.Err() == nil {
			if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				_ = s.cmd.Process.Kill()
			}
		}
		select {
		case <-s.done:
		case <-time.After(stopGrace):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	<-s.done
	var exit *exec.ExitError
	switch {
	case errors.As(s.err, &exit) && !exit.Exited():
		// Ended by a signal: ours (SIGTERM, or SIGKILL after the grace).
		return nil
	case errors.Is(s.err, context.Canceled), errors.Is(s.err, context.DeadlineExceeded):
		// Stopped because the caller's ctx ended, as documented.
		return nil
	}
	return s.err
}

// Exited is closed once the process has ended, for whatever reason.
func (s *NodeServer) Exited() <-chan struct{} { return s.done }

func (s *NodeServer) kill() error {
	err := s.cmd.Process.Kill()
	<-s.done
	return err
}

// capture keeps a process's output, bounded, and calls onLine for each
// complete stdout line, so readiness is read from the stream itself rather
// than guessed with a sleep.
type capture struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	partial []byte
	onLine  func(string)
}

// captureLimit bounds the kept output; a chatty process cannot grow memory.
const captureLimit = 64 << 10

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keep(p)
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		line := string(c.partial[:i])
		c.partial = c.partial[i+1:]
		if c.onLine != nil {
			c.onLine(line)
		}
	}
	if len(c.partial) > captureLimit {
		c.partial = c.partial[:0]
	}
	return len(p), nil
}

func (c *capture) keep(p []byte) {
	c.buf.Write(p)
	if over := c.buf.Len() - captureLimit; over > 0 {
		c.buf.Next(over)
	}
}

// stderr is a writer that shares the kept output but is not scanned for
// the "listening" line.
func (c *capture) stderr() *stderrWriter { return &stderrWriter{c} }

func (c *capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

type stderrWriter struct{ c *capture }

func (w *stderrWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	w.c.keep(p)
	return len(p), nil
}

// checkTimeout bounds a check.js run. check.js caps itself at 18 s (plus a
// 1 s watchdog); the rest is slack for starting Node on a loaded machine.
const checkTimeout = 40 * time.Second

// CheckReport is the outcome of one check.js run.
type CheckReport struct {
	Passed, Failed int
	// Lines is every line check.js printed on stdout, in order: one per
	// check ("ok ID ..." or "FAIL ID ...: expected X, got Y"), then the
	// summary.
	Lines []string
	// Failures is the subset of Lines that start with "FAIL".
	Failures []string
	// Stderr is what check.js printed on stderr (usage errors, crashes).
	Stderr string
}

// OK reports whether the run passed: at least one check, none failed.
func (r *CheckReport) OK() bool { return r.Failed == 0 && r.Passed > 0 }

// RunCheck runs `node check.js --url target args...` in dir (the jsclient
// fixture directory) and parses its report. A target that fails checks is
// not an error: the report says so. The error is for a run that could not
// produce a report (Node missing, check.js crashed, no summary line).
//
// Useful args: "--transport", "websocket"|"polling"|"upgrade";
// "--init-path", "/api/socket"; "--path", "/socket.io/".
func RunCheck(ctx context.Context, dir, target string, args ...string) (*CheckReport, error) {
	if err := CheckNodeSetup(dir); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "node", append([]string{"check.js", "--url", target}, args...)...)
	cmd.Dir = dir
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = stopGrace
	runErr := cmd.Run()

	rep := &CheckReport{Stderr: stderr.String()}
	summary := false
	raw := stdout.String()
	sc := bufio.NewScanner(strings.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rep.Lines = append(rep.Lines, line)
		if strings.HasPrefix(line, "FAIL ") {
			rep.Failures = append(rep.Failures, line)
		}
		if n, err := fmt.Sscanf(line, "%d passed, %d failed", &rep.Passed, &rep.Failed); err == nil && n == 2 {
			summary = true
		}
	}
	var exit *exec.ExitError
	switch {
	case !summary:
		return rep, fmt.Errorf("check.js printed no summary (%v); stdout:\n%s\nstderr:\n%s", runErr, raw, rep.Stderr)
	case runErr != nil && !errors.As(runErr, &exit):
		return rep, fmt.Errorf("run check.js: %w", runErr)
	case (runErr == nil) != rep.OK():
		return rep, fmt.Errorf("check.js exit status (%v) disagrees with its summary %d passed, %d failed", runErr, rep.Passed, rep.Failed)
	}
	return rep, nil
}
