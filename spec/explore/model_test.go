package explore

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// The model's unit tests build traces by hand: what a run did and what each
// client received. Nonce "1", users "a~1-0" (tag 0), "b~1-1", "c~1-2".

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

type tb struct {
	t *Trace
}

func newTB(ops ...Op) *tb {
	s := Scenario{Users: []User{{Body: "a", Tag: 0}, {Body: "b", Tag: 1}, {Body: "c", Tag: 2}}, Ops: ops}
	t := &Trace{Scenario: s, Nonce: "1", Skipped: make([]bool, len(ops))}
	t.Clients = make([]Client, s.Clients())
	for i := range t.Clients {
		t.Clients[i] = Client{User: -1, JoinOp: -1, LeftOp: -1}
	}
	for i, op := range ops {
		switch op.Kind {
		case OpJoin:
			c := &t.Clients[op.C]
			c.User, c.JoinOp, c.JoinSent, c.Join = op.User, i, at(10*i), JoinAccepted
		case OpClose, OpDrop, OpSilence:
			t.Clients[op.C].LeftOp = i
		}
	}
	return &tb{t: t}
}

func name(u int) string { return fmt.Sprintf("%s~1-%d", []string{"a", "b", "c"}[u], u) }

func users(us ...int) []string {
	out := []string{}
	for _, u := range us {
		out = append(out, name(u))
	}
	return out
}

func (b *tb) ev(c int, name string, window int, ms int, us []string, msgs ...Msg) *tb {
	b.t.Clients[c].Events = append(b.t.Clients[c].Events, Event{Name: name, Window: window, At: at(ms), Users: us, Msgs: msgs})
	return b
}

func (b *tb) write(c, op, id int, ms int, ack Ack) *tb {
	b.t.Clients[c].Writes = append(b.t.Clients[c].Writes, Write{Op: op, ID: id, Text: text(id), Claim: name(b.t.Clients[c].User), Sent: at(ms), Ack: ack})
	return b
}

func text(id int) string { return fmt.Sprintf("~1-w%d~ café", id) }

func msg(u, id int) Msg { return Msg{Username: name(u), Message: text(id)} }

func ids(vs []Violation) []string { return idsOf(vs) }

// twoJoins: c0 joins as a, c1 joins as b.
func twoJoins() *tb {
	b := newTB(
		Op{Kind: OpConnect, C: 0}, Op{Kind: OpJoin, C: 0, User: 0},
		Op{Kind: OpConnect, C: 1}, Op{Kind: OpJoin, C: 1, User: 1},
	)
	b.ev(0, "connected", 1, 10, users(0))
	b.ev(1, "connected", 3, 30, users(0, 1))
	b.ev(0, "joined", 3, 31, users(0, 1))
	return b
}

