package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/chatspec/chatspec/reference/store"
	"github.com/chatspec/chatspec/reference/store/redisstore/redistest"
	"github.com/chatspec/chatspec/reference/store/storetest"
)

var prefixSeq atomic.Int64

// uniquePrefix isolates one test's keys from every other test sharing the
// same redis-server.
func uniquePrefix(t *testing.T) string {
	return fmt.Sprintf("test%d:%s:", prefixSeq.Add(1), t.Name())
}

func newNode(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := New(t.Context(), opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// eventually polls cond every 10ms until it returns nil or timeout passes,
// and returns how long it took.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var err error
	for {
		if err = cond(); err == nil {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not reached within %v: %v", what, timeout, err)
		}
		<-tick.C
	}
}

func usersAre(s *Store, names ...string) func() error {
	return func() error {
		got, err := s.Users(context.Background())
		if err != nil {
			return err
		}
		want := make([]store.User, 0, len(names))
		for _, n := range names {
			want = append(want, store.User{Username: n})
		}
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("users (-want +got):\n%s", diff)
		}
		return nil
	}
}

func TestContract(t *testing.T) {
	srv := redistest.Start(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := New(t.Context(), Options{URL: srv.URL, Prefix: uniquePrefix(t), HistoryLimit: storetest.HistoryLimit})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return s
	})
}

func TestNewValidatesOptions(t *testing.T) {
	deadURL := redistest.DeadURL(t)

	for _, tc := range []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"EmptyURL", Options{}, "Options.URL is empty"},
		{"NotARedisURL", Options{URL: "http://127.0.0.1:1"}, "Options.URL"},
		{"NegativeHistoryLimit", Options{URL: "redis://127.0.0.1:1/0", HistoryLimit: -1}, "HistoryLimit is -1"},
		{"TinyNodeTTL", Options{URL: "redis://127.0.0.1:1/0", NodeTTL: time.Millisecond}, "NodeTTL is 1ms"},
		{"Unreachable", Options{URL: deadURL}, "registering node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			s, err := New(ctx, tc.opts)
			if err == nil {
				s.Close()
				t.Fatalf("New(%+v) succeeded, want an error containing %q", tc.opts, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New(%+v) error = %q, want it to contain %q", tc.opts, err, tc.wantErr)
			}
		})
	}
}

func TestNodeIDInUse(t *testing.T) {
	srv := redistest.Start(t)
	opts := Options{URL: srv.URL, Prefix: uniquePrefix(t), NodeID: "n1"}
	newNode(t, opts)
	s, err := New(t.Context(), opts)
	if !errors.Is(err, ErrNodeIDInUse) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("second New with a live node's ID: err = %v, want ErrNodeIDInUse", err)
	}
}

// TestTwoNodesAgree checks that two nodes sharing a prefix see one user list
// in one join order and one history, also when they write concurrently.
func TestTwoNodesAgree(t *testing.T) {
	srv := redistest.Start(t)
	prefix := uniquePrefix(t)
	a := newNode(t, Options{URL: srv.URL, Prefix: prefix, NodeID: "a", HistoryLimit: 50})
	b := newNode(t, Options{URL: srv.URL, Prefix: prefix, NodeID: "b", HistoryLimit: 50})
	ctx := t.Context()

	steps := []struct {
		node     *Store
		username string
	}{{a, "alice"}, {b, "bob"}, {a, "carol"}, {b, "alice"}}
	for i, st := range steps {
		if _, _, _, err := st.node.Join(ctx, st.username, fmt.Sprintf("sock%d", i)); err != nil {
			t.Fatalf("Join: %v", err)
		}
	}
	for name, n := range map[string]*Store{"a": a, "b": b} {
		if err := usersAre(n, "alice", "bob", "carol")(); err != nil {
			t.Errorf("node %s: %v", name, err)
		}
	}
	// alice is held by a socket on each node: leaving on one keeps her.
	if _, removed, err := a.Leave(ctx, "alice", "sock0"); err != nil || removed {
		t.Fatalf("a.Leave(alice) = removed %v, err %v; want false, nil (b still holds alice)", removed, err)
	}

	// Concurrent writers on both nodes.
	var wg sync.WaitGroup
	for i := range 20 {
		n := a
		if i%2 == 1 {
			n = b
		}
		wg.Go(func() {
			if _, _, _, err := n.Join(ctx, fmt.Sprintf("user%02d", i), fmt.Sprintf("c%d", i)); err != nil {
				t.Errorf("Join: %v", err)
			}
			if _, err := n.Append(ctx, store.Message{Username: fmt.Sprintf("user%02d", i), Message: "hi"}); err != nil {
				t.Errorf("Append: %v", err)
			}
		})
	}
	wg.Wait()
	ua, err := a.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ub, err := b.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ua, ub); diff != "" {
		t.Errorf("nodes disagree on the user list (-a +b):\n%s", diff)
	}
	if len(ua) != 23 {
		t.Errorf("user list has %d entries, want 23: %v", len(ua), ua)
	}
	ha, _ := a.History(ctx)
	hb, _ := b.History(ctx)
	if diff := cmp.Diff(ha, hb); diff != "" || len(ha) != 20 {
		t.Errorf("nodes disagree on the history or lost entries (len %d) (-a +b):\n%s", len(ha), diff)
	}
}

