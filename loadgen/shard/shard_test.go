package shard

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chatspec/chatspec/loadgen"
	"github.com/chatspec/chatspec/reference"
	"github.com/chatspec/chatspec/spec/sioclient"
)

func TestRecordRoundTrip(t *testing.T) {
	in := []loadgen.Result{
		{Kind: loadgen.Connected, User: 3, Session: 7, At: 5 * time.Millisecond, Latency: 2 * time.Millisecond},
		{Kind: loadgen.Joined, User: 3, Session: 7, At: 9 * time.Millisecond, Latency: time.Millisecond},
		{Kind: loadgen.Sent, User: 3, Session: 7, Sender: 3, Seq: 1, At: time.Second + 3, Intended: time.Second},
		{Kind: loadgen.Delivered, User: 4, Session: 8, Sender: 3, Seq: 1, At: time.Second - 5, Intended: time.Second, Pred: loadgen.PackID(1, 9)},
		{Kind: loadgen.Refused, User: 3, Session: 7, Sender: 3, Seq: 2, At: 2 * time.Second, Err: &loadgen.RefusalError{Event: "writeMessage", Code: "rate_limited"}},
		{Kind: loadgen.Left, User: 4, Session: 8, At: 3 * time.Second, Abrupt: true, Err: sioclient.ErrServerDisconnect},
		{Kind: loadgen.Left, User: 3, Session: 7, At: 3 * time.Second, Planned: true},
		{Kind: loadgen.Noted, Note: loadgen.NoteRepeat, User: 4, Session: 8, Sender: 3, Seq: 1, At: 3 * time.Second},
		{Kind: loadgen.Tick, At: 4 * time.Second, Intended: 4*time.Second - time.Millisecond, Goroutines: 1234},
		{Kind: loadgen.ConnectFailed, User: 1<<31 - 1, Session: 1<<31 - 1, Sender: 1<<32 - 1, Seq: 1<<32 - 1, At: 0, Err: errors.New("dial tcp 127.0.0.1:1: connection refused")},
	}
	var buf bytes.Buffer
	enc := newEncoder(&buf)
	for _, r := range in {
		if err := enc.encode(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.w.Flush(); err != nil {
		t.Fatal(err)
	}
	dec := newDecoder(&buf)
	for i, want := range in {
		got, err := dec.decode()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if (got.Err == nil) != (want.Err == nil) {
			t.Fatalf("record %d: error %v, want %v", i, got.Err, want.Err)
		}
		if want.Err != nil {
			// What the metrics read of an error: its text, how it ended a
			// session, and a refusal's event and code.
			if got.Err.Error() != want.Err.Error() || loadgen.EndedHow(got.Err) != loadgen.EndedHow(want.Err) {
				t.Errorf("record %d: error %q (%s), want %q (%s)", i, got.Err, loadgen.EndedHow(got.Err), want.Err, loadgen.EndedHow(want.Err))
			}
			var gr, wr *loadgen.RefusalError
			if errors.As(want.Err, &wr) && (!errors.As(got.Err, &gr) || *gr != *wr) {
				t.Errorf("record %d: refusal %#v, want %#v", i, got.Err, wr)
			}
			got.Err, want.Err = nil, nil
		}
		if got != want {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	if _, err := dec.decode(); err != io.EOF {
		t.Fatalf("after the last record: %v, want io.EOF", err)
	}
}

func TestDecodeRefusesCorruptRecords(t *testing.T) {
	var good bytes.Buffer
	enc := newEncoder(&good)
	_ = enc.encode(loadgen.Result{Kind: loadgen.Left, User: 1, Session: 1, At: time.Second, Err: errors.New("boom")})
	_ = enc.w.Flush()
	b := good.Bytes()
	cases := map[string][]byte{
		"truncated":   b[:len(b)-2],
		"bad kind":    append([]byte{0x0f}, b[1:]...),
		"high bit":    append([]byte{b[0] | 0x80}, b[1:]...),
		"huge string": append(append([]byte{}, b[:len(b)-6]...), 0xff, 0xff, 0xff, 0xff, 0x0f),
		"bad class":   bytes.Replace(b, []byte{errOther}, []byte{9}, 1),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := newDecoder(bytes.NewReader(data)).decode()
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("decode: %v, want a corrupt-record error", err)
			}
		})
	}
}

// recordedRun is one process's run of the whole plan, recorded as shard
// 0 of 1, with the summary that process printed.
type recordedRun struct {
	dir     string
	summary *loadgen.Summary
	usage   loadgen.Usage
}

// runRecorded runs a plan with reconnects (churn), refusals (the server's
// rate limit against writers faster than it) and mixed transports against
// the reference, recording every result.
func runRecorded(t *testing.T) recordedRun {
	t.Helper()
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.HistoryLimit = 50
	cfg.Rate, cfg.RateBurst = 4, 2
	srv, err := reference.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	})
	window := time.Second
	arr, err := loadgen.Plan{Users: 18, Ramp: time.Second, Duration: 3 * time.Second, Linger: window}.Arrivals()
	if err != nil {
		t.Fatal(err)
	}
	e, err := loadgen.New(loadgen.Config{
		RunID: "split", Arrivals: arr, Pacer: loadgen.PoissonPacer{Mean: 200 * time.Millisecond}, Window: window, Seed: 11,
		Churn: 0.3, ChurnPause: 300 * time.Millisecond, Start: time.Now(),
		Transports: []loadgen.TransportShare{{Transport: sioclient.WebSocket, Weight: 2}, {Transport: sioclient.Polling, Weight: 1}},
		Dial:       func(int) sioclient.Options { return sioclient.Options{URL: srv.URL()} },
	})
	if err != nil {
		t.Fatal(err)
	}
	mc := e.MetricsConfig()
	dir := t.TempDir()
	rec, err := Create(dir, Manifest{RunID: "split", Index: 0, Count: 1, Start: time.Now().UTC(), PlanDigest: "p",
		Users: mc.Users, ShardUsers: mc.Users, WindowNS: int64(mc.Window), IntervalNS: int64(mc.Interval)})
	if err != nil {
		t.Fatal(err)
	}
	s, u := loadgen.MeasureWith(context.Background(), e, loadgen.NewMetrics(mc), false, rec.Record)
	rec.m.Start = e.Started().UTC()
	if err := rec.Finish(End{Outcome: e.Outcome(), Outages: e.Outages(), Usage: u, Saturated: s.Generator.Saturated}); err != nil {
		t.Fatal(err)
	}
	if s.Messages.Delivered == 0 || s.Messages.Refused == 0 || s.Users.Reconnects == 0 {
		t.Fatalf("the run should deliver, be refused and reconnect: delivered %d, refused %d, reconnects %d",
			s.Messages.Delivered, s.Messages.Refused, s.Users.Reconnects)
	}
	return recordedRun{dir, s, u}
}

