package shard

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/chatspec/chatspec/loadgen"
)

// File names in a shard's report directory.
const (
	ManifestFile = "shard.json"
	ResultsFile  = "results.bin.gz"
)

// formatVersion is the version of the manifest and the record format.
const formatVersion = 1

// Manifest describes one shard's run. The fields above Ended are known
// when the shard starts; the rest when it ends. The merge trusts none of
// it blindly: it checks that the shards agree, and that the records are
// as many as the manifest says.
type Manifest struct {
	Format int    `json:"format"`
	RunID  string `json:"run_id"`
	Index  int    `json:"shard_index"`
	Count  int    `json:"shard_count"`
	// Start is the run's origin, the same on every shard.
	Start time.Time `json:"start"`
	// PlanDigest identifies the plan (PlanDigest): shards of one run
	// agree on it.
	PlanDigest string `json:"plan_digest"`
	// SecretDigest identifies the shared secret without revealing it;
	// shards with different secrets would take each other's messages for
	// forgeries.
	SecretDigest string `json:"secret_digest,omitempty"`
	// Users is the whole plan's number of users; ShardUsers this shard's.
	Users      int                   `json:"users"`
	ShardUsers int                   `json:"shard_users"`
	WindowNS   int64                 `json:"window_ns"`
	IntervalNS int64                 `json:"interval_ns"`
	Config     loadgen.ConfigSummary `json:"config"`
	Thresholds []string              `json:"thresholds"`

	Ended       string           `json:"ended"`
	EndedDetail string           `json:"ended_detail,omitempty"`
	EndNS       int64            `json:"end_ns"`
	Outages     []loadgen.Outage `json:"outages"`
	CPUNS       int64            `json:"cpu_ns"`
	WallNS      int64            `json:"wall_ns"`
	MaxRSSBytes int64            `json:"max_rss_bytes"`
	Cores       int              `json:"cores"`
	Saturated   bool             `json:"saturated"`
	Records     int64            `json:"records"`
}

// Plan is what must be equal on every shard of one run for their slices
// to add up to one plan: PlanDigest hashes it.
type Plan struct {
	RunID  string
	Count  int
	Start  time.Time
	Seed   uint64
	Config loadgen.ConfigSummary // Targets are left out: shards may load different nodes of one cluster
	Extra  string                // anything else the caller's users depend on (e.g. timeouts)
}

// Digest returns the plan's digest: hex of SHA-256 over its JSON.
func (p Plan) Digest() string {
	p.Config.Targets = nil
	p.Start = p.Start.UTC()
	b, err := json.Marshal(p)
	if err != nil {
		panic(err) // plain data
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// SecretDigest returns a short digest of the shared secret (empty for
// none), enough to tell two secrets apart.
func SecretDigest(secret []byte) string {
	if secret == nil {
		return ""
	}
	sum := sha256.Sum256(append([]byte("chatspec shard secret\x00"), secret...))
	return hex.EncodeToString(sum[:8])
}

// Recorder writes one shard's records and, at the end, its manifest.
// Record is called from one goroutine (the one feeding Metrics).
type Recorder struct {
	dir string
	m   Manifest
	f   *os.File
	gz  *gzip.Writer
	enc *encoder
	n   int64
	err error
}

// Create starts a shard's records in dir (which must exist), removing a
// manifest left there by an earlier run first, so that a shard that dies
// now cannot pass for one that finished.
func Create(dir string, m Manifest) (*Recorder, error) {
	if err := os.Remove(filepath.Join(dir, ManifestFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing the old %s: %w", ManifestFile, err)
	}
	f, err := os.Create(filepath.Join(dir, ResultsFile))
	if err != nil {
		return nil, err
	}
	gz, _ := gzip.NewWriterLevel(f, gzip.BestSpeed) // BestSpeed is a valid level
	m.Format = formatVersion
	return &Recorder{dir: dir, m: m, f: f, gz: gz, enc: newEncoder(gz)}, nil
}

// Record appends one result. The first write error is kept and returned
// by Finish; records after it are dropped (the manifest is then never
// written, so the merge refuses the shard rather than miscount).
func (r *Recorder) Record(res loadgen.Result) {
	if r.err != nil {
		return
	}
	if r.err = r.enc.encode(res); r.err == nil {
		r.n++
	}
}

// End is how a shard's run ended, for its manifest.
type End struct {
	Outcome   loadgen.Outcome
	Outages   []loadgen.Outage
	Usage     loadgen.Usage
	Saturated bool
}

// Finish flushes the records and writes the manifest (atomically: a
// temporary file renamed into place).
func (r *Recorder) Finish(end End) error {
	err := r.err
	if err == nil {
		err = r.enc.w.Flush()
	}
	if cerr := r.gz.Close(); err == nil {
		err = cerr
	}
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(r.dir, ResultsFile), err)
	}
	m := r.m
	m.Ended, m.EndedDetail, m.EndNS = end.Outcome.Ended, end.Outcome.Detail, int64(end.Outcome.End)
	m.Outages = end.Outages
	if m.Outages == nil {
		m.Outages = []loadgen.Outage{}
	}
	m.CPUNS, m.WallNS, m.MaxRSSBytes, m.Cores = int64(end.Usage.CPU), int64(end.Usage.Wall), end.Usage.MaxRSS, end.Usage.Cores
	m.Saturated, m.Records = end.Saturated, r.n
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(r.dir, ManifestFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(r.dir, ManifestFile))
}

// maxManifest bounds the manifest read from a directory.
const maxManifest = 16 << 20

// ReadManifest reads dir's manifest.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	path := filepath.Join(dir, ManifestFile)
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return m, fmt.Errorf("%s: no %s: not a shard's report directory, or its shard has not finished (it is written last)", dir, ManifestFile)
	}
	if err != nil {
		return m, err
	}
	if st.Size() > maxManifest {
		return m, fmt.Errorf("%s: %d bytes, more than a manifest's %d", path, st.Size(), maxManifest)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	if m.Format != formatVersion {
		return m, fmt.Errorf("%s: format %d, this chatspec reads format %d", path, m.Format, formatVersion)
	}
	return m, nil
}
