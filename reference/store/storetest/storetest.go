// Package storetest is the contract test suite that every store.Store backend
// must pass. A backend's own test calls Run with a constructor; the suite
// checks the behaviour documented on store.Store, so the memory and Redis
// backends are held to exactly the same rules.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/chatspec/chatspec/reference/store"
)

// HistoryLimit is the history limit that the constructor given to Run must
// configure: the suite checks the cap against it.
const HistoryLimit = 5

// Run runs the contract suite as subtests of t. newStore must return a new,
// empty store, isolated from every other store it returned (for Redis: a
// unique key prefix per call), with history limit HistoryLimit. Run closes
// each store itself; newStore may register further cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.run(t, s)
		})
	}
	t.Run("ErrClosedAfterClose", func(t *testing.T) { testClosed(t, newStore(t)) })
}

var cases = []struct {
	name string
	run  func(t *testing.T, s store.Store)
}{
	{"EmptyStore", testEmpty},
	{"JoinOrder", testJoinOrder},
	{"UsernameHeldByTwoSocketsIsListedOnce", testDedupe},
	{"LeaveOneOfTwoSocketsKeepsUser", testLeaveOneOfTwo},
	{"DoubleJoinIsIdempotent", testDoubleJoin},
	{"DoubleLeaveIsIdempotent", testDoubleLeave},
	{"UnknownLeaveIsNotAnError", testUnknownLeave},
	{"RejoinGoesToTheEnd", testRejoin},
	{"JoinReturnsHistory", testJoinReturnsHistory},
	{"HistoryOrderAndCap", testHistoryCap},
	{"ReturnedSlicesAreCopies", testCopies},
	{"CanceledContext", testCanceled},
	{"Concurrency", testConcurrency},
}

func users(names ...string) []store.User {
	out := make([]store.User, 0, len(names))
	for _, n := range names {
		out = append(out, store.User{Username: n})
	}
	return out
}

func msg(i int) store.Message {
	return store.Message{Username: fmt.Sprintf("u%d", i%3), Message: fmt.Sprintf("message %d", i)}
}

func mustJoin(t *testing.T, s store.Store, username, socketID string) ([]store.User, []store.Message, bool) {
	t.Helper()
	u, h, added, err := s.Join(t.Context(), username, socketID)
	if err != nil {
		t.Fatalf("Join(%q, %q): %v", username, socketID, err)
	}
	return u, h, added
}

func mustLeave(t *testing.T, s store.Store, username, socketID string) ([]store.User, bool) {
	t.Helper()
	u, removed, err := s.Leave(t.Context(), username, socketID)
	if err != nil {
		t.Fatalf("Leave(%q, %q): %v", username, socketID, err)
	}
	return u, removed
}

func mustUsers(t *testing.T, s store.Store) []store.User {
	t.Helper()
	u, err := s.Users(t.Context())
	if err != nil {
		t.Fatalf("Users: %v", err)
	}
	return u
}

func mustHistory(t *testing.T, s store.Store) []store.Message {
	t.Helper()
	h, err := s.History(t.Context())
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	return h
}

func wantUsers(t *testing.T, what string, got []store.User, names ...string) {
	t.Helper()
	if diff := cmp.Diff(users(names...), got); diff != "" {
		t.Errorf("%s: user list mismatch (-want +got):\n%s", what, diff)
	}
}

func testEmpty(t *testing.T, s store.Store) {
	// Empty results must be empty slices, not nil: the server encodes them
	// as JSON and a client expects [] rather than null.
	if u := mustUsers(t, s); u == nil || len(u) != 0 {
		t.Errorf("Users on an empty store = %#v, want a non-nil empty slice", u)
	}
	if h := mustHistory(t, s); h == nil || len(h) != 0 {
		t.Errorf("History on an empty store = %#v, want a non-nil empty slice", h)
	}
	_, h, _ := mustJoin(t, s, "alice", "s1")
	if h == nil || len(h) != 0 {
		t.Errorf("history returned by the first Join = %#v, want a non-nil empty slice", h)
	}
	u, _ := mustLeave(t, s, "alice", "s1")
	if u == nil || len(u) != 0 {
		t.Errorf("list returned by the last Leave = %#v, want a non-nil empty slice", u)
	}
}

