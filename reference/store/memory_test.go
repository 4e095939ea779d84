package store_test

import (
	"testing"

	"github.com/chatspec/chatspec/reference/store"
	"github.com/chatspec/chatspec/reference/store/storetest"
)

func TestMemoryContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return store.NewMemory(storetest.HistoryLimit)
	})
}

func TestMemoryZeroLimitKeepsNoHistory(t *testing.T) {
	for _, limit := range []int{0, -3} {
		m := store.NewMemory(limit)
		h, err := m.Append(t.Context(), store.Message{Username: "a", Message: "hi"})
		if err != nil {
			t.Fatalf("NewMemory(%d).Append: %v", limit, err)
		}
		if h == nil || len(h) != 0 {
			t.Errorf("NewMemory(%d): history after Append = %#v, want a non-nil empty slice", limit, h)
		}
	}
}

func BenchmarkMemory(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return store.NewMemory(100) })
}