// split deals one recorded run's records to n shards by user, as n
// shards running the same plan would have recorded them (each shard its
// users' records, in the order they happened, its sessions numbered from
// 0), with the process's usage on shard 0.
func split(t *testing.T, run recordedRun, n int) []string {
	t.Helper()
	m, err := ReadManifest(run.dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(run.dir, ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	dec := newDecoder(gz)
	dirs := make([]string, n)
	recs := make([]*Recorder, n)
	local := make([]map[int32]int32, n)
	for i := range n {
		local[i] = map[int32]int32{}
		dirs[i] = t.TempDir()
		sm := m
		sm.Index, sm.Count = i, n
		if recs[i], err = Create(dirs[i], sm); err != nil {
			t.Fatal(err)
		}
	}
	for {
		r, err := dec.decode()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		// Each shard's engine numbers its own sessions from 0.
		k := int(r.User) % n
		id, ok := local[k][r.Session]
		if !ok {
			id = int32(len(local[k]))
			local[k][r.Session] = id
		}
		r.Session = id
		recs[k].Record(r)
	}
	for i, rec := range recs {
		end := End{Outcome: loadgen.Outcome{Ended: m.Ended, Detail: m.EndedDetail, End: time.Duration(m.EndNS)}, Outages: m.Outages, Saturated: m.Saturated}
		end.Usage.Wall = time.Duration(m.WallNS)
		if i == 0 {
			end.Usage = run.usage
		}
		if err := rec.Finish(end); err != nil {
			t.Fatal(err)
		}
	}
	return dirs
}

// comparable returns the summary's JSON without what only a merged report
// has (its shards, and the configuration the command line adds).
func comparable(t *testing.T, s *loadgen.Summary) map[string]json.RawMessage {
	t.Helper()
	c := *s
	c.Shards, c.Config = nil, loadgen.ConfigSummary{}
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	return fields
}

// TestMergeOfSplitRecordsReproducesTheRun is issue 15's proof that the
// merge is exact: one process's records, dealt to 1, 3 and 5 shards and
// merged, give that process's own summary figure for figure: delivery
// accounting, histograms and their percentiles, users, sessions, errors,
// refusals, per-sender rows, timeline, generator lag.
func TestMergeOfSplitRecordsReproducesTheRun(t *testing.T) {
	run := runRecorded(t)
	want := comparable(t, run.summary)
	for _, n := range []int{1, 3, 5} {
		dirs := split(t, run, n)
		// Any order of directories on the command line.
		for i, j := 0, len(dirs)-1; i < j; i, j = i+1, j-1 {
			dirs[i], dirs[j] = dirs[j], dirs[i]
		}
		merged, err := Merge(dirs)
		if err != nil {
			t.Fatalf("%d shards: %v", n, err)
		}
		got := comparable(t, merged.Summary)
		for k, w := range want {
			if !bytes.Equal(got[k], w) {
				t.Errorf("%d shards: %s differs:\n merged %s\n single %s", n, k, got[k], w)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%d shards: %d fields, the single run %d", n, len(got), len(want))
		}
		sh := merged.Summary.Shards
		if sh == nil || sh.Count != n || !sh.Merged || len(sh.PerShard) != n {
			t.Fatalf("%d shards: shards summary %+v", n, sh)
		}
		if n == 1 && sh.CrossShardDelivered != 0 || n > 1 && sh.CrossShardDelivered == 0 {
			t.Errorf("%d shards: %d cross-shard deliveries", n, sh.CrossShardDelivered)
		}
		if n > 1 && sh.CrossShardDelivered >= merged.Summary.Messages.Delivered {
			t.Errorf("%d shards: %d of %d deliveries crossed shards: a receiver's own shard must count too", n, sh.CrossShardDelivered, merged.Summary.Messages.Delivered)
		}
	}
}

func TestMergeRefusesShardsThatDoNotBelongTogether(t *testing.T) {
	run := runRecorded(t)
	dirs := split(t, run, 3)
	edit := func(dir string, f func(*Manifest)) string {
		m, err := ReadManifest(dir)
		if err != nil {
			t.Fatal(err)
		}
		f(&m)
		out := t.TempDir()
		b, _ := json.Marshal(m)
		if err := os.WriteFile(filepath.Join(out, ManifestFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, ResultsFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, ResultsFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		return out
	}
	unfinished := t.TempDir()
	cases := []struct {
		name string
		dirs []string
		want string
	}{
		{"missing shard", dirs[:2], "missing 2/3"},
		{"shard twice", []string{dirs[0], dirs[1], dirs[1]}, "are both shard 1/3"},
		{"other run", []string{dirs[0], dirs[1], edit(dirs[2], func(m *Manifest) { m.RunID = "other" })}, "run ID"},
		{"other plan", []string{dirs[0], dirs[1], edit(dirs[2], func(m *Manifest) { m.PlanDigest = "x" })}, "plan digest"},
		{"other secret", []string{dirs[0], dirs[1], edit(dirs[2], func(m *Manifest) { m.SecretDigest = "x" })}, "secret digest"},
		{"other start", []string{dirs[0], dirs[1], edit(dirs[2], func(m *Manifest) { m.Start = m.Start.Add(time.Second) })}, "start"},
		{"other count", []string{dirs[0], dirs[1], edit(dirs[2], func(m *Manifest) { m.Count = 4 })}, "shard count"},
		{"records missing", []string{dirs[0], dirs[1], edit(dirs[2], func(m *Manifest) { m.Records++ })}, "its manifest says"},
		{"unfinished shard", []string{dirs[0], dirs[1], unfinished}, "has not finished"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Merge(c.dirs)
			if !errors.Is(err, loadgen.ErrShard) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Merge: %v, want an ErrShard saying %q", err, c.want)
			}
		})
	}
	if _, err := Merge(dirs); err != nil {
		t.Fatalf("the three shards themselves: %v", err)
	}
}

func TestPlanDigestIgnoresTargetsOnly(t *testing.T) {
	p := Plan{RunID: "r", Count: 3, Start: time.Unix(100, 0), Seed: 1, Config: loadgen.ConfigSummary{Users: 9, Targets: []string{"http://a"}}}
	q := p
	q.Config.Targets = []string{"http://b"}
	if p.Digest() != q.Digest() {
		t.Error("shards loading different nodes of one cluster must agree")
	}
	for name, f := range map[string]func(*Plan){
		"seed": func(p *Plan) { p.Seed = 2 }, "users": func(p *Plan) { p.Config.Users = 10 },
		"start": func(p *Plan) { p.Start = p.Start.Add(time.Nanosecond) }, "count": func(p *Plan) { p.Count = 4 },
		"extra": func(p *Plan) { p.Extra = "join-timeout=1s" },
	} {
		r := p
		f(&r)
		if r.Digest() == p.Digest() {
			t.Errorf("a different %s gives the same digest", name)
		}
	}
	if !reflect.DeepEqual(SecretDigest(nil), "") || SecretDigest([]byte("a")) == SecretDigest([]byte("b")) {
		t.Error("SecretDigest")
	}
}
