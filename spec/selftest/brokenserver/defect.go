package brokenserver

import "fmt"

// Defect names one deliberate mistake. The server started with SeedCorrect
// has none; every other Defect changes exactly one behaviour of it, the way
// a person writing a server from the seed (shared/seed/socket-io-notes.md)
// plausibly could. Each comment says what that person did and which
// CONTRACT.md requirements the suite must then fail.
type Defect string

const (
	// SeedCorrect is the careful implementation of CONTRACT.md: it must pass
	// every profile (core, strict, robust, security) and fail nothing.
	SeedCorrect Defect = "seed-correct"

	// JoinedEchoedToJoiner sends joined with io.Emit (everyone) instead of
	// socket.broadcast.emit, so the joiner also gets its own joined: fails JOIN-1.
	JoinedEchoedToJoiner Defect = "joined-echoed-to-joiner"
	// ConnectedBroadcast sends connected with io.Emit, so every socket gets a
	// connected for each join: fails JOIN-1 (a socket gets connected more than once).
	ConnectedBroadcast Defect = "connected-broadcast"
	// StaleJoinedList builds the joined list before adding the new username:
	// fails JOIN-3.
	StaleJoinedList Defect = "stale-joined-list"
	// NoDedup pushes the username on every connecting, without the seed's
	// isSessionExist check: fails USER-1.
	NoDedup Defect = "no-dedup"
	// NewestFirstList prepends (unshift) new usernames instead of appending:
	// fails USER-2.
	NewestFirstList Defect = "newest-first-list"
	// SortedList keeps users in a map and sorts the names for a stable
	// output, losing join order: fails USER-2 whenever the suite's join order
	// is not alphabetical.
	SortedList Defect = "sorted-list"
	// RejoinKeepsPosition never deletes a username from the ordered list;
	// it lists those with a socket, so a user who left and came back gets
	// the old place back instead of the end: fails USER-2.
	RejoinKeepsPosition Defect = "rejoin-keeps-position"
	// NoDisconnectBroadcast removes the username on disconnect but never
	// tells anyone: fails USER-3, and the cases that need a disconnected
	// (RECON-1, STOCK-2, and TRANS-1/2 and PAY-1, which check every event).
	NoDisconnectBroadcast Defect = "no-disconnect-broadcast"
	// DisconnectedStaleList broadcasts disconnected with the list from
	// before the removal: fails USER-3, RECON-1 and STOCK-2 (which require
	// the others to see the user leave).
	DisconnectedStaleList Defect = "disconnected-stale-list"
	// DisconnectedTwice broadcasts disconnected twice for one leave (say,
	// from both a disconnecting and a disconnect handler): fails USER-3.
	DisconnectedTwice Defect = "disconnected-twice"
	// SeedDisconnect is exactly the seed's disconnect handler: it removes the
	// username when any socket holding it leaves, and always broadcasts
	// disconnected: fails USER-4 and RECON-2 (strict) but passes core.
	SeedDisconnect Defect = "seed-disconnect"
	// SenderNotEchoed sends messageWritten with socket.broadcast only,
	// forgetting the seed's socket.emit to the sender: fails MSG-1.
	SenderNotEchoed Defect = "sender-not-echoed"
	// SwappedFields stores {username: text, message: name} (positional
	// arguments mixed up): fails MSG-2.
	SwappedFields Defect = "swapped-fields"
	// LosesEveryTenth silently drops every 10th accepted message from
	// history and broadcast (a racy or buggy buffer): fails HIST-2.
	LosesEveryTenth Defect = "loses-every-tenth"
	// OnlyNewMessage sends messageWritten with just the new message instead
	// of the whole history, "to save bandwidth": fails HIST-2, and HIST-4
	// (a list of one is a cap below 50).
	OnlyNewMessage Defect = "only-new-message"
	// ReordersMessages inserts every second message of a socket before the
	// message written just before it (pairs swapped, as an off-by-one in
	// an insert would): fails HIST-1, and every case that checks the order
	// of two messages of one socket (JOIN-2, TRANS-3, HIST-4).
	ReordersMessages Defect = "reorders-messages"
	// ReversedHistoryOnJoin sends connected.messagesList newest first ("show
	// the latest to newcomers") while messageWritten stays oldest first:
	// fails HIST-1.
	ReversedHistoryOnJoin Defect = "reversed-history-on-join"
	// ResetHistoryOnJoin clears the history on every connecting (the
	// history variable declared inside the handler): fails HIST-3, and every
	// case that checks the history is whole (JOIN-2, HIST-2, HIST-4,
	// RECON-1, ROB-1).
	ResetHistoryOnJoin Defect = "reset-history-on-join"
	// SmallHistoryCap keeps only the newest 20 messages ("like a chat
	// preview"), below the 50 that CONTRACT.md HIST-4 lets a server keep:
	// fails HIST-4 and HIST-2 (its 50 messages cannot all be listed).
	SmallHistoryCap Defect = "small-history-cap"
	// UncappedHistory never drops old messages. HIST-4 is reported, not
	// failed: it must fail nothing.
	UncappedHistory Defect = "uncapped-history"
	// NoPolling enables only the WebSocket transport: fails TRANS-1 (and
	// TRANS-3, which starts on polling).
	NoPolling Defect = "no-polling"
	// NoWebSocket enables only HTTP long-polling: fails TRANS-2 and TRANS-3.
	NoWebSocket Defect = "no-websocket"
	// CrashOnBadInput uses the payload without checking it, as the seed's
	// destructuring does: a missing or null payload kills the server (the
	// listener and every connection close, as when a Node process dies):
	// fails ROB-1.
	CrashOnBadInput Defect = "crash-on-bad-input"
	// NoTypeChecks converts fields with fmt.Sprint instead of checking their
	// type, so a number or null becomes a username or message: fails ROB-2.
	NoTypeChecks Defect = "no-type-checks"
	// SilentRefusal refuses bad events without telling the sender (no
	// chatError, no ack): fails ERR-1.
	SilentRefusal Defect = "silent-refusal"
	// Impersonation stores writeMessage under the payload's username, as the
	// seed does: fails SEC-1.
	Impersonation Defect = "impersonation"
	// WriteBeforeJoin accepts writeMessage from a socket that never sent
	// connecting, as the seed does: fails SEC-2.
	WriteBeforeJoin Defect = "write-before-join"
	// NoSizeCap accepts usernames and messages of any length (up to the
	// Engine.IO maxPayload): fails SEC-3.
	NoSizeCap Defect = "no-size-cap"
	// NoRateLimit accepts writeMessage as fast as a socket sends it: fails
	// SEC-4.
	NoRateLimit Defect = "no-rate-limit"
	// NullEmptyLists encodes an empty list as null (a nil Go slice): fails
	// PAY-1.
	NullEmptyLists Defect = "null-empty-lists"
	// EscapesHTML HTML-escapes message text before storing it ("to prevent
	// XSS"): fails PAY-3.
	EscapesHTML Defect = "escapes-html"

	// The defects below show only in shapes the fixed cases never take;
	// exploration (spec/explore) must find each (issue 10).

	// FirstUserUnlisted builds connected's list before adding the joiner
	// when the server has no users ("nobody to show yet"): only the first
	// user of an empty server misses itself: fails JOIN-2.
	FirstUserUnlisted Defect = "first-user-unlisted"
	// TabCountNotIncremented sets a username's socket count to 1 on every
	// join instead of adding one, so with two tabs the first close removes
	// the user: fails USER-4, only with a second tab.
	TabCountNotIncremented Defect = "tab-count-not-incremented"
	// PingTimeoutRemovesUser removes the username when a session times out
	// (a silent drop), whatever other sockets hold it: fails USER-4 only
	// after a silent drop.
	PingTimeoutRemovesUser Defect = "ping-timeout-removes-user"
	// ShortConnectedHistory sends connected with the newest 60 messages
	// while messageWritten carries up to 200: each cap alone is legal, two
	// caps are not: fails HIST-4.
	ShortConnectedHistory Defect = "short-connected-history"
	// NormalizesText stores message texts in Unicode NFC: fails PAY-3 for
	// texts the fixed corpus never has in NFD.
	NormalizesText Defect = "normalizes-text"
	// NormalizesUsernames stores usernames in NFC: fails PAY-3 (and the
	// presence cases) for usernames with combining marks.
	NormalizesUsernames Defect = "normalizes-usernames"
	// DropsLongAcked acks messages longer than 1,000 bytes as accepted and
	// drops them: fails HIST-2.
	DropsLongAcked Defect = "drops-long-acked"
	// IdentityFirstWriteOnly checks writeMessage's username only on a
	// socket's first write: fails SEC-1.
	IdentityFirstWriteOnly Defect = "identity-first-write-only"
	// IdentityFoldsCase accepts a writeMessage whose username equals the
	// socket's own up to case, and stores the spelling it was sent with:
	// fails SEC-1.
	IdentityFoldsCase Defect = "identity-folds-case"
	// ListPageOf30 lists at most the first 30 users ("one page"): fails
	// JOIN-2/JOIN-3 only beyond 30 users.
	ListPageOf30 Defect = "list-page-of-30"
	// BroadcastStopsAfter1000 stops broadcasting messageWritten to the
	// other sockets once 1,000 messages were written (a counter used as a
	// buffer index): fails MSG-1 only beyond 1,000 messages.
	BroadcastStopsAfter1000 Defect = "broadcast-stops-after-1000"
	// StalePollingSessions stops sending messageWritten to sockets that
	// have been on long-polling for more than 10 s: fails MSG-1 only with
	// a long-lived polling session.
	StalePollingSessions Defect = "stale-polling-sessions"
)

