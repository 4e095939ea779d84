package framework

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// Framework is the per-spec fixture: create one per Describe with New; it
// gives each spec fresh clients and names, and closes the clients after
// the spec (DeferCleanup).
type Framework struct {
	// CaseID is the contract case ID of the running spec (e.g. "JOIN-1").
	CaseID string

	run     *run
	grade   string
	spec    int64
	started time.Time
	clients []*Client
	texts   int
	// tolerated holds the requirements this spec already recorded a
	// tolerated violation of (Tolerate); barriers counts join barriers.
	tolerated map[string]bool
	barriers  int
	// onFinding replaces the report entry of Finding, for tests of the
	// framework that run outside a Ginkgo spec.
	onFinding func(string)
	// budget bounds what this case's clients record (recorder.go).
	budget *caseBudget
}

// New returns a fixture and registers its BeforeEach in the surrounding
// container. Call it in a Describe body, as Kubernetes e2e specs do.
func New() *Framework {
	f := &Framework{}
	ginkgo.BeforeEach(func() {
		f.setUp()
	})
	return f
}

func (f *Framework) setUp() {
	r := currentRun()
	if r == nil {
		ginkgo.Fail("framework: Configure was not called before the specs ran")
	}
	*f = Framework{run: r, started: time.Now(), budget: newCaseBudget()}
	report := ginkgo.CurrentSpecReport()
	f.CaseID = CaseID(report.LeafNodeText)
	f.grade = Grade(report.Labels())
	f.spec = r.specs.Add(1)
	if err := r.ctx.Err(); err != nil {
		ginkgo.Skip("the run was stopped before this case started")
	}
	if err := TargetDown(); err != nil {
		// No verdict: the case never ran (Outage says why).
		ginkgo.Skip("not run: " + err.Error())
	}
	r.enterCase(f.CaseID, f.grade)
	ginkgo.DeferCleanup(f.tearDown)
}

// tearDown closes the spec's clients gracefully, all at once: a graceful
// close lingers briefly after its DISCONNECT packet, and the spec should
// not pay that once per client.
func (f *Framework) tearDown() {
	var wg sync.WaitGroup
	for _, c := range f.clients {
		wg.Go(c.shutdown)
	}
	wg.Wait()
}

// Config returns the run configuration.
func (f *Framework) Config() Config { return f.run.cfg }

// Username returns the username for role in this spec: unique to the run
// and the spec, the same for the same role (so a reconnecting client can
// reuse it), ASCII and at most 32 characters (CONTRACT.md JOIN-5).
func (f *Framework) Username(role string) string {
	if len(role) > 12 {
		role = role[:12]
	}
	return fmt.Sprintf("cs%s-%d-%s", f.run.cfg.RunID, f.spec, role)
}

// Text returns a message text unique to the run, the spec and the call.
func (f *Framework) Text(what string) string {
	f.texts++
	return fmt.Sprintf("cs%s-%d #%d %s", f.run.cfg.RunID, f.spec, f.texts, what)
}

// ConnOption adjusts one connection.
type ConnOption func(*connSettings)

type connSettings struct {
	transport sioclient.Transport
	user      string
	beside    *Client
}

// Over makes the client use transport t instead of the run's default.
func Over(t sioclient.Transport) ConnOption {
	return func(s *connSettings) { s.transport = t }
}

// As makes the client use this username instead of the one for its role.
func As(username string) ConnOption {
	return func(s *connSettings) { s.user = username }
}

// Beside makes the client connect to the same target as c (one page's
// connections reach one node of a cluster), as the seed's two io() calls do.
func Beside(c *Client) ConnOption {
	return func(s *connSettings) { s.beside = c }
}

