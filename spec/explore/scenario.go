// Package explore is chatspec's model-based exploration: seeded random
// scenarios (many sockets, several tabs per username, all three transports,
// thousands of messages, texts and usernames that stress Unicode
// normalization, case, astral characters and bidirectional text) run
// against a live server, every event every client receives judged by an
// executable model of spec/CONTRACT.md (model.go), and a failing scenario
// shrunk to a minimal one that replays.
//
// The package has four parts, one file each: the scenario (this file: the
// operations and their encoding), the model (model.go, pure: a recorded
// trace in, violations out), the runner (runner.go: performs a scenario's
// operations over real sockets and records the trace) and the explorer
// (explore.go: generation, the time budget and shrinking).
package explore

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// OpKind names one operation a scenario performs.
type OpKind string

// The operations. C is the client (socket) an operation acts on; clients
// are numbered in the order of their connect operations.
const (
	// OpConnect opens socket C over Transport (no join).
	OpConnect OpKind = "connect"
	// OpJoin emits connecting {username: Users[User]} on C. A second tab or
	// a reconnect is a join of a username another socket holds or held.
	OpJoin OpKind = "join"
	// OpWrite emits writeMessage {message, username} on C with its own
	// username; Text is the body (the runner prefixes a unique tag).
	OpWrite OpKind = "write"
	// OpForge emits writeMessage on C under a username it does not hold:
	// Users[User] rewritten by Variant (as-is, upper, lower, fold).
	OpForge OpKind = "forge"
	// OpClose closes C gracefully (Socket.IO DISCONNECT).
	OpClose OpKind = "close"
	// OpDrop drops C's TCP connection(s) with no packet.
	OpDrop OpKind = "drop"
	// OpSilence stops C answering pings, TCP kept open: the server notices
	// only at its ping timeout. With NoWait the scenario goes on at once
	// (a reconnect before the server noticed, RECON-2).
	OpSilence OpKind = "silence"
	// OpBad sends bad input (ROB-2) on C: Variant says which.
	OpBad OpKind = "bad"
	// OpPause lets Ms milliseconds pass (long-lived sessions).
	OpPause OpKind = "pause"
)

// Op is one operation of a scenario.
type Op struct {
	Kind      OpKind              `json:"op"`
	C         int                 `json:"c,omitempty"`
	Transport sioclient.Transport `json:"t,omitempty"`
	User      int                 `json:"u,omitempty"`
	Text      string              `json:"text,omitempty"`
	Variant   string              `json:"v,omitempty"`
	NoWait    bool                `json:"nowait,omitempty"`
	Ms        int                 `json:"ms,omitempty"`
}

// User is one username of a scenario: Body plus a tag unique to the run
// ("~<nonce>-<Tag>"). Two users may share a tag and differ only in the
// spelling of the body (NFC against NFD, case): they are different
// usernames for CONTRACT.md, which compares code points.
type User struct {
	Body string `json:"body"`
	Tag  int    `json:"tag"`
}

// Scenario is what one exploration run performs, in order.
type Scenario struct {
	// Seed generated the scenario (0 when written by hand or shrunk
	// without one).
	Seed  int64  `json:"seed"`
	Users []User `json:"users"`
	Ops   []Op   `json:"ops"`
}

// Clients returns the number of sockets the scenario opens.
func (s Scenario) Clients() int {
	n := 0
	for _, op := range s.Ops {
		if op.Kind == OpConnect {
			n++
		}
	}
	return n
}

// Writes returns the number of writeMessage the scenario emits.
func (s Scenario) Writes() int {
	n := 0
	for _, op := range s.Ops {
		if op.Kind == OpWrite || op.Kind == OpForge {
			n++
		}
	}
	return n
}

// Username returns user u's full username in a run with nonce.
func (s Scenario) Username(u int, nonce string) string {
	return fmt.Sprintf("%s~%s-%d", s.Users[u].Body, nonce, s.Users[u].Tag)
}

