package loadgen

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const ms = time.Millisecond

// script feeds results to Metrics in order and returns the summary.
func script(users int, window time.Duration, end time.Duration, rs ...Result) *Summary {
	m := NewMetrics(MetricsConfig{Users: users, Window: window})
	for _, r := range rs {
		m.Add(r)
	}
	s := &Summary{}
	m.Close(end, Usage{}, s)
	return s
}

func joined(user, session int32, at time.Duration) Result {
	return Result{Kind: Joined, User: user, Session: session, At: at}
}

func sent(user int32, seq uint32, intended time.Duration) Result {
	return Result{Kind: Sent, User: user, Sender: uint32(user), Seq: seq, Intended: intended, At: intended}
}

func got(user, session int32, sender int32, seq uint32, intended, at time.Duration) Result {
	return Result{Kind: Delivered, User: user, Session: session, Sender: uint32(sender), Seq: seq, Intended: intended, At: at}
}

func left(user, session int32, at time.Duration) Result {
	return Result{Kind: Left, User: user, Session: session, At: at, Planned: true}
}

func TestAccounting(t *testing.T) {
	const w = 100 * ms
	tests := []struct {
		name string
		rs   []Result
		end  time.Duration
		want MessagesSummary
	}{
		{
			name: "everyone joined before and stayed: all delivered",
			rs: []Result{
				joined(0, 0, 10*ms), joined(1, 1, 20*ms),
				sent(0, 1, 50*ms), got(0, 0, 0, 1, 50*ms, 52*ms), got(1, 1, 0, 1, 50*ms, 53*ms),
				left(0, 0, 500*ms), left(1, 1, 500*ms),
			},
			end:  time.Second,
			want: MessagesSummary{Sent: 1, ExpectedDeliveries: 2, Delivered: 2, DeliveryRatio: 1},
		},
		{
			name: "a receiver that never got it: lost",
			rs: []Result{
				joined(0, 0, 10*ms), joined(1, 1, 20*ms),
				sent(0, 1, 50*ms), got(0, 0, 0, 1, 50*ms, 52*ms),
			},
			end:  time.Second,
			want: MessagesSummary{Sent: 1, ExpectedDeliveries: 2, Delivered: 1, Lost: 1, LostTrailing: 1, LossRatio: 0.5, DeliveryRatio: 0.5},
		},
		{
			name: "joined after the send: not owed, delivery not counted",
			rs: []Result{
				joined(0, 0, 10*ms), sent(0, 1, 50*ms), joined(1, 1, 60*ms),
				got(0, 0, 0, 1, 50*ms, 52*ms), got(1, 1, 0, 1, 50*ms, 70*ms),
			},
			end:  time.Second,
			want: MessagesSummary{Sent: 1, ExpectedDeliveries: 1, Delivered: 1, Unexpected: 1, DeliveryRatio: 1},
		},
		{
			name: "left inside the window: not owed, even when it arrived",
			rs: []Result{
				joined(0, 0, 10*ms), joined(1, 1, 20*ms), joined(2, 2, 20*ms),
				sent(0, 1, 50*ms), got(0, 0, 0, 1, 50*ms, 52*ms), got(1, 1, 0, 1, 50*ms, 55*ms),
				left(1, 1, 60*ms), left(2, 2, 70*ms),
			},
			end:  time.Second,
			want: MessagesSummary{Sent: 1, ExpectedDeliveries: 1, Delivered: 1, Unexpected: 1, DeliveryRatio: 1},
		},
		{
			name: "left after the window without it: lost",
			rs: []Result{
				joined(0, 0, 10*ms), joined(1, 1, 20*ms),
				sent(0, 1, 50*ms), got(0, 0, 0, 1, 50*ms, 52*ms), left(1, 1, 200*ms),
			},
			end:  time.Second,
			want: MessagesSummary{Sent: 1, ExpectedDeliveries: 2, Delivered: 1, Lost: 1, LostTrailing: 1, LossRatio: 0.5, DeliveryRatio: 0.5},
		},
		{
			name: "a later message of the sender arrived, an earlier one never did: a gap",
			rs: []Result{
				joined(0, 0, 10*ms), joined(1, 1, 20*ms),
				sent(0, 1, 50*ms), sent(0, 2, 60*ms),
				got(0, 0, 0, 1, 50*ms, 52*ms), got(0, 0, 0, 2, 60*ms, 62*ms), got(1, 1, 0, 2, 60*ms, 63*ms),
			},
			end:  time.Second,
			want: MessagesSummary{Sent: 2, ExpectedDeliveries: 4, Delivered: 3, Lost: 1, LostGaps: 1, LossRatio: 0.25, DeliveryRatio: 0.75},
		},
		{
			name: "nothing the sender wrote later arrived: trailing",
			rs: []Result{
				joined(0, 0, 10*ms), joined(1, 1, 20*ms),
				sent(0, 1, 50*ms), sent(0, 2, 60*ms),
				got(0, 0, 0, 1, 50*ms, 52*ms), got(0, 0, 0, 2, 60*ms, 62*ms), got(1, 1, 0, 1, 50*ms, 53*ms),
				left(1, 1, 300*ms),
			},
			end:  time.Second,
			want: MessagesSummary{Sent: 2, ExpectedDeliveries: 4, Delivered: 3, Lost: 1, LostTrailing: 1, LossRatio: 0.25, DeliveryRatio: 0.75},
		},
		{
			name: "late delivery still counts",
			rs: []Result{
				joined(0, 0, 10*ms), joined(1, 1, 20*ms),
				sent(0, 1, 50*ms), got(0, 0, 0, 1, 50*ms, 52*ms), got(1, 1, 0, 1, 50*ms, 400*ms),
			},
			end:  time.Second,
			want: MessagesSummary{Sent: 1, ExpectedDeliveries: 2, Delivered: 2, DeliveryRatio: 1},
		},
		{
			name: "run ended inside the window: in-flight messages are owed to nobody",
			rs: []Result{
				joined(0, 0, 10*ms), joined(1, 1, 20*ms),
				sent(0, 1, 950*ms), got(0, 0, 0, 1, 950*ms, 952*ms),
			},
			end:  time.Second,
			want: MessagesSummary{Sent: 1, Unexpected: 1, Unmeasured: true},
		},
		{
			name: "duplicate and reordering",
			rs: []Result{
				joined(0, 0, 10*ms), joined(1, 1, 20*ms),
				sent(0, 1, 50*ms), sent(0, 2, 60*ms),
				got(1, 1, 0, 2, 60*ms, 62*ms), got(1, 1, 0, 1, 50*ms, 63*ms), got(1, 1, 0, 1, 50*ms, 64*ms),
				got(0, 0, 0, 1, 50*ms, 62*ms), got(0, 0, 0, 2, 60*ms, 63*ms),
			},
			end:  time.Second,
			want: MessagesSummary{Sent: 2, ExpectedDeliveries: 4, Delivered: 4, Duplicated: 1, Reordered: 1, DeliveryRatio: 1},
		},
		{
			name: "deliveries out of deadline order settle at the end",
			rs: []Result{
				joined(0, 0, 10*ms), joined(1, 1, 20*ms),
				sent(0, 1, 50*ms), sent(0, 2, 30*ms),
				got(1, 1, 0, 1, 50*ms, 60*ms), got(1, 1, 0, 2, 30*ms, 61*ms),
				got(0, 0, 0, 1, 50*ms, 60*ms), got(0, 0, 0, 2, 30*ms, 61*ms),
				left(1, 1, 140*ms), // past 2's deadline (130ms), before 1's (150ms)
			},
			end:  time.Second,
			want: MessagesSummary{Sent: 2, ExpectedDeliveries: 3, Delivered: 3, Unexpected: 1, DeliveryRatio: 1},
		},
		{
			name: "sender dropped abruptly right after sending, nobody got it: unconfirmed",
			rs: []Result{
				joined(0, 0, 10*ms), joined(1, 1, 20*ms),
				{Kind: Sent, User: 0, Session: 0, Sender: 0, Seq: 1, Intended: 50 * ms, At: 50 * ms},
				{Kind: Left, User: 0, Session: 0, At: 60 * ms, Planned: true, Abrupt: true},
			},
			end:  time.Second,
			want: MessagesSummary{Sent: 1, Unconfirmed: 1, Unmeasured: true},
		},
		{
			name: "sender dropped right after sending, one got it: owed to all",
			rs: []Result{
				joined(0, 0, 10*ms), joined(1, 1, 20*ms), joined(2, 2, 20*ms),
				{Kind: Sent, User: 0, Session: 0, Sender: 0, Seq: 1, Intended: 50 * ms, At: 50 * ms},
				got(1, 1, 0, 1, 50*ms, 55*ms),
				{Kind: Left, User: 0, Session: 0, At: 60 * ms, Planned: true, Abrupt: true},
			},
			end:  time.Second,
			want: MessagesSummary{Sent: 1, ExpectedDeliveries: 2, Delivered: 1, Lost: 1, LostTrailing: 1, LossRatio: 0.5, DeliveryRatio: 0.5},
		},
		{
			name: "sender left gracefully right after sending: still owed",
			rs: []Result{
				joined(0, 0, 10*ms), joined(1, 1, 20*ms),
				{Kind: Sent, User: 0, Session: 0, Sender: 0, Seq: 1, Intended: 50 * ms, At: 50 * ms},
				left(0, 0, 60*ms),
			},
			end:  time.Second,
			want: MessagesSummary{Sent: 1, ExpectedDeliveries: 1, Lost: 1, LostTrailing: 1, LossRatio: 1},
		},
		{
			name: "refused write is owed to nobody, not lost",
			rs: []Result{
				joined(0, 0, 10*ms), joined(1, 1, 20*ms),
				sent(0, 1, 50*ms), got(0, 0, 0, 1, 50*ms, 52*ms), got(1, 1, 0, 1, 50*ms, 52*ms),
				{Kind: Refused, User: 0, Session: 0, Sender: 0, Seq: 2, At: 61 * ms, Err: &RefusalError{Event: "writeMessage", Code: "rate_limited"}},
				sent(0, 2, 60*ms),
			},
			end:  time.Second,
			want: MessagesSummary{Sent: 2, ExpectedDeliveries: 2, Delivered: 2, DeliveryRatio: 1, Refused: 1, RefusedByCode: map[string]int64{"rate_limited": 1}},
		},
		{
			name: "an event repeating a message is a duplicate",
			rs: []Result{
				joined(0, 0, 10*ms), joined(1, 1, 20*ms),
				sent(0, 1, 50*ms), got(0, 0, 0, 1, 50*ms, 52*ms), got(1, 1, 0, 1, 50*ms, 52*ms),
				{Kind: Noted, Note: NoteRepeat, User: 0, Session: 0, Sender: 0, Seq: 1, At: 53 * ms},
			},
			end:  time.Second,
			want: MessagesSummary{Sent: 1, ExpectedDeliveries: 2, Delivered: 2, Duplicated: 1, DeliveryRatio: 1},
		},
		{
			name: "failed send is owed to nobody",
			rs: []Result{
				joined(0, 0, 10*ms), joined(1, 1, 20*ms),
				{Kind: SendFailed, User: 0, Sender: 0, Seq: 1, Intended: 50 * ms, At: 50 * ms},
			},
			end:  time.Second,
			want: MessagesSummary{SendErrors: 1, Unmeasured: true},
		},
		{
			name: "a delivery seen before its Sent record counts",
			rs: []Result{
				joined(0, 0, 10*ms), joined(1, 1, 20*ms),
				got(1, 1, 0, 1, 50*ms, 52*ms), got(0, 0, 0, 1, 50*ms, 52*ms), sent(0, 1, 50*ms),
			},
			end:  time.Second,
			want: MessagesSummary{Sent: 1, ExpectedDeliveries: 2, Delivered: 2, DeliveryRatio: 1},
		},
		{
			name: "stamps that cannot be ours are ignored",
			rs: []Result{
				joined(0, 0, 10*ms),
				got(0, 0, 7, 1, 50*ms, 52*ms), got(0, 0, 0, 0, 50*ms, 52*ms), got(0, 0, 0, maxSeq+1, 50*ms, 52*ms),
			},
			end:  time.Second,
			want: MessagesSummary{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := script(3, w, tt.end, tt.rs...)
			if diff := cmp.Diff(tt.want, s.Messages, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAccountingManyMessages checks that pending deliveries survive the
// per-sender message tables growing (they refer to messages by id).
func TestAccountingManyMessages(t *testing.T) {
	const w = 50 * ms
	rs := []Result{joined(0, 0, 0), joined(1, 1, 0)}
	for seq := uint32(1); seq <= 2000; seq++ {
		at := time.Duration(seq) * ms
		rs = append(rs, sent(0, seq, at), got(1, 1, 0, seq, at, at+ms), got(0, 0, 0, seq, at, at+ms))
	}
	s := script(2, w, 10*time.Second, rs...)
	want := MessagesSummary{Sent: 2000, ExpectedDeliveries: 4000, Delivered: 4000, DeliveryRatio: 1}
	if diff := cmp.Diff(want, s.Messages, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if s.LatencyMS.Fanout.Count != 2000 || s.LatencyMS.Echo.Count != 2000 {
		t.Errorf("latency counts fanout %d echo %d, want 2000 each", s.LatencyMS.Fanout.Count, s.LatencyMS.Echo.Count)
	}
	if got, want := s.LatencyMS.Fanout.P99, 1.0; got != want {
		t.Errorf("fanout p99 = %v ms, want %v", got, want)
	}
}

func TestPerSenderListsTheWorst(t *testing.T) {
	rs := []Result{joined(0, 0, 0), joined(1, 1, 0), joined(2, 2, 0)}
	// User 0's message reaches nobody else; user 1's reaches everyone.
	rs = append(rs, sent(0, 1, 10*ms), got(0, 0, 0, 1, 10*ms, 11*ms))
	rs = append(rs, sent(1, 1, 10*ms), got(0, 0, 1, 1, 10*ms, 11*ms), got(1, 1, 1, 1, 10*ms, 11*ms), got(2, 2, 1, 1, 10*ms, 11*ms))
	s := script(3, 100*ms, time.Second, rs...)
	want := []SenderStats{{User: 0, Sent: 1, Expected: 3, Delivered: 1, Lost: 2}}
	if diff := cmp.Diff(want, s.PerSender); diff != "" {
		t.Errorf("per sender (-want +got):\n%s", diff)
	}
}

func TestTimelineStaysBounded(t *testing.T) {
	m := NewMetrics(MetricsConfig{Users: 1, Window: time.Second, Interval: time.Second, MaxIntervals: 10})
	for i := range 100 {
		m.Add(Result{Kind: Tick, Intended: time.Duration(i) * time.Second, At: time.Duration(i) * time.Second})
		m.Add(sent(0, uint32(i+1), time.Duration(i)*time.Second))
	}
	s := &Summary{}
	m.Close(100*time.Second, Usage{}, s)
	if n := len(s.Timeline); n > 10 || n < 3 {
		t.Errorf("timeline has %d points, want 3..10", n)
	}
	var sent int64
	for _, iv := range s.Timeline {
		sent += iv.Sent
	}
	if sent != 100 {
		t.Errorf("timeline sent total = %d, want 100 (merging must keep counts)", sent)
	}
}

func TestSummaryKnowsEveryThresholdMetric(t *testing.T) {
	s := &Summary{Ended: EndedCompleted}
	s.LatencyMS.Fanout = LatencyStats{P99: 1, Count: 1}
	s.LatencyMS.Join = LatencyStats{P99: 1, Count: 1}
	s.LatencyMS.Connect = LatencyStats{P99: 1, Count: 1}
	s.LatencyMS.Echo = LatencyStats{P99: 1, Count: 1}
	s.Messages.ExpectedDeliveries = 1
	for _, name := range thresholdMetricNames() {
		if _, ok := s.Metric(name); !ok {
			t.Errorf("Summary.Metric(%q) is not measured", name)
		}
	}
	empty := &Summary{}
	if _, ok := empty.Metric("fanout.p99"); ok {
		t.Errorf("fanout.p99 with no samples reported as measured")
	}
}

// Two receivers whose lists put 0/2 and 1/1 in opposite orders after
// the common 0/1 cannot both hold one history order (HIST-1).
func TestAccountingOrderConflicts(t *testing.T) {
	const ms = time.Millisecond
	after := func(r Result, sender, seq uint32) Result { r.Pred = PackID(sender, seq); return r }
	rs := []Result{
		joined(0, 0, 10*ms), joined(1, 1, 10*ms),
		sent(0, 1, 40*ms), sent(0, 2, 50*ms), sent(1, 1, 50*ms),
		got(0, 0, 0, 1, 40*ms, 41*ms), got(1, 1, 0, 1, 40*ms, 41*ms),
		after(got(0, 0, 0, 2, 50*ms, 52*ms), 0, 1), after(got(0, 0, 1, 1, 50*ms, 53*ms), 0, 2),
		after(got(1, 1, 1, 1, 50*ms, 52*ms), 0, 1), after(got(1, 1, 0, 2, 50*ms, 53*ms), 1, 1),
	}
	s := script(2, 100*ms, time.Second, rs...)
	m := s.Messages
	if m.OrderConflicts != 2 || len(m.OrderConflictPairs) != 1 {
		t.Fatalf("order conflicts %d, pairs %+v: want 2 conflicts between receivers 0 and 1", m.OrderConflicts, m.OrderConflictPairs)
	}
	if p := m.OrderConflictPairs[0]; p.ReceiverA != 0 || p.ReceiverB != 1 || p.Count != 2 || p.Message == "" || p.BeforeA == p.BeforeB {
		t.Errorf("pair %+v: want receivers 0 and 1, 2 conflicts, an example", p)
	}
	if m.Lost != 0 || m.Duplicated != 0 || m.Reordered != 0 {
		t.Errorf("messages %+v: an order conflict is neither loss, duplicate nor per-sender reordering", m)
	}
}
