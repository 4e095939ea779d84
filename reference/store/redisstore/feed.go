package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatspec/chatspec/reference/store"
)

// # The change feed
//
// A chat server that fans a change out to its own sockets as soon as its
// store call returns cannot keep one order across nodes: node A's broadcast
// of history [..a] and node B's of [..a,b] travel separately, so a client
// can get [..a,b] and then [..a], a list that lacks a message it has seen.
// The feed removes that race at its root. Each script that changes the
// list or the history appends the change, with the lists as they are right
// after it, to one Redis stream (P feed) in the same atomic step; so the
// stream's order is the order of the changes. Every node reads the stream
// (XREAD, blocking) and hands each entry to its subscriber in that order
// (Subscribe). A server that sends chat events only from the feed, and only to its own
// sockets, gives every client of every node the same sequence of lists.
//
// A stream, unlike Pub/Sub, keeps entries while a node's connection is
// down: a node that reconnects continues after the last entry it read.
// Entries are numbered (P feedseq), so a gap (entries trimmed before a
// lagging node read them) is detected, logged and counted in
// Status.MissedChanges rather than silently skipped. A Redis restart
// without persistence empties the stream and restarts the numbering; that
// is logged too.

// DefaultFeedLength is Options.FeedLength's default.
const DefaultFeedLength = 1000

// feedBlock is how long one XREAD waits for new entries; it bounds how long
// Close waits for the reader.
const feedBlock = 250 * time.Millisecond

// feedBatch is the most entries one XREAD returns.
const feedBatch = 100

// feedLen is the feed length the scripts get. Every node writes the feed,
// whether or not it reads it (Subscribe): the nodes that read it
// must see every node's changes.
func (s *Store) feedLen() string { return strconv.Itoa(s.opts.FeedLength) }

// feedStart returns the ID after which this node starts reading: the
// newest entry now, so a new node does not replay old changes.
func (s *Store) feedStart(ctx context.Context) (string, error) {
	last, err := s.client.XRevRangeN(ctx, s.keys.feed, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("redisstore: reading the change feed %s: %w", s.keys.feed, err)
	}
	if len(last) == 0 {
		return "0-0", nil
	}
	if n, err := strconv.ParseInt(fmt.Sprint(last[0].Values["n"]), 10, 64); err == nil {
		s.mu.Lock()
		s.feedSeq = n
		s.mu.Unlock()
	}
	return last[0].ID, nil
}

// Subscribe delivers the change feed to onChange (store.ChangeFeed): every
// change of every node sharing the prefix, from the first one after New,
// one at a time and in Redis's order, on the feed's goroutine, until Close.
// It may be called once.
func (s *Store) Subscribe(onChange func(store.Change)) error {
	if onChange == nil {
		return errors.New("redisstore: Subscribe needs a function")
	}
	if s.closed.Load() {
		return store.ErrClosed
	}
	s.mu.Lock()
	from, subscribed := s.feedFrom, s.subscribed
	s.subscribed = true
	s.mu.Unlock()
	if subscribed {
		return errors.New("redisstore: the change feed already has a subscriber")
	}
	s.wg.Go(func() { s.readFeed(s.loopCtx, from, onChange) })
	return nil
}

// readFeed delivers the feed to onChange until ctx ends.
func (s *Store) readFeed(ctx context.Context, from string, onChange func(store.Change)) {
	healthy := true
	s.setFeedHealthy(true)
	for ctx.Err() == nil {
		res, err := s.client.XRead(ctx, &redis.XReadArgs{
			Streams: []string{s.keys.feed, from},
			Count:   feedBatch,
			Block:   feedBlock,
		}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if healthy {
				s.log.Warn("reading the change feed failed; retrying until Redis answers", "err", err)
				healthy = false
				s.setFeedHealthy(false)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(feedBlock):
			}
			continue
		}
		if !healthy {
			s.log.Info("reading the change feed again")
			healthy = true
			s.setFeedHealthy(true)
		}
		for _, st := range res {
			for _, m := range st.Messages {
				from = m.ID
				c, err := decodeChange(m)
				if err != nil {
					s.log.Error("skipping an unreadable change feed entry", "id", m.ID, "err", err)
					continue
				}
				s.checkSeq(c.Seq)
				onChange(c)
			}
		}
	}
}

func (s *Store) setFeedHealthy(ok bool) {
	s.mu.Lock()
	s.status.FeedHealthy = ok
	s.mu.Unlock()
}

// checkSeq logs and counts gaps in the feed's numbering.
func (s *Store) checkSeq(n int64) {
	s.mu.Lock()
	last := s.feedSeq
	s.feedSeq = n
	missed := 0
	if last > 0 && n > last+1 {
		missed = int(n - last - 1)
		s.status.MissedChanges += missed
	}
	s.mu.Unlock()
	switch {
	case missed > 0:
		s.log.Error("missed changes of the feed: they were trimmed before this node read them; its clients did not get them",
			"missed", missed, "feed_length", s.opts.FeedLength)
	case last > 0 && n <= last:
		s.log.Warn("the change feed started again (Redis lost its data)", "seq", n, "previous_seq", last)
	}
}

func decodeChange(m redis.XMessage) (store.Change, error) {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	n, err := strconv.ParseInt(str("n"), 10, 64)
	if err != nil {
		return store.Change{}, fmt.Errorf("field n %q: %w", str("n"), err)
	}
	c := store.Change{Seq: n, Kind: store.ChangeKind(str("k")), SocketID: str("s"), Changed: str("c") == "1"}
	var names []string
	if err := json.Unmarshal([]byte(str("u")), &names); err != nil {
		return store.Change{}, fmt.Errorf("field u: %w", err)
	}
	c.Users = toUsers(names)
	if h, ok := m.Values["h"].(string); ok {
		c.History = []store.Message{}
		if err := json.Unmarshal([]byte(h), &c.History); err != nil {
			return store.Change{}, fmt.Errorf("field h: %w", err)
		}
	}
	return c, nil
}
