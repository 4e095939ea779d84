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
	}{s, loadTargets(s), loadCharts(s.Timeline, s.Outages, s.DurationSeconds), behindHint(s)})
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH         = 640, 220
	chartLeft, chartRight  = 56, 12
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
		buildChart("Fan-out latency per interval (ms)", xs,
			rawSeries{"p50", "#2b7bb9", pick(func(i loadgen.Interval) float64 { return i.FanoutP50 })},
			rawSeries{"p90", "#e69f00", pick(func(i loadgen.Interval) float64 { return i.FanoutP90 })},
			rawSeries{"p99", "#d7263d", pick(func(i loadgen.Interval) float64 { return i.FanoutP99 })},
		),
		buildChart("Users connected", xs,
			rawSeries{"connected", "#2b7bb9", pick(func(i loadgen.Interval) float64 { return float64(i.UsersConnected) })},
		),
		buildChart("Messages per second", xs,
			rawSeries{"sent/s", "#2b7bb9", perSecond(func(i loadgen.Interval) int64 { return i.Sent })},
			rawSeries{"delivered/s", "#009e73", perSecond(func(i loadgen.Interval) int64 { return i.Delivered })},
		),
		buildChart("Errors per interval", xs,
			rawSeries{"errors", "#d7263d", pick(func(i loadgen.Interval) float64 { return float64(i.Errors) })},
		),
		buildChart("Generator scheduling lag per interval (ms, max)", xs,
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

func buildChart(title string, xs []float64, series ...rawSeries) loadChart {
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
	for k := 0; k <= 4; k++ {
		v := ymax * float64(k) / 4
		c.YTicks = append(c.YTicks, loadTick{Pos: sy(v), Label: strconv.FormatFloat(v, 'g', 4, 64)})
		t := xmax * float64(k) / 4
		prec := 0
		if xmax < 20 {
			prec = 1 // short runs: 0.8s, 1.5s… rather than repeated whole seconds
		}
		c.XTicks = append(c.XTicks, loadTick{Pos: sx(t), Label: strconv.FormatFloat(t, 'f', prec, 64) + "s"})
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
