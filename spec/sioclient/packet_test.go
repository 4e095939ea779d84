package sioclient

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	sioparser "github.com/zishang520/socket.io/parsers/socket/v3/parser"
)

func TestParseSocketPacket(t *testing.T) {
	cases := []struct {
		in      string
		typ     sioparser.PacketType
		nsp     string
		id      uint64
		hasID   bool
		data    string
		wantErr string
	}{
		{in: "0", typ: sioparser.CONNECT, nsp: "/"},
		{in: `0{"sid":"a"}`, typ: sioparser.CONNECT, nsp: "/", data: `{"sid":"a"}`},
		{in: `0/chat,{"sid":"a"}`, typ: sioparser.CONNECT, nsp: "/chat", data: `{"sid":"a"}`},
		{in: "1/chat,", typ: sioparser.DISCONNECT, nsp: "/chat"},
		{in: "1/chat", typ: sioparser.DISCONNECT, nsp: "/chat"},
		{in: `2["a",1]`, typ: sioparser.EVENT, nsp: "/", data: `["a",1]`},
		{in: `2/x,12["a"]`, typ: sioparser.EVENT, nsp: "/x", id: 12, hasID: true, data: `["a"]`},
		{in: `312[]`, typ: sioparser.ACK, nsp: "/", id: 12, hasID: true, data: `[]`},
		{in: "", wantErr: "empty Socket.IO packet"},
		{in: "7", wantErr: "unknown Socket.IO packet type"},
		{in: "/", wantErr: "unknown Socket.IO packet type"},
		{in: `51-["a",{"_placeholder":true,"num":0}]`, wantErr: "binary Socket.IO packet"},
		{in: `2123456789012345678901["x"]`, wantErr: "longer than 20 digits"},
		{in: `299999999999999999999["x"]`, wantErr: "out of range"},
		{in: "2/" + strings.Repeat("n", 600) + ",[]", wantErr: "namespace longer"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			p, err := parseSocketPacket([]byte(tc.in))
			if tc.wantErr != "" {
				var pe *ProtocolError
				if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want a ProtocolError with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.typ != tc.typ || string(p.nsp) != tc.nsp || p.id != tc.id || p.hasID != tc.hasID || string(p.data) != tc.data {
				t.Errorf("got %v %q %d %v %q", p.typ, p.nsp, p.id, p.hasID, p.data)
			}
		})
	}
}

func TestParseEventData(t *testing.T) {
	cases := []struct {
		in, name, args, wantErr string
	}{
		{in: `["a"]`, name: "a", args: `[]`},
		{in: ` [ "a" , 1 , {"b":[2]} ] `, name: "a", args: `[ 1 , {"b":[2]} ]`},
		{in: `["a\"b\u00e9",true]`, name: "a\"b\u00e9", args: `[true]`},
		{in: `[42,"x"]`, name: "42", args: `["x"]`},
		{in: `[-1.5e3]`, name: "-1.5e3", args: `[]`},
		{in: `{}`, wantErr: "not a JSON array"},
		{in: `[]`, wantErr: "no event name"},
		{in: `[null]`, wantErr: "neither a string nor a number"},
		{in: `["a",]`, wantErr: "not valid JSON"},
		{in: `["a" 1]`, wantErr: "unexpected byte"},
		{in: `["a`, wantErr: "not a complete JSON array"},
		{in: `["a]`, wantErr: "unterminated"},
		{in: "[\"a\nb\"]", wantErr: "control byte"},
		{in: `[1x]`, wantErr: "neither a string nor a number"},
		{in: ``, wantErr: "not a JSON array"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			name, args, err := parseEventData([]byte(tc.in), true)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if name != tc.name || string(args) != tc.args {
				t.Errorf("got %q %s, want %q %s", name, args, tc.name, tc.args)
			}
		})
	}
}

