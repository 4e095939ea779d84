package store

import (
	"context"
	"slices"
	"sync"
)

// Memory is a Store held in this process's memory. You can only run a single
// node with it: two processes each with their own Memory do not share users
// or history.
type Memory struct {
	limit int

	mu      sync.Mutex
	closed  bool
	order   []string                       // listed usernames in join order
	sockets map[string]map[string]struct{} // username -> socket IDs holding it
	history []Message                      // oldest first, at most limit entries
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory that keeps the newest historyLimit
// messages. A limit of 0 or less keeps no history at all (Append still
// succeeds and returns an empty history), so a misconfigured limit shows up
// as an empty history rather than as unbounded memory growth.
func NewMemory(historyLimit int) *Memory {
	return &Memory{
		limit:   max(historyLimit, 0),
		sockets: make(map[string]map[string]struct{}),
	}
}

// Join implements Store.
func (m *Memory) Join(ctx context.Context, username, socketID string) ([]User, []Message, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, nil, false, ErrClosed
	}
	held, ok := m.sockets[username]
	if !ok {
		held = make(map[string]struct{})
		m.sockets[username] = held
		m.order = append(m.order, username)
	}
	held[socketID] = struct{}{}
	return m.usersLocked(), cloneHistory(m.history), !ok, nil
}

// Leave implements Store.
func (m *Memory) Leave(ctx context.Context, username, socketID string) ([]User, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, false, ErrClosed
	}
	held, ok := m.sockets[username]
	removed := false
	if ok {
		delete(held, socketID)
		if len(held) == 0 {
			delete(m.sockets, username)
			m.order = slices.DeleteFunc(m.order, func(u string) bool { return u == username })
			removed = true
		}
	}
	return m.usersLocked(), removed, nil
}

// Append implements Store.
func (m *Memory) Append(ctx context.Context, msg Message) ([]Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	m.history = append(m.history, msg)
	if over := len(m.history) - m.limit; over > 0 {
		// Shift in place rather than reslice, so the backing array does not
		// creep forward and reallocate, and clear the vacated tail so the
		// dropped messages are not kept reachable.
		n := copy(m.history, m.history[over:])
		clear(m.history[n:])
		m.history = m.history[:n]
	}
	return cloneHistory(m.history), nil
}

// Users implements Store.
func (m *Memory) Users(ctx context.Context) ([]User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	return m.usersLocked(), nil
}

// History implements Store.
func (m *Memory) History(ctx context.Context) ([]Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	return cloneHistory(m.history), nil
}

// Close implements Store. After Close every method returns ErrClosed; closing
// twice is not an error.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// usersLocked returns a fresh copy of the list; m.mu must be held.
func (m *Memory) usersLocked() []User {
	users := make([]User, len(m.order))
	for i, u := range m.order {
		users[i] = User{Username: u}
	}
	return users
}

// cloneHistory returns a copy of h that is never nil, so that a caller who
// encodes it as JSON sends [] rather than null for an empty history.
func cloneHistory(h []Message) []Message {
	return append(make([]Message, 0, len(h)), h...)
}
