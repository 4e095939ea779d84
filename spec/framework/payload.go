package framework

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// User is an entry of connectedUserList (CONTRACT.md §2).
type User struct {
	Username string `json:"username"`
	// Malformed is set when the entry was not an object with a string
	// username (CheckShape reports it; the specs skip it).
	Malformed bool `json:"-"`
}

// Message is an entry of messagesList (CONTRACT.md §2).
type Message struct {
	Username string `json:"username"`
	Message  string `json:"message"`
	// Malformed is set when the entry was not an object with string fields.
	Malformed bool `json:"-"`
}

// Payload is the decoded first argument of a server event; fields the
// event does not carry stay nil.
//
// Decoding is lenient on purpose: a server whose history already holds a
// malformed entry (left by someone else's bad input, on a live server)
// must not make every later case time out. Entries that are not what
// CONTRACT.md §2 says are kept, marked Malformed; PAY-1 judges shapes.
type Payload struct {
	ConnectedUserList []User    `json:"connectedUserList"`
	MessagesList      []Message `json:"messagesList"`
}

// Usernames returns the usernames of the user list, in order.
func (p Payload) Usernames() []string {
	out := make([]string, len(p.ConnectedUserList))
	for i, u := range p.ConnectedUserList {
		out[i] = u.Username
	}
	return out
}

// Lists reports whether the user list contains username.
func (p Payload) Lists(username string) bool {
	return slices.Contains(p.Usernames(), username)
}

// Count returns how many times username appears in the user list.
func (p Payload) Count(username string) int {
	n := 0
	for _, u := range p.ConnectedUserList {
		if u.Username == username {
			n++
		}
	}
	return n
}

// Is reports whether the entry holds text, in its message field or, with
// the fields swapped, in its username field. Finding a message is a step
// of nearly every case; whether the fields are right is MSG-2's to judge
// (and PAY-3's and SEC-1's, which check the entry exactly). The suite's
// texts contain spaces and '#', so no username can be mistaken for one.
func (m Message) Is(text string) bool {
	return m.Message == text || m.Username == text
}

// Swapped reports whether the entry holds text in its username field
// instead of its message field (CONTRACT.md MSG-2 forbids it).
func (m Message) Swapped(text string) bool {
	return m.Message != text && m.Username == text
}

// Author returns who the entry says wrote text: its username field, or
// its message field when the fields are swapped (see Swapped).
func (m Message) Author(text string) string {
	if m.Swapped(text) {
		return m.Message
	}
	return m.Username
}

// MessageIndex returns the position of the first message with text in
// messagesList (in either field, see Message.Is), or -1.
func (p Payload) MessageIndex(text string) int {
	for i, m := range p.MessagesList {
		if m.Is(text) {
			return i
		}
	}
	return -1
}

// swappedNote says, for a Filter's Tolerated, that texts were found only
// in the username field of the list's entries.
func swappedNote(p Payload, texts ...string) string {
	for _, t := range texts {
		for _, m := range p.MessagesList {
			if m.Swapped(t) {
				return fmt.Sprintf("the message %q came back as %+v: text and username swapped", t, m)
			}
		}
	}
	return ""
}

// Filter narrows which event an Await accepts. Desc completes the sentence
// "expected an event ...", for failure messages.
type Filter struct {
	Desc  string
	Match func(Payload) bool
	// Tolerated, when set, says which requirement an accepted event
	// violates although it matched (the step accepts it so that the case
	// can judge its own requirement) and how, or "" for none. The Await
	// that accepts the event records it (Framework.Tolerate).
	Tolerated func(Payload) (req, note string)
}

// Listing accepts events whose connectedUserList contains username.
func Listing(username string) Filter {
	return Filter{
		Desc:  fmt.Sprintf("whose connectedUserList contains %q", username),
		Match: func(p Payload) bool { return p.Lists(username) },
	}
}

// NotListing accepts events whose connectedUserList does not contain
// username.
func NotListing(username string) Filter {
	return Filter{
		Desc:  fmt.Sprintf("whose connectedUserList does not contain %q", username),
		Match: func(p Payload) bool { return p.ConnectedUserList != nil && !p.Lists(username) },
	}
}

// HasMessage accepts events whose messagesList contains a message with
// this text (whoever it is attributed to, and with the fields swapped too:
// that is tolerated and recorded as MSG-2's).
func HasMessage(text string) Filter {
	return Filter{
		Desc:      fmt.Sprintf("whose messagesList contains the message %q", text),
		Match:     func(p Payload) bool { return p.MessageIndex(text) >= 0 },
		Tolerated: func(p Payload) (string, string) { return "MSG-2", swappedNote(p, text) },
	}
}

