package reference

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatspec/chatspec/reference/store"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// UsersRemoved and UsersRestored (a shared store's background changes,
// without a change feed) reach every socket as disconnected and joined,
// in call order.
func TestUsersRemovedAndRestoredAreBroadcast(t *testing.T) {
	r := startServer(t, nil)
	ann, _ := join(t, r, sioclient.WebSocket, "ann")
	r.Server().UsersRemoved([]store.User{{Username: "ghost"}}, []store.User{{Username: "ann"}})
	r.Server().UsersRestored([]store.User{{Username: "back"}}, []store.User{{Username: "ann"}, {Username: "back"}})
	var gone, back usersPayload
	ann.expect(EventDisconnected, &gone)
	ann.expect(EventJoined, &back)
	if diff := cmp.Diff([]string{"ann"}, names(gone.ConnectedUserList)); diff != "" {
		t.Errorf("disconnected list (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ann", "back"}, names(back.ConnectedUserList)); diff != "" {
		t.Errorf("joined list (-want +got):\n%s", diff)
	}
}

// scriptedFeed is a memory store with a change feed that the test drives:
// the server subscribes to it by itself, and feed delivers a change.
type scriptedFeed struct {
	*store.Memory
	mu       sync.Mutex
	onChange func(store.Change)
}

func (f *scriptedFeed) Subscribe(onChange func(store.Change)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.onChange != nil {
		return errors.New("already subscribed")
	}
	f.onChange = onChange
	return nil
}

func (f *scriptedFeed) AppendFrom(ctx context.Context, m store.Message, _ string) ([]store.Message, error) {
	return f.Append(ctx, m)
}

func (f *scriptedFeed) feed(t *testing.T, c store.Change) {
	t.Helper()
	f.mu.Lock()
	onChange := f.onChange
	f.mu.Unlock()
	if onChange == nil {
		t.Fatal("the server did not subscribe to the store's change feed")
	}
	onChange(c)
}

var _ store.ChangeFeed = (*scriptedFeed)(nil)

// On a store with a change feed the server subscribes by itself and its
// handlers send nothing themselves: a join is answered only when the feed
// delivers it (here: never, so the join falls back to a direct connected
// after StoreTimeout), and the feed's changes reach the server's sockets.
func TestChangeFeedDrivesEvents(t *testing.T) {
	feed := &scriptedFeed{Memory: store.NewMemory(10)}
	r := startServer(t, func(c *Config) { c.StoreTimeout = 300 * time.Millisecond }, WithStore(feed))
	ann := dial(t, r, sioclient.WebSocket)
	ann.name = "ann"
	ann.emit(EventConnecting, map[string]any{"username": "ann"})
	var p connectedPayload
	ann.expect(EventConnected, &p) // the fallback, after StoreTimeout
	if diff := cmp.Diff([]string{"ann"}, names(p.ConnectedUserList)); diff != "" {
		t.Errorf("fallback connected list (-want +got):\n%s", diff)
	}
	feed.feed(t, store.Change{Kind: store.ChangeAppend, SocketID: "elsewhere", History: []store.Message{{Username: "bob", Message: "hi"}}})
	feed.feed(t, store.Change{Kind: store.ChangeLeave, SocketID: "x", Changed: false, Users: []store.User{{Username: "ann"}}})
	feed.feed(t, store.Change{Kind: store.ChangeRemoved, Users: []store.User{{Username: "ann"}}})
	var m messagesPayload
	ann.expect(EventMessageWritten, &m)
	if diff := cmp.Diff([]store.Message{{Username: "bob", Message: "hi"}}, m.MessagesList); diff != "" {
		t.Errorf("messageWritten from the feed (-want +got):\n%s", diff)
	}
	// The leave that unlisted no one sent nothing (USER-4): next is the removal.
	var u usersPayload
	ann.expect(EventDisconnected, &u)
	if diff := cmp.Diff([]string{"ann"}, names(u.ConnectedUserList)); diff != "" {
		t.Errorf("disconnected from the feed (-want +got):\n%s", diff)
	}
}

// /healthz names the store's detail when it has one, and
// chatspec_reference_store_up follows the store's ping.
func TestStoreHealthDetailAndGauge(t *testing.T) {
	fs := &failingStore{Memory: store.NewMemory(10)}
	reg := prometheus.NewRegistry()
	r := startServer(t, nil, WithStore(detailStore{fs}), WithRegisterer(reg))
	up := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "chatspec_reference_store_up" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("chatspec_reference_store_up not registered")
		return -1
	}
	if resp, body := get(t, r.URL()+"/healthz", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"detail":{"backend":"test"}`) {
		t.Errorf("/healthz = %d %s, want 200 with the store's detail", resp.StatusCode, body)
	}
	if got := up(); got != 1 {
		t.Errorf("store_up = %v, want 1", got)
	}
	fs.fail.Store(true)
	if got := up(); got != 0 {
		t.Errorf("store_up with a failing store = %v, want 0", got)
	}
	if resp, body := get(t, r.URL()+"/healthz", nil); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"detail"`) {
		t.Errorf("/healthz with a failing store = %d %s, want 503 with the detail", resp.StatusCode, body)
	}
	fs.fail.Store(false)
}

type detailStore struct{ *failingStore }

func (detailStore) HealthDetail() any { return map[string]string{"backend": "test"} }
