package redisstore_test

import (
	"context"
	"log"
	"log/slog"
	"net/http"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/chatspec/chatspec/reference/store"
	"github.com/chatspec/chatspec/reference/store/redisstore"
	"github.com/chatspec/chatspec/reference/store/redisstore/sioadapter"
)

// One node of a multi-node chat server: the store holds the shared state,
// the adapter carries broadcasts between nodes. Changes the store makes in
// the background (a dead node's users reaped, this node's users restored
// after a Redis restart) are broadcast by the node that made them; the
// adapter delivers them to every node's clients.
func Example() {
	ctx := context.Background()
	const url = "redis://127.0.0.1:6379/0"

	ad, err := sioadapter.New(ctx, sioadapter.Options{URL: url, Kind: sioadapter.Sharded})
	if err != nil {
		log.Fatal(err)
	}
	opts := socket.DefaultServerOptions()
	opts.SetAdapter(ad.Builder())
	io := socket.NewServer(nil, opts)

	st, err := redisstore.New(ctx, redisstore.Options{
		URL:          url,
		Prefix:       "chat:",
		HistoryLimit: 100,
		NodeTTL:      10 * time.Second,
		Logger:       slog.Default(),
		OnReaped: func(_, users []store.User) {
			io.Emit("disconnected", map[string]any{"connectedUserList": users})
		},
		OnRestored: func(_, users []store.User) {
			io.Emit("joined", map[string]any{"connectedUserList": users})
		},
	})
	if err != nil {
		log.Fatal(err)
	}

	http.Handle("/socket.io/", io.ServeHandler(nil))
	// ... serve. On shutdown, close the store first: it removes this node's
	// users in one step and OnReaped announces the new list while the
	// adapter can still carry it to the other nodes. The disconnect
	// handlers that io.Close then runs get store.ErrClosed from Leave and
	// have nothing left to do.
	_ = st.Close()
	io.Close(nil)
	_ = ad.Close()
}