// UserListEquals accepts events whose connectedUserList is exactly these
// usernames in this order.
func UserListEquals(usernames []string) Filter {
	return Filter{
		Desc:  fmt.Sprintf("whose connectedUserList is exactly %q", usernames),
		Match: func(p Payload) bool { return p.ConnectedUserList != nil && slices.Equal(p.Usernames(), usernames) },
	}
}

// decodePayload decodes the first argument of an event as a Payload. args
// is the JSON array of the event's arguments.
func decodePayload(args json.RawMessage) (Payload, error) {
	p, _, err := decodeEvent("", args)
	return p, err
}

// decodeEvent decodes an event's payload and says whether its shape may
// break PAY-1 (then CheckShape decides): the cheap fast path proves most
// events well-formed, and CheckShape costs ten times more.
func decodeEvent(name string, args json.RawMessage) (p Payload, suspect bool, err error) {
	var list []json.RawMessage
	if err := json.Unmarshal(args, &list); err != nil {
		return Payload{}, true, fmt.Errorf("arguments are not a JSON array: %w", err)
	}
	if len(list) == 0 {
		return Payload{}, true, fmt.Errorf("the event has no argument")
	}
	p, fast, err := parsePayload(list[0])
	suspect = !fast || len(list) != 1
	needUsers := name == "connected" || name == "joined" || name == "disconnected"
	needMessages := name == "connected" || name == "messageWritten"
	if (needUsers && p.ConnectedUserList == nil) || (needMessages && p.MessagesList == nil) {
		suspect = true
	}
	// The fast path turns a missing field into "": look closer then.
	for _, u := range p.ConnectedUserList {
		suspect = suspect || u.Username == ""
	}
	for _, m := range p.MessagesList {
		suspect = suspect || m.Username == "" || m.Message == ""
	}
	return p, suspect, err
}

// ParsePayload decodes one event argument as a Payload, leniently (see
// Payload).
func ParsePayload(arg json.RawMessage) (Payload, error) {
	p, _, err := parsePayload(arg)
	return p, err
}

// parsePayload is ParsePayload that also says whether the fast path (plain
// structs, every field of the right type) decoded it.
func parsePayload(arg json.RawMessage) (Payload, bool, error) {
	if !bytes.HasPrefix(bytes.TrimSpace(arg), []byte("{")) {
		return Payload{}, false, fmt.Errorf("the argument is %s, not a JSON object", clip(string(arg), 40))
	}
	// Fast path: a well-formed payload decodes into plain structs.
	var fast struct {
		ConnectedUserList []struct{ Username string }          `json:"connectedUserList"`
		MessagesList      []struct{ Username, Message string } `json:"messagesList"`
	}
	if err := json.Unmarshal(arg, &fast); err == nil {
		var p Payload
		if fast.ConnectedUserList != nil {
			p.ConnectedUserList = make([]User, len(fast.ConnectedUserList))
			for i, u := range fast.ConnectedUserList {
				p.ConnectedUserList[i] = User{Username: u.Username}
			}
		}
		if fast.MessagesList != nil {
			p.MessagesList = make([]Message, len(fast.MessagesList))
			for i, m := range fast.MessagesList {
				p.MessagesList[i] = Message{Username: m.Username, Message: m.Message}
			}
		}
		return p, true, nil
	}
	// Lenient path: fields of any JSON type, checked one by one. A list
	// that is not an array stays nil; encoding/json keeps decoding past a
	// wrongly typed element, leaving it zero (and so Malformed).
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(arg, &fields); err != nil {
		return Payload{}, false, fmt.Errorf("the argument does not decode as a chat payload: %w", err)
	}
	var p Payload
	if raw, ok := fields["connectedUserList"]; ok && bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		var loose []struct {
			Username any `json:"username"`
		}
		_ = json.Unmarshal(raw, &loose)
		p.ConnectedUserList = make([]User, len(loose))
		for i, u := range loose {
			name, ok := u.Username.(string)
			p.ConnectedUserList[i] = User{Username: name, Malformed: !ok}
		}
	}
	if raw, ok := fields["messagesList"]; ok && bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		var loose []struct {
			Username any `json:"username"`
			Message  any `json:"message"`
		}
		_ = json.Unmarshal(raw, &loose)
		p.MessagesList = make([]Message, len(loose))
		for i, m := range loose {
			name, okU := m.Username.(string)
			text, okM := m.Message.(string)
			p.MessagesList[i] = Message{Username: name, Message: text, Malformed: !okU || !okM}
		}
	}
	return p, false, nil
}

