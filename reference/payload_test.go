package reference

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestParseConnectingRefusesInvisible covers the reference's username rule
// (invisibleRune): every character that lets a name pass for another is
// refused with invalid_username, wherever it stands.
func TestParseConnectingRefusesInvisible(t *testing.T) {
	for _, r := range []rune{
		0x202A, 0x202B, 0x202C, 0x202D, 0x202E, // bidi embeddings and overrides
		0x2066, 0x2067, 0x2068, 0x2069, // bidi isolates
		0x200E, 0x200F, 0x061C, // bidi marks
		0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, // zero width, BOM
		0x00AD, 0x2061, 0x180E, 0xE0001, 0xE0041, // other format characters
		0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0, 0xFE0F, 0xFE00, 0xE0100, // other default-ignorables
		0x2028, 0x2029, // line and paragraph separators
		0x0009, 0x000A, 0x001B, 0x009B, // controls
	} {
		for _, name := range []string{string(r) + "ann", "an" + string(r) + "n", "ann" + string(r)} {
			got, rej := parseConnecting([]any{map[string]any{"username": name}}, 64)
			if rej == nil || rej.code != CodeInvalidUsername {
				t.Errorf("parseConnecting(%+q) = %q, %v; want %s", name, got, rej, CodeInvalidUsername)
				continue
			}
			if want := fmt.Sprintf("U+%04X", r); !strings.Contains(rej.message, want) {
				t.Errorf("parseConnecting(%+q) message %q does not name %s", name, rej.message, want)
			}
		}
	}
}

func TestParseConnecting(t *testing.T) {
	for _, tc := range []struct {
		name, payload, want, code string
	}{
		{"ok", `{"username":"ann"}`, "ann", ""},
		{"extra fields are ignored (PAY-2)", `{"username":"ann","avatar":1}`, "ann", ""},
		{"kept exactly (PAY-3)", `{"username":" <b>Ann</b> 😀 "}`, " <b>Ann</b> 😀 ", ""},
		{"exactly the limit", `{"username":"` + strings.Repeat("é", 32) + `"}`, strings.Repeat("é", 32), ""},
		{"one byte over", `{"username":"` + strings.Repeat("é", 32) + `x"}`, "", CodeInvalidUsername},
		{"empty", `{"username":""}`, "", CodeInvalidUsername},
		{"control character", `{"username":"a\u0000b"}`, "", CodeInvalidUsername},
		{"DEL", `{"username":"a\u007fb"}`, "", CodeInvalidUsername},
		{"C1 control", `{"username":"a\u0085b"}`, "", CodeInvalidUsername},
		{"letters of other scripts and marks", `{"username":"Zoë Ωμέγα 李 e\u0301"}`, "Zoë Ωμέγα 李 e\u0301", ""},
		{"no-break space is a space", `{"username":"a\u00a0b"}`, "a\u00a0b", ""},
		{"private use stays allowed", `{"username":"a\ue000"}`, "a\ue000", ""},
		{"missing", `{}`, "", CodeInvalidPayload},
		{"number", `{"username":1}`, "", CodeInvalidPayload},
		{"null payload", `null`, "", CodeInvalidPayload},
		{"array payload", `["ann"]`, "", CodeInvalidPayload},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tc.payload), &v); err != nil {
				t.Fatal(err)
			}
			got, rej := parseConnecting([]any{v}, 64)
			if tc.code != "" {
				if rej == nil || rej.code != tc.code || rej.message == "" {
					t.Fatalf("parseConnecting(%s) = %q, %v; want code %s", tc.payload, got, rej, tc.code)
				}
				return
			}
			if rej != nil || got != tc.want {
				t.Fatalf("parseConnecting(%s) = %q, %v; want %q", tc.payload, got, rej, tc.want)
			}
		})
	}
	if _, rej := parseConnecting(nil, 64); rej == nil || rej.code != CodeInvalidPayload {
		t.Errorf("no arguments: %v", rej)
	}
}

func TestSplitAck(t *testing.T) {
	called := false
	ack := func([]any, error) { called = true }
	args, got := splitAck([]any{"writeMessage", map[string]any{}, ack})
	if len(args) != 2 || got == nil {
		t.Fatalf("splitAck kept %d args, ack %v", len(args), got != nil)
	}
	got(nil, nil)
	if !called {
		t.Error("splitAck returned a different function")
	}
	if args, got := splitAck([]any{"x"}); len(args) != 1 || got != nil {
		t.Errorf("splitAck without an ack: %d args, ack %v", len(args), got != nil)
	}
}

// FuzzHandlePayload feeds arbitrary JSON (as the library decodes it) to the
// payload validators: they must never panic, and whatever they accept must
// respect the limits (SEC-1, SEC-3) and come back unchanged (PAY-3).
// Seeds live in testdata/fuzz/FuzzHandlePayload.
func FuzzHandlePayload(f *testing.F) {
	for _, seed := range []string{
		`{"username":"ann"}`,
		`{"message":"hi","username":"ann"}`,
		`{"message":"hi","username":"bob"}`,
		`null`, `42`, `"x"`, `[]`, `[{"username":"ann"}]`,
		`{"__proto__":{"username":"ann"},"message":"x","username":"ann"}`,
		`{"message":{"a":[1,2,{"b":null}]},"username":"ann"}`,
	} {
		f.Add([]byte(seed), "ann")
	}
	const maxUser, maxMsg = 16, 64
	f.Fuzz(func(t *testing.T, data []byte, own string) {
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		for _, args := range [][]any{{v}, {}, {v, v}, {nil}} {
			if u, rej := parseConnecting(args, maxUser); rej == nil {
				if u == "" || len(u) > maxUser || !utf8.ValidString(u) {
					t.Fatalf("parseConnecting accepted %q", u)
				}
				if obj := args[0].(map[string]any); obj["username"] != u {
					t.Fatalf("parseConnecting rewrote %q to %q", obj["username"], u)
				}
			} else if rej.code == "" || rej.message == "" {
				t.Fatalf("empty rejection %+v", rej)
			}
			if m, rej := parseWriteMessage(args, own, maxMsg); rej == nil {
				if own == "" || m.Username != own || len(m.Message) > maxMsg {
					t.Fatalf("parseWriteMessage accepted %+v for socket %q", m, own)
				}
				if obj := args[0].(map[string]any); obj["message"] != m.Message {
					t.Fatalf("parseWriteMessage rewrote %q to %q", obj["message"], m.Message)
				}
			} else if rej.code == "" || rej.message == "" {
				t.Fatalf("empty rejection %+v", rej)
			}
			eventName(args)
		}
	})
}
