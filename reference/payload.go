package reference

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/chatspec/chatspec/reference/store"
)

// Event names of the chat contract (CONTRACT.md §2) and of the reference's
// error report (ERR-1).
const (
	EventConnecting     = "connecting"
	EventWriteMessage   = "writeMessage"
	EventConnected      = "connected"
	EventJoined         = "joined"
	EventMessageWritten = "messageWritten"
	EventDisconnected   = "disconnected"
	EventChatError      = "chatError"
)

// Error codes the reference puts in chatError and in negative acks (ERR-1).
const (
	CodeInvalidPayload   = "invalid_payload"
	CodeInvalidUsername  = "invalid_username"
	CodeMessageTooLong   = "message_too_long"
	CodeNotJoined        = "not_joined"
	CodeUsernameMismatch = "username_mismatch"
	CodeRateLimited      = "rate_limited"
	CodeUnknownEvent     = "unknown_event"
	// CodeServerBusy: the chat-wide output rate is used up and the
	// socket has had its fair share of it (Config.BroadcastRate).
	CodeServerBusy = "server_busy"
	// CodeInternal is not in ERR-1's list: it reports a store failure (a
	// remote store timing out), never anything the client did.
	CodeInternal = "internal_error"
)

// rejection is why the server refused one event. It becomes a chatError
// and, if the client asked, a negative ack.
type rejection struct {
	code    string
	message string
}

func (r *rejection) Error() string { return r.code + ": " + r.message }

func reject(code, format string, args ...any) *rejection {
	return &rejection{code: code, message: fmt.Sprintf(format, args...)}
}

// ackFunc is the library's acknowledgement callback (socket.Ack); spelled
// out so that this file's pure functions do not import the server.
type ackFunc = func([]any, error)

// splitAck separates the acknowledgement callback the library appends when
// the client asked for one from the event's real arguments.
func splitAck(args []any) ([]any, ackFunc) {
	if n := len(args); n > 0 {
		if ack, ok := args[n-1].(ackFunc); ok {
			return args[:n-1], ack
		}
	}
	return args, nil
}

// payloadObject returns the event's single object argument (PAY-1 makes
// every chat payload one JSON object). Extra arguments are ignored, as
// extra fields are (PAY-2).
func payloadObject(event string, args []any) (map[string]any, *rejection) {
	if len(args) == 0 {
		return nil, reject(CodeInvalidPayload, "%s needs one object argument, got none", event)
	}
	obj, ok := args[0].(map[string]any)
	if !ok {
		return nil, reject(CodeInvalidPayload, "%s needs an object argument, got %s", event, jsonKind(args[0]))
	}
	return obj, nil
}

// stringField returns obj[name] when it is a JSON string.
func stringField(event string, obj map[string]any, name string) (string, *rejection) {
	v, present := obj[name]
	if !present {
		return "", reject(CodeInvalidPayload, "%s payload has no %q field", event, name)
	}
	s, ok := v.(string)
	if !ok {
		return "", reject(CodeInvalidPayload, "%s field %q must be a string, got %s", event, name, jsonKind(v))
	}
	return s, nil
}

// parseConnecting validates a connecting payload and returns the username
// (JOIN-5, SEC-3). A username is refused when it is empty, longer than
// maxLen bytes, not valid UTF-8, or holds a character that does not show
// as itself (invisibleRune). It is never trimmed or rewritten (PAY-3).
func parseConnecting(args []any, maxLen int) (string, *rejection) {
	obj, rej := payloadObject(EventConnecting, args)
	if rej != nil {
		return "", rej
	}
	username, rej := stringField(EventConnecting, obj, "username")
	if rej != nil {
		return "", rej
	}
	switch {
	case username == "":
		return "", reject(CodeInvalidUsername, "username must not be empty")
	case len(username) > maxLen:
		return "", reject(CodeInvalidUsername, "username is %d bytes, the limit is %d", len(username), maxLen)
	case !utf8.ValidString(username):
		return "", reject(CodeInvalidUsername, "username is not valid UTF-8")
	}
	if i := strings.IndexFunc(username, invisibleRune); i >= 0 {
		r, _ := utf8.DecodeRuneInString(username[i:])
		return "", reject(CodeInvalidUsername, "username must not contain control, format or invisible characters (U+%04X at byte %d)", r, i)
	}
	return username, nil
}

// invisibleRune reports a character the reference refuses in a username
// (CONTRACT.md JOIN-5 leaves the rule to the server; this is the
// reference's choice). Each one lets a second socket join under a name
// that looks identical to an existing one, or lets a name rearrange how
// every client draws the user list:
//   - control characters (Cc), which also forge line breaks;
//   - format characters (Cf): the bidirectional controls U+202A–202E,
//     U+2066–2069, U+200E/F and U+061C, the zero-width U+200B–200D,
//     U+2060, the BOM U+FEFF, the soft hyphen, the tag characters;
//   - the rest of Unicode's Default_Ignorable_Code_Point (Hangul fillers,
//     U+034F, variation selectors such as U+FE0F), which render as
//     nothing;
//   - the line and paragraph separators (Zl, Zp).
//
// Emoji written as one code point, letters of every script, marks and
// ordinary spaces stay allowed. Emoji sequences that need U+200D or U+FE0F
// are refused: the cost of closing the look-alike hole with one rule.
func invisibleRune(r rune) bool {
	return unicode.IsControl(r) ||
		unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// parseWriteMessage validates a writeMessage payload for a socket that holds
// own (empty when the socket has not joined) and returns the message to
// store. The checks run in this order, so the code names the first problem:
// payload shape (invalid_payload), joined (not_joined, SEC-2), own username
// (username_mismatch, SEC-1: refused, never rewritten), size
// (message_too_long, SEC-3). An empty message is accepted: the contract does
// not call it bad input, and PAY-3 asks for texts back exactly as sent.
func parseWriteMessage(args []any, own string, maxLen int) (store.Message, *rejection) {
	obj, rej := payloadObject(EventWriteMessage, args)
	if rej != nil {
		return store.Message{}, rej
	}
	message, rej := stringField(EventWriteMessage, obj, "message")
	if rej != nil {
		return store.Message{}, rej
	}
	username, rej := stringField(EventWriteMessage, obj, "username")
	if rej != nil {
		return store.Message{}, rej
	}
	if own == "" {
		return store.Message{}, reject(CodeNotJoined, notJoinedMessage)
	}
	if username != own {
		return store.Message{}, reject(CodeUsernameMismatch, "this socket joined as %q and cannot write as %q", own, clip(username, 80))
	}
	if len(message) > maxLen {
		return store.Message{}, reject(CodeMessageTooLong, "message is %d bytes, the limit is %d", len(message), maxLen)
	}
	return store.Message{Username: own, Message: message}, nil
}

// eventName returns the name of an incoming event. The library passes the
// name as the first argument to "any" listeners; a numeric name (allowed by
// the wire format) is reported in its JSON spelling.
func eventName(args []any) (string, bool) {
	if len(args) == 0 {
		return "", false
	}
	switch v := args[0].(type) {
	case string:
		return v, true
	case float64:
		return fmt.Sprint(v), false
	default:
		return fmt.Sprintf("%v", v), false
	}
}

// jsonKind names the JSON type of a decoded value for error messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64, int, int64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// clip shortens s for an error message, so a huge or hostile string is not
// echoed back in full.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
