package reports

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/chatspec/chatspec/loadgen"
)

// LoadProgress draws live mpb bars for a load run: users connected out of
// planned, the run's elapsed time out of its plan, and a line with messages
// sent and delivered, the last interval's fan-out p99 and the error count.
type LoadProgress struct {
	p     *mpb.Progress
	users *mpb.Bar
	clock *mpb.Bar
	stats *mpb.Bar
	live  func() loadgen.Live
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

// StartLoadProgress starts drawing on w (a terminal) until Stop. planned is
// the number of users, length the planned run time; live is polled every
// 200ms (loadgen.Metrics.Live).
func StartLoadProgress(w io.Writer, planned int, length time.Duration, live func() loadgen.Live) *LoadProgress {
	lp := &LoadProgress{live: live, done: make(chan struct{})}
	// Auto refresh even when w is not a terminal: the caller decided to
	// show progress (--progress on).
	// A line is up to 120 columns wide where the terminal's width is
	// unknown (not a terminal).
	lp.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(120), mpb.WithRefreshRate(200*time.Millisecond), mpb.WithAutoRefresh())
	lp.users = lp.p.AddBar(int64(planned), mpb.BarWidth(30),
		mpb.PrependDecorators(decor.Name("users", decor.WC{W: 10, C: decor.DindentRight}), decor.CountersNoUnit("%d / %d", decor.WC{W: 16, C: decor.DindentRight})),
		mpb.AppendDecorators(decor.Name(" connected now")),
	)
	start := time.Now()
	lp.clock = lp.p.AddBar(max(length.Milliseconds(), 1), mpb.BarWidth(30),
		mpb.PrependDecorators(decor.Name("time", decor.WC{W: 10, C: decor.DindentRight}), decor.Any(func(decor.Statistics) string {
			return fmt.Sprintf("%v / %v", time.Since(start).Round(time.Second), length.Round(time.Second))
		}, decor.WC{W: 16, C: decor.DindentRight})),
	)
	lp.stats = lp.p.New(0, mpb.NopStyle(),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
			l := lp.live()
			return fmt.Sprintf("messages  sent %d  delivered %d  fan-out p99 %.1fms  errors %d", l.Sent, l.Delivered, l.LastP99MS, l.Errors)
		})),
	)
	lp.wg.Add(1)
	go func() {
		defer lp.wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				lp.users.SetCurrent(lp.live().Connected)
				lp.clock.SetCurrent(min(time.Since(start).Milliseconds(), length.Milliseconds()))
			case <-lp.done:
				return
			}
		}
	}()
	return lp
}

// Stop draws the final state and waits for the bars to finish rendering.
func (lp *LoadProgress) Stop() {
	lp.once.Do(func() {
		close(lp.done)
		lp.wg.Wait()
		lp.users.SetCurrent(lp.live().Connected)
		for _, b := range []*mpb.Bar{lp.users, lp.clock, lp.stats} {
			b.Abort(false)
		}
		lp.p.Wait()
	})
}

// LoadProgressLines prints one plain line per interval, for logs and CI
// where bars that redraw themselves are noise (k6 does the same):
//
//	chatspec load: 0m10s  users 48/50  sent 231  delivered 10974  fan-out p99 12.5ms  errors 0
type LoadProgressLines struct {
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// StartLoadProgressLines prints a line on w every interval until Stop;
// planned is the number of users, live is read once per line. Nothing is
// printed before the first interval has passed, so a short run prints no
// progress at all.
func StartLoadProgressLines(w io.Writer, planned int, every time.Duration, live func() loadgen.Live) *LoadProgressLines {
	lp := &LoadProgressLines{done: make(chan struct{})}
	start := time.Now()
	lp.wg.Add(1)
	go func() {
		defer lp.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				l := live()
				el := time.Since(start).Round(time.Second)
				// Write errors are ignored: progress is a courtesy, the
				// report is what must be written.
				fmt.Fprintf(w, "chatspec load: %dm%02ds  users %d/%d  sent %d  delivered %d  fan-out p99 %.1fms  errors %d\n",
					int(el.Minutes()), int(el.Seconds())%60, l.Connected, planned, l.Sent, l.Delivered, l.LastP99MS, l.Errors)
			case <-lp.done:
				return
			}
		}
	}()
	return lp
}

// Stop stops the lines; once it returns nothing more is written.
func (lp *LoadProgressLines) Stop() {
	lp.once.Do(func() {
		close(lp.done)
		lp.wg.Wait()
	})
}