func testJoinOrder(t *testing.T, s store.Store) {
	names := []string{"carol", "alice", "bob", "zed", "Alice"}
	for i, n := range names {
		u, _, added := mustJoin(t, s, n, "sock-"+n)
		if !added {
			t.Errorf("Join(%q) added = false, want true for a username nobody holds", n)
		}
		wantUsers(t, fmt.Sprintf("after Join(%q)", n), u, names[:i+1]...)
	}
	wantUsers(t, "Users", mustUsers(t, s), names...)
}

func testDedupe(t *testing.T, s store.Store) {
	mustJoin(t, s, "alice", "s1")
	u, _, added := mustJoin(t, s, "alice", "s2")
	if added {
		t.Error("second socket's Join added = true, want false: alice is already listed")
	}
	wantUsers(t, "after two sockets joined as alice", u, "alice")
	wantUsers(t, "Users", mustUsers(t, s), "alice")
}

func testLeaveOneOfTwo(t *testing.T, s store.Store) {
	mustJoin(t, s, "alice", "s1")
	mustJoin(t, s, "bob", "s2")
	mustJoin(t, s, "alice", "s3")

	u, removed := mustLeave(t, s, "alice", "s1")
	if removed {
		t.Error("Leave of one of alice's two sockets: removed = true, want false")
	}
	wantUsers(t, "after one of two sockets left", u, "alice", "bob")

	u, removed = mustLeave(t, s, "alice", "s3")
	if !removed {
		t.Error("Leave of alice's last socket: removed = false, want true")
	}
	wantUsers(t, "after the last socket left", u, "bob")
}

func testDoubleJoin(t *testing.T, s store.Store) {
	mustJoin(t, s, "alice", "s1")
	u, _, added := mustJoin(t, s, "alice", "s1")
	if added {
		t.Error("repeated Join of the same socket: added = true, want false")
	}
	wantUsers(t, "after a repeated Join", u, "alice")
	// The socket was recorded once, so one Leave must release the username.
	u, removed := mustLeave(t, s, "alice", "s1")
	if !removed {
		t.Error("single Leave after a repeated Join: removed = false, want true (a socket counts once)")
	}
	wantUsers(t, "after the Leave", u)
}

func testDoubleLeave(t *testing.T, s store.Store) {
	mustJoin(t, s, "alice", "s1")
	mustJoin(t, s, "bob", "s2")
	if _, removed := mustLeave(t, s, "alice", "s1"); !removed {
		t.Error("first Leave: removed = false, want true")
	}
	u, removed := mustLeave(t, s, "alice", "s1")
	if removed {
		t.Error("second Leave of the same socket: removed = true, want false")
	}
	wantUsers(t, "after a repeated Leave", u, "bob")
}

func testUnknownLeave(t *testing.T, s store.Store) {
	mustJoin(t, s, "alice", "s1")
	for _, tc := range []struct{ username, socketID string }{
		{"nobody", "s9"},    // unknown username
		{"alice", "s9"},     // known username, socket that never held it
		{"nobody", "s1"},    // socket that holds a different username
		{"", ""},            // empty values are just unknown values
		{"alice\x00", "s1"}, // a near miss is a different username
		{"ALICE", "s1"},     // usernames are case-sensitive
	} {
		u, removed := mustLeave(t, s, tc.username, tc.socketID)
		if removed {
			t.Errorf("Leave(%q, %q) of an unrecorded socket: removed = true, want false", tc.username, tc.socketID)
		}
		wantUsers(t, fmt.Sprintf("after Leave(%q, %q)", tc.username, tc.socketID), u, "alice")
	}
}

