package shard

import (
	"compress/gzip"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/chatspec/chatspec/loadgen"
)

// Merged is the outcome of merging a run's shards.
type Merged struct {
	// Summary is the run's report, thresholds not yet applied.
	Summary *loadgen.Summary
	// Thresholds are the shards' own (they agree, or Agree is false).
	Thresholds []string
	Agree      bool
	Manifests  []Manifest // in shard order
}

// Merge reads the shards' report directories (one per shard, any order)
// and replays their records through one loadgen.Metrics. Shards that do
// not belong together (run ID, plan, shard count, start, secret), a shard
// missing or given twice, and records that do not match their manifest
// are refused with an error wrapping loadgen.ErrShard.
func Merge(dirs []string) (*Merged, error) {
	if len(dirs) == 0 {
		return nil, fmt.Errorf("%w: no shard directories given", loadgen.ErrShard)
	}
	ms := make([]Manifest, len(dirs))
	for i, d := range dirs {
		m, err := ReadManifest(d)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", loadgen.ErrShard, err)
		}
		ms[i] = m
	}
	order, err := check(dirs, ms)
	if err != nil {
		return nil, err
	}
	sortedDirs := make([]string, len(order))
	sortedMs := make([]Manifest, len(order))
	for k, i := range order {
		sortedDirs[k], sortedMs[k] = dirs[i], ms[i]
	}
	dirs, ms = sortedDirs, sortedMs
	first := ms[0]
	out := &Merged{Manifests: ms, Thresholds: first.Thresholds, Agree: true}
	for _, m := range ms[1:] {
		if !slices.Equal(m.Thresholds, first.Thresholds) {
			out.Agree = false
		}
	}

	streams := make([]*stream, len(ms))
	for i := range ms {
		s, err := openStream(dirs[i], i)
		if err != nil {
			closeAll(streams)
			return nil, fmt.Errorf("%w: %v", loadgen.ErrShard, err)
		}
		streams[i] = s
	}
	defer closeAll(streams)

	metrics := loadgen.NewMetrics(loadgen.MetricsConfig{Users: first.Users, Window: time.Duration(first.WindowNS), Interval: time.Duration(first.IntervalNS)})
	r := replay{metrics: metrics, shards: loadgen.Shard{Count: first.Count}, ids: make([]map[int32]int32, len(ms))}
	if err := r.run(streams); err != nil {
		return nil, err
	}
	for i, s := range streams {
		if s.dec.n != ms[i].Records {
			return nil, fmt.Errorf("%w: %s: %d records, its manifest says %d", loadgen.ErrShard, s.path, s.dec.n, ms[i].Records)
		}
	}
	out.Summary = summarize(ms, metrics, r.cross)
	return out, nil
}

