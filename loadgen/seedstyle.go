package loadgen

import (
	"errors"
	"fmt"
	"sync"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// Seed-style users (Config.SeedStyle, CONTRACT.md SEED-1).
//
// The seed's useSocket hook calls io() twice, so a page built from it holds
// two connections: one joins and receives the chat, the other never joins
// and carries every writeMessage. A seed-style user does the same: each of
// its sessions dials a second, writing connection next to the joining one
// (both after the one init request, at the same time, as two io() calls
// do) and sends every message on it.
//
// Accounting is unchanged. The joining connection is the receiver: it is
// owed every message, its own included, exactly as a one-connection user.
// The writing connection never joins, so it is owed nothing; whatever a
// server broadcasts to it (unjoined sockets MAY receive messageWritten,
// CONTRACT.md MSG-1) is read and dropped. A server that refuses writes from
// a socket that never joined (SEC-2) shows up as lost messages: sent, and
// never delivered to anyone.
//
// The two connections live and die together: when the joining one ends,
// the writer is closed; when the server drops the writer, the joining one
// is dropped too, so the session reconnects as a whole, as a page reload
// would.

// seedSide is the writing connection of a seed-style session.
type seedSide struct {
	conn Conn
	once sync.Once
}

// dialSession dials a session's connection; for a seed-style user it also
// dials the writing connection, concurrently, and attaches it to s. Either
// dial failing fails both (the other is closed).
func (e *Engine) dialSession(s *session, opts sioclient.Options) (Conn, error) {
	if !e.cfg.SeedStyle {
		return e.cfg.Connect(e.hardCtx, opts)
	}
	wopts := opts
	// Owed nothing: whatever the writer receives is dropped, except a
	// refusal of its writes, which is the session's (messages.refused).
	wopts.OnEvent = func(ev sioclient.Event) {
		switch ev.Name {
		case "connected", "joined", "disconnected", "messageWritten":
		default:
			s.onReport(ev, "writeMessage") // it sends nothing else
		}
	}
	type dialed struct {
		conn Conn
		err  error
	}
	wc := make(chan dialed, 1)
	go func() {
		c, err := e.cfg.Connect(e.hardCtx, wopts)
		wc <- dialed{c, err}
	}()
	conn, err := e.cfg.Connect(e.hardCtx, opts)
	w := <-wc
	if err != nil || w.err != nil {
		for _, c := range []Conn{conn, w.conn} {
			if c != nil {
				_ = c.Close()
			}
		}
		if w.err != nil {
			w.err = fmt.Errorf("the writing connection (seed-style): %w", w.err)
		}
		return nil, errors.Join(err, w.err)
	}
	side := &seedSide{conn: w.conn}
	s.side = side
	// A writer the server dropped takes the session down with it; one the
	// generator closed (closeSide) finds the session's connection ended.
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		select {
		case <-w.conn.Done():
			if !s.planned.Load() && !e.stopping() {
				_ = conn.Abort()
			}
		case <-conn.Done():
		}
	}()
	return conn, nil
}

// writeConn is the connection s sends its messages on: the writing
// connection of a seed-style session, else its only one.
func (s *session) writeConn() Conn {
	if s.side != nil {
		return s.side.conn
	}
	return s.liveConn()
}

// closeSide closes a seed-style session's writing connection (idempotent).
func (s *session) closeSide() {
	if s.side == nil {
		return
	}
	s.side.once.Do(func() {
		if s.aborted.Load() {
			_ = s.side.conn.Abort()
			return
		}
		_ = s.side.conn.Close()
	})
}
