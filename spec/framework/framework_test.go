package framework

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatspec/chatspec/spec/sioclient"
)

func TestCaseIDAndTitle(t *testing.T) {
	for _, tc := range []struct {
		text, id, title string
	}{
		{"JOIN-1 the joiner receives connected", "JOIN-1", "the joiner receives connected"},
		{"STOCK-2 a stock client reconnects", "STOCK-2", "a stock client reconnects"},
		{"TRANS-1/JOIN-1 over polling", "TRANS-1/JOIN-1", "over polling"},
		{"join-1 lower case is no ID", "", "join-1 lower case is no ID"},
		{"JOIN the group", "", "JOIN the group"},
		{"", "", ""},
	} {
		if got := CaseID(tc.text); got != tc.id {
			t.Errorf("CaseID(%q) = %q, want %q", tc.text, got, tc.id)
		}
		if got := CaseTitle(tc.text); got != tc.title {
			t.Errorf("CaseTitle(%q) = %q, want %q", tc.text, got, tc.title)
		}
	}
}

func TestGradePicksTheGradeLabel(t *testing.T) {
	if got, want := Grade([]string{"websocket", "strict"}), GradeStrict; got != want {
		t.Errorf("Grade = %q, want %q", got, want)
	}
	if got := Grade([]string{"polling"}); got != "" {
		t.Errorf("Grade without a grade label = %q, want empty", got)
	}
}

// TestParseContractReadsEveryRequirement parses the real CONTRACT.md, so a
// change to its bullet format that would lose requirement texts fails here.
func TestParseContractReadsEveryRequirement(t *testing.T) {
	md, err := os.ReadFile("../CONTRACT.md")
	if err != nil {
		t.Fatal(err)
	}
	reqs, err := ParseContract(string(md))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"CONN-1", "CONN-2", "TRANS-1", "TRANS-4", "PAY-1", "PAY-3", "JOIN-1", "JOIN-3",
		"USER-1", "USER-5", "MSG-1", "MSG-2", "HIST-1", "HIST-4", "RECON-1", "RECON-3", "ROB-1", "ROB-3", "ERR-1",
		"SEC-1", "SEC-4"} {
		r, ok := reqs[id]
		if !ok {
			t.Errorf("%s not parsed", id)
			continue
		}
		if r.Text == "" || r.Grade == "" {
			t.Errorf("%s parsed without text or grade: %+v", id, r)
		}
	}
	if r := reqs["JOIN-1"]; !strings.Contains(r.Text, "exactly once") || r.Grade != "core, MUST" {
		t.Errorf("JOIN-1 = %+v", r)
	}
	// Continuation lines are joined into one text.
	if r := reqs["USER-4"]; !strings.Contains(r.Text, "fails `strict`") {
		t.Errorf("USER-4 continuation lines lost: %q", r.Text)
	}
	if reqs["CONN-1"].Order >= reqs["RECON-1"].Order {
		t.Errorf("Order does not follow the document: CONN-1 %d, RECON-1 %d", reqs["CONN-1"].Order, reqs["RECON-1"].Order)
	}
}

func TestParseContractRejectsATextWithoutRequirements(t *testing.T) {
	if _, err := ParseContract("# nothing here\n"); err == nil {
		t.Error("want an error for a document without requirements")
	}
}

func TestCheckShape(t *testing.T) {
	for _, tc := range []struct {
		name, event, args string
		problems          []string // substrings, one per expected problem
	}{
		{"connected ok", "connected", `[{"connectedUserList":[{"username":"a"}],"messagesList":[{"username":"a","message":"hi"}]}]`, nil},
		{"extra fields allowed", "joined", `[{"connectedUserList":[{"username":"a","id":7}],"extra":true}]`, nil},
		{"empty lists", "connected", `[{"connectedUserList":[],"messagesList":[]}]`, nil},
		{"null list", "connected", `[{"connectedUserList":null,"messagesList":[]}]`, []string{`field "connectedUserList" is null, want a JSON array`}},
		{"missing list", "messageWritten", `[{}]`, []string{`field "messagesList" is missing`}},
		{"two arguments", "joined", `[{"connectedUserList":[]},{}]`, []string{"carries 2 arguments, want exactly 1"}},
		{"no argument", "disconnected", `[]`, []string{"carries 0 arguments"}},
		{"argument not an object", "joined", `["x"]`, []string{`the argument is "x", want a JSON object`}},
		{"number username", "joined", `[{"connectedUserList":[{"username":42}]}]`, []string{"connectedUserList[0].username is 42, want a JSON string"}},
		{"message missing text", "messageWritten", `[{"messagesList":[{"username":"a"}]}]`, []string{`messagesList[0] has no "message" field`}},
		{"entry not an object", "messageWritten", `[{"messagesList":["hi"]}]`, []string{`messagesList[0] is "hi", want a JSON object`}},
		{"other events are not judged", "chatError", `[1,2,3]`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckShape(tc.event, json.RawMessage(tc.args))
			if len(got) != len(tc.problems) {
				t.Fatalf("got %d problems %q, want %d like %q", len(got), got, len(tc.problems), tc.problems)
			}
			for i, want := range tc.problems {
				if !strings.Contains(got[i], want) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], want)
				}
			}
		})
	}
}