// check verifies that the manifests are the shards of one run, each once,
// and returns their indexes in shard order.
func check(dirs []string, ms []Manifest) ([]int, error) {
	first := ms[0]
	bad := func(i int, what string, got, want any) error {
		return fmt.Errorf("%w: %s is shard %d/%d of run %q with %s %v, but %s has %v: not shards of one run",
			loadgen.ErrShard, dirs[i], ms[i].Index, ms[i].Count, ms[i].RunID, what, got, dirs[0], want)
	}
	if first.Count < 1 || first.Count > loadgen.MaxShards {
		return nil, fmt.Errorf("%w: %s: shard count %d", loadgen.ErrShard, dirs[0], first.Count)
	}
	at := make([]int, first.Count)
	for i := range at {
		at[i] = -1
	}
	for i, m := range ms {
		switch {
		case m.RunID != first.RunID:
			return nil, bad(i, "run ID", m.RunID, first.RunID)
		case m.Count != first.Count:
			return nil, bad(i, "shard count", m.Count, first.Count)
		case m.PlanDigest != first.PlanDigest:
			return nil, bad(i, "plan digest", m.PlanDigest, first.PlanDigest+" (a different plan: users, pacing, seed, window or start differ)")
		case !m.Start.Equal(first.Start):
			return nil, bad(i, "start", m.Start, first.Start)
		case m.SecretDigest != first.SecretDigest:
			return nil, bad(i, "secret digest", m.SecretDigest, first.SecretDigest+" (CHATSPEC_RUN_SECRET differed)")
		case m.Users != first.Users || m.WindowNS != first.WindowNS || m.IntervalNS != first.IntervalNS:
			return nil, bad(i, "users/window/interval", fmt.Sprint(m.Users, m.WindowNS, m.IntervalNS), fmt.Sprint(first.Users, first.WindowNS, first.IntervalNS))
		case m.Index < 0 || m.Index >= m.Count:
			return nil, fmt.Errorf("%w: %s: shard index %d of %d", loadgen.ErrShard, dirs[i], m.Index, m.Count)
		case at[m.Index] >= 0:
			return nil, fmt.Errorf("%w: %s and %s are both shard %d/%d", loadgen.ErrShard, dirs[at[m.Index]], dirs[i], m.Index, m.Count)
		}
		at[m.Index] = i
	}
	var missing []string
	for idx, i := range at {
		if i < 0 {
			missing = append(missing, fmt.Sprintf("%d/%d", idx, first.Count))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: run %q has %d shards; missing %s", loadgen.ErrShard, first.RunID, first.Count, strings.Join(missing, ", "))
	}
	return at, nil
}

// stream is one shard's records, read ahead by one.
type stream struct {
	shard int
	path  string
	f     *os.File
	gz    *gzip.Reader
	dec   *decoder
	head  loadgen.Result
	done  bool
}

func openStream(dir string, shard int) (*stream, error) {
	path := filepath.Join(dir, ResultsFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	gz, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s := &stream{shard: shard, path: path, f: f, gz: gz, dec: newDecoder(gz)}
	return s, s.advance()
}

func (s *stream) advance() error {
	r, err := s.dec.decode()
	switch {
	case errors.Is(err, io.EOF):
		s.done = true
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", s.path, err)
	}
	s.head = r
	return nil
}

func closeAll(streams []*stream) {
	for _, s := range streams {
		if s != nil {
			s.gz.Close()
			s.f.Close()
		}
	}
}

// heads orders the streams by their next record's time, then by shard,
// so the replay is deterministic.
type heads []*stream

func (h heads) Len() int { return len(h) }
func (h heads) Less(i, j int) bool {
	if h[i].head.At != h[j].head.At {
		return h[i].head.At < h[j].head.At
	}
	return h[i].shard < h[j].shard
}
func (h heads) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *heads) Push(x any)   { *h = append(*h, x.(*stream)) }
func (h *heads) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// replay feeds the shards' records to one Metrics in time order. Each
// shard's records keep their own order (the engine's order, which the
// accounting needs per session); across shards, the earliest goes first,
// and a TimeOrder then sorts them as Measure sorts one process's.
type replay struct {
	metrics *loadgen.Metrics
	order   *loadgen.TimeOrder
	shards  loadgen.Shard
	ids     []map[int32]int32 // per shard: its session IDs to the merged run's
	next    int32
	cross   int64
}

// maxSessions bounds the merged run's sessions, as the engine's int32
// session counter does.
const maxSessions = 1<<31 - 1

func (r *replay) run(streams []*stream) error {
	h := heads{}
	for _, s := range streams {
		if !s.done {
			h = append(h, s)
		}
	}
	heap.Init(&h)
	// The same ordering as one process's Measure, so the same records give
	// the same figures; it also counts the deliveries that crossed shards.
	r.order = loadgen.NewTimeOrder(loadgen.OrderHorizon, func(res loadgen.Result) {
		if res.Kind == loadgen.Delivered && r.shards.Of(int(res.Sender)) != r.shards.Of(int(res.User)) {
			before := r.metrics.Live().Delivered
			r.metrics.Add(res)
			if r.metrics.Live().Delivered > before {
				r.cross++
			}
			return
		}
		r.metrics.Add(res)
	})
	defer r.order.Flush()
	for len(h) > 0 {
		s := h[0]
		res := s.head
		// Session IDs are each shard's own, from 0: give every (shard,
		// session) a number of its own in the merged run.
		ids := r.ids[s.shard]
		if ids == nil {
			ids = map[int32]int32{}
			r.ids[s.shard] = ids
		}
		id, ok := ids[res.Session]
		if !ok {
			if r.next == maxSessions {
				return fmt.Errorf("%w: more than %d sessions", loadgen.ErrShard, maxSessions)
			}
			id = r.next
			r.next++
			ids[res.Session] = id
		}
		res.Session = id
		r.order.Add(res)
		if err := s.advance(); err != nil {
			return fmt.Errorf("%w: %v", loadgen.ErrShard, err)
		}
		if s.done {
			heap.Pop(&h)
		} else {
			heap.Fix(&h, 0)
		}
	}
	return nil
}

// summarize closes the metrics with the shards' combined usage and fills
// the rest of the run's summary from the manifests.
func summarize(ms []Manifest, metrics *loadgen.Metrics, cross int64) *loadgen.Summary {
	first := ms[0]
	s := &loadgen.Summary{RunID: first.RunID, Started: first.Start.UTC(), Ended: loadgen.EndedCompleted}
	var u loadgen.Usage
	var end time.Duration
	var outages []loadgen.Outage
	targets := []string{}
	shards := &loadgen.ShardsSummary{Count: first.Count, Merged: true, CrossShardDelivered: cross}
	for _, m := range ms {
		u.CPU += time.Duration(m.CPUNS)
		u.Wall = max(u.Wall, time.Duration(m.WallNS))
		u.MaxRSS = max(u.MaxRSS, m.MaxRSSBytes)
		u.Cores += m.Cores
		end = max(end, time.Duration(m.EndNS))
		outages = append(outages, m.Outages...)
		for _, t := range m.Config.Targets {
			if !slices.Contains(targets, t) {
				targets = append(targets, t)
			}
		}
		if m.Ended != loadgen.EndedCompleted && s.Ended == loadgen.EndedCompleted {
			s.Ended, s.EndedDetail = m.Ended, fmt.Sprintf("shard %d/%d: %s", m.Index, m.Count, m.EndedDetail)
		}
		shards.PerShard = append(shards.PerShard, loadgen.ShardRun{Index: m.Index, Users: m.ShardUsers, Records: m.Records, Ended: m.Ended,
			CPUSeconds: time.Duration(m.CPUNS).Seconds(), MaxRSSBytes: m.MaxRSSBytes, Saturated: m.Saturated})
	}
	sort.SliceStable(outages, func(i, j int) bool { return outages[i].Start < outages[j].Start })
	s.Outages = loadgen.SummarizeOutages(outages, end)
	metrics.Close(end, u, s)
	s.Config = first.Config
	s.Config.Targets = targets
	s.Shards = shards
	return s
}
