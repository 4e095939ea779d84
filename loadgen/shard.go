package loadgen

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Shard names one slice of a plan: the users whose index is Index modulo
// Count. Dealing users round-robin (rather than in blocks) gives every
// shard the same mix of early and late arrivals, so each carries about
// 1/Count of the load at every moment of a ramp or a staged plan. The
// zero value (and 0/1) is the whole plan.
type Shard struct {
	Index, Count int
}

// Sharded reports whether s is a proper slice (more than one shard).
func (s Shard) Sharded() bool { return s.Count > 1 }

// Runs reports whether user i is in the slice.
func (s Shard) Runs(i int) bool { return s.Count <= 1 || i%s.Count == s.Index }

// Of returns the shard that runs user i.
func (s Shard) Of(i int) int {
	if s.Count <= 1 {
		return 0
	}
	return i % s.Count
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, max(s.Count, 1)) }

// MaxShards bounds --shard's N: more shards than this would each run
// almost nothing, and the merge holds one reader per shard.
const MaxShards = 1000

func (s Shard) check(users int) error {
	switch {
	case s.Count == 0 && s.Index == 0:
		return nil
	case s.Count < 1 || s.Count > MaxShards || s.Index < 0 || s.Index >= s.Count:
		return fmt.Errorf("shard %d/%d: want I/N with 0 <= I < N <= %d", s.Index, s.Count, MaxShards)
	case s.Count > users:
		return fmt.Errorf("shard %d/%d: more shards than the plan's %d users", s.Index, s.Count, users)
	}
	return nil
}

// ParseShard parses "I/N" (I counts from 0, as Kubernetes'
// JOB_COMPLETION_INDEX does).
func ParseShard(v string) (Shard, error) {
	i, n, ok := strings.Cut(v, "/")
	idx, err1 := strconv.Atoi(i)
	cnt, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("%q: want I/N, e.g. 0/4 (I from 0 to N-1)", v)
	}
	s := Shard{Index: idx, Count: cnt}
	if s.Count < 1 || s.Count > MaxShards || s.Index < 0 || s.Index >= s.Count {
		return Shard{}, fmt.Errorf("%q: want 0 <= I < N <= %d", v, MaxShards)
	}
	return s, nil
}

// ErrShard wraps the errors of merging shards.
var ErrShard = errors.New("cannot merge shards")