// Defects returns every Defect, SeedCorrect first, in a fixed order.
func Defects() []Defect {
	return []Defect{
		SeedCorrect,
		JoinedEchoedToJoiner, ConnectedBroadcast, StaleJoinedList,
		NoDedup, NewestFirstList, SortedList, RejoinKeepsPosition,
		NoDisconnectBroadcast, DisconnectedStaleList, DisconnectedTwice, SeedDisconnect,
		SenderNotEchoed, SwappedFields,
		LosesEveryTenth, OnlyNewMessage, ReordersMessages, ReversedHistoryOnJoin,
		ResetHistoryOnJoin, SmallHistoryCap, UncappedHistory,
		NoPolling, NoWebSocket,
		CrashOnBadInput, NoTypeChecks, SilentRefusal,
		Impersonation, WriteBeforeJoin, NoSizeCap, NoRateLimit,
		NullEmptyLists, EscapesHTML,
		FirstUserUnlisted, TabCountNotIncremented, PingTimeoutRemovesUser,
		ShortConnectedHistory, NormalizesText, NormalizesUsernames, DropsLongAcked,
		IdentityFirstWriteOnly, IdentityFoldsCase,
		ListPageOf30, BroadcastStopsAfter1000, StalePollingSessions,
	}
}

// Valid reports whether d is one of Defects.
func (d Defect) Valid() bool {
	for _, known := range Defects() {
		if d == known {
			return true
		}
	}
	return false
}

// ParseDefect returns the Defect named s, or an error listing the names.
func ParseDefect(s string) (Defect, error) {
	if d := Defect(s); d.Valid() {
		return d, nil
	}
	return "", fmt.Errorf("brokenserver: unknown defect %q (known: %v)", s, Defects())
}