func TestModel(t *testing.T) {
	tests := []struct {
		name  string
		trace func() *Trace
		want  []string // contract IDs, in order of first appearance; nil = no violation
	}{
		{"two joins are clean", func() *Trace { return twoJoins().t }, nil},
		{"the first user of an empty server missing from its connected", func() *Trace {
			b := twoJoins()
			b.t.Clients[0].Events[0].Users = users()
			return b.t
		}, []string{"JOIN-2"}},
		{"a joined listing the state before the join", func() *Trace {
			b := twoJoins()
			b.t.Clients[0].Events[1].Users = users(0)
			return b.t
		}, []string{"JOIN-3"}},
		{"an unjoined socket may receive joined", func() *Trace {
			b := newTB(Op{Kind: OpConnect, C: 0}, Op{Kind: OpConnect, C: 1}, Op{Kind: OpJoin, C: 1, User: 1})
			b.ev(1, "connected", 2, 30, users(1)).ev(0, "joined", 2, 31, users(1))
			return b.t
		}, nil},
		{"a username listed twice", func() *Trace {
			b := twoJoins()
			b.t.Clients[1].Events[0].Users = users(0, 1, 0)
			return b.t
		}, []string{"USER-1"}},
		{"join order broken", func() *Trace {
			b := twoJoins()
			b.t.Clients[1].Events[0].Users = users(1, 0)
			b.t.Clients[0].Events[1].Users = users(1, 0)
			return b.t
		}, []string{"USER-2"}},
		{"closing one of two tabs keeps the user (no event)", func() *Trace {
			b := newTB(Op{Kind: OpConnect, C: 0}, Op{Kind: OpJoin, C: 0, User: 0},
				Op{Kind: OpConnect, C: 1}, Op{Kind: OpJoin, C: 1, User: 0},
				Op{Kind: OpConnect, C: 2}, Op{Kind: OpJoin, C: 2, User: 1},
				Op{Kind: OpClose, C: 0})
			b.ev(0, "connected", 1, 10, users(0))
			b.ev(1, "connected", 3, 30, users(0)).ev(0, "joined", 3, 31, users(0))
			b.ev(2, "connected", 5, 50, users(0, 1)).ev(0, "joined", 5, 51, users(0, 1)).ev(1, "joined", 5, 51, users(0, 1))
			return b.t
		}, nil},
		{"closing one of two tabs removes the user", func() *Trace {
			b := newTB(Op{Kind: OpConnect, C: 0}, Op{Kind: OpJoin, C: 0, User: 0},
				Op{Kind: OpConnect, C: 1}, Op{Kind: OpJoin, C: 1, User: 0},
				Op{Kind: OpConnect, C: 2}, Op{Kind: OpJoin, C: 2, User: 1},
				Op{Kind: OpClose, C: 0})
			b.ev(0, "connected", 1, 10, users(0))
			b.ev(1, "connected", 3, 30, users(0)).ev(0, "joined", 3, 31, users(0))
			b.ev(2, "connected", 5, 50, users(0, 1)).ev(0, "joined", 5, 51, users(0, 1)).ev(1, "joined", 5, 51, users(0, 1))
			b.ev(2, "disconnected", 6, 61, users(1))
			return b.t
		}, []string{"USER-4"}},
		{"the last tab leaves: disconnected owed", func() *Trace {
			b := twoJoins()
			b.t.Scenario.Ops = append(b.t.Scenario.Ops, Op{Kind: OpDrop, C: 1})
			b.t.Skipped = append(b.t.Skipped, false)
			b.t.Clients[1].LeftOp = 4
			return b.t
		}, []string{"USER-3"}},
		{"concurrent writes in either order, one order for all", func() *Trace {
			b := twoJoins().write(0, 4, 0, 100, AckOK).write(1, 5, 1, 100, AckOK)
			b.t.Scenario.Ops = append(b.t.Scenario.Ops, Op{Kind: OpWrite, C: 0}, Op{Kind: OpWrite, C: 1})
			b.t.Skipped = append(b.t.Skipped, false, false)
			for c := range 2 {
				b.ev(c, "messageWritten", 5, 110, nil, msg(1, 1))
				b.ev(c, "messageWritten", 5, 111, nil, msg(1, 1), msg(0, 0))
			}
			return b.t
		}, nil},
		{"two clients see two orders", func() *Trace {
			b := twoJoins().write(0, 4, 0, 100, AckOK).write(1, 5, 1, 100, AckOK)
			b.t.Scenario.Ops = append(b.t.Scenario.Ops, Op{Kind: OpWrite, C: 0}, Op{Kind: OpWrite, C: 1})
			b.t.Skipped = append(b.t.Skipped, false, false)
			b.ev(0, "messageWritten", 5, 110, nil, msg(1, 1)).ev(0, "messageWritten", 5, 111, nil, msg(1, 1), msg(0, 0))
			b.ev(1, "messageWritten", 5, 110, nil, msg(0, 0)).ev(1, "messageWritten", 5, 111, nil, msg(0, 0), msg(1, 1))
			return b.t
		}, []string{"HIST-1"}},
		{"text normalized", func() *Trace {
			b := twoJoins().write(0, 4, 0, 100, AckOK)
			b.t.Scenario.Ops = append(b.t.Scenario.Ops, Op{Kind: OpWrite, C: 0})
			b.t.Skipped = append(b.t.Skipped, false)
			b.t.Clients[0].Writes[0].Text = "~1-w0~ cafe\u0301"
			b.ev(0, "messageWritten", 4, 110, nil, Msg{Username: name(0), Message: "~1-w0~ caf\u00e9"})
			b.ev(1, "messageWritten", 4, 110, nil, Msg{Username: name(0), Message: "~1-w0~ caf\u00e9"})
			return b.t
		}, []string{"PAY-3"}},
		{"acked and lost", func() *Trace {
			b := twoJoins().write(0, 4, 0, 100, AckOK)
			b.t.Scenario.Ops = append(b.t.Scenario.Ops, Op{Kind: OpWrite, C: 0})
			b.t.Skipped = append(b.t.Skipped, false)
			return b.t
		}, []string{"HIST-2"}},
		{"refused and reported", func() *Trace {
			b := twoJoins().write(0, 4, 0, 100, AckNone)
			b.t.Scenario.Ops = append(b.t.Scenario.Ops, Op{Kind: OpWrite, C: 0})
			b.t.Skipped = append(b.t.Skipped, false)
			b.ev(0, "chatError", 4, 101, nil)
			return b.t
		}, nil},
		{"neither delivered nor refused", func() *Trace {
			b := twoJoins().write(0, 4, 0, 100, AckNone)
			b.t.Scenario.Ops = append(b.t.Scenario.Ops, Op{Kind: OpWrite, C: 0})
			b.t.Skipped = append(b.t.Skipped, false)
			return b.t
		}, []string{"MSG-1"}},
		{"forged write stored under the claimed name", func() *Trace {
			b := twoJoins()
			b.t.Scenario.Ops = append(b.t.Scenario.Ops, Op{Kind: OpForge, C: 0, User: 1})
			b.t.Skipped = append(b.t.Skipped, false)
			b.t.Clients[0].Writes = []Write{{Op: 4, ID: 0, Text: text(0), Claim: name(1), Forge: true, Sent: at(100)}}
			b.ev(0, "messageWritten", 4, 110, nil, msg(1, 0)).ev(1, "messageWritten", 4, 110, nil, msg(1, 0))
			return b.t
		}, []string{"SEC-1"}},
		{"forged write rewritten to the sender", func() *Trace {
			b := twoJoins()
			b.t.Scenario.Ops = append(b.t.Scenario.Ops, Op{Kind: OpForge, C: 0, User: 1})
			b.t.Skipped = append(b.t.Skipped, false)
			b.t.Clients[0].Writes = []Write{{Op: 4, ID: 0, Text: text(0), Claim: name(1), Forge: true, Sent: at(100)}}
			b.ev(0, "messageWritten", 4, 110, nil, msg(0, 0)).ev(1, "messageWritten", 4, 110, nil, msg(0, 0))
			return b.t
		}, nil},
		{"two caps", func() *Trace { return capTrace(60, 70) }, []string{"HIST-4"}},
		{"one cap of 60", func() *Trace { return capTrace(60, 60) }, nil},
		{"a cap below 50", func() *Trace { return capTrace(30, 30) }, []string{"HIST-4"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vs := Check(tc.trace())
			if got := ids(vs); !slices.Equal(got, tc.want) {
				t.Errorf("violations %v, want %v:\n%v", got, tc.want, vs)
			}
		})
	}
}

