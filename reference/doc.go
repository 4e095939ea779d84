// Package reference is chatspec's reference chat server: the chat of
// ../spec/CONTRACT.md (a Next.js + React chat on Socket.IO, made precise) on
// the zishang520 Socket.IO server for Go, with the robustness and security
// items the contract grades as robust and security.
//
// It answers connecting, writeMessage and unknown events as the contract
// says, reports every refused event with chatError (and a negative ack when
// one was asked for, ERR-1), serialises each state change with its
// broadcast so that every socket sees one order (HIST-1, USER-2), caps
// sizes and rates (SEC-3, SEC-4), and serves /healthz and /metrics next to
// Socket.IO.
//
//	srv, err := reference.New(reference.DefaultConfig())
//	...
//	err = srv.Serve(ctx, listener) // until ctx is done, then a graceful stop
//
// or, for tests and the CLI, reference.Start(ctx, cfg) listening on cfg.Addr.
//
// State lives in a store.Store (memory by default; WithStore for a shared
// one). With the default memory store you can only run a single node. A
// cluster (chatspec serve --redis) shares a redisstore and takes the chat
// events from the store's totally ordered change feed (store.ChangeFeed,
// to which the server subscribes by itself; see cluster.go for why a
// Socket.IO adapter alone cannot keep HIST-1 across nodes).
package reference