func testRejoin(t *testing.T, s store.Store) {
	mustJoin(t, s, "alice", "s1")
	mustJoin(t, s, "bob", "s2")
	mustLeave(t, s, "alice", "s1")
	u, _, added := mustJoin(t, s, "alice", "s3")
	if !added {
		t.Error("Join after alice left: added = false, want true")
	}
	wantUsers(t, "a username that left and came back is listed last", u, "bob", "alice")
}

func testJoinReturnsHistory(t *testing.T, s store.Store) {
	for i := range 3 {
		if _, err := s.Append(t.Context(), msg(i)); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	_, h, _ := mustJoin(t, s, "alice", "s1")
	if diff := cmp.Diff([]store.Message{msg(0), msg(1), msg(2)}, h); diff != "" {
		t.Errorf("history returned by Join (-want +got):\n%s", diff)
	}
}

func testHistoryCap(t *testing.T, s store.Store) {
	var want []store.Message
	for i := range HistoryLimit + 3 {
		want = append(want, msg(i))
		if len(want) > HistoryLimit {
			want = want[1:]
		}
		got, err := s.Append(t.Context(), msg(i))
		if err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("history after Append #%d (-want +got):\n%s", i, diff)
		}
	}
	if diff := cmp.Diff(want, mustHistory(t, s)); diff != "" {
		t.Errorf("History: oldest entries must be dropped first (-want +got):\n%s", diff)
	}
	// Messages that are equal in content are still separate entries.
	dup := store.Message{Username: "a", Message: "same"}
	for range 2 {
		if _, err := s.Append(t.Context(), dup); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	h := mustHistory(t, s)
	if n := len(h); n != HistoryLimit || h[n-1] != dup || h[n-2] != dup {
		t.Errorf("after appending the same message twice, history = %v; want both copies at the end of %d entries", h, HistoryLimit)
	}
}

func testCopies(t *testing.T, s store.Store) {
	mustJoin(t, s, "alice", "s1")
	if _, err := s.Append(t.Context(), msg(1)); err != nil {
		t.Fatalf("Append: %v", err)
	}
	u, h, _ := mustJoin(t, s, "bob", "s2")
	u[0].Username = "mallory"
	h[0].Message = "tampered"
	u2, _ := mustLeave(t, s, "nobody", "sx")
	u2[1].Username = "mallory"
	h2, err := s.Append(t.Context(), msg(2))
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	h2[1].Username = "mallory"
	mustUsers(t, s)[0].Username = "mallory"
	mustHistory(t, s)[0].Message = "tampered"

	wantUsers(t, "after the caller changed returned lists", mustUsers(t, s), "alice", "bob")
	if diff := cmp.Diff([]store.Message{msg(1), msg(2)}, mustHistory(t, s)); diff != "" {
		t.Errorf("after the caller changed returned histories (-want +got):\n%s", diff)
	}
}

func testCanceled(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, _, err := s.Join(ctx, "alice", "s1"); err == nil {
		t.Error("Join with a canceled context: err = nil, want an error")
	}
	if _, err := s.Append(ctx, msg(1)); err == nil {
		t.Error("Append with a canceled context: err = nil, want an error")
	}
	// A canceled call must not have half-applied: the store is still usable
	// and shows no trace of it.
	wantUsers(t, "after canceled calls", mustUsers(t, s))
	if h := mustHistory(t, s); len(h) != 0 {
		t.Errorf("History after a canceled Append = %v, want empty", h)
	}
}

// testConcurrency runs joins, leaves and appends from many goroutines at once
// and then checks the invariants: every username still held by a socket is
// listed exactly once, no other is, and the history holds the newest
// messages each writer wrote, in the order that writer wrote them.
func testConcurrency(t *testing.T, s store.Store) {
	const (
		workers       = 16
		socketsPerKey = 4
		appends       = 10
	)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, workers*3)
	addedCount := make([]int, workers) // per shared username, times Join reported added

	// Every worker joins its own username from several sockets, plus one
	// shared username ("shared-w%2") that two workers contend on.
	for w := range workers {
		wg.Go(func() {
			own := fmt.Sprintf("user-%d", w)
			for i := range socketsPerKey {
				if _, _, _, err := s.Join(ctx, own, fmt.Sprintf("w%d-s%d", w, i)); err != nil {
					errs <- err
					return
				}
			}
			shared := fmt.Sprintf("shared-%d", w%2)
			if _, _, added, err := s.Join(ctx, shared, fmt.Sprintf("w%d-shared", w)); err != nil {
				errs <- err
				return
			} else if added {
				addedCount[w] = 1
			}
			for i := range appends {
				if _, err := s.Append(ctx, store.Message{Username: own, Message: fmt.Sprint(i)}); err != nil {
					errs <- err
					return
				}
			}
			// Odd workers release every socket (twice, as a Socket.IO server
			// may); even workers release all but one.
			keep := 1
			if w%2 == 1 {
				keep = 0
			}
			for range 2 {
				for i := keep; i < socketsPerKey; i++ {
					if _, _, err := s.Leave(ctx, own, fmt.Sprintf("w%d-s%d", w, i)); err != nil {
						errs <- err
						return
					}
				}
			}
			if _, err := s.Users(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent call failed: %v", err)
	}

	var added int
	for _, a := range addedCount {
		added += a
	}
	if added != 2 {
		t.Errorf("Join reported added=true %d times for the 2 contended usernames, want exactly 2", added)
	}

	got := mustUsers(t, s)
	var gotNames []string
	for _, u := range got {
		gotNames = append(gotNames, u.Username)
	}
	want := []string{"shared-0", "shared-1"}
	for w := 0; w < workers; w += 2 {
		want = append(want, fmt.Sprintf("user-%d", w))
	}
	sortedGot := slices.Sorted(slices.Values(gotNames))
	slices.Sort(want)
	if diff := cmp.Diff(want, sortedGot); diff != "" {
		t.Errorf("listed usernames after concurrent churn (-want +got, sorted):\n%s", diff)
	}

	h := mustHistory(t, s)
	if len(h) != HistoryLimit {
		t.Fatalf("history length = %d, want the cap %d", len(h), HistoryLimit)
	}
	// Each writer's messages must keep their relative order, and since they
	// are the newest entries, a writer's last message (appends-1) is among
	// them whenever any of its messages is.
	last := map[string]int{}
	for _, m := range h {
		var n int
		if _, err := fmt.Sscan(m.Message, &n); err != nil {
			t.Fatalf("history holds a message this test never wrote: %+v", m)
		}
		if prev, ok := last[m.Username]; ok && n <= prev {
			t.Errorf("history has %s's message %d after its message %d: one writer's order was not kept", m.Username, n, prev)
		}
		last[m.Username] = n
	}
	for u, n := range last {
		if n != appends-1 {
			t.Errorf("history ends %s's messages at %d, want %d: the newest messages must be kept", u, n, appends-1)
		}
	}
}

func testClosed(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustJoin(t, s, "alice", "s1")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checks := []struct {
		name string
		err  error
	}{
		{"Join", func() error { _, _, _, err := s.Join(ctx, "bob", "s2"); return err }()},
		{"Leave", func() error { _, _, err := s.Leave(ctx, "alice", "s1"); return err }()},
		{"Append", func() error { _, err := s.Append(ctx, msg(1)); return err }()},
		{"Users", func() error { _, err := s.Users(ctx); return err }()},
		{"History", func() error { _, err := s.History(ctx); return err }()},
	}
	for _, c := range checks {
		if !errors.Is(c.err, store.ErrClosed) {
			t.Errorf("%s after Close: err = %v, want store.ErrClosed", c.name, c.err)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
}
