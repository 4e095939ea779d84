package reports

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/chatspec/chatspec/loadgen"
)

//go:embed load.html.tmpl
var loadHTMLSource string

// loadHTML is parsed once; html/template escapes every value (error texts
// quote the server).
var loadHTML = template.Must(template.New("load").Funcs(template.FuncMap{
	"utc":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"f1":   func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"pct":  func(v float64) string { return strconv.FormatFloat(100*v, 'f', 4, 64) + "%" },
	"mib":  func(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 0, 64) + " MiB" },
	"val":  loadValue,
	"join": strings.Join,
	"dur":  outageDuration,
}).Parse(loadHTMLSource))

// humanMS writes a duration in milliseconds the way an axis reads best:
// "250 ms", "1.2 s", "2 min".
func humanMS(ms float64) string {
	switch {
	case ms >= 120_000:
		return trimFloat(ms/60_000, 1) + " min"
	case ms >= 1000:
		return trimFloat(ms/1000, 2) + " s"
	case ms >= 10 || ms == 0:
		return trimFloat(ms, 0) + " ms"
	default:
		return trimFloat(ms, 2) + " ms"
	}
}

// humanCount writes a count or rate with a k/M suffix: 950, 1.5k, 10k, 2M.
func humanCount(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return trimFloat(v/1e6, 1) + "M"
	case a >= 1e3:
		return trimFloat(v/1e3, 1) + "k"
	case a >= 10 || a == 0:
		return trimFloat(v, 0)
	default:
		return trimFloat(v, 2)
	}
}

// humanSeconds labels the time axis: "45s", "1m30s", "12m".
func humanSeconds(t float64, prec int) string {
	if t < 60 {
		return strconv.FormatFloat(t, 'f', prec, 64) + "s"
	}
	m, sec := int(t)/60, int(math.Round(t))%60
	if sec == 0 {
		return strconv.Itoa(m) + "m"
	}
	return fmt.Sprintf("%dm%02ds", m, sec)
}

