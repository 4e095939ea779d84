package redisstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chatspec/chatspec/reference/store"
	"github.com/chatspec/chatspec/reference/store/redisstore/redistest"
)

// feedLog collects one node's feed.
type feedLog struct {
	mu      sync.Mutex
	changes []store.Change
}

func (f *feedLog) add(c store.Change) {
	f.mu.Lock()
	f.changes = append(f.changes, c)
	f.mu.Unlock()
}

func (f *feedLog) get() []store.Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.Change(nil), f.changes...)
}

func (f *feedLog) waitLen(t *testing.T, n int) []store.Change {
	t.Helper()
	eventually(t, 5*time.Second, fmt.Sprintf("%d feed entries", n), func() error {
		if got := len(f.get()); got < n {
			return fmt.Errorf("%d entries", got)
		}
		return nil
	})
	return f.get()
}

// Two nodes changing the state at once both read the same feed: the same
// changes, numbered without gaps, each with the lists right after it, in
// the order Redis applied them (so the history grows by one per append).
func TestFeedOneOrderForAllNodes(t *testing.T) {
	srv := redistest.Start(t)
	prefix := uniquePrefix(t)
	var logA, logB feedLog
	a := newNode(t, Options{URL: srv.URL, Prefix: prefix, NodeID: "a", HistoryLimit: 100})
	b := newNode(t, Options{URL: srv.URL, Prefix: prefix, NodeID: "b", HistoryLimit: 100})
	subscribe(t, a, logA.add)
	subscribe(t, b, logB.add)
	ctx := t.Context()

	if _, _, _, err := a.Join(ctx, "ann", "sa"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := b.Join(ctx, "bea", "sb"); err != nil {
		t.Fatal(err)
	}
	const each = 20
	var wg sync.WaitGroup
	for _, n := range []struct {
		s    *Store
		user string
		sock string
	}{{a, "ann", "sa"}, {b, "bea", "sb"}} {
		wg.Go(func() {
			for i := range each {
				if _, err := n.s.AppendFrom(context.Background(), store.Message{Username: n.user, Message: fmt.Sprint(i)}, n.sock); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if _, _, err := b.Leave(ctx, "bea", "sb"); err != nil {
		t.Fatal(err)
	}
	total := 2 + 2*each + 1
	gotA, gotB := logA.waitLen(t, total), logB.waitLen(t, total)
	if diff := cmp.Diff(gotA, gotB); diff != "" {
		t.Fatalf("the nodes read different feeds (-a +b):\n%s", diff)
	}
	for i, c := range gotA {
		if c.Seq != int64(i+1) {
			t.Fatalf("entry %d has Seq %d, want %d", i, c.Seq, i+1)
		}
	}
	if c := gotA[0]; c.Kind != store.ChangeJoin || c.SocketID != "sa" || !c.Changed || len(c.Users) != 1 || c.History == nil {
		t.Errorf("first entry = %+v, want ann's join with the list and an empty history", c)
	}
	for i, c := range gotA[2 : 2+2*each] {
		if c.Kind != store.ChangeAppend || len(c.History) != i+1 {
			t.Fatalf("append entry %d = %s with %d messages, want append with %d", i, c.Kind, len(c.History), i+1)
		}
		if i > 0 && !cmp.Equal(c.History[:i], gotA[2+i-1].History) {
			t.Fatalf("append entry %d does not extend the previous history", i)
		}
		if want := map[string]string{"ann": "sa", "bea": "sb"}[c.History[i].Username]; c.SocketID != want {
			t.Errorf("append entry %d names socket %q, want its writer's %q", i, c.SocketID, want)
		}
	}
	last := gotA[total-1]
	if last.Kind != store.ChangeLeave || !last.Changed || !cmp.Equal(last.Users, []store.User{{Username: "ann"}}) {
		t.Errorf("last entry = %+v, want bea's leave unlisting her", last)
	}
	if st := a.Status(); !st.FeedHealthy || st.MissedChanges != 0 {
		t.Errorf("Status() = %+v, want a healthy feed with no missed changes", st)
	}
}

// A node that closes, and one that is reaped, show up in the feed as one
// "removed" entry each, read by the survivors.
func TestFeedReportsRemovedUsers(t *testing.T) {
	srv := redistest.Start(t)
	prefix := uniquePrefix(t)
	var log feedLog
	const ttl = 300 * time.Millisecond
	subscribe(t, newNode(t, Options{URL: srv.URL, Prefix: prefix, NodeID: "survivor", NodeTTL: ttl}), log.add)
	closing := newNode(t, Options{URL: srv.URL, Prefix: prefix, NodeID: "closing", NodeTTL: ttl})
	dying := newNode(t, Options{URL: srv.URL, Prefix: prefix, NodeID: "dying", NodeTTL: ttl})
	ctx := t.Context()
	if _, _, _, err := closing.Join(ctx, "cal", "c1"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := dying.Join(ctx, "dan", "d1"); err != nil {
		t.Fatal(err)
	}
	if err := closing.Close(); err != nil {
		t.Fatal(err)
	}
	dying.crash()
	got := log.waitLen(t, 4)
	want := []store.Change{
		{Seq: 1, Kind: store.ChangeJoin, SocketID: "c1", Changed: true, Users: []store.User{{Username: "cal"}}, History: []store.Message{}},
		{Seq: 2, Kind: store.ChangeJoin, SocketID: "d1", Changed: true, Users: []store.User{{Username: "cal"}, {Username: "dan"}}, History: []store.Message{}},
		{Seq: 3, Kind: store.ChangeRemoved, Changed: true, Users: []store.User{{Username: "dan"}}},
		{Seq: 4, Kind: store.ChangeRemoved, Changed: true, Users: []store.User{}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("feed (-want +got):\n%s", diff)
	}
}

func subscribe(t *testing.T, s *Store, onChange func(store.Change)) {
	t.Helper()
	if err := s.Subscribe(onChange); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
}

// A feed has one subscriber: the second Subscribe is refused, and the first
// goes on receiving.
func TestFeedHasOneSubscriber(t *testing.T) {
	srv := redistest.Start(t)
	st := newNode(t, Options{URL: srv.URL, Prefix: uniquePrefix(t), NodeID: "only"})
	var first feedLog
	subscribe(t, st, first.add)
	if err := st.Subscribe(func(store.Change) {}); err == nil {
		t.Fatal("a second Subscribe was accepted")
	}
	if _, _, _, err := st.Join(t.Context(), "ann", "s1"); err != nil {
		t.Fatal(err)
	}
	if got := first.waitLen(t, 1); got[0].Kind != store.ChangeJoin {
		t.Fatalf("first subscriber got %+v, want a join", got[0])
	}
}
