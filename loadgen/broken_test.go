package loadgen

import (
	"testing"
	"time"

	"github.com/chatspec/chatspec/loadgen/faultychat"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// Servers that are broken in ways a delivery count alone does not show
// (issue 11): each must show in its own figure.

func TestServerEndingEverySessionIsCounted(t *testing.T) {
	srv := startFaulty(t, faultychat.Faults{EndSessionsAfter: 150 * time.Millisecond})
	s := run(t, srv.URL(), runOpts{users: 6})
	if s.Sessions.EndedByServer == 0 || s.Sessions.EndedByServerHow["disconnect_packet"] == 0 || s.Users.Dropped != s.Sessions.EndedByServer {
		t.Errorf("sessions %+v: want sessions ended by the server with a disconnect packet", s.Sessions)
	}
	// Every session is accounted for: each one the generator connected
	// ended either by its plan (a failed join included) or by the server.
	if got := s.Sessions.EndedByPlan + s.Sessions.EndedByServer; got != s.Sessions.Connected {
		t.Errorf("sessions %+v: %d ended, want all %d", s.Sessions, got, s.Sessions.Connected)
	}
}

func TestServerEndingPollingSessionsIsCounted(t *testing.T) {
	srv := startFaulty(t, faultychat.Faults{EndPollingAfter: time.Second})
	s := run(t, srv.URL(), runOpts{users: 6, transports: []TransportShare{{sioclient.WebSocket, 1}, {sioclient.Polling, 1}}})
	if s.Sessions.EndedByServer == 0 {
		t.Errorf("sessions %+v: want polling sessions ended by the server", s.Sessions)
	}
}

func TestEchoToSenderTwiceIsADuplicate(t *testing.T) {
	srv := startFaulty(t, faultychat.Faults{EchoSenderTwice: true})
	s := run(t, srv.URL(), runOpts{users: 4})
	if s.Events.Repeated == 0 || s.Messages.Duplicated < s.Events.Repeated {
		t.Errorf("events %+v, duplicated %d: want every repeated echo counted as a duplicate", s.Events, s.Messages.Duplicated)
	}
	if s.Messages.Lost != 0 || s.Events.OutOfContract != 0 {
		t.Errorf("messages %+v events %+v: a repeated event is neither a loss nor a shrunk list", s.Messages, s.Events)
	}
}

// Every form of refusal a server may use (CONTRACT.md ERR-1 leaves it
// open) is a refusal, by the server's code, not a loss.
func TestRefusedWritesAreNotLost(t *testing.T) {
	for _, tc := range []struct {
		as, code string
	}{
		{"chatError", "internal_error"},
		{"ack", "internal_error"},          // a negative ack only
		{"ack-error", "store_unavailable"}, // an ack {error: message} only
		{"notice", "internal_error"},       // the Python server's form
		{"exception", "none"},              // names neither event nor code
		{"both", "internal_error"},         // chatError and a negative ack: counted once
	} {
		t.Run(tc.as, func(t *testing.T) {
			srv := startFaulty(t, faultychat.Faults{RefuseEvery: 5, RefuseAs: tc.as})
			s := run(t, srv.URL(), runOpts{users: 4})
			m := s.Messages
			if want := int64(srv.Refused()); m.Refused != want {
				t.Errorf("refused %d, the server refused %d", m.Refused, want)
			}
			if m.Refused == 0 || m.RefusedByCode[tc.code] != m.Refused {
				t.Errorf("refused %d by code %v: want refusals, all %s", m.Refused, m.RefusedByCode, tc.code)
			}
			if m.Lost != 0 {
				t.Errorf("lost %d (gaps %d): a refused write is owed to nobody", m.Lost, m.LostGaps)
			}
			if m.Delivered == 0 || m.Delivered != m.ExpectedDeliveries {
				t.Errorf("messages %+v: every accepted message must still be delivered", m)
			}
		})
	}
}

// Without acks asked for, a server that refuses only through acks
// refuses silently: those writes are lost, which is what a client that
// asks for no acks sees.
func TestRefusalsOnlyInAcksAreLostWithoutAcks(t *testing.T) {
	srv := startFaulty(t, faultychat.Faults{RefuseEvery: 5, RefuseAs: "ack"})
	s := run(t, srv.URL(), runOpts{users: 4, noAcks: true})
	if m := s.Messages; m.Refused != 0 || m.Lost == 0 {
		t.Errorf("refused %d, lost %d: want no refusal seen and the refused writes lost", m.Refused, m.Lost)
	}
}

func TestReceiversWithDifferentOrdersConflict(t *testing.T) {
	srv := startFaulty(t, faultychat.Faults{SplitOrder: true})
	s := run(t, srv.URL(), runOpts{users: 4})
	m := s.Messages
	if m.OrderConflicts == 0 || len(m.OrderConflictPairs) == 0 {
		t.Fatalf("order conflicts %d pairs %v: want conflicts between receivers of the two orders", m.OrderConflicts, m.OrderConflictPairs)
	}
	p := m.OrderConflictPairs[0]
	if p.ReceiverA%2 == p.ReceiverB%2 && p.ReceiverA != p.ReceiverB {
		t.Logf("pair %+v (join order decides the groups, not the user index)", p)
	}
}