// CheckShape checks an event's arguments against CONTRACT.md PAY-1: exactly
// one argument, a JSON object, with each listed field present as a JSON
// array (never null) of objects whose fields are JSON strings. Extra fields
// are allowed (PAY-2). It returns one line per problem.
func CheckShape(event string, args json.RawMessage) []string {
	problems, _ := CheckShapeOwned(event, args, nil)
	return problems
}

// CheckShapeOwned is CheckShape for a server that other people use too
// (CONTRACT.md §9): a list entry that is malformed and not owned (owned
// says whether an entry's JSON text is this run's) is someone else's state
// in the server, left by their bad input, and comes back in foreign, not
// in problems. What is wrong with the event itself (its arguments, the
// object, a list that is null or not an array) is always a problem. A nil
// owned owns every entry.
func CheckShapeOwned(event string, args json.RawMessage, owned func(entry []byte) bool) (problems, foreign []string) {
	return checkShape(event, args, owned, nil)
}

// entryCache remembers what checkShape found in list entries, by their
// JSON text: a history is sent again with every messageWritten, and on a
// server whose history holds malformed entries every event is checked
// entry by entry, which made the harness's readers fall seconds behind
// their sockets (HIST-2 on the seed's server, ~100 KB events). Bounded:
// cleared when full.
type entryCache struct {
	mu sync.Mutex
	m  map[string][]string // entry text -> problems ("" keys never stored)
}

const entryCacheLimit = 50000

func (c *entryCache) get(item []byte) ([]string, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	found, ok := c.m[string(item)]
	return found, ok
}

func (c *entryCache) put(item []byte, found []string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= entryCacheLimit {
		c.m = map[string][]string{}
	}
	c.m[string(item)] = found
}

// entryProblems checks one list entry: an object whose keys are JSON
// strings. The problems name the entry by field and index.
func entryProblems(event, field string, i int, item []byte, keys []string) []string {
	var found []string
	var entry map[string]json.RawMessage
	if err := json.Unmarshal(item, &entry); err != nil || entry == nil {
		return []string{fmt.Sprintf("%s: %s[%d] is %s, want a JSON object", event, field, i, clip(string(item), 60))}
	}
	for _, k := range keys {
		v, ok := entry[k]
		var s string
		if !ok {
			found = append(found, fmt.Sprintf("%s: %s[%d] has no %q field", event, field, i, k))
		} else if err := json.Unmarshal(v, &s); err != nil || !bytes.HasPrefix(bytes.TrimSpace(v), []byte(`"`)) {
			found = append(found, fmt.Sprintf("%s: %s[%d].%s is %s, want a JSON string", event, field, i, k, clip(string(v), 40)))
		}
	}
	return found
}

