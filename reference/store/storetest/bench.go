package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/chatspec/chatspec/reference/store"
)

// Bench runs the shared benchmarks against one backend: a join and leave of
// a fresh socket (the per-connection cost), and an append (the per-message
// cost), both from parallel goroutines as a busy server would call them.
func Bench(b *testing.B, newStore func(b *testing.B) store.Store) {
	b.Run("JoinLeave", func(b *testing.B) {
		s := newStore(b)
		b.Cleanup(func() { _ = s.Close() })
		var n atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				u, sock := fmt.Sprintf("user%d", i%100), fmt.Sprintf("sock%d", i)
				if _, _, _, err := s.Join(b.Context(), u, sock); err != nil {
					b.Error(err)
					return
				}
				if _, _, err := s.Leave(b.Context(), u, sock); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("Append", func(b *testing.B) {
		s := newStore(b)
		b.Cleanup(func() { _ = s.Close() })
		m := store.Message{Username: "alice", Message: "hello, this is a message of ordinary length"}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Append(b.Context(), m); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
