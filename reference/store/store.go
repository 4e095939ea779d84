// Package store holds the chat state that the reference server shares between
// its sockets (and, with the Redis implementation, between its nodes): who is
// online, with how many sockets, and the capped message history.
//
// The interface is small on purpose. Every method is atomic with respect to
// every other method on the same Store, across all nodes that share it: two
// nodes never disagree about who is online or in what order messages were
// written. Implementations: Memory (this package; a single process only) and
// redisstore (several nodes sharing one Redis).
package store

import (
	"context"
	"errors"
)

// User is one entry of the connected-user list (CONTRACT.md USER-*).
type User struct {
	Username string `json:"username"`
}

// Message is one entry of the history (CONTRACT.md MSG-*).
type Message struct {
	Username string `json:"username"`
	Message  string `json:"message"`
}

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("store: closed")

// Store is the shared chat state.
//
// A username is listed while at least one socket holds it; sockets are
// identified by an ID that is unique across nodes (the Socket.IO socket id).
// Join and Leave are idempotent per socket ID, because the Socket.IO server
// can report one disconnect twice. Returned slices are never nil (so JSON
// carries [] rather than null) and are the caller's to keep.
type Store interface {
	// Join records that socketID holds username. The username is appended to
	// the list (join order) if no other socket holds it yet. It returns the
	// list and the history as they are right after the join, and whether
	// the username was newly listed.
	Join(ctx context.Context, username, socketID string) (users []User, history []Message, added bool, err error)

	// Leave forgets socketID's hold on username. The username is removed
	// from the list only when no socket holds it any more. Leaving a socket
	// that is not recorded is not an error (removed is false). It returns the
	// list right after the leave.
	Leave(ctx context.Context, username, socketID string) (users []User, removed bool, err error)

	// Append adds m at the end of the history, drops the oldest entries
	// beyond the store's limit, and returns the history right after.
	Append(ctx context.Context, m Message) (history []Message, err error)

	// Users returns the current list in join order.
	Users(ctx context.Context) ([]User, error)

	// History returns the current history, oldest first.
	History(ctx context.Context) ([]Message, error)

	// Close releases the store's resources. It erases no shared state
	// other than this store's own sockets (a Redis node that shuts down
	// cleanly takes its users with it, as if they had left).
	Close() error
}
