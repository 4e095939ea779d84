// Package redistest runs a throwaway redis-server for tests: on a free
// loopback port, without persistence, killed when the test ends.
//
// A missing redis-server fails the test (naming the Debian package to
// install) rather than skipping it, so that a CI machine without Redis cannot
// pass silently. Set CHATSPEC_SKIP_REDIS=1 to skip such tests on purpose.
package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SkipEnv is the environment variable that, set to 1, makes Start skip the
// test instead of failing when redis-server is not installed.
const SkipEnv = "CHATSPEC_SKIP_REDIS"

// startTimeout bounds how long Start waits for a new server to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process owned by a test.
type Server struct {
	// URL is the server's address as redis://127.0.0.1:port/0.
	URL string
	// Addr is the server's host:port.
	Addr string

	t    testing.TB
	bin  string
	port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait has returned
}

// Start starts a redis-server on a free loopback port and waits until it
// answers PING. The server is killed when the test and its subtests end.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(SkipEnv) == "1" {
			t.Skipf("redis-server is not installed and %s=1: skipping this Redis test", SkipEnv)
		}
		t.Fatalf("redis-server not found on PATH (%v): install the Debian package redis-server "+
			"(apt-get install -y redis-server), or set %s=1 to skip Redis tests knowingly", err, SkipEnv)
	}
	s := &Server{t: t, bin: bin}
	var lastErr error
	// Picking a free port and then starting the server on it can race with
	// another process taking the port; a few attempts make that harmless.
	for range 3 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: finding a free port: %v", err)
		}
		s.port = port
		if lastErr = s.start(); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("redistest: %v", lastErr)
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	s.URL = "redis://" + s.Addr + "/0"
	t.Cleanup(s.Kill)
	return s
}

// Kill stops the server abruptly (SIGKILL), as a crash would, and waits for
// the process to exit. Its data is lost. Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Freeze stops the server with SIGSTOP: it keeps its port and its
// connections but answers nothing, as a Redis stuck in a long command or a
// paused VM would. Thaw resumes it; the test's cleanup resumes it too.
func (s *Server) Freeze() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP)
	s.t.Cleanup(s.Thaw)
}

// Thaw resumes a frozen server (SIGCONT). Thawing a running or killed
// server does nothing.
func (s *Server) Thaw() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// Restart kills the server and starts a new, empty one on the same port, as
// a Redis restart without persistence would. It fails the test if the new
// server does not answer PING in time.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restarting on port %d: %v", s.port, err)
	}
}

func (s *Server) start() error {
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return err
	}
	s.t.Cleanup(func() { _ = os.RemoveAll(dir) })
	log := &lockedWriter{w: new(bytes.Buffer)}
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
	)
	cmd.Stdout = log
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	deadline := time.Now().Add(startTimeout)
	for {
		if ping(addr) == nil {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server on port %d exited before answering PING; its output:\n%s", s.port, log.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on port %d did not answer PING within %v; its output:\n%s", s.port, startTimeout, log.String())
		}
	}
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	return nil
}

// ping sends one PING in the Redis protocol and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// DeadURL returns a redis:// URL of a loopback port that nothing listens
// on (taken and released), for tests of an unreachable Redis.
func DeadURL(t testing.TB) string {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("redistest: finding a free port: %v", err)
	}
	return fmt.Sprintf("redis://127.0.0.1:%d/0", port)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedWriter lets the process's output goroutine and a failing test read
// the log without a data race.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