// capTrace: 80 messages written by c0 (one socket, a sequence); c0's last
// messageWritten carries the newest mwCap, c1 (joined late) gets a
// connected with the newest connCap.
func capTrace(connCap, mwCap int) *Trace {
	ops := []Op{{Kind: OpConnect, C: 0}, {Kind: OpJoin, C: 0, User: 0}}
	for range 80 {
		ops = append(ops, Op{Kind: OpWrite, C: 0})
	}
	ops = append(ops, Op{Kind: OpConnect, C: 1}, Op{Kind: OpJoin, C: 1, User: 1})
	b := newTB(ops...)
	b.ev(0, "connected", 1, 10, users(0))
	var all []Msg
	for i := range 80 {
		b.write(0, 2+i, i, 100+i, AckOK)
		all = append(all, msg(0, i))
		list := all[max(0, len(all)-mwCap):]
		b.ev(0, "messageWritten", 2+i, 101+i, nil, slices.Clone(list)...)
	}
	b.t.Clients[1].JoinSent = at(1000)
	b.ev(1, "connected", 83, 1001, users(0, 1), all[80-connCap:]...)
	b.ev(0, "joined", 83, 1002, users(0, 1))
	return b.t
}

func TestNormalize(t *testing.T) {
	s := Scenario{Users: []User{{Body: "a"}}, Ops: []Op{
		{Kind: OpWrite, C: 5},                        // never connected
		{Kind: OpConnect, C: 5},                      // becomes c0
		{Kind: OpWrite, C: 5},                        // not joined yet
		{Kind: OpJoin, C: 5, User: 0},                // kept
		{Kind: OpSilence, C: 5, NoWait: true},        // no rejoin follows: waits
		{Kind: OpWrite, C: 5},                        // gone
		{Kind: OpConnect, C: 9}, {Kind: OpBad, C: 9}, // becomes c1
	}}
	got := Normalize(s)
	want := []Op{{Kind: OpConnect, C: 0}, {Kind: OpJoin, C: 0, User: 0}, {Kind: OpSilence, C: 0}, {Kind: OpConnect, C: 1}, {Kind: OpBad, C: 1}}
	if !slices.Equal(got.Ops, want) {
		t.Errorf("Normalize:\n got %v\nwant %v", got.Ops, want)
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	for seed := range int64(8) {
		a, b := Generate(seed, GenOptions{SilentDrops: true}), Generate(seed, GenOptions{SilentDrops: true})
		ea, _ := a.Encode()
		eb, _ := b.Encode()
		if string(ea) != string(eb) {
			t.Fatalf("seed %d: two generations differ", seed)
		}
		if n := Normalize(a); len(n.Ops) != len(a.Ops) {
			t.Errorf("seed %d: a generated scenario is not normal (%d ops, %d after Normalize)", seed, len(a.Ops), len(n.Ops))
		}
	}
	if n := Generate(3, GenOptions{}).Writes(); n < 1000 {
		t.Errorf("the chatty shape writes %d messages, want more than 1,000", n)
	}
}

// judge sets aside a failing run whose harness stalled near the ping
// timeout and runs the scenario again; a failing run without such a stall
// is judged, and a scenario that only ever fails stalled is not failed.
func TestJudgeSetsAsideStalledFailures(t *testing.T) {
	hb := Heartbeat{PingInterval: time.Second, PingTimeout: 4 * time.Second}
	failing := func(stall time.Duration) *Trace {
		b := newTB(Op{Kind: OpConnect, C: 0}, Op{Kind: OpJoin, C: 0, User: 0}) // accepted, no connected: JOIN-1
		b.t.Stall = stall
		return b.t
	}
	for _, tc := range []struct {
		name                string
		stalls              []time.Duration
		wantRuns, wantAside int
		wantFail            bool
	}{
		{"no stall", []time.Duration{0}, 1, 0, true},
		{"short stall", []time.Duration{time.Second}, 1, 0, true},
		{"stalled then clean", []time.Duration{2 * time.Second, 0}, 2, 1, true},
		{"always stalled", []time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second, 0}, 3, 3, false},
	} {
		runs := 0
		run := func(context.Context, Scenario, Heartbeat) (*Trace, error) {
			tr := failing(tc.stalls[runs])
			runs++
			return tr, nil
		}
		_, vs, aside, err := judge(t.Context(), run, Scenario{}, hb)
		if err != nil {
			t.Fatal(err)
		}
		if runs != tc.wantRuns || aside != tc.wantAside || (len(vs) > 0) != tc.wantFail {
			t.Errorf("%s: %d runs, %d set aside, violations %v; want %d runs, %d set aside, failing %v", tc.name, runs, aside, vs, tc.wantRuns, tc.wantAside, tc.wantFail)
		}
	}
}

// A stall explains presence, not the rest: a stalled run whose violations
// include one a late pong cannot cause is judged, with that one.
func TestJudgeKeepsWhatAStallCannotExplain(t *testing.T) {
	hb := Heartbeat{PingInterval: time.Second, PingTimeout: 4 * time.Second}
	runs := 0
	run := func(context.Context, Scenario, Heartbeat) (*Trace, error) {
		runs++
		// JOIN-1 (no connected) and PAY-1 (a malformed joined).
		b := newTB(Op{Kind: OpConnect, C: 0}, Op{Kind: OpJoin, C: 0, User: 0})
		b.t.Clients[0].Events = append(b.t.Clients[0].Events, Event{Name: "joined", Window: 1, At: at(20), Malformed: "connectedUserList is missing or null"})
		b.t.Stall = 3 * time.Second
		return b.t, nil
	}
	_, vs, aside, err := judge(t.Context(), run, Scenario{}, hb)
	if err != nil {
		t.Fatal(err)
	}
	if runs != 1 || aside != 0 || len(vs) == 0 || slices.ContainsFunc(vs, heartbeatExplains) {
		t.Errorf("%d runs, %d set aside, violations %v: want one run judged with PAY-1 only", runs, aside, vs)
	}
}
