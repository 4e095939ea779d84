package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatspec/chatspec/loadgen"
)

func TestPeakConcurrentUsers(t *testing.T) {
	at := func(s int) time.Duration { return time.Duration(s) * time.Second }
	arr := []loadgen.Arrival{
		{User: 0, At: at(0), Leave: at(10)},
		{User: 1, At: at(1), Leave: at(3)},
		{User: 2, At: at(3), Leave: at(5)}, // arrives as user 1 leaves
		{User: 3, At: at(4), Leave: at(6)},
		{User: 4, At: at(20), Leave: at(21)},
	}
	for _, c := range []struct {
		shard loadgen.Shard
		want  int
	}{
		{loadgen.Shard{}, 3},                   // users 0, 2, 3 at t=4
		{loadgen.Shard{Index: 0, Count: 2}, 2}, // users 0, 2, 4
		{loadgen.Shard{Index: 1, Count: 2}, 1}, // users 1 and 3 never overlap
	} {
		if got := peakConcurrentUsers(arr, c.shard); got != c.want {
			t.Errorf("shard %s: peak = %d, want %d", c.shard, got, c.want)
		}
	}
}

func TestCheckOpenFiles(t *testing.T) {
	arr, err := loadgen.Plan{Users: 1000, Ramp: time.Second, Duration: time.Second}.Arrivals()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name                string
		shard               loadgen.Shard
		seedStyle, embedded bool
		limit               uint64
		fits                bool
	}{
		{"fits", loadgen.Shard{}, false, false, 1000 + fdReserve, true},
		{"one short", loadgen.Shard{}, false, false, 1000 + fdReserve - 1, false},
		{"embedded doubles", loadgen.Shard{}, false, true, 1500, false},
		{"seed style doubles", loadgen.Shard{}, true, false, 1500, false},
		{"a quarter shard", loadgen.Shard{Index: 1, Count: 4}, false, false, 250 + fdReserve, true},
	} {
		err := checkOpenFiles(arr, c.shard, c.seedStyle, c.embedded, c.limit)
		if (err == nil) != c.fits {
			t.Errorf("%s: err = %v, want fits=%v", c.name, err, c.fits)
		}
		if err != nil && (!strings.Contains(err.Error(), "ulimit -n") || !strings.Contains(err.Error(), "--shard")) {
			t.Errorf("%s: %q names neither the limit nor the way out", c.name, err)
		}
	}
}

// A plan that cannot fit the process's open-file limit is refused before
// anything runs, and the report says why.
func TestLoadRefusesAPlanPastTheOpenFileLimit(t *testing.T) {
	limit, ok := loadgen.OpenFileLimit()
	if !ok {
		t.Skip("no open-file limit on this platform")
	}
	// Seed-style users on the embedded server: four descriptors a user.
	const users = loadgen.MaxUsers
	if limit >= 4*users+fdReserve {
		t.Skipf("this machine allows %d open files, more than the largest plan needs", limit)
	}
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := runLoad(ctx, []string{"--users", "1000000", "--ramp", "1s", "--duration", "1s", "--seed-style", "--report-dir", dir}, &stdout, &stderr)
	if code != ExitUsage {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, ExitUsage, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "ulimit -n") {
		t.Errorf("stderr does not name the limit: %s", stderr.String())
	}
	raw, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s loadgen.Summary
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.Ended != loadgen.EndedNotStarted || !strings.Contains(s.EndedDetail, "open files") {
		t.Errorf("summary ended %q (%s), want not_started naming open files", s.Ended, s.EndedDetail)
	}
}