func checkShape(event string, args json.RawMessage, owned func(entry []byte) bool, cache *entryCache) (problems, foreign []string) {
	var fields []string
	switch event {
	case "connected":
		fields = []string{"connectedUserList", "messagesList"}
	case "joined", "disconnected":
		fields = []string{"connectedUserList"}
	case "messageWritten":
		fields = []string{"messagesList"}
	default:
		return nil, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(args, &list); err != nil {
		return []string{fmt.Sprintf("%s: arguments are not a JSON array: %v", event, err)}, nil
	}
	if len(list) != 1 {
		return []string{fmt.Sprintf("%s: carries %d arguments, want exactly 1", event, len(list))}, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(list[0], &obj); err != nil || obj == nil || !bytes.HasPrefix(bytes.TrimSpace(list[0]), []byte("{")) {
		return []string{fmt.Sprintf("%s: the argument is %s, want a JSON object", event, clip(string(list[0]), 80))}, nil
	}
	for _, field := range fields {
		raw, ok := obj[field]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: field %q is missing", event, field))
			continue
		}
		trimmed := bytes.TrimSpace(raw)
		if !bytes.HasPrefix(trimmed, []byte("[")) {
			problems = append(problems, fmt.Sprintf("%s: field %q is %s, want a JSON array", event, field, clip(string(trimmed), 60)))
			continue
		}
		var items []json.RawMessage
		if err := json.Unmarshal(trimmed, &items); err != nil {
			problems = append(problems, fmt.Sprintf("%s: field %q: %v", event, field, err))
			continue
		}
		keys := []string{"username"}
		if field == "messagesList" {
			keys = []string{"username", "message"}
		}
		for i, item := range items {
			found, cached := cache.get(item)
			if !cached {
				found = entryProblems(event, field, i, item, keys)
				cache.put(item, found)
			}
			if len(found) == 0 {
				continue
			}
			if owned != nil && !owned(item) {
				// One line per entry, naming it by its text (which shows
				// what is wrong), so that callers can count distinct ones.
				if len(foreign) < maxForeignPerEvent {
					foreign = append(foreign, fmt.Sprintf("%s entry %s", field, clip(string(item), 100)))
				}
				continue
			}
			if cached {
				// Found under another event or position: say where it is now.
				found = entryProblems(event, field, i, item, keys)
			}
			problems = append(problems, found...)
			if len(problems) > 10 {
				return append(problems, "(more problems not shown)"), foreign
			}
		}
	}
	return problems, foreign
}

// maxForeignPerEvent bounds the foreign entries one event reports: a
// server's old state can be large, and the first few say what it is.
const maxForeignPerEvent = 10

// summarize renders an event's arguments compactly for failure messages:
// the lists are shown as usernames and a count of messages with the last
// few, so that a failure stays readable on a server with a long history.
func summarize(name string, args json.RawMessage) string {
	if len(args) > summarizeLimit {
		// Decoding it again for a message costs more than it shows.
		return clipRaw(args, 200)
	}
	p, err := decodePayload(args)
	if err != nil || (p.ConnectedUserList == nil && p.MessagesList == nil) {
		return clip(string(args), 200)
	}
	var b strings.Builder
	if p.ConnectedUserList != nil {
		names := p.Usernames()
		shown := names
		if len(shown) > 8 {
			shown = append(append([]string{}, names[:2]...), append([]string{"…"}, names[len(names)-5:]...)...)
		}
		fmt.Fprintf(&b, "users(%d)=%s", len(names), clip(strings.Join(quoteAll(shown), ","), 300))
	}
	if p.MessagesList != nil {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "messages(%d)", len(p.MessagesList))
		from := max(0, len(p.MessagesList)-3)
		if from > 0 {
			b.WriteString(" …")
		}
		for _, m := range p.MessagesList[from:] {
			fmt.Fprintf(&b, " [%s: %s]", clip(m.Username, 40), clip(fmt.Sprintf("%q", m.Message), 80))
		}
	}
	return b.String()
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		if v == "…" {
			out[i] = v
			continue
		}
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

// clip shortens s to at most n bytes (on a rune boundary), marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("…(%d bytes)", len(s))
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// Mentions accepts events whose messagesList has a message whose text or
// username contains token. Use it to find a message that a server may have
// rewritten (escaped, trimmed, fields swapped), then check it exactly.
func Mentions(token string) Filter {
	return Filter{
		Desc: fmt.Sprintf("whose messagesList mentions %q", token),
		Match: func(p Payload) bool {
			for _, m := range p.MessagesList {
				if strings.Contains(m.Message, token) || strings.Contains(m.Username, token) {
					return true
				}
			}
			return false
		},
	}
}

// HasAllMessages accepts events whose messagesList contains every text.
func HasAllMessages(texts []string) Filter {
	return Filter{
		Desc:      fmt.Sprintf("whose messagesList contains all %d messages written", len(texts)),
		Tolerated: func(p Payload) (string, string) { return "MSG-2", swappedNote(p, texts...) },
		Match: func(p Payload) bool {
			have := map[string]bool{}
			for _, m := range p.MessagesList {
				have[m.Message] = true
				have[m.Username] = true // swapped fields: MSG-2's to judge
			}
			for _, t := range texts {
				if !have[t] {
					return false
				}
			}
			return true
		},
	}
}

// Project returns the texts of list that are among texts, in list order:
// the part of a (possibly shared, live) history this spec caused. An entry
// with its fields swapped counts for its text (see Message.Is).
func Project(list []Message, texts []string) []string {
	want := map[string]bool{}
	for _, t := range texts {
		want[t] = true
	}
	var out []string
	for _, m := range list {
		switch {
		case want[m.Message]:
			out = append(out, m.Message)
		case want[m.Username]:
			out = append(out, m.Username)
		}
	}
	return out
}

// Duplicates returns the texts among texts that appear more than once in
// list. Only the spec's own texts count: on a live server two people may
// well have written "hi".
func Duplicates(list []Message, texts []string) []string {
	seen := map[string]int{}
	var out []string
	for _, t := range Project(list, texts) {
		seen[t]++
		if seen[t] == 2 {
			out = append(out, t)
		}
	}
	return out
}

// IsSubsequence reports whether sub appears in seq in the same relative
// order (not necessarily contiguously).
func IsSubsequence(sub, seq []string) bool {
	i := 0
	for _, s := range seq {
		if i < len(sub) && sub[i] == s {
			i++
		}
	}
	return i == len(sub)
}
