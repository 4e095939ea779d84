package redisstore

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that Close (and the crash hook) stop every goroutine the
// stores started, including go-redis's own.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