type reapEvent struct{ removed, users []store.User }

// TestDeadNodeIsReaped kills a node without Close and measures how long its
// users stay listed on the survivor.
func TestDeadNodeIsReaped(t *testing.T) {
	srv := redistest.Start(t)
	prefix := uniquePrefix(t)
	const ttl = 300 * time.Millisecond
	events := make(chan reapEvent, 4)
	survivor := newNode(t, Options{URL: srv.URL, Prefix: prefix, NodeID: "survivor", NodeTTL: ttl,
		OnReaped: func(removed, users []store.User) { events <- reapEvent{removed, users} }})
	dying := newNode(t, Options{URL: srv.URL, Prefix: prefix, NodeID: "dying", NodeTTL: ttl})
	ctx := t.Context()

	mustJoin := func(s *Store, u, sock string) {
		if _, _, _, err := s.Join(ctx, u, sock); err != nil {
			t.Fatalf("Join(%s): %v", u, err)
		}
	}
	mustJoin(dying, "bob", "d1")
	mustJoin(survivor, "shared", "s1")
	mustJoin(dying, "shared", "d2")
	mustJoin(dying, "dan", "d3")
	mustJoin(survivor, "sam", "s2")

	dying.crash()
	bound := ttl + ttl/2
	took := eventually(t, 5*bound, "dead node's users unlisted", usersAre(survivor, "shared", "sam"))
	t.Logf("dead node's users unlisted %v after it died (NodeTTL %v, documented bound %v)", took, ttl, bound)
	// Slack for a loaded machine and the race detector: scheduling of the
	// reaper tick and the script call itself.
	if slack := 400 * time.Millisecond; took > bound+slack {
		t.Errorf("reaping took %v, more than the documented bound %v (+%v slack)", took, bound, slack)
	}
	select {
	case ev := <-events:
		want := reapEvent{
			removed: []store.User{{Username: "bob"}, {Username: "dan"}},
			users:   []store.User{{Username: "shared"}, {Username: "sam"}},
		}
		if diff := cmp.Diff(want, ev, cmp.AllowUnexported(reapEvent{})); diff != "" {
			t.Errorf("OnReaped (-want +got):\n%s", diff)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnReaped was not called")
	}
	if got := survivor.Status().ReapedHolds; got != 3 {
		t.Errorf("Status().ReapedHolds = %d, want 3", got)
	}
	// The reaped node is gone for good: another reaper pass reports nothing.
	select {
	case ev := <-events:
		t.Errorf("OnReaped called again for an already reaped node: %+v", ev)
	case <-time.After(2 * ttl):
	}
}

// TestRedisRestart restarts redis-server (losing all data) and checks that the
// node reconnects, reports health again and registers its sockets again.
func TestRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	const ttl = 300 * time.Millisecond
	restored := make(chan reapEvent, 4)
	s := newNode(t, Options{URL: srv.URL, Prefix: uniquePrefix(t), NodeTTL: ttl, HistoryLimit: 10,
		OnRestored: func(added, users []store.User) { restored <- reapEvent{added, users} }})
	ctx := t.Context()
	for i, u := range []string{"carol", "alice", "bob", "alice"} {
		if _, _, _, err := s.Join(ctx, u, fmt.Sprintf("s%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Leave(ctx, "bob", "s2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, store.Message{Username: "alice", Message: "before restart"}); err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	eventually(t, 5*time.Second, "Healthy reports the outage", func() error {
		if s.Healthy(ctx) == nil {
			return errors.New("Healthy returned nil while redis-server is down")
		}
		return nil
	})
	eventually(t, 5*time.Second, "Status reports the outage", func() error {
		if st := s.Status(); st.Healthy || st.LastError == "" {
			return fmt.Errorf("status %+v, want unhealthy with an error", st)
		}
		return nil
	})
	if _, _, _, err := s.Join(ctx, "dave", "s9"); err == nil {
		t.Error("Join while Redis is down succeeded, want an error")
	}

	srv.Restart()
	took := eventually(t, 5*time.Second, "Healthy recovers", func() error { return s.Healthy(ctx) })
	took += eventually(t, 5*time.Second, "sockets registered again", usersAre(s, "carol", "alice"))
	t.Logf("after the restart the user list was rebuilt within %v (NodeTTL %v)", took, ttl)
	select {
	case ev := <-restored:
		want := []store.User{{Username: "carol"}, {Username: "alice"}}
		if diff := cmp.Diff(reapEvent{want, want}, ev, cmp.AllowUnexported(reapEvent{})); diff != "" {
			t.Errorf("OnRestored (-want +got):\n%s", diff)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnRestored was not called")
	}
	st := s.Status()
	if !st.Healthy || st.Reregistrations < 1 {
		t.Errorf("Status after recovery = %+v, want healthy with at least one re-registration", st)
	}
	// The history is not recoverable: Redis ran without persistence.
	if h, err := s.History(ctx); err != nil || len(h) != 0 {
		t.Errorf("History after a restart without persistence = %v, %v; want empty (documented loss)", h, err)
	}
	// The recovered socket set is complete and exact: leaving them empties the list.
	for _, l := range []struct{ u, s string }{{"carol", "s0"}, {"alice", "s1"}, {"alice", "s3"}} {
		if _, _, err := s.Leave(ctx, l.u, l.s); err != nil {
			t.Fatal(err)
		}
	}
	if err := usersAre(s)(); err != nil {
		t.Error(err)
	}
}

// TestCloseRemovesOnlyOwnSockets checks a clean shutdown: the closing node's
// users leave, the other node's users and the history stay.
func TestCloseRemovesOnlyOwnSockets(t *testing.T) {
	srv := redistest.Start(t)
	prefix := uniquePrefix(t)
	a := newNode(t, Options{URL: srv.URL, Prefix: prefix, HistoryLimit: 5})
	b := newNode(t, Options{URL: srv.URL, Prefix: prefix, HistoryLimit: 5})
	ctx := t.Context()
	for _, j := range []struct {
		n    *Store
		u, s string
	}{{a, "alice", "a1"}, {b, "bob", "b1"}, {a, "both", "a2"}, {b, "both", "b2"}} {
		if _, _, _, err := j.n.Join(ctx, j.u, j.s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Append(ctx, store.Message{Username: "alice", Message: "bye"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := usersAre(b, "bob", "both")(); err != nil {
		t.Error(err)
	}
	if h, err := b.History(ctx); err != nil || len(h) != 1 {
		t.Errorf("history after the other node closed = %v, %v; want the one message", h, err)
	}
}

// TestRestartedNodeDropsStaleSockets: a node that crashed and comes back
// under the same ID removes what its previous run left, at once.
func TestRestartedNodeDropsStaleSockets(t *testing.T) {
	srv := redistest.Start(t)
	prefix := uniquePrefix(t)
	const ttl = 200 * time.Millisecond
	first := newNode(t, Options{URL: srv.URL, Prefix: prefix, NodeID: "n1", NodeTTL: ttl})
	if _, _, _, err := first.Join(t.Context(), "ghost", "g1"); err != nil {
		t.Fatal(err)
	}
	first.crash()
	var second *Store
	eventually(t, 5*time.Second, "restart under the same node ID", func() error {
		s, err := New(t.Context(), Options{URL: srv.URL, Prefix: prefix, NodeID: "n1", NodeTTL: ttl})
		if err != nil {
			return err
		}
		second = s
		return nil
	})
	t.Cleanup(func() { second.Close() })
	if err := usersAre(second)(); err != nil {
		t.Errorf("after restart under the same ID: %v", err)
	}
}

// TestFailedLeaveIsRetried pauses Redis writes so that a Leave times out, and
// checks that the store retries it once Redis answers again.
func TestFailedLeaveIsRetried(t *testing.T) {
	srv := redistest.Start(t)
	const ttl = 300 * time.Millisecond
	s := newNode(t, Options{URL: srv.URL, Prefix: uniquePrefix(t), NodeTTL: ttl})
	ctx := t.Context()
	if _, _, _, err := s.Join(ctx, "alice", "s1"); err != nil {
		t.Fatal(err)
	}
	admin := newAdmin(t, srv.URL)
	if err := admin.Do(ctx, "CLIENT", "PAUSE", "400", "WRITE").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
	lctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, _, err := s.Leave(lctx, "alice", "s1")
	cancel()
	if err == nil {
		t.Fatal("Leave while Redis writes are paused succeeded, want a timeout error")
	}
	eventually(t, 5*time.Second, "failed Leave applied by the retry", usersAre(s))
	eventually(t, 5*time.Second, "no pending Leaves", func() error {
		if n := s.Status().PendingLeaves; n != 0 {
			return fmt.Errorf("%d pending", n)
		}
		return nil
	})
}

// newAdmin returns a plain client for test manipulation of the server.
func newAdmin(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func BenchmarkRedis(b *testing.B) {
	srv := redistest.Start(b)
	var n atomic.Int64
	storetest.Bench(b, func(b *testing.B) store.Store {
		s, err := New(b.Context(), Options{URL: srv.URL, Prefix: fmt.Sprintf("bench%d:", n.Add(1)), HistoryLimit: 100})
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}

// TestStalledNodeComesBack simulates a node that stalled past NodeTTL: its
// liveness key vanishes, a survivor reaps its users (on its own tick), and
// the node, once its refresh runs again, registers them back.
func TestStalledNodeComesBack(t *testing.T) {
	srv := redistest.Start(t)
	prefix := uniquePrefix(t)
	const ttl = 300 * time.Millisecond
	reaped := make(chan reapEvent, 4)
	restored := make(chan reapEvent, 4)
	survivor := newNode(t, Options{URL: srv.URL, Prefix: prefix, NodeID: "survivor", NodeTTL: ttl,
		OnReaped: func(removed, users []store.User) { reaped <- reapEvent{removed, users} }})
	stalled := newNode(t, Options{URL: srv.URL, Prefix: prefix, NodeID: "stalled", NodeTTL: ttl,
		OnRestored: func(added, users []store.User) { restored <- reapEvent{added, users} }})
	ctx := t.Context()
	if _, _, _, err := stalled.Join(ctx, "sally", "x1"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := survivor.Join(ctx, "sam", "y1"); err != nil {
		t.Fatal(err)
	}
	// Freeze the node's loops, then do what its key's expiry would do.
	stalled.stall()
	admin := newAdmin(t, srv.URL)
	if err := admin.Del(ctx, prefix+"node:stalled").Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-reaped:
		if diff := cmp.Diff([]store.User{{Username: "sally"}}, ev.removed); diff != "" {
			t.Errorf("OnReaped removed (-want +got):\n%s", diff)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the survivor did not reap the stalled node")
	}
	if err := usersAre(survivor, "sam")(); err != nil {
		t.Fatalf("after the reap: %v", err)
	}
	// The node wakes up: its next refresh finds its key gone.
	stalled.refresh(ctx)
	if err := usersAre(survivor, "sam", "sally")(); err != nil {
		t.Errorf("after the stalled node's refresh: %v", err)
	}
	if got := stalled.Status().Reregistrations; got != 1 {
		t.Errorf("Status().Reregistrations = %d, want 1", got)
	}
	select {
	case ev := <-restored:
		if diff := cmp.Diff(reapEvent{users("sally"), users("sam", "sally")}, ev, cmp.AllowUnexported(reapEvent{})); diff != "" {
			t.Errorf("OnRestored (-want +got):\n%s", diff)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnRestored was not called")
	}
}

func users(names ...string) []store.User {
	out := make([]store.User, 0, len(names))
	for _, n := range names {
		out = append(out, store.User{Username: n})
	}
	return out
}
