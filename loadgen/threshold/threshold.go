// Package threshold parses and evaluates the pass/fail expressions of
// `chatspec load --threshold`, such as `fanout.p99<250ms` or
// `delivery.lost==0`.
//
// Expressions are parsed when the flag is read, so a typo is a usage error
// before any user connects; they are evaluated once, against the final
// figures of the run.
//
// Grammar (whitespace is allowed around the operator):
//
//	threshold  = metric op value
//	metric     = group "." field            ; must name a registered metric, see Register
//	group      = letter { letter | digit | "_" }   ; e.g. connect, fanout, delivery
//	field      = letter { letter | digit | "_" }
//	op         = "<" | "<=" | ">" | ">=" | "==" | "!="
//	value      = duration | percent | number | bool
//	duration   = number ( "us" | "µs" | "ms" | "s" | "m" )   ; latency metrics
//	percent    = number "%"                                  ; ratio metrics
//	number     = digit { digit } [ "." digit { digit } ]
//	bool       = "true" | "false"                            ; generator.saturated
//
// Each metric has a kind that decides which values it accepts: a latency
// takes a duration (a bare number means milliseconds), a count takes a
// whole number, a ratio takes a number in [0,1] or a percentage, a flag
// takes true or false and only == or !=.
package threshold

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors returned by Parse; each is wrapped together with the offending
// expression, so errors.Is works and the message quotes the input.
var (
	// ErrSyntax: the expression does not match the grammar.
	ErrSyntax = errors.New("syntax error")
	// ErrUnknownMetric: the metric name is not registered.
	ErrUnknownMetric = errors.New("unknown metric")
	// ErrValue: the value does not suit the metric's kind.
	ErrValue = errors.New("invalid value")
)

// Kind is what a metric measures; it decides the accepted values.
type Kind int

// Metric kinds.
const (
	// Latency metrics are compared in milliseconds.
	Latency Kind = iota + 1
	// Count metrics are whole numbers of events.
	Count
	// Ratio metrics lie in [0,1].
	Ratio
	// Flag metrics are 0 (false) or 1 (true).
	Flag
)