func TestParseOpen(t *testing.T) {
	hs, err := parseOpen([]byte(`0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Handshake{SID: "abc", Upgrades: []string{"websocket"}, PingInterval: 25 * time.Second, PingTimeout: 20 * time.Second, MaxPayload: 1000000}
	if !reflect.DeepEqual(hs, want) {
		t.Errorf("got %+v", hs)
	}
	for _, bad := range []string{``, `1`, `0`, `0{}`, `0{"sid":"a","pingInterval":-1,"pingTimeout":1}`, `0{"sid":"a","pingInterval":1e12,"pingTimeout":1}`, `12:0{}`} {
		if _, err := parseOpen([]byte(bad)); err == nil {
			t.Errorf("parseOpen(%q) succeeded", bad)
		}
	}
}

// fuzzConn is a Conn that is connected but has no transport: it lets the
// fuzzer drive the real receive path (handlePayload) in isolation.
func fuzzConn() *Conn {
	c := &Conn{nsp: "/", done: make(chan struct{}), connectCh: make(chan error, 1), wsem: make(chan struct{}, 1), connected: true}
	c.opts.MaxQueuedEvents = 1 << 20
	c.opts.MaxQueuedBytes = 1 << 30
	c.q.init(c.opts.MaxQueuedEvents, c.opts.MaxQueuedBytes)
	c.transport.Store(WebSocket)
	c.silenced.Store(true) // pings are parsed, pongs not sent
	c.pingWait = time.Hour
	c.pingTimer.Store(time.AfterFunc(time.Hour, func() {}))
	return c
}

// FuzzDecodePayload feeds arbitrary polling payloads (and so websocket
// frames, which are single packets) through the receive path: no panic,
// errors are ProtocolErrors or the defined sentinels, and every delivered
// event has a name and a valid JSON array of arguments.
func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{
		`42["messageWritten",{"messagesList":[{"username":"a","message":"hi"}]}]`,
		"2\x1e6\x1e42[\"a\"]",
		`42/chat,["x",1]`, `4212["q",true]`, `43[1]`, `41`, `44{"message":"no"}`, `1`, `3`,
		`451-["x",{"_placeholder":true,"num":0}]`, `bAQID`, `0{"sid":"x"}`, `42["a\u0000",1]`, `42[1.5e3,"x"]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := fuzzConn()
		defer c.pingTimer.Load().Stop()
		err := c.handlePayload(append([]byte(nil), data...), time.Now())
		if err != nil {
			var pe *ProtocolError
			var ce *ConnectError
			if !errors.As(err, &pe) && !errors.As(err, &ce) && err != ErrServerDisconnect && err != ErrEngineClosed {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			if len(err.Error()) > 1000 {
				t.Fatalf("error message of %d bytes", len(err.Error()))
			}
		}
		for {
			ev, ok := c.q.pop()
			if !ok {
				break
			}
			if !json.Valid(ev.Args) || ev.Args[0] != '[' {
				t.Fatalf("event %q with invalid args %q", ev.Name, ev.Args)
			}
		}
	})
}

// FuzzDecodeEvent checks parseEventData against encoding/json: a valid JSON
// array whose first element is a string must decode to the same name and
// the same remaining elements.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range []string{`["a"]`, `["a",1,{"b":[null]}]`, `["\u00e9\"",[]]`, ` ["x" , "y" ] `, `[1]`, `["a",]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want []json.RawMessage
		wantOK := json.Unmarshal(data, &want) == nil && len(want) > 0
		var wantName string
		if wantOK {
			wantOK = json.Unmarshal(want[0], &wantName) == nil && strings.TrimSpace(string(want[0]))[0] == '"'
		}
		name, args, err := parseEventData(append([]byte(nil), data...), true)
		if !wantOK {
			return // numbers as names and invalid input only need to not panic
		}
		if err != nil {
			t.Fatalf("parseEventData(%q) failed on valid input: %v", data, err)
		}
		if name != wantName {
			t.Fatalf("name %q, want %q", name, wantName)
		}
		var got []json.RawMessage
		if err := json.Unmarshal(args, &got); err != nil {
			t.Fatalf("args %q: %v", args, err)
		}
		if len(got) != len(want)-1 {
			t.Fatalf("%d args, want %d", len(got), len(want)-1)
		}
		for i := range got {
			if string(got[i]) != string(want[i+1]) {
				t.Fatalf("arg %d = %s, want %s", i, got[i], want[i+1])
			}
		}
	})
}
