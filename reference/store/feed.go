package store

import "context"

// The optional capabilities of a store. A server finds them by asserting
// these named interfaces; a store offers only what it can do.

// ChangeKind says what a Change did.
type ChangeKind string

// Change kinds. The values are the ones a shared store writes (redisstore's
// scripts record them in Redis).
const (
	ChangeJoin     ChangeKind = "join"     // a socket joined (Changed: its username was newly listed)
	ChangeLeave    ChangeKind = "leave"    // a socket left (Changed: its username was unlisted)
	ChangeAppend   ChangeKind = "append"   // a message was appended
	ChangeRemoved  ChangeKind = "removed"  // a dead or closing node's users were unlisted
	ChangeRestored ChangeKind = "restored" // a node's users were listed again after the backend lost them
)

// Change is one entry of a ChangeFeed: a change of the shared state, with
// the lists as they are right after it.
type Change struct {
	// Seq numbers the changes from 1 without gaps, until the backend loses
	// its data and starts again from 1.
	Seq int64
	// Kind is what happened.
	Kind ChangeKind
	// SocketID is the socket whose join, leave or append this is; empty for
	// removed and restored.
	SocketID string
	// Changed reports, for a join, that the username was newly listed; for
	// a leave, that it was unlisted. Always true for removed and restored.
	Changed bool
	// Users is the user list right after the change.
	Users []User
	// History is the history right after a join or an append; nil for the
	// other kinds.
	History []Message
}

// ChangeFeed is a store shared by several nodes that records every change
// of every node in one total order. A server on such a store must send chat
// events from the feed only, each to its own sockets: fanning a change out
// as soon as its own store call returns lets two nodes' broadcasts reach a
// third node's clients in either order (reference/cluster.go explains it).
type ChangeFeed interface {
	Store
	// Subscribe starts delivering every change, from the first one after
	// the store was created, to onChange: one at a time, in the feed's
	// order, on a goroutine of the store's, until the store is closed.
	// onChange must not block for long. A feed has one subscriber; a second
	// Subscribe is an error.
	Subscribe(onChange func(Change)) error
	// AppendFrom is Append that names socketID as the change's origin, so
	// that the node serving that socket recognises its own change in the
	// feed.
	AppendFrom(ctx context.Context, m Message, socketID string) ([]Message, error)
}

// Pinger is a store whose backend can be out of reach (a remote store).
// Ping answers nil while the store can serve requests.
type Pinger interface {
	Ping(ctx context.Context) error
}

// HealthReporter is a store that describes its own state for a health
// endpoint (redisstore: node ID, liveness, last error). The value is
// encoded as JSON.
type HealthReporter interface {
	HealthDetail() any
}
