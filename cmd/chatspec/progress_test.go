//go:build linux

package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a new pseudo-terminal pair; the kernel creates it with a
// size of 0x0, as some CI runners leave it.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the pty's terminal: %v", err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

func TestProgressModeFollowsTheTerminal(t *testing.T) {
	master, slave := openPTY(t)
	if got := progressMode("auto", slave); got != "lines" {
		t.Errorf("auto on a 0x0 terminal = %q, want lines", got)
	}
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	if got := progressMode("auto", slave); got != "bars" {
		t.Errorf("auto on a 120x40 terminal = %q, want bars", got)
	}
	for _, tt := range []struct {
		flag string
		w    io.Writer
		want string
	}{
		{"auto", &bytes.Buffer{}, "lines"},
		{"on", &bytes.Buffer{}, "bars"},
		{"bars", &bytes.Buffer{}, "bars"},
		{"lines", slave, "lines"},
		{"off", slave, "off"},
	} {
		if got := progressMode(tt.flag, tt.w); got != tt.want {
			t.Errorf("progressMode(%q, %T) = %q, want %q", tt.flag, tt.w, got, tt.want)
		}
	}
}

// progressLine is one line of --progress lines.
var progressLine = regexp.MustCompile(`(?m)^chatspec load: \d+m\d\ds  users \d+/6  sent \d+  delivered \d+  fan-out p99 [0-9.]+ms  errors \d+\r?$`)

func TestLoadPrintsProgressLinesOnAZeroSizedTerminal(t *testing.T) {
	master, slave := openPTY(t)
	var (
		mu  sync.Mutex
		out bytes.Buffer
	)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	args := append([]string{}, quickLoad...)
	args[len(args)-1] = "auto"
	args = append(args, "--progress-interval", "500ms")
	var stdout bytes.Buffer
	code := run(context.Background(), args, &stdout, slave)
	slave.Close()
	master.Close()
	<-copied
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nterminal:\n%s", code, stdout.String(), out.String())
	}
	mu.Lock()
	got := out.String()
	mu.Unlock()
	// The run lasts about 3 s: several lines, each on its own line, and no
	// bar drawing (no cursor movement).
	if n := len(progressLine.FindAllString(got, -1)); n < 2 {
		t.Errorf("%d progress lines on the 0x0 terminal, want at least 2:\n%q", n, got)
	}
	if strings.Contains(got, "\x1b[") {
		t.Errorf("the 0x0 terminal got escape sequences (bars):\n%q", got)
	}
}

func TestLoadProgressLinesWithoutATerminal(t *testing.T) {
	args := append([]string{}, quickLoad...)
	args[len(args)-1] = "auto"
	args = append(args, "--progress-interval", "500ms")
	code, stdout, stderr := runLoadCmd(context.Background(), t, args...)
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if n := len(progressLine.FindAllString(stderr, -1)); n < 2 {
		t.Errorf("%d progress lines without a terminal, want at least 2:\n%s", n, stderr)
	}
}
