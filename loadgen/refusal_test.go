package loadgen

import (
	"strings"
	"testing"
)

func TestRefusalFromAck(t *testing.T) {
	for _, tc := range []struct {
		args string
		code string // "" when the ack is acceptance
	}{
		{`[]`, ""},
		{`[{"ok":true}]`, ""},
		{`[{"ok":true,"error":null}]`, ""},
		{`[{"message":"hi","username":"a"}]`, ""}, // the stored message
		{`["ok"]`, ""},
		{`[null]`, ""},
		{`[{"error":""}]`, ""},
		{`[{"error":null}]`, ""},
		{`not json`, ""},
		{`[false]`, "none"},
		{`[{"ok":false}]`, "none"},
		{`[{"ok":false,"code":"rate_limited","message":"slow down"}]`, "rate_limited"},
		{`[{"error":"message too long"}]`, "message_too_long"},
		{`[{"error":{"code":7}}]`, "none"},
		{`[{"ok":false,"reason":"not joined!"}]`, "not_joined"},
		{`[{"ok":false,"code":"` + strings.Repeat("x", 500) + `"}]`, strings.Repeat("x", 40)},
	} {
		ref := refusalFromAck([]byte(tc.args))
		switch {
		case tc.code == "" && ref != nil:
			t.Errorf("ack %s: refusal %+v, want acceptance", tc.args, ref)
		case tc.code != "" && (ref == nil || ref.Code != tc.code || ref.Event != "writeMessage"):
			t.Errorf("ack %s: %+v, want a writeMessage refusal with code %s", tc.args, ref, tc.code)
		}
	}
}

func TestRefusalFromEvent(t *testing.T) {
	for _, tc := range []struct {
		name, args  string
		event, code string // code "" when the event is no report
	}{
		// Events a conforming server may add (§8): not refusals.
		{"welcome", `[{"server":"x","time":"now"}]`, "", ""},
		{"userCount", `[3]`, "", ""},
		{"notice", `[{"level":"info","event":"writeMessage","reason":"slow"}]`, "", ""},
		{"typing", `[{"username":"a","ok":true}]`, "", ""},
		{"status", `["error"]`, "", ""},
		{"big", `[` + strings.Repeat(`"x",`, 30000) + `1]`, "", ""},
		// Reports.
		{"chatError", `[{"event":"writeMessage","code":"rate_limited","message":"m"}]`, "writeMessage", "rate_limited"},
		{"chatError", `[{"event":"connecting","code":"invalid_username"}]`, "connecting", "invalid_username"},
		{"chatError", `garbage`, "", "unreadable"},
		{"chatError", `["just text"]`, "", "none"},
		{"notice", `[{"level":"error","event":"writeMessage","reason":"message_too_long","detail":"d"}]`, "writeMessage", "message_too_long"},
		{"exception", `[{"status":"error","message":"writeMessage: too fast"}]`, "", "none"},
		{"message", `[{"ok":false,"code":"not_joined"}]`, "", "not_joined"},
		{"server:error", `[{"error":"store down"}]`, "", "store_down"},
		{"chatError", `[{"event":{"x":1},"code":5}]`, "", "none"},
	} {
		ref := refusalFromEvent(tc.name, []byte(tc.args))
		switch {
		case tc.code == "" && ref != nil:
			t.Errorf("%s %.60s: refusal %+v, want none", tc.name, tc.args, ref)
		case tc.code != "" && (ref == nil || ref.Code != tc.code || ref.Event != tc.event):
			t.Errorf("%s %.60s: %+v, want event %q code %q", tc.name, tc.args, ref, tc.event, tc.code)
		}
	}
}