func (k Kind) String() string {
	switch k {
	case Latency:
		return "latency"
	case Count:
		return "count"
	case Ratio:
		return "ratio"
	case Flag:
		return "flag"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Op is a comparison operator.
type Op int

// Operators, in the grammar's spelling order.
const (
	Less Op = iota + 1
	LessEqual
	Greater
	GreaterEqual
	Equal
	NotEqual
)

var opText = map[Op]string{Less: "<", LessEqual: "<=", Greater: ">", GreaterEqual: ">=", Equal: "==", NotEqual: "!="}

func (o Op) String() string {
	if s, ok := opText[o]; ok {
		return s
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Holds reports whether "actual o want" is true.
func (o Op) Holds(actual, want float64) bool {
	switch o {
	case Less:
		return actual < want
	case LessEqual:
		return actual <= want
	case Greater:
		return actual > want
	case GreaterEqual:
		return actual >= want
	case Equal:
		return actual == want
	case NotEqual:
		return actual != want
	}
	return false
}

// catalog holds every metric a threshold may name, with its kind. The
// package that computes the values declares them (loadgen, from the one
// table that also reads them from its summary), so the names a threshold
// accepts and the names a run measures cannot drift apart.
var (
	catalogMu sync.RWMutex
	catalog   = map[string]Kind{}
)

// Register declares a metric for thresholds. It is meant for init
// functions and panics on a bad name, an unknown kind or a second
// registration of the same name.
func Register(name string, kind Kind) {
	if !validName(name) || kind < Latency || kind > Flag {
		panic(fmt.Sprintf("threshold.Register(%q, %v): bad name or kind", name, kind))
	}
	catalogMu.Lock()
	defer catalogMu.Unlock()
	if _, dup := catalog[name]; dup {
		panic(fmt.Sprintf("threshold.Register(%q): registered twice", name))
	}
	catalog[name] = kind
}

// KindOf returns the kind of a registered metric.
func KindOf(name string) (Kind, bool) {
	catalogMu.RLock()
	defer catalogMu.RUnlock()
	k, ok := catalog[name]
	return k, ok
}

// MetricNames returns the registered metric names, sorted, for usage texts.
func MetricNames() []string {
	catalogMu.RLock()
	names := make([]string, 0, len(catalog))
	for n := range catalog {
		names = append(names, n)
	}
	catalogMu.RUnlock()
	sort.Strings(names)
	return names
}

// Threshold is one parsed expression.
type Threshold struct {
	// Expr is the expression as written (trimmed).
	Expr string
	// Metric is the metric's name, e.g. "fanout.p99".
	Metric string
	// Kind is the metric's kind.
	Kind Kind
	// Op compares the measured value with Value.
	Op Op
	// Value is the bound in the metric's unit: milliseconds for latencies,
	// a fraction for ratios, 0 or 1 for flags.
	Value float64
}

// String returns the expression as written.
func (t Threshold) String() string { return t.Expr }

// Holds reports whether the measured value satisfies the threshold.
// actual is in the same unit as t.Value.
func (t Threshold) Holds(actual float64) bool { return t.Op.Holds(actual, t.Value) }

// Parse parses one expression. Errors wrap ErrSyntax, ErrUnknownMetric or
// ErrValue and quote the input.
func Parse(expr string) (Threshold, error) {
	t, err := parse(strings.TrimSpace(expr))
	if err != nil {
		return Threshold{}, fmt.Errorf("threshold %q: %w", expr, err)
	}
	return t, nil
}

func parse(s string) (Threshold, error) {
	i := strings.IndexAny(s, "<>=!")
	if i < 0 {
		return Threshold{}, fmt.Errorf("%w: no operator (want one of < <= > >= == !=)", ErrSyntax)
	}
	name := strings.TrimSpace(s[:i])
	rest := s[i:]
	var op Op
	switch {
	case strings.HasPrefix(rest, "<="):
		op = LessEqual
	case strings.HasPrefix(rest, ">="):
		op = GreaterEqual
	case strings.HasPrefix(rest, "=="):
		op = Equal
	case strings.HasPrefix(rest, "!="):
		op = NotEqual
	case strings.HasPrefix(rest, "<"):
		op = Less
	case strings.HasPrefix(rest, ">"):
		op = Greater
	default:
		return Threshold{}, fmt.Errorf("%w: bad operator at %q (want one of < <= > >= == !=)", ErrSyntax, rest)
	}
	value := strings.TrimSpace(rest[len(op.String()):])
	if name == "" {
		return Threshold{}, fmt.Errorf("%w: missing metric before %q", ErrSyntax, op)
	}
	if !validName(name) {
		return Threshold{}, fmt.Errorf("%w: bad metric name %q (want group.field)", ErrSyntax, name)
	}
	if value == "" {
		return Threshold{}, fmt.Errorf("%w: missing value after %q", ErrSyntax, op)
	}
	if strings.ContainsAny(value, "<>=!") {
		return Threshold{}, fmt.Errorf("%w: more than one operator", ErrSyntax)
	}
	kind, ok := KindOf(name)
	if !ok {
		return Threshold{}, fmt.Errorf("%w %q%s", ErrUnknownMetric, name, suggest(name))
	}
	v, err := parseValue(kind, value)
	if err != nil {
		return Threshold{}, err
	}
	if kind == Flag && op != Equal && op != NotEqual {
		return Threshold{}, fmt.Errorf("%w: %s is true or false: only == and != apply", ErrValue, name)
	}
	return Threshold{Expr: s, Metric: name, Kind: kind, Op: op, Value: v}, nil
}

func validName(name string) bool {
	group, field, ok := strings.Cut(name, ".")
	if !ok || !ident(group) || !ident(field) {
		return false
	}
	return true
}

func ident(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '_'):
		default:
			return false
		}
	}
	return true
}

// suggest names the metrics of the same group, to make a typo easy to fix.
func suggest(name string) string {
	group, _, _ := strings.Cut(name, ".")
	var same []string
	for _, n := range MetricNames() {
		if strings.HasPrefix(n, group+".") {
			same = append(same, n)
		}
	}
	if len(same) == 0 {
		var groups []string
		for _, n := range MetricNames() {
			g, _, _ := strings.Cut(n, ".")
			if len(groups) == 0 || groups[len(groups)-1] != g {
				groups = append(groups, g)
			}
		}
		return " (groups: " + strings.Join(groups, ", ") + ")"
	}
	return " (known in " + group + ": " + strings.Join(same, ", ") + ")"
}

// number parses the grammar's number: digits with an optional fraction,
// no sign, no exponent, nothing else.
func number(s string) (float64, bool) {
	if s == "" {
		return 0, false
	}
	dot := false
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
		case r == '.' && !dot && i > 0 && i < len(s)-1:
			dot = true
		default:
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil && !math.IsInf(f, 0)
}

var units = []struct {
	suffix string
	d      time.Duration
}{
	// Longest suffixes first so "ms" is not read as "m".
	{"ms", time.Millisecond}, {"us", time.Microsecond}, {"µs", time.Microsecond}, {"s", time.Second}, {"m", time.Minute},
}

func parseValue(kind Kind, s string) (float64, error) {
	switch kind {
	case Latency:
		for _, u := range units {
			if num, ok := strings.CutSuffix(s, u.suffix); ok {
				f, ok := number(num)
				if !ok {
					return 0, fmt.Errorf("%w: %q is not a duration (e.g. 250ms, 1.5s)", ErrValue, s)
				}
				return f * float64(u.d) / float64(time.Millisecond), nil
			}
		}
		if f, ok := number(s); ok {
			return f, nil // a bare number is milliseconds
		}
		return 0, fmt.Errorf("%w: %q is not a duration (e.g. 250ms, 1.5s)", ErrValue, s)
	case Count:
		f, ok := number(s)
		if !ok || f != math.Trunc(f) {
			return 0, fmt.Errorf("%w: %q is not a whole number", ErrValue, s)
		}
		return f, nil
	case Ratio:
		if num, ok := strings.CutSuffix(s, "%"); ok {
			f, ok := number(num)
			if !ok || f > 100 {
				return 0, fmt.Errorf("%w: %q is not a percentage in [0%%,100%%]", ErrValue, s)
			}
			return f / 100, nil
		}
		f, ok := number(s)
		if !ok || f > 1 {
			return 0, fmt.Errorf("%w: %q is not a ratio in [0,1] (or a percentage like 0.1%%)", ErrValue, s)
		}
		return f, nil
	case Flag:
		switch s {
		case "true":
			return 1, nil
		case "false":
			return 0, nil
		}
		return 0, fmt.Errorf("%w: %q is not true or false", ErrValue, s)
	}
	return 0, fmt.Errorf("%w: unknown kind %v", ErrValue, kind)
}

// List is a repeatable flag.Value collecting thresholds; each is parsed as
// the flag is read.
type List []Threshold

// String joins the expressions with commas.
func (l *List) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, t := range *l {
		s[i] = t.Expr
	}
	return strings.Join(s, ",")
}

// Set parses one expression and appends it.
func (l *List) Set(expr string) error {
	t, err := Parse(expr)
	if err != nil {
		return err
	}
	*l = append(*l, t)
	return nil
}

// Result is one evaluated threshold.
type Result struct {
	// Expr is the expression as written.
	Expr string `json:"expr"`
	// Value is the measured value in the metric's unit (milliseconds for
	// latencies); NaN is encoded by the caller when nothing was measured.
	Value float64 `json:"value"`
	// OK is true when the threshold holds.
	OK bool `json:"ok"`
	// Measured is false when the metric had no samples (e.g. no message
	// delivered, so fanout.p99 is undefined); such a threshold fails.
	Measured bool `json:"measured"`
}

// Evaluate checks every threshold against lookup, which returns a
// metric's measured value and whether it was measured at all. A metric
// without samples fails its threshold: "no data" must not pass a CI gate.
func Evaluate(list []Threshold, lookup func(metric string) (float64, bool)) []Result {
	out := make([]Result, 0, len(list))
	for _, t := range list {
		v, ok := lookup(t.Metric)
		out = append(out, Result{Expr: t.Expr, Value: v, OK: ok && t.Holds(v), Measured: ok})
	}
	return out
}