// Connect opens a connection for role (without joining) and starts
// recording its events. It fails the spec when the connection fails, after
// checking once whether the target as a whole went down.
func (f *Framework) Connect(ctx context.Context, role string, opts ...ConnOption) *Client {
	ginkgo.GinkgoHelper()
	s := connSettings{transport: f.run.cfg.Transport, user: f.Username(role)}
	for _, o := range opts {
		o(&s)
	}
	if err := TargetDown(); err != nil {
		ginkgo.Fail(err.Error())
	}
	idx := int(f.run.dials.Add(1) - 1)
	if s.beside != nil {
		idx = s.beside.dialIdx
	}
	t := f.run.cfg.Target
	if err := t.Init(ctx, idx); err != nil {
		f.dialFailed(role, err)
	}
	if s.transport == TransportAuto {
		tr, why, fresh := f.run.resolveAuto(ctx, idx)
		if fresh {
			f.Finding("--transport auto: %s", why)
		}
		s.transport = tr
	}
	dial := t.DialOptions(idx)
	dial.Transport = s.transport
	// The client's own ping watchdog must not end a connection just
	// because the harness, starved of CPU, read the server's ping late:
	// the server's timeout decides when a session is over (RECON-2/3).
	dial.PingSlack = harnessPingSlack
	dial.MaxQueuedBytes = maxQueuedBytesPerClient
	conn, err := sioclient.Dial(ctx, dial)
	if err != nil {
		f.dialFailed(role, err)
	}
	c := newClient(f, role, s.user, conn, idx)
	f.clients = append(f.clients, c)
	return c
}

func (f *Framework) dialFailed(role string, err error) {
	ginkgo.GinkgoHelper()
	if dead := f.run.noteDialError(f.CaseID, len(f.clients) > 0, err); dead != nil {
		ginkgo.Fail(dead.Error())
	}
	f.Failf("%s could not connect: %v", role, err)
}

// Joined connects a client for role and joins it, returning the client
// and its connected event.
func (f *Framework) Joined(ctx context.Context, role string, opts ...ConnOption) (*Client, Received) {
	ginkgo.GinkgoHelper()
	c := f.Connect(ctx, role, opts...)
	return c, c.Join(ctx)
}

// harnessPingSlack is the room the suite's clients give a server's pings
// beyond pingInterval+pingTimeout (sioclient.Options.PingSlack). With the
// 300 ms + 300 ms heartbeat of the Node variants, a loaded machine once
// let the client time out servers that were pinging.
const harnessPingSlack = 5 * time.Second

// Failf fails the spec with the message and the events every client of
// the spec received.
//
// A wait that ended because the case's clients crossed the recording byte
// bound does not fail the case: it is skipped as not verified
// (recorder.go says why).
func (f *Framework) Failf(format string, args ...any) {
	ginkgo.GinkgoHelper()
	if limit := byteBoundIn(args); limit != nil {
		reason := notVerifiedReason(limit, f.budget.largest.Load())
		f.Finding("%s %s", f.CaseID, reason)
		ginkgo.Skip(reason)
	}
	msg := fmt.Sprintf(format, args...) + "\n"
	if notes := f.toleratedBy(); len(notes) > 0 {
		msg += fmt.Sprintf("earlier cases of this run met a violation of %s in a step and tolerated it there:\n  %s\n",
			f.CaseID, strings.Join(notes, "\n  "))
	}
	ginkgo.Fail(msg + f.EventLog())
}

// EventLog renders what every client of the spec received, in order.
func (f *Framework) EventLog() string {
	if len(f.clients) == 0 {
		return "(no client was connected)"
	}
	var b strings.Builder
	b.WriteString("events received (time since the case started):\n")
	for _, c := range f.clients {
		b.WriteString(c.log())
	}
	return b.String()
}

// Finding records an informational finding for the report (info cases,
// and notes on graded ones such as an observed history cap).
func (f *Framework) Finding(format string, args ...any) {
	if f.onFinding != nil {
		f.onFinding(fmt.Sprintf(format, args...))
		return
	}
	ginkgo.AddReportEntry(FindingEntry, fmt.Sprintf(format, args...))
}

// harnessFinding reports that a wait found its event only after making
// sure the harness was not the one behind (note says how; "" when the
// event had simply been processed just as the timeout fired).
func (f *Framework) harnessFinding(what, note string, r Received) {
	if note == "" {
		// It came as the timeout fired, with no sign of a harness behind:
		// nothing worth a finding (short probe windows meet this often).
		return
	}
	f.Finding("harness behind, not the server: %s (event #%d %s, received by the socket %s into the case) came in time; %s",
		what, r.Index, r.Name, r.Event.Received.Sub(f.started).Round(time.Millisecond), note)
}

// FindingEntry is the report-entry name under which findings are stored.
const FindingEntry = "finding"

// Verify fails the spec unless ok, saying what was expected and what was
// seen, followed by the events every client received.
func (f *Framework) Verify(ok bool, expected, seen string) {
	ginkgo.GinkgoHelper()
	if ok {
		return
	}
	f.Failf("expected: %s\nseen: %s", expected, seen)
}
