// Package loadgen simulates chat users against a Socket.IO chat server
// (spec/CONTRACT.md) and measures what they experience: how long each
// message takes to reach every other user, and whether every user who
// should have seen it did.
//
// # Shape
//
// Engine runs the users and emits small Result records on a channel;
// Metrics consumes them (Add) and produces the measured part of a Summary
// (Close). Measure wires the engine to the metrics. The plan (Plan.Arrivals) says when
// users arrive and leave; a Pacer, separately, says how often each one
// writes. Arrivals and sends follow the schedule whatever the server does
// (an open model), and every latency is measured from the intended time,
// not from when the generator got round to it, so a stalled server cannot
// hide behind a stalled generator. The generator watches itself (timer
// lateness, CPU) and reports when it was the bottleneck.
//
// # Messages
//
// Each message text carries a Stamp: run ID, sender, sequence number and
// intended send time, so the measurement works against any server that
// echoes texts unchanged. Every messageWritten carries the whole history;
// a Tail per receiver finds the new messages by scanning the raw JSON
// backwards to the previous tail, never decoding the list.
//
// # Delivery accounting
//
// A message m with intended send time s is expected at a session u (one
// connection of one user) iff u received its `connected` before s and u was
// still connected at s + W, W being the delivery window (--delivery-window):
// u either left after s + W or was still connected when the run ended.
// The sender's own session counts (the contract sends messageWritten to
// every joined socket, the sender included). Then:
//
//   - delivered: expected (m, u) pairs where u saw m as new in some
//     messageWritten, however late (lateness shows in the latency);
//   - lost = expected − delivered;
//   - duplicated: a session saw the same message as new a second time;
//   - reordered: a session saw a message from a sender whose sequence
//     number is below one it already saw from that sender;
//   - unexpected ("not owed"): deliveries to sessions that joined after s or
//     left before s + W, and deliveries of sends that failed; counted,
//     never an error;
//   - unconfirmed: messages that no session received and whose sender's
//     connection ended abruptly (churn, a drop) within W of sending: bytes
//     written just before an abrupt close can die in the socket buffers, so
//     the server may never have had them. They are owed to nobody. A
//     message that reached even one session was accepted and stays owed.
//
// Users stay connected for W after their last send, so their own last
// messages are still owed to everyone. A run that stops early (Ctrl-C, the
// target dying) ends every session at the stop, so the messages in flight
// in the last W are owed to nobody rather than counted as lost.
//
// # Outages
//
// When sessions drop or connects fail, the engine probes the user's
// target with a TCP connect; two failed probes 200 ms apart confirm an
// outage of that target (each target separately). With Config.MaxOutage 0
// the run ends there, as target_down. Otherwise the outage is recorded
// (Engine.Outages, Summary.Outages), the target is probed every 100 ms
// until it accepts connections again, users of a target known to be down
// wait for it instead of dialing, and every other failed attempt is
// retried with a capped, jittered backoff while the user is in its sending
// phase. An outage longer than MaxOutage ends the run as target_down. The
// accounting needs nothing special: a session that dropped owes nothing
// whose window it did not live through, sends due while its user is away
// are skipped, and a rejoined user is a new session owed only what is sent
// after its `connected` (whose history, empty on a restarted in-memory
// server, is known rather than new).
//
// Memory is bounded by the run, not by time: one bit per (message,
// session) for duplicate detection, a few bytes per message, per session a
// sorted (sender, last seq) list and the deliveries still inside their
// window; latencies go into HdrHistograms (1 µs to 1 h, 3 significant
// digits: percentiles exact to 0.1%); the timeline merges adjacent points
// when it grows past its bound.
package loadgen
