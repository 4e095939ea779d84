package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// TestForeignWriterCannotDistortTheRun: another participant in the chat
// writes texts shaped like this run's stamps — a forged tag with a huge
// seq (the 2^24 of issue 11), random stamp-like texts, the old format —
// throughout a run against the reference. The generator counts them as
// foreign or forged and otherwise ignores them: its figures are those of
// a clean run, and its per-sender memory stays within the README's bound
// (message records only for messages its users sent).
func TestForeignWriterCannotDistortTheRun(t *testing.T) {
	url := startReference(t)
	e, m := newEngine(t, url, runOpts{users: 6})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	conn, err := sioclient.Dial(ctx, sioclient.Options{URL: url, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Emit(ctx, "connecting", map[string]string{"username": "mallory"}); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.NextNamed(ctx, "connected"); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	forged := func(i int) string {
		switch i % 4 {
		case 0:
			return fmt.Sprintf("cs2:t1:%d:16777216:%d:abcdefabcdef", rng.IntN(6), time.Now().UnixNano())
		case 1:
			return fmt.Sprintf("cs2:t1:%d:%d:%d:%012x", rng.IntN(1<<31), rng.Uint32(), rng.Int64(), rng.Uint64()&(1<<48-1))
		case 2:
			return fmt.Sprintf("cs1:t1:%d:%d:%d", rng.IntN(6), 1<<24, time.Now().UnixNano())
		}
		return "hello from a person"
	}
	writes := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if conn.Emit(ctx, "writeMessage", map[string]string{"message": forged(i), "username": "mallory"}) != nil {
				return
			}
			writes++
		}
	}()
	s := Measure(ctx, e, m, true)
	cancel()
	<-done

	msgs := s.Messages
	t.Logf("foreign writes %d; events %+v; messages %+v", writes, s.Events, msgs)
	if writes < 20 {
		t.Fatalf("only %d foreign writes: the test did not exercise anything", writes)
	}
	if s.Events.Forged == 0 || s.Events.Foreign == 0 {
		t.Errorf("events %+v: want the forged and the foreign texts counted", s.Events)
	}
	if msgs.Sent == 0 || msgs.Lost != 0 || msgs.Duplicated != 0 || msgs.Reordered != 0 || msgs.OrderConflicts != 0 ||
		msgs.Delivered != msgs.ExpectedDeliveries {
		t.Errorf("messages %+v: the foreign writer changed the figures", msgs)
	}
	// The bound: per sender, one record per message that sender sent
	// (forged seqs of 2^24 must not allocate), and per session one
	// high-water mark per real sender.
	for u, list := range m.acct.msgs {
		if int64(len(list)) > int64(e.users[u].seq) {
			t.Errorf("sender %d: %d message records for %d messages sent", u, len(list), e.users[u].seq)
		}
	}
	for _, ss := range m.acct.sessions {
		if ss != nil && len(ss.last) > len(e.users) {
			t.Errorf("a session tracks %d senders, more than the %d users", len(ss.last), len(e.users))
		}
	}
}