// trimFloat formats v with at most prec decimals and no trailing zeros.
func trimFloat(v float64, prec int) string {
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// WriteLoadHTML writes report.html: one self-contained file with inline CSS
// and inline SVG charts (latency percentiles over time, users connected,
// messages per second, errors), target outages shaded on every chart; no
// scripts, nothing loaded from the network.
func WriteLoadHTML(w io.Writer, s *loadgen.Summary) error {
	return loadHTML.Execute(w, struct {
		*loadgen.Summary
		TargetsText string
		Charts      []loadChart
		Behind      string
		Why         []string
	}{s, loadTargets(s), loadCharts(s.Timeline, s.Outages, s.DurationSeconds), behindHint(s), verdictReasons(s)})
}

// verdictReasons says why the run got its verdict, for the line under the
// badge: how the run ended, each threshold crossed with what was measured,
// and the warnings that change how to read a pass (a saturated generator,
// a server that fell behind).
func verdictReasons(s *loadgen.Summary) []string {
	var why []string
	if sh := s.Shards; sh != nil && !sh.Merged {
		why = append(why, fmt.Sprintf("shard %d of %d: these figures cover only this shard's sessions; chatspec merge of all %d shards gives the run's figures and verdict", sh.Index, sh.Count, sh.Count))
	}
	if s.Ended != loadgen.EndedCompleted {
		r := "the run ended early (" + s.Ended + ")"
		if s.EndedDetail != "" {
			r += ": " + s.EndedDetail
		}
		why = append(why, r)
	}
	crossed := 0
	for _, th := range s.Thresholds {
		if !th.OK {
			crossed++
			why = append(why, fmt.Sprintf("threshold %s crossed (measured %s)", th.Expr, loadValue(th.Value, th.Measured)))
		}
	}
	if b := behindHint(s); b != "" {
		why = append(why, strings.SplitN(b, ":", 2)[0]+fmt.Sprintf(" (fan-out p99 %s, over the %s delivery window)",
			humanMS(s.LatencyMS.Fanout.P99), humanMS(s.Config.DeliveryWindowSeconds*1000)))
	}
	if s.Generator.Saturated {
		why = append(why, "the generator was saturated: latencies may be the generator's, not the server's")
	}
	if crossed == 0 && s.Ended == loadgen.EndedCompleted {
		head := fmt.Sprintf("the run completed and all %d thresholds held", len(s.Thresholds))
		switch len(s.Thresholds) {
		case 0:
			head = "the run completed; no threshold was set"
		case 1:
			head = "the run completed and its threshold held"
		}
		why = append([]string{head}, why...)
	}
	return why
}

// Chart geometry, in SVG user units. The width is the report's content
// width, so the charts fill the page at their natural text size.
const (
	chartW, chartH         = 1050, 220
	chartLeft, chartRight  = 64, 16
	chartTop, chartBottom  = 12, 28
	chartPlotW, chartPlotH = chartW - chartLeft - chartRight, chartH - chartTop - chartBottom
)

type loadChart struct {
	Title  string
	Series []loadSeries
	Bands  []loadBand // outages
	YTicks []loadTick
	XTicks []loadTick
	Empty  bool
	W, H   int
	Left   int
	Right  int // x of the plot's right edge
	Bottom int // y of the plot's bottom edge
}

type loadSeries struct {
	Name   string
	Color  string
	Points string
}

// loadBand is a shaded span of a chart's x axis: a target's outage.
type loadBand struct {
	X, W  float64
	Y, H  int
	Label string
}

type loadTick struct {
	Pos   float64
	Label string
}

// Axis units: how a chart's y labels are written.
const (
	unitMS    = "ms"
	unitCount = "count"
)

type rawSeries struct {
	name  string
	color string
	ys    []float64
}

func loadCharts(tl []loadgen.Interval, outages []loadgen.OutageSummary, end float64) []loadChart {
	xs := make([]float64, len(tl))
	pick := func(f func(loadgen.Interval) float64) []float64 {
		out := make([]float64, len(tl))
		for i, iv := range tl {
			out[i] = f(iv)
		}
		return out
	}
	perSecond := func(f func(loadgen.Interval) int64) []float64 {
		out := make([]float64, len(tl))
		prev := 0.0
		for i, iv := range tl {
			if w := iv.T - prev; w > 0 {
				out[i] = float64(f(iv)) / w
			}
			prev = iv.T
		}
		return out
	}
	for i, iv := range tl {
		xs[i] = iv.T
	}
	charts := []loadChart{
		buildChart("Fan-out latency per interval", unitMS, xs,
			rawSeries{"p50", "#2b7bb9", pick(func(i loadgen.Interval) float64 { return i.FanoutP50 })},
			rawSeries{"p90", "#e69f00", pick(func(i loadgen.Interval) float64 { return i.FanoutP90 })},
			rawSeries{"p99", "#d7263d", pick(func(i loadgen.Interval) float64 { return i.FanoutP99 })},
		),
		buildChart("Users connected", unitCount, xs,
			rawSeries{"connected", "#2b7bb9", pick(func(i loadgen.Interval) float64 { return float64(i.UsersConnected) })},
		),
		buildChart("Messages per second", unitCount, xs,
			rawSeries{"sent/s", "#2b7bb9", perSecond(func(i loadgen.Interval) int64 { return i.Sent })},
			rawSeries{"delivered/s", "#009e73", perSecond(func(i loadgen.Interval) int64 { return i.Delivered })},
		),
		buildChart("Errors per interval", unitCount, xs,
			rawSeries{"errors", "#d7263d", pick(func(i loadgen.Interval) float64 { return float64(i.Errors) })},
		),
		buildChart("Generator scheduling lag per interval (max)", unitMS, xs,
			rawSeries{"lag max", "#6a4c93", pick(func(i loadgen.Interval) float64 { return i.ScheduleLagMax })},
		),
	}
	for i := range charts {
		charts[i].Bands = outageBands(xs, outages, end)
	}
	return charts
}

// outageBands places each outage on the charts' x axis (clipped to it);
// an outage still open at the end reaches the run's end.
func outageBands(xs []float64, outages []loadgen.OutageSummary, end float64) []loadBand {
	if len(xs) == 0 {
		return nil
	}
	xmax := xs[len(xs)-1]
	if xmax <= 0 {
		xmax = 1
	}
	sx := func(x float64) float64 { return chartLeft + math.Min(math.Max(x, 0), xmax)/xmax*chartPlotW }
	var bands []loadBand
	for _, o := range outages {
		stop, label := end, fmt.Sprintf("%s down from %.1fs, still down at the end", o.Target, o.StartS)
		if o.EndS != nil {
			stop, label = *o.EndS, fmt.Sprintf("%s down from %.1fs to %.1fs", o.Target, o.StartS, *o.EndS)
		}
		x0, x1 := sx(o.StartS), sx(stop)
		// At least a pixel wide, so a short outage on a long run shows.
		bands = append(bands, loadBand{X: round1(x0), W: round1(math.Max(x1-x0, 1)), Y: chartTop, H: chartPlotH, Label: label})
	}
	return bands
}

func buildChart(title, unit string, xs []float64, series ...rawSeries) loadChart {
	c := loadChart{Title: title, W: chartW, H: chartH, Left: chartLeft, Right: chartLeft + chartPlotW, Bottom: chartTop + chartPlotH}
	if len(xs) == 0 {
		c.Empty = true
		return c
	}
	xmax := xs[len(xs)-1]
	ymax := 0.0
	for _, s := range series {
		for _, y := range s.ys {
			ymax = math.Max(ymax, y)
		}
	}
	ymax = niceCeil(ymax)
	if xmax <= 0 {
		xmax = 1
	}
	sx := func(x float64) float64 { return chartLeft + x/xmax*chartPlotW }
	sy := func(y float64) float64 { return chartTop + chartPlotH - y/ymax*chartPlotH }
	for _, s := range series {
		var b strings.Builder
		for i, y := range s.ys {
			fmt.Fprintf(&b, "%.1f,%.1f ", sx(xs[i]), sy(y))
		}
		c.Series = append(c.Series, loadSeries{Name: s.name, Color: s.color, Points: strings.TrimSpace(b.String())})
	}
	// Ticks at round steps: a 1x or 5x top is cut in fifths, a 2x top
	// in quarters (0, 10, ..., 50 rather than 0, 12.5, ..., 50).
	steps := 5
	if lead := ymax / math.Pow(10, math.Floor(math.Log10(ymax))); math.Abs(lead-2) < 1e-9 {
		steps = 4
	}
	for k := 0; k <= steps; k++ {
		v := ymax * float64(k) / float64(steps)
		label := humanCount(v)
		if unit == unitMS {
			label = humanMS(v)
		}
		c.YTicks = append(c.YTicks, loadTick{Pos: sy(v), Label: label})
	}
	for k := 0; k <= 4; k++ {
		t := xmax * float64(k) / 4
		prec := 0
		if xmax < 20 {
			prec = 1 // short runs: 0.8s, 1.5s… rather than repeated whole seconds
		}
		c.XTicks = append(c.XTicks, loadTick{Pos: sx(t), Label: humanSeconds(t, prec)})
	}
	return c
}

// round1 keeps one decimal, as the chart lines do.
func round1(v float64) float64 { return math.Round(v*10) / 10 }

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, so axis labels
// are round numbers; 0 becomes 1.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
