package loadgen

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestTimeOrderSortsWithinTheHorizon(t *testing.T) {
	// Results stamped every millisecond by 5 users, reaching the consumer
	// up to 40 ms out of order (as goroutines do on a loaded machine).
	var in []Result
	for i := range 2000 {
		in = append(in, Result{Kind: Tick, User: int32(i % 5), At: time.Duration(i) * time.Millisecond, Seq: uint32(i)})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	arrival := slices.Clone(in)
	slices.SortStableFunc(arrival, func(a, b Result) int {
		ka := a.At + time.Duration(rng.Int64N(int64(40*time.Millisecond)))
		kb := b.At + time.Duration(rng.Int64N(int64(40*time.Millisecond)))
		return int(ka - kb)
	})
	var out []Result
	o := NewTimeOrder(100*time.Millisecond, func(r Result) { out = append(out, r) })
	for _, r := range arrival {
		o.Add(r)
	}
	if len(out) == 0 || len(out) == len(in) {
		t.Fatalf("%d released before Flush: want some held, some released", len(out))
	}
	o.Flush()
	// One user's results keep their arrival order; across users, time order.
	perUser := map[int32][]uint32{}
	for _, r := range arrival {
		perUser[r.User] = append(perUser[r.User], r.Seq)
	}
	gotPerUser := map[int32][]uint32{}
	for _, r := range out {
		gotPerUser[r.User] = append(gotPerUser[r.User], r.Seq)
	}
	for u, want := range perUser {
		if !slices.Equal(gotPerUser[u], want) {
			t.Fatalf("user %d: order %v, want its arrival order %v", u, gotPerUser[u][:10], want[:10])
		}
	}
	// The same results arriving in another order within the horizon come
	// out the same, as long as each user's arrive in the same order.
	var again []Result
	o2 := NewTimeOrder(100*time.Millisecond, func(r Result) { again = append(again, r) })
	for _, r := range in { // time order: each user's own order may differ from arrival's
		o2.Add(r)
	}
	o2.Flush()
	if len(again) != len(in) {
		t.Fatalf("%d of %d", len(again), len(in))
	}
	for i := range again {
		if again[i].At != in[i].At {
			t.Fatalf("sorted input comes out changed at %d", i)
		}
	}
}

func TestTimeOrderReleasesALateResultAtOnce(t *testing.T) {
	var out []Result
	o := NewTimeOrder(100*time.Millisecond, func(r Result) { out = append(out, r) })
	o.Add(Result{User: 1, At: time.Second})
	o.Add(Result{User: 2, At: 2 * time.Second}) // releases the first
	o.Add(Result{User: 3, At: 100 * time.Millisecond})
	if len(out) != 2 || out[1].User != 3 {
		t.Fatalf("released %+v: a result later than the horizon goes out at once", out)
	}
	o.Flush()
	if len(out) != 3 {
		t.Fatalf("Flush left %d", 3-len(out))
	}
}
