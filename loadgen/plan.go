package loadgen

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Arrival is one simulated user's schedule, as offsets from the start: it
// connects at At, sends messages until SendUntil, stays to receive until
// Leave, then disconnects. Arrivals follow the plan whatever the server
// does (an open model): a slow server does not slow them down.
type Arrival struct {
	User      int
	At        time.Duration
	SendUntil time.Duration
	Leave     time.Duration
}

// Stage is one step of a staged plan: over Duration the number of users
// moves linearly from the previous stage's Target to this Target.
type Stage struct {
	Duration time.Duration
	Target   int
}

// Plan describes when users arrive and leave. Either Users with Ramp and
// Duration, or Stages.
type Plan struct {
	// Users arrive evenly over Ramp (all at once when Ramp is 0); each
	// sends for Duration after connecting.
	Users    int
	Ramp     time.Duration
	Duration time.Duration
	// Stages, when set, replace Users/Ramp/Duration: arrivals follow the
	// rises of the target, departures its falls (first in, first out),
	// and everyone left leaves at the end of the last stage.
	Stages []Stage
	// Linger is how long a user keeps receiving after its last send
	// before it leaves (the delivery window, so its own last messages are
	// still expected everywhere).
	Linger time.Duration
}

// MaxUsers bounds a plan, so a typo cannot allocate the machine away.
const MaxUsers = 1_000_000

// ErrPlan wraps every plan error.
var ErrPlan = errors.New("invalid plan")

// Arrivals computes the schedule of every user.
func (p Plan) Arrivals() ([]Arrival, error) {
	if p.Linger < 0 {
		return nil, fmt.Errorf("%w: negative linger %v", ErrPlan, p.Linger)
	}
	if len(p.Stages) > 0 {
		return p.staged()
	}
	if p.Users <= 0 || p.Users > MaxUsers {
		return nil, fmt.Errorf("%w: --users %d: want 1 to %d", ErrPlan, p.Users, MaxUsers)
	}
	if p.Ramp < 0 || p.Duration <= 0 {
		return nil, fmt.Errorf("%w: --ramp %v --duration %v: want ramp >= 0 and duration > 0", ErrPlan, p.Ramp, p.Duration)
	}
	out := make([]Arrival, p.Users)
	for i := range out {
		at := time.Duration(0)
		if p.Users > 1 {
			at = time.Duration(float64(p.Ramp) * float64(i) / float64(p.Users))
		}
		out[i] = Arrival{User: i, At: at, SendUntil: at + p.Duration, Leave: at + p.Duration + p.Linger}
	}
	return out, nil
}

func (p Plan) staged() ([]Arrival, error) {
	var out []Arrival
	var present []int // users present, in arrival order
	level, start := 0, time.Duration(0)
	for i, s := range p.Stages {
		if s.Duration <= 0 || s.Target < 0 || s.Target > MaxUsers {
			return nil, fmt.Errorf("%w: stage %d (%v:%d): want a positive duration and 0 to %d users", ErrPlan, i+1, s.Duration, s.Target, MaxUsers)
		}
		switch n := s.Target - level; {
		case n > 0:
			if len(out)+n > MaxUsers {
				return nil, fmt.Errorf("%w: more than %d arrivals", ErrPlan, MaxUsers)
			}
			for k := range n {
				u := len(out)
				out = append(out, Arrival{User: u, At: start + time.Duration(float64(s.Duration)*float64(k)/float64(n)), Leave: -1})
				present = append(present, u)
			}
		case n < 0:
			for k := range -n {
				u := present[0]
				present = present[1:]
				out[u].Leave = start + time.Duration(float64(s.Duration)*float64(k+1)/float64(-n))
			}
		}
		level = s.Target
		start += s.Duration
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the stages never rise above 0 users", ErrPlan)
	}
	for i := range out {
		if out[i].Leave < 0 {
			out[i].Leave = start
		}
		out[i].SendUntil = max(out[i].At, out[i].Leave-p.Linger)
	}
	return out, nil
}

// ParseStages parses "30s:100,1m:100,30s:0": comma-separated
// duration:target pairs.
func ParseStages(s string) ([]Stage, error) {
	var out []Stage
	for i, part := range strings.Split(s, ",") {
		d, n, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("%w: stage %d %q: want duration:users, e.g. 30s:100", ErrPlan, i+1, part)
		}
		dur, err := time.ParseDuration(d)
		if err != nil || dur <= 0 {
			return nil, fmt.Errorf("%w: stage %d %q: bad duration %q", ErrPlan, i+1, part, d)
		}
		target, err := strconv.Atoi(n)
		if err != nil || target < 0 || target > MaxUsers {
			return nil, fmt.Errorf("%w: stage %d %q: bad user count %q", ErrPlan, i+1, part, n)
		}
		out = append(out, Stage{Duration: dur, Target: target})
	}
	return out, nil
}

// FormatStages is the inverse of ParseStages.
func FormatStages(st []Stage) string {
	parts := make([]string, len(st))
	for i, s := range st {
		parts[i] = fmt.Sprintf("%v:%d", s.Duration, s.Target)
	}
	return strings.Join(parts, ",")
}

// Pacer decides the time between one user's messages. It is separate from
// the arrival plan: the plan says who is there, the pacer how often each
// one speaks. Next is called from one goroutine at a time.
type Pacer interface {
	// Next returns the gap before the next message.
	Next(r *rand.Rand) time.Duration
	// String describes the pacer for reports.
	String() string
}

// ConstantPacer sends every Interval, moved by up to ±Jitter at random so
// users do not speak in lockstep.
type ConstantPacer struct {
	Interval time.Duration
	Jitter   time.Duration
}

// Next implements Pacer.
func (p ConstantPacer) Next(r *rand.Rand) time.Duration {
	d := p.Interval
	if p.Jitter > 0 {
		d += time.Duration(r.Int64N(int64(2*p.Jitter)+1)) - p.Jitter
	}
	return max(d, time.Millisecond)
}

func (p ConstantPacer) String() string {
	if p.Jitter > 0 {
		return fmt.Sprintf("constant %v ±%v", p.Interval, p.Jitter)
	}
	return fmt.Sprintf("constant %v", p.Interval)
}

// PoissonPacer spaces messages exponentially with mean Mean: each user is a
// Poisson process, as independent people typing are.
type PoissonPacer struct {
	Mean time.Duration
}

// Next implements Pacer.
func (p PoissonPacer) Next(r *rand.Rand) time.Duration {
	d := time.Duration(r.ExpFloat64() * float64(p.Mean))
	// Cap the tail so one draw cannot silence a user for the whole run.
	return min(max(d, time.Millisecond), time.Duration(math.Min(20*float64(p.Mean), float64(24*time.Hour))))
}

func (p PoissonPacer) String() string { return fmt.Sprintf("poisson mean %v", p.Mean) }
