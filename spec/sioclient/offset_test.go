package sioclient

import (
	"encoding/json"
	"testing"
	"time"
)

// A server with connection state recovery appends a string offset to every
// event; splitOffset takes it out, and leaves anything else alone.
func TestSplitOffset(t *testing.T) {
	for _, tc := range []struct {
		args, rest, offset string
		ok                 bool
	}{
		{`[{"messagesList":[]},"MzUPkW0"]`, `[{"messagesList":[]}]`, "MzUPkW0", true},
		{`[{"a":"x\"y"} , "o\"ff\\"]` + "\n", `[{"a":"x\"y"} ]`, `o"ff\`, true},
		{`[{"a":1},"",2]`, `[{"a":1},"",2]`, "", false}, // last is not a string
		{`["only"]`, `["only"]`, "", false},             // no first argument
		{`[]`, `[]`, "", false},
		{`[{"a":"x"}]`, `[{"a":"x"}]`, "", false},
		{`[{"a":"b\\"}]`, `[{"a":"b\\"}]`, "", false}, // a quote inside the object
		{`["a","b"]`, `["a"]`, "b", true},
		{`not json`, `not json`, "", false},
	} {
		rest, off, ok := splitOffset(json.RawMessage(tc.args))
		if string(rest) != tc.rest || off != tc.offset || ok != tc.ok {
			t.Errorf("splitOffset(%s) = %s, %q, %v; want %s, %q, %v", tc.args, rest, off, ok, tc.rest, tc.offset, tc.ok)
		}
		if ok && !json.Valid(rest) {
			t.Errorf("splitOffset(%s): rest %s is not valid JSON", tc.args, rest)
		}
	}
}

// Whatever the input, splitOffset never panics, and what it returns after
// a split is a valid JSON array one element shorter.
func FuzzSplitOffset(f *testing.F) {
	for _, s := range []string{`[{"a":1},"x"]`, `["a","b\"c"]`, `[1, "\\\\"]`, `[]`, `"`, `]`, `,"]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rest, _, ok := splitOffset(json.RawMessage(s))
		if !ok {
			return
		}
		var before, after []json.RawMessage
		if json.Unmarshal([]byte(s), &before) != nil {
			return // splitOffset does not validate the whole array; the decoder already did
		}
		if err := json.Unmarshal(rest, &after); err != nil || len(after) != len(before)-1 {
			t.Fatalf("splitOffset(%s) = %s: not the array minus its last element (%v)", s, rest, err)
		}
	})
}

// Over a connection whose CONNECT ack has a pid, events lose the offset
// from Args and carry it in Offset; without a pid nothing is touched.
func TestRecoveryOffsetOverPolling(t *testing.T) {
	for _, tc := range []struct {
		ack, args, offset, recovery string
	}{
		{`40{"sid":"x1","pid":"p1"}`, `[{"messagesList":[]}]`, "off-7", "p1"},
		{`40{"sid":"x1"}`, `[{"messagesList":[]},"off-7"]`, "", ""},
	} {
		u := pollingScript(t, `0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`,
			tc.ack, `42["messageWritten",{"messagesList":[]},"off-7"]`)
		c, err := Dial(ctxT(t, 5*time.Second), Options{URL: u, Transport: Polling})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		ev, err := c.Next(ctxT(t, 5*time.Second))
		c.Abort()
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if string(ev.Args) != tc.args || ev.Offset != tc.offset || c.RecoveryID() != tc.recovery {
			t.Errorf("ack %s: args %s offset %q recovery %q; want %s %q %q", tc.ack, ev.Args, ev.Offset, c.RecoveryID(), tc.args, tc.offset, tc.recovery)
		}
	}
}