func TestParsePayloadIsLenient(t *testing.T) {
	// A history polluted by someone else's bad input must still decode, so
	// that the suite can find its own users and messages in it.
	p, err := ParsePayload(json.RawMessage(`{"connectedUserList":[{"username":42},{"username":"alice"},null],
		"messagesList":[{"username":"a","message":7},{},{"username":"bob","message":"hi"},"junk"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Lists("alice") || p.Count("alice") != 1 {
		t.Errorf("users %q: want alice listed once", p.Usernames())
	}
	if got := p.MessageIndex("hi"); got != 2 {
		t.Errorf("MessageIndex(hi) = %d, want 2", got)
	}
	var malformed []int
	for i, m := range p.MessagesList {
		if m.Malformed {
			malformed = append(malformed, i)
		}
	}
	if want := []int{0, 1, 3}; !slices.Equal(malformed, want) {
		t.Errorf("malformed messages at %v, want %v", malformed, want)
	}
	if !p.ConnectedUserList[0].Malformed || p.ConnectedUserList[1].Malformed {
		t.Errorf("user entries: %+v", p.ConnectedUserList)
	}
	if _, err := ParsePayload(json.RawMessage(`[1]`)); err == nil {
		t.Error("an array argument should not decode as a payload")
	}
	wrong, err := ParsePayload(json.RawMessage(`{"connectedUserList":{"username":"a"}}`))
	if err != nil || wrong.ConnectedUserList != nil {
		t.Errorf("a list that is not an array should decode as absent, got %+v, %v", wrong, err)
	}
}

func TestFilters(t *testing.T) {
	p := Payload{
		ConnectedUserList: []User{{Username: "alice"}, {Username: "bob"}},
		MessagesList:      []Message{{Username: "alice", Message: "cs1-1 #1 hi"}, {Username: "cs1-1 #2 swapped", Message: "bob"}},
	}
	for _, tc := range []struct {
		name string
		f    Filter
		want bool
	}{
		{"listing", Listing("bob"), true},
		{"listing absent", Listing("carol"), false},
		{"not listing", NotListing("carol"), true},
		{"not listing needs a list", NotListing("carol"), true},
		{"user list equals", UserListEquals([]string{"alice", "bob"}), true},
		{"user list order matters", UserListEquals([]string{"bob", "alice"}), false},
		{"has message", HasMessage("cs1-1 #1 hi"), true},
		{"has message is exact", HasMessage("cs1-1 #1"), false},
		{"mentions finds a rewritten text", Mentions("cs1-1 #1"), true},
		{"mentions finds swapped fields", Mentions("cs1-1 #2"), true},
		{"has all", HasAllMessages([]string{"cs1-1 #1 hi", "bob"}), true},
	} {
		if got := tc.f.Match(p); got != tc.want {
			t.Errorf("%s: Match = %v, want %v (%s)", tc.name, got, tc.want, tc.f.Desc)
		}
	}
	if NotListing("x").Match(Payload{}) {
		t.Error("NotListing must not match an event without a user list")
	}
	// A text in the username field is found, and the step that accepts it
	// is told it tolerates a MSG-2 violation; a text in its place is not.
	swapped := HasMessage("cs1-1 #2 swapped")
	if !swapped.Match(p) {
		t.Error("HasMessage must find a text whose fields are swapped")
	}
	if req, note := swapped.Tolerated(p); req != "MSG-2" || note == "" {
		t.Errorf("HasMessage on swapped fields: Tolerated = %q, %q; want MSG-2 and a note", req, note)
	}
	if _, note := HasMessage("cs1-1 #1 hi").Tolerated(p); note != "" {
		t.Errorf("HasMessage on a well-formed entry tolerated something: %q", note)
	}
	if !HasAllMessages([]string{"cs1-1 #1 hi", "cs1-1 #2 swapped"}).Match(p) {
		t.Error("HasAllMessages must find a text whose fields are swapped")
	}
}

func TestProjectionHelpers(t *testing.T) {
	list := []Message{{Message: "x"}, {Message: "a"}, {Message: "y"}, {Message: "b"}, {Message: "a"}}
	if got, want := Project(list, []string{"a", "b"}), []string{"a", "b", "a"}; !slices.Equal(got, want) {
		t.Errorf("Project = %q, want %q", got, want)
	}
	if got, want := Duplicates(list, []string{"a", "b"}), []string{"a"}; !slices.Equal(got, want) {
		t.Errorf("Duplicates = %q, want %q", got, want)
	}
	// Someone else's repeated text is not the spec's duplicate.
	if got := Duplicates(append(list, Message{Message: "x"}), []string{"a", "b"}); !slices.Equal(got, []string{"a"}) {
		t.Errorf("Duplicates counted a text that is not the spec's: %q", got)
	}
	// Swapped fields: the text is found in the username field, and one
	// author's several messages are not duplicates.
	swapped := []Message{{Username: "t1", Message: "alice"}, {Username: "t2", Message: "alice"}}
	if got := Project(swapped, []string{"t1", "t2"}); !slices.Equal(got, []string{"t1", "t2"}) {
		t.Errorf("Project with swapped fields = %q, want [t1 t2]", got)
	}
	if got := Duplicates(swapped, []string{"t1", "t2"}); len(got) != 0 {
		t.Errorf("Duplicates with swapped fields = %q, want none", got)
	}
	if !swapped[0].Swapped("t1") || swapped[0].Author("t1") != "alice" || (Message{Username: "alice", Message: "t1"}).Swapped("t1") {
		t.Error("Swapped/Author misread an entry")
	}
	if !IsSubsequence([]string{"a", "c"}, []string{"a", "b", "c"}) || IsSubsequence([]string{"c", "a"}, []string{"a", "b", "c"}) {
		t.Error("IsSubsequence is wrong about order")
	}
}

func TestSummarizeKeepsFailureMessagesShort(t *testing.T) {
	var users []User
	var msgs []Message
	for i := range 100 {
		users = append(users, User{Username: strings.Repeat("u", 5) + string(rune('a'+i%26))})
		msgs = append(msgs, Message{Username: "a", Message: strings.Repeat("m", 1000)})
	}
	b, _ := json.Marshal([]any{Payload{ConnectedUserList: users, MessagesList: msgs}})
	s := summarize("messageWritten", b)
	if len(s) > 800 {
		t.Errorf("summary of a %d-byte event is %d bytes long", len(b), len(s))
	}
	if !strings.Contains(s, "users(100)") || !strings.Contains(s, "messages(100)") {
		t.Errorf("summary lacks the counts: %s", s)
	}
}

type fakeTarget struct{}

func (fakeTarget) DialOptions(int) sioclient.Options { return sioclient.Options{} }
func (fakeTarget) Init(context.Context, int) error   { return nil }
func (fakeTarget) Probe(context.Context) error       { return nil }

func TestConfigValidate(t *testing.T) {
	if err := (&Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "no target") {
		t.Errorf("a config without a target: got %v, want a 'no target' error", err)
	}
	c := Config{Target: fakeTarget{}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.StepTimeout != DefaultStepTimeout || c.QuietWindow != DefaultQuietWindow || c.MaxWait != DefaultMaxWait || len(c.RunID) != 6 {
		t.Errorf("defaults not filled: %+v", c)
	}
	other := Config{Target: fakeTarget{}}
	if err := other.Validate(); err != nil || other.RunID == c.RunID {
		t.Errorf("two runs got the same run id %q (%v)", c.RunID, err)
	}
	for _, bad := range []Config{
		{Target: fakeTarget{}, RunID: "toolongrunid"},
		{Target: fakeTarget{}, StepTimeout: -time.Second},
		{Target: fakeTarget{}, QuietWindow: -time.Second},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", bad)
		}
	}
}

// TestCheckShapeOwnedToleratesOnlyForeignEntries (issue 18): malformed list
// entries that carry no trace of this run are someone else's state in the
// server; the event's own shape and this run's entries are always judged.
func TestCheckShapeOwnedToleratesOnlyForeignEntries(t *testing.T) {
	owned := func(entry []byte) bool { return strings.Contains(string(entry), "csRUN-") }
	for _, tc := range []struct {
		name, event, args string
		problems, foreign int
	}{
		{"foreign malformed users", "joined", `[{"connectedUserList":[{"username":42},{"username":null},{"username":["x"]},{"username":"csRUN-1-a"}]}]`, 0, 3},
		{"foreign message without fields", "messageWritten", `[{"messagesList":[{},{"username":"csRUN-1-a","message":"csRUN-1 #1 hi"}]}]`, 0, 1},
		{"own malformed entry", "joined", `[{"connectedUserList":[{"name":"csRUN-1-a"}]}]`, 1, 0},
		{"own text in a wrong type", "messageWritten", `[{"messagesList":[{"username":"csRUN-1-a","message":["csRUN-1 #1"]}]}]`, 1, 0},
		{"null list is the event's own", "connected", `[{"connectedUserList":null,"messagesList":[{"username":7}]}]`, 1, 1},
		{"two arguments", "joined", `[{"connectedUserList":[]},1]`, 1, 0},
	} {
		problems, foreign := CheckShapeOwned(tc.event, json.RawMessage(tc.args), owned)
		if len(problems) != tc.problems || len(foreign) != tc.foreign {
			t.Errorf("%s: problems %q, foreign %q; want %d and %d", tc.name, problems, foreign, tc.problems, tc.foreign)
		}
		// Without an owner, everything is judged (a fresh server, CheckShape).
		if all := CheckShape(tc.event, json.RawMessage(tc.args)); len(all) < tc.problems+tc.foreign {
			t.Errorf("%s: CheckShape found %q, want every problem", tc.name, all)
		}
	}
}
