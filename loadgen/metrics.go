package loadgen

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// Histogram bounds: microseconds from 1 µs to one hour, with 3 significant
// digits, so every percentile is exact to 0.1% whatever the run's length,
// in a fixed ~400 KB per histogram.
const (
	histLowest  = 1
	histHighest = int64(time.Hour / time.Microsecond)
	histDigits  = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histLowest, histHighest, histDigits) }

func record(h *hdrhistogram.Histogram, d time.Duration) {
	us := max(int64(d/time.Microsecond), histLowest)
	_ = h.RecordValue(min(us, histHighest)) // clamped: cannot fail
}

func stats(h *hdrhistogram.Histogram) LatencyStats {
	if h.TotalCount() == 0 {
		return LatencyStats{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	v := h.ValueAtPercentilesSlice([]float64{50, 75, 90, 95, 99, 99.9})
	return LatencyStats{
		P50: ms(v[0]), P75: ms(v[1]), P90: ms(v[2]), P95: ms(v[3]), P99: ms(v[4]), P999: ms(v[5]),
		Max: ms(h.Max()), Min: ms(h.Min()), Mean: math.Round(h.Mean()) / 1000, Count: h.TotalCount(),
	}
}

// MetricsConfig is what Metrics needs to know about the run.
type MetricsConfig struct {
	// Users is the number of planned users (sender indexes are below it).
	Users int
	// Window is the delivery window (see the accounting rules in doc.go).
	Window time.Duration
	// Interval is the timeline's resolution; 0 picks 1s.
	Interval time.Duration
	// MaxIntervals bounds the timeline; when it fills up, adjacent points
	// are merged and the interval doubles. 0 picks 600.
	MaxIntervals int
}

// Live is a snapshot for progress displays, safe to take while Add runs.
type Live struct {
	Connected    int64
	Sent         int64
	Delivered    int64
	Errors       int64
	LastP99MS    float64
	ConnectsDone int64 // sessions that connected or failed to
}

// Metrics consumes Results (one goroutine calls Add) and, at Close,
// produces the Summary's measured parts. Live may be called concurrently.
type Metrics struct {
	cfg   MetricsConfig
	acct  *accounting
	conn  *hdrhistogram.Histogram
	join  *hdrhistogram.Histogram
	fan   *hdrhistogram.Histogram
	echo  *hdrhistogram.Histogram
	lag   *hdrhistogram.Histogram
	ivFan *hdrhistogram.Histogram

	connectedUsers []bool
	usersConnected int
	current        int
	peak           int
	sessions       int
	reconnects     int64
	dropped        int64
	connectErrors  int64
	joinErrors     int64
	sent           int64
	sendErrors     int64
	skipped        int64
	maxLag         time.Duration
	joined         int64
	endedByPlan    int64
	endedHow       map[string]int64 // sessions the server ended, by how
	refused        int64            // writes the server refused
	refusedCodes   map[string]int64 // by the server's code (at most maxErrorKinds)
	notes          [NoteConnectedTwice + 1]int64

	errMu  sync.Mutex
	errors map[errKey]int64

	iv       Interval // current interval's counters
	ivLag    time.Duration
	ivEnd    time.Duration
	timeline []Interval
	lastAt   time.Duration

	live struct {
		connected, sent, delivered, errors, connects atomic.Int64
		p99bits                                      atomic.Uint64
	}
	peakGoroutines int
}

type errKey struct{ kind, msg string }

// NewMetrics returns an empty Metrics.
func NewMetrics(cfg MetricsConfig) *Metrics {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.MaxIntervals <= 0 {
		cfg.MaxIntervals = 600
	}
	return &Metrics{
		cfg:            cfg,
		acct:           newAccounting(cfg.Users, cfg.Window),
		conn:           newHist(),
		join:           newHist(),
		fan:            newHist(),
		echo:           newHist(),
		lag:            newHist(),
		ivFan:          hdrhistogram.New(histLowest, histHighest, 2),
		connectedUsers: make([]bool, cfg.Users),
		endedHow:       map[string]int64{},
		refusedCodes:   map[string]int64{},
		errors:         map[errKey]int64{},
		ivEnd:          cfg.Interval,
	}
}

// Add consumes one result. Results of one session must arrive in the order
// they happened (the engine guarantees it); others may interleave.
func (m *Metrics) Add(r Result) {
	for r.At >= m.ivEnd {
		m.closeInterval()
	}
	if r.At > m.lastAt {
		m.lastAt = r.At
	}
	switch r.Kind {
	case Connected:
		record(m.conn, r.Latency)
		m.sessions++
		m.live.connects.Add(1)
		if int(r.User) < len(m.connectedUsers) && !m.connectedUsers[r.User] {
			m.connectedUsers[r.User] = true
			m.usersConnected++
		} else {
			m.reconnects++
		}
	case ConnectFailed:
		m.connectErrors++
		m.live.connects.Add(1)
		m.addError(r)
	case Joined:
		m.joined++
		record(m.join, r.Latency)
		m.acct.joined(r)
		m.current++
		m.peak = max(m.peak, m.current)
		m.live.connected.Store(int64(m.current))
	case JoinFailed:
		m.joinErrors++
		m.addError(r)
	case Sent:
		m.sent++
		m.iv.Sent++
		m.live.sent.Add(1)
		m.acct.sent(r, true)
		m.lagSample(r.At - r.Intended)
	case SendFailed:
		m.acct.sent(r, false)
		if r.Planned {
			m.skipped++
			break
		}
		m.sendErrors++
		m.addError(r)
	case Skipped:
		m.skipped++
	case Delivered:
		if m.acct.delivered(r) {
			d := r.At - r.Intended
			if uint32(r.User) == r.Sender {
				record(m.echo, d)
			} else {
				record(m.fan, d)
				record(m.ivFan, d)
			}
			m.iv.Delivered++
			m.live.delivered.Add(1)
		}
	case Left:
		s := m.acct.session(r.Session, r.User)
		if s.joined && !s.ended {
			m.current--
			m.live.connected.Store(int64(m.current))
		}
		m.acct.left(r)
		if !r.Planned {
			m.dropped++
			m.endedHow[EndedHow(r.Err)]++
			m.addError(r)
		} else {
			m.endedByPlan++
		}
	case Refused:
		var ref *RefusalError
		if !errors.As(r.Err, &ref) || ref.Event != "writeMessage" {
			m.addError(r) // a refusal of something else (a join…): an error
			break
		}
		m.refused++
		m.acct.refused(r)
		code := ref.Code
		if _, ok := m.refusedCodes[code]; !ok && len(m.refusedCodes) >= maxErrorKinds {
			code = "(other codes)"
		}
		m.refusedCodes[code]++
	case Noted:
		if int(r.Note) < len(m.notes) {
			m.notes[r.Note]++
		}
		if r.Note == NoteRepeat {
			m.acct.repeated(r)
		}
	case Tick:
		m.lagSample(r.At - r.Intended)
		m.peakGoroutines = max(m.peakGoroutines, int(r.Goroutines))
	}
}

func (m *Metrics) lagSample(d time.Duration) {
	d = max(d, 0)
	record(m.lag, d)
	m.maxLag = max(m.maxLag, d)
	m.ivLag = max(m.ivLag, d)
}

// volatile matches what differs per connection in error texts (Engine.IO
// session IDs, the ephemeral local port of "read tcp A:PORT->B"), so that
// one failure met by many connections, as when a target dies under
// polling users, is one row of the error table rather than one per
// connection.
var volatile = regexp.MustCompile(`sid=[A-Za-z0-9_-]+|tcp \S+:[0-9]+->`)

// maxErrorKinds bounds the error table: a server failing in a new way per
// connection must not grow memory without bound.
const maxErrorKinds = 50

func (m *Metrics) addError(r Result) {
	msg := "unknown error"
	if r.Err != nil {
		msg = r.Err.Error()
	}
	msg = volatile.ReplaceAllStringFunc(msg, func(v string) string {
		if strings.HasPrefix(v, "sid=") {
			return "sid=…"
		}
		return v[:strings.LastIndexByte(v, ':')] + ":…->"
	})
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	k := errKey{r.Kind.String(), msg}
	m.errMu.Lock()
	if _, ok := m.errors[k]; !ok && len(m.errors) >= maxErrorKinds {
		k.msg = "(other errors)"
	}
	m.errors[k]++
	m.errMu.Unlock()
	m.iv.Errors++
	m.live.errors.Add(1)
}

func (m *Metrics) closeInterval() {
	iv := m.iv
	iv.T = m.ivEnd.Seconds()
	iv.UsersConnected = m.current
	if m.ivFan.TotalCount() > 0 {
		v := m.ivFan.ValueAtPercentilesSlice([]float64{50, 90, 99})
		iv.FanoutP50, iv.FanoutP90, iv.FanoutP99 = float64(v[0])/1000, float64(v[1])/1000, float64(v[2])/1000
		iv.FanoutMax = float64(m.ivFan.Max()) / 1000
		m.live.p99bits.Store(math.Float64bits(iv.FanoutP99))
	}
	iv.ScheduleLagMax = float64(m.ivLag) / float64(time.Millisecond)
	m.timeline = append(m.timeline, iv)
	m.iv, m.ivLag = Interval{}, 0
	m.ivFan.Reset()
	m.ivEnd += m.cfg.Interval
	if len(m.timeline) >= m.cfg.MaxIntervals {
		m.halveTimeline()
	}
}

// halveTimeline merges pairs of points and doubles the interval, keeping
// the timeline bounded for runs of any length. Counters add up; latency
// percentiles of a merged point take the worse of the two (conservative:
// a merged p99 is never lower than the true one of either half).
func (m *Metrics) halveTimeline() {
	t := m.timeline
	out := t[:0]
	for i := 0; i+1 < len(t); i += 2 {
		a, b := t[i], t[i+1]
		out = append(out, Interval{
			T: b.T, UsersConnected: b.UsersConnected,
			Sent: a.Sent + b.Sent, Delivered: a.Delivered + b.Delivered, Errors: a.Errors + b.Errors,
			FanoutP50: max(a.FanoutP50, b.FanoutP50), FanoutP90: max(a.FanoutP90, b.FanoutP90),
			FanoutP99: max(a.FanoutP99, b.FanoutP99), FanoutMax: max(a.FanoutMax, b.FanoutMax),
			ScheduleLagMax: max(a.ScheduleLagMax, b.ScheduleLagMax),
		})
	}
	if len(t)%2 == 1 {
		out = append(out, t[len(t)-1])
	}
	m.timeline = out
	m.cfg.Interval *= 2
	if n := len(m.timeline); n > 0 {
		m.ivEnd = time.Duration(m.timeline[n-1].T*float64(time.Second)) + m.cfg.Interval
	}
}

// Live returns counters for a progress display.
func (m *Metrics) Live() Live {
	return Live{
		Connected:    m.live.connected.Load(),
		Sent:         m.live.sent.Load(),
		Delivered:    m.live.delivered.Load(),
		Errors:       m.live.errors.Load(),
		LastP99MS:    math.Float64frombits(m.live.p99bits.Load()),
		ConnectsDone: m.live.connects.Load(),
	}
}

// Usage is the generator's resource use over the run, for the self-check.
type Usage struct {
	CPU       time.Duration
	Wall      time.Duration
	MaxRSS    int64
	Cores     int
	Embedded  bool // the server ran in this process, so CPU includes it
	Delivered int64
}

// Saturation limits: beyond these the generator's own delays are large
// enough to distort the latencies it reports.
const (
	// SaturationLagP99 is the p99 scheduling lag above which the generator
	// counts as saturated.
	SaturationLagP99 = 50 * time.Millisecond
	// SaturationLagMax is the worst single lag tolerated.
	SaturationLagMax = time.Second
	// SaturationCPU is the fraction of all cores above which the generator
	// counts as saturated (not applied when the server is embedded: its
	// CPU is in the same process).
	SaturationCPU = 0.9
	// StarvedCPU: a lagging generator that used less than this fraction of
	// all cores was starved by other processes rather than busy itself.
	StarvedCPU = 0.5
)

// Close finalises the metrics at end (since the start) and fills the
// measured parts of s: users, messages, latency, generator, errors,
// per-sender and timeline.
func (m *Metrics) Close(end time.Duration, u Usage, s *Summary) {
	if end < m.lastAt {
		end = m.lastAt
	}
	for end > m.ivEnd {
		m.closeInterval()
	}
	if m.iv != (Interval{}) || m.ivFan.TotalCount() > 0 || len(m.timeline) == 0 {
		m.ivEnd = end // a last, partial interval
		m.closeInterval()
	}
	per, trailing := m.acct.close(end)
	var msgs MessagesSummary
	var bad []SenderStats
	for _, st := range per {
		msgs.ExpectedDeliveries += st.Expected
		msgs.Delivered += st.Delivered
		msgs.Lost += st.Lost
		msgs.Duplicated += st.Duplicated
		msgs.Reordered += st.Reordered
		if st.Lost > 0 || st.Duplicated > 0 || st.Reordered > 0 {
			bad = append(bad, st)
		}
	}
	msgs.LostTrailing = min(trailing, msgs.Lost)
	msgs.LostGaps = msgs.Lost - msgs.LostTrailing
	msgs.Sent, msgs.SendErrors, msgs.Skipped, msgs.Unexpected, msgs.Unconfirmed = m.sent, m.sendErrors, m.skipped, m.acct.unexpected, m.acct.unconfirmed
	if msgs.ExpectedDeliveries > 0 {
		msgs.LossRatio = float64(msgs.Lost) / float64(msgs.ExpectedDeliveries)
		msgs.DeliveryRatio = float64(msgs.Delivered) / float64(msgs.ExpectedDeliveries)
	}
	sort.Slice(bad, func(i, j int) bool {
		if bad[i].Lost != bad[j].Lost {
			return bad[i].Lost > bad[j].Lost
		}
		return bad[i].User < bad[j].User
	})
	const maxBad = 100
	s.PerSender = bad
	if len(bad) > maxBad {
		s.PerSender, s.PerSenderOmitted = bad[:maxBad], len(bad)-maxBad
	}
	if s.PerSender == nil {
		s.PerSender = []SenderStats{}
	}
	msgs.Refused, msgs.RefusedByCode = m.refused, m.refusedCodes
	msgs.OrderConflicts, msgs.OrderConflictPairs, msgs.OrderConflictPairsOmitted = m.acct.conflicts, m.acct.conflictPairs(), m.acct.otherPairs
	// Messages were due but no delivery was owed: every figure above is
	// vacuous, which must not read as "nothing lost".
	msgs.Unmeasured = msgs.ExpectedDeliveries == 0 && msgs.Sent+msgs.SendErrors+msgs.Skipped+msgs.Refused > 0
	s.Messages = msgs
	s.Events = EventsSummary{
		Repeated: m.notes[NoteRepeat], Foreign: m.notes[NoteForeign], Forged: m.notes[NoteForged],
		Shrunk: m.notes[NoteShrunk], ConnectedTwice: m.notes[NoteConnectedTwice],
	}
	s.Events.OutOfContract = s.Events.Shrunk + s.Events.ConnectedTwice
	s.Sessions = SessionsSummary{
		Connected: int64(m.sessions), Joined: m.joined, JoinFailed: m.joinErrors,
		EndedByPlan: m.endedByPlan, EndedByServer: m.dropped, EndedByServerHow: m.endedHow,
	}
	s.Users = UsersSummary{
		Planned: m.cfg.Users, Connected: m.usersConnected, ConnectErrors: m.connectErrors, JoinErrors: m.joinErrors,
		PeakConnected: m.peak, Sessions: m.sessions, Reconnects: m.reconnects, Dropped: m.dropped,
	}
	s.LatencyMS = LatencySet{Connect: stats(m.conn), Join: stats(m.join), Fanout: stats(m.fan), Echo: stats(m.echo)}
	s.DurationSeconds = end.Seconds()
	s.Timeline = m.timeline

	g := GeneratorSummary{
		CPUSeconds:       u.CPU.Seconds(),
		MaxScheduleLagMS: float64(m.maxLag) / float64(time.Millisecond),
		P99ScheduleLagMS: float64(m.lag.ValueAtPercentile(99)) / 1000,
		MaxRSSBytes:      u.MaxRSS,
		PeakGoroutines:   m.peakGoroutines,
		Cores:            u.Cores,
		EmbeddedServer:   u.Embedded,
	}
	if u.Wall > 0 && u.Cores > 0 {
		g.CPUUtilization = u.CPU.Seconds() / (u.Wall.Seconds() * float64(u.Cores))
	}
	if d := msgs.Delivered + msgs.Unexpected; d > 0 {
		g.CPUPerDeliveryUS = float64(u.CPU/time.Microsecond) / float64(d)
	}
	g.SaturationReasons = []string{}
	if p99 := time.Duration(m.lag.ValueAtPercentile(99)) * time.Microsecond; p99 > SaturationLagP99 {
		g.SaturationReasons = append(g.SaturationReasons, fmt.Sprintf("p99 scheduling lag %v > %v", p99, SaturationLagP99))
	}
	if m.maxLag > SaturationLagMax {
		g.SaturationReasons = append(g.SaturationReasons, fmt.Sprintf("max scheduling lag %v > %v", m.maxLag.Round(time.Millisecond), SaturationLagMax))
	}
	if !u.Embedded && g.CPUUtilization > SaturationCPU {
		g.SaturationReasons = append(g.SaturationReasons, fmt.Sprintf("CPU %.0f%% of %d cores > %.0f%%", 100*g.CPUUtilization, u.Cores, 100*SaturationCPU))
	}
	g.Saturated = len(g.SaturationReasons) > 0
	// Lag without the generator's own CPU to show for it means something
	// else on the machine (often the server under test) took the cores.
	if g.Saturated && !u.Embedded && g.CPUUtilization > 0 && g.CPUUtilization < StarvedCPU {
		g.SaturationReasons = append(g.SaturationReasons, fmt.Sprintf("the generator itself used only %.0f%% of %d cores: other processes on this machine (the server?) took the CPU", 100*g.CPUUtilization, u.Cores))
	}
	s.Generator = g

	m.errMu.Lock()
	s.Errors = make([]ErrorCount, 0, len(m.errors))
	for k, n := range m.errors {
		s.Errors = append(s.Errors, ErrorCount{Kind: k.kind, Message: k.msg, Count: n})
	}
	m.errMu.Unlock()
	sort.Slice(s.Errors, func(i, j int) bool {
		if s.Errors[i].Count != s.Errors[j].Count {
			return s.Errors[i].Count > s.Errors[j].Count
		}
		return strings.Compare(s.Errors[i].Message, s.Errors[j].Message) < 0
	})
}

// EndedHow names how the server ended a session, from the connection's
// error: "disconnect_packet" (a Socket.IO DISCONNECT), "close_packet" (an
// Engine.IO close), "ping_timeout" (no ping within pingInterval +
// pingTimeout), "connect_error" (a CONNECT_ERROR), "protocol_error"
// (bytes that break the protocol) or "transport_close" (the transport
// closed or failed).
func EndedHow(err error) string {
	var pt *sioclient.PingTimeoutError
	var ce *sioclient.ConnectError
	var pe *sioclient.ProtocolError
	var rec *RecordedError
	switch {
	case errors.As(err, &rec):
		return rec.How
	case errors.Is(err, sioclient.ErrServerDisconnect):
		return "disconnect_packet"
	case errors.Is(err, sioclient.ErrEngineClosed):
		return "close_packet"
	case errors.As(err, &pt):
		return "ping_timeout"
	case errors.As(err, &ce):
		return "connect_error"
	case errors.As(err, &pe):
		return "protocol_error"
	}
	return "transport_close"
}

// RecordedError stands for an error replayed from a shard's records
// (loadgen/shard): its text, and how the session it ended ended, as
// EndedHow named it when it happened.
type RecordedError struct {
	Text string
	How  string
}

func (e *RecordedError) Error() string { return e.Text }
