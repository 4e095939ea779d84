//go:build linux

package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// fewFilesEnv makes the test binary a generator child (see TestMain):
// it lowers its own open-file limit to a few more than it holds, loads the
// target with more users than that, and prints the summary as JSON.
const fewFilesEnv = "CHATSPEC_TEST_FEW_FILES_TARGET"

// fewFilesSpare is how many descriptors the child may open beyond those
// it holds at start: fewer than its users.
const fewFilesSpare = 24

func runWithFewFiles(target string) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	lim := syscall.Rlimit{Cur: uint64(len(fds) + fewFilesSpare)}
	var cur syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &cur); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	lim.Max = cur.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	const users = 80
	arr, _ := Plan{Users: users, Ramp: time.Second, Duration: 20 * time.Second, Linger: time.Second}.Arrivals()
	e, err := New(Config{
		RunID: "fewfiles", Arrivals: arr, Pacer: PoissonPacer{Mean: time.Second}, MessageSize: 32,
		Window: time.Second, JoinTimeout: 5 * time.Second, ChurnPause: 200 * time.Millisecond, Seed: 1,
		StopTimeout: 3 * time.Second,
		Dial: func(int) sioclient.Options {
			return sioclient.Options{URL: target, Transport: sioclient.WebSocket, ConnectTimeout: 5 * time.Second}
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := Measure(ctx, e, NewMetrics(e.MetricsConfig()), true)
	if err := json.NewEncoder(os.Stdout).Encode(s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

// A generator that runs out of open files must say so and stop: its failed
// dials say nothing about the target (which is up and serving here), so
// they are neither connect failures nor an outage of the target.
func TestOutOfOpenFilesEndsAsGeneratorLimit(t *testing.T) {
	url := startReference(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fewFilesEnv+"="+url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, stderr.String())
	}
	var s Summary
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("child summary: %v\n%s", err, out)
	}
	if s.Ended != EndedGeneratorLimit {
		t.Fatalf("ended = %q (%s), want %s", s.Ended, s.EndedDetail, EndedGeneratorLimit)
	}
	for _, want := range []string{"too many open files", "ulimit -n", "not the target's"} {
		if !strings.Contains(s.EndedDetail, want) {
			t.Errorf("detail %q does not say %q", s.EndedDetail, want)
		}
	}
	if len(s.Outages) != 0 {
		t.Errorf("outages = %+v: the target never went down", s.Outages)
	}
	for _, ec := range s.Errors {
		if strings.Contains(ec.Message, "too many open files") {
			t.Errorf("the generator's own limit is counted against the target: %+v", ec)
		}
	}
	if s.Users.ConnectErrors != 0 || s.Users.Dropped != 0 {
		t.Errorf("users = %+v: the generator's own limit counted as connect errors or drops", s.Users)
	}
	if s.Users.Connected == 0 {
		t.Errorf("no user joined before the limit: the child had too few descriptors to test anything")
	}
}

func TestLocalLimitErrors(t *testing.T) {
	wrapped := fmt.Errorf("dial: %w", &os.SyscallError{Syscall: "socket", Err: syscall.EMFILE})
	for _, c := range []struct {
		err  error
		want bool
	}{
		{wrapped, true},
		{syscall.ENFILE, true},
		{syscall.EADDRNOTAVAIL, true},
		{syscall.ECONNREFUSED, false},
		{errors.New("too many open files"), false}, // text alone is not the errno
		{nil, false},
	} {
		if got := localLimit(c.err); got != c.want {
			t.Errorf("localLimit(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