// Normalize returns s with every operation that can no longer run removed
// (shrinking deletes operations freely): operations on a client that was
// never connected or already left, joins of a joined client, writes of an
// unjoined one, and clients renumbered densely. A silence with NoWait not
// followed by a rejoin of its username becomes a waiting one, since the
// model cannot know when an unreplaced session times out.
func Normalize(s Scenario) Scenario {
	out := Scenario{Seed: s.Seed, Users: s.Users}
	renum := map[int]int{}
	joined := map[int]int{} // new client -> user
	gone := map[int]bool{}
	for _, op := range s.Ops {
		if op.Kind == OpPause {
			out.Ops = append(out.Ops, op)
			continue
		}
		if op.Kind == OpConnect {
			if _, dup := renum[op.C]; dup {
				continue
			}
			renum[op.C] = len(renum)
			op.C = renum[op.C]
			out.Ops = append(out.Ops, op)
			continue
		}
		c, ok := renum[op.C]
		if !ok || gone[c] {
			continue
		}
		op.C = c
		_, isJoined := joined[c]
		switch op.Kind {
		case OpJoin:
			if isJoined || op.User < 0 || op.User >= len(s.Users) {
				continue
			}
			joined[c] = op.User
		case OpWrite, OpForge:
			if !isJoined || (op.Kind == OpForge && (op.User < 0 || op.User >= len(s.Users))) {
				continue
			}
		case OpClose, OpDrop, OpSilence:
			gone[c] = true
		case OpBad:
			if isJoined {
				continue // bad input comes from unjoined sockets only
			}
		}
		out.Ops = append(out.Ops, op)
	}
	// A NoWait silence must be followed, before any other presence
	// operation, by a join of the same username.
	for i, op := range out.Ops {
		if op.Kind != OpSilence || !op.NoWait {
			continue
		}
		u, ok := joined[op.C]
		replaced := false
		for _, next := range out.Ops[i+1:] {
			if next.Kind == OpJoin {
				replaced = ok && next.User == u
				break
			}
			if next.Kind == OpClose || next.Kind == OpDrop || next.Kind == OpSilence {
				break
			}
		}
		if !replaced {
			out.Ops[i].NoWait = false
		}
	}
	return out
}

// Encode returns the scenario as JSON, the replay file format.
func (s Scenario) Encode() ([]byte, error) {
	return json.MarshalIndent(s, "", " ")
}

// ReadScenario reads a replay file written by Encode.
func ReadScenario(path string) (Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Scenario{}, fmt.Errorf("explore: replay file: %w", err)
	}
	var s Scenario
	if err := json.Unmarshal(data, &s); err != nil {
		return Scenario{}, fmt.Errorf("explore: replay file %s: %w", path, err)
	}
	if len(s.Ops) == 0 {
		return Scenario{}, fmt.Errorf("explore: replay file %s: no operations", path)
	}
	return s, nil
}

// Describe renders op for reports, with the scenario's usernames.
func (s Scenario) Describe(op Op) string {
	name := func(u int) string {
		if u >= 0 && u < len(s.Users) {
			return fmt.Sprintf("%q", s.Users[u].Body+"~"+fmt.Sprint(s.Users[u].Tag))
		}
		return "?"
	}
	switch op.Kind {
	case OpConnect:
		return fmt.Sprintf("c%d connect over %s", op.C, op.Transport)
	case OpJoin:
		return fmt.Sprintf("c%d join as %s", op.C, name(op.User))
	case OpWrite:
		return fmt.Sprintf("c%d write %s", op.C, clip(op.Text))
	case OpForge:
		return fmt.Sprintf("c%d forged write as %s (%s)", op.C, name(op.User), op.Variant)
	case OpSilence:
		if op.NoWait {
			return fmt.Sprintf("c%d silent drop (reconnect before the timeout)", op.C)
		}
		return fmt.Sprintf("c%d silent drop (wait for the ping timeout)", op.C)
	case OpBad:
		return fmt.Sprintf("c%d bad input %s", op.C, op.Variant)
	case OpPause:
		return fmt.Sprintf("pause %d ms", op.Ms)
	}
	return fmt.Sprintf("c%d %s", op.C, op.Kind)
}

func clip(s string) string {
	r := []rune(s)
	if len(r) > 40 {
		return fmt.Sprintf("%q… (%d bytes)", string(r[:40]), len(s))
	}
	return fmt.Sprintf("%q", s)
}

// variantOf applies a forge variant to a username.
func variantOf(name, variant string) string {
	switch variant {
	case "upper":
		return strings.ToUpper(name)
	case "lower":
		return strings.ToLower(name)
	case "fold":
		// A spelling that differs only in the case of its first letter.
		r := []rune(name)
		for i, c := range r {
			if u := []rune(strings.ToUpper(string(c))); len(u) == 1 && u[0] != c {
				r[i] = u[0]
				return string(r)
			}
			if l := []rune(strings.ToLower(string(c))); len(l) == 1 && l[0] != c {
				r[i] = l[0]
				return string(r)
			}
		}
	}
	return name
}
