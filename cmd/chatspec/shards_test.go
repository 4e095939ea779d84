package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestShardUsageErrors(t *testing.T) {
	t.Setenv(runSecretEnv, "")
	full := []string{"--target", "http://127.0.0.1:1", "--run-id", "r", "--seed", "1", "--report-dir", t.TempDir(), "--start-at", "2026-12-07T16:00:00Z"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad shard", []string{"--shard", "3/3"}, `--shard "3/3": want 0 <= I < N`},
		{"shard syntax", []string{"--shard", "1of3"}, "want I/N"},
		{"needs everything", []string{"--shard", "0/3"}, "--shard 0/3 needs --target (shards load one server; an embedded one per shard would be N servers), --run-id (the same on every shard), --seed"},
		{"needs the secret", append([]string{"--shard", "0/3"}, full...), "CHATSPEC_RUN_SECRET in the environment"},
		{"bad start", []string{"--start-at", "tomorrow"}, "--start-at \"tomorrow\": want an RFC 3339 time"},
		{"more shards than users", []string{"--users", "5", "--shard", "2/9"}, "more shards than the plan's 5 users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runLoadCmd(context.Background(), t, append([]string{"load"}, tt.args...)...)
			if code != ExitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", code, stderr, ExitUsage, tt.want)
			}
		})
	}
	t.Setenv(runSecretEnv, "short")
	code, _, stderr := runLoadCmd(context.Background(), t, append([]string{"load", "--shard", "0/3"}, full...)...)
	if code != ExitUsage || !strings.Contains(stderr, "at least 16") {
		t.Errorf("a short secret: exit %d, stderr %q", code, stderr)
	}
}

// TestShardedRunMergedOwesEveryMessageAcrossShards is issue 15's live
// proof: three shards of one plan against one reference server, merged:
// every message owed across shards is delivered, and deliveries from one
// shard's senders to another's receivers are counted as such.
func TestShardedRunMergedOwesEveryMessageAcrossShards(t *testing.T) {
	srv, err := startReferenceAt(t, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(context.Background())
	t.Setenv(runSecretEnv, "test-secret-of-the-three-shards")
	root := t.TempDir()
	start := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	const n = 3
	var wg sync.WaitGroup
	codes := make([]int, n)
	outs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], outs[i], _ = runLoadCmd(context.Background(), t, "load", "--target", srv.URL(),
				"--users", "15", "--ramp", "1s", "--duration", "3s", "--message-interval", "300ms", "--delivery-window", "2s",
				"--transport-mix", "websocket=2,polling=1", "--run-id", "threeshards", "--seed", "5", "--start-at", start,
				"--shard", fmt.Sprintf("%d/%d", i, n), "--report-dir", filepath.Join(root, fmt.Sprint(i)), "--progress", "off")
		}()
	}
	wg.Wait()
	for i := range n {
		if codes[i] != ExitOK {
			t.Fatalf("shard %d: exit %d\n%s", i, codes[i], outs[i])
		}
		if doc := readSummary(t, filepath.Join(root, fmt.Sprint(i))); doc["verdict"] != "partial" {
			t.Errorf("shard %d's own report: verdict %v, want partial (the merge gates)", i, doc["verdict"])
		}
	}
	out := filepath.Join(root, "merged")
	code, stdout, stderr := runLoadCmd(context.Background(), t, "merge", "--report-dir", out,
		filepath.Join(root, "2"), filepath.Join(root, "0"), filepath.Join(root, "1"))
	if code != ExitOK {
		t.Fatalf("merge: exit %d\n%s\n%s", code, stdout, stderr)
	}
	doc := readSummary(t, out)
	schema := compileSchema(t, "summary.schema.json")
	for _, dir := range []string{out, filepath.Join(root, "0")} {
		if err := validateFile(t, schema, filepath.Join(dir, "summary.json")); err != nil {
			t.Errorf("%s/summary.json does not match summary.schema.json:\n%v", dir, err)
		}
	}
	msgs := doc["messages"].(map[string]any)
	shards := doc["shards"].(map[string]any)
	users := doc["users"].(map[string]any)
	expected, delivered := msgs["expected_deliveries"].(float64), msgs["delivered"].(float64)
	cross := shards["cross_shard_delivered"].(float64)
	t.Logf("merged: users %v, sent %v, expected %v, delivered %v, lost %v, cross-shard %v", users["connected"], msgs["sent"], expected, delivered, msgs["lost"], cross)
	switch {
	case users["planned"].(float64) != 15 || users["connected"].(float64) != 15:
		t.Errorf("users %v: want all 15 of the plan", users)
	case expected == 0 || delivered != expected || msgs["lost"].(float64) != 0:
		t.Errorf("expected %v, delivered %v, lost %v: want every owed delivery", expected, delivered, msgs["lost"])
	case shards["count"].(float64) != n || shards["merged"] != true:
		t.Errorf("shards %v", shards)
	// Each receiver hears 5 users of its own shard (itself included) and
	// 10 of the others: about two thirds of the deliveries cross.
	case cross < delivered/2 || cross > delivered*5/6:
		t.Errorf("%v of %v deliveries crossed shards: want about two thirds", cross, delivered)
	}
	// A merge that misses a shard is refused, with exit 2 and a report.
	bad := filepath.Join(root, "bad")
	code, _, stderr = runLoadCmd(context.Background(), t, "merge", "--report-dir", bad, filepath.Join(root, "0"), filepath.Join(root, "1"))
	if code != ExitUsage || !strings.Contains(stderr, "missing 2/3") {
		t.Errorf("merge of two of three shards: exit %d, stderr %q", code, stderr)
	}
	if doc := readSummary(t, bad); doc["ended"] != "not_started" || !strings.Contains(doc["ended_detail"].(string), "missing 2/3") {
		t.Errorf("the refused merge's report: %v / %v", doc["ended"], doc["ended_detail"])
	}
}

func TestMergeCommandLine(t *testing.T) {
	if code, stdout, _ := runLoadCmd(context.Background(), t, "merge", "--help"); code != ExitOK || !strings.Contains(stdout, "Usage: chatspec merge") {
		t.Errorf("merge --help: exit %d", code)
	}
	if code, _, stderr := runLoadCmd(context.Background(), t, "merge"); code != ExitUsage || !strings.Contains(stderr, "no shard directories given") {
		t.Errorf("merge without directories: exit %d, %q", code, stderr)
	}
	if code, _, stderr := runLoadCmd(context.Background(), t, "merge", t.TempDir()); code != ExitUsage || !strings.Contains(stderr, "no shard.json") {
		t.Errorf("merge of a directory that is no shard's: exit %d, %q", code, stderr)
	}
}
