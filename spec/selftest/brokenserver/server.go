// Package brokenserver runs small Socket.IO chat servers that exist only to
// test the conformance suite: one careful implementation of spec/CONTRACT.md
// (SeedCorrect) and, selected by a Defect, variants of it that each carry
// exactly one mistake. The self-test in spec/selftest runs `chatspec verify`
// against each of them and checks that the suite fails exactly the cases the
// mistake breaks, which proves every case catches what it claims.
//
// It is test support: only the tests under spec/selftest may import it, never
// production code (cmd/, reference/, loadgen/, reports/, spec/ itself).
//
// The servers are deliberately independent of reference/: a second,
// separately written implementation is what makes "the suite passes the
// reference" mean something beyond "the suite agrees with its author".
package brokenserver

import (
	"context"
	"fmt"
	"html"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/chatspec/chatspec/reference/safepolling"
	"golang.org/x/text/unicode/norm"
)

// Limits of the SeedCorrect server; defects that are not about a limit keep
// them. They are the reference server's defaults (reference.DefaultConfig),
// so that the suite's assumptions about a well-configured server hold for
// both implementations.
const (
	// MaxUsernameBytes is the longest accepted username, in bytes of
	// UTF-8 (SEC-3, JOIN-5).
	MaxUsernameBytes = 64
	// MaxMessageBytes is the longest accepted message text (SEC-3).
	MaxMessageBytes = 4096
	// HistoryCap is how many of the newest messages are kept (HIST-4).
	HistoryCap = 200
	// smallHistoryCap is SmallHistoryCap's cap, below HIST-4's minimum.
	smallHistoryCap = 20
	// RateBurst is how many writeMessage a socket may send at once before
	// the rate limit applies (SEC-4).
	RateBurst = 40
	// RatePerSecond is the sustained writeMessage rate a socket may keep.
	RatePerSecond = 20
	// MaxPayloadBytes is the Engine.IO maxPayload (maxHttpBufferSize).
	MaxPayloadBytes = 1_000_000
	// PingInterval and PingTimeout are short so that a silently dropped
	// session times out within seconds (RECON-2, RECON-3) and a verify run
	// stays quick. Not shorter: with two verify runs on two cores, a 500 ms
	// timeout dropped healthy clients whose pong came late (measured).
	// The timeout is above the interval because of the library's ping
	// timer race (reference/config.go): at 2 s + 2 s a healthy client was
	// dropped at +4 s in one CI run.
	PingInterval = 1500 * time.Millisecond
	// PingTimeout: see PingInterval.
	PingTimeout = 2500 * time.Millisecond
)

// The reference's error codes (CONTRACT.md ERR-1); SeedCorrect uses the
// same format so that the suite's ERR-1 case reads it the same way.
const (
	codeInvalidPayload   = "invalid_payload"
	codeInvalidUsername  = "invalid_username"
	codeMessageTooLong   = "message_too_long"
	codeNotJoined        = "not_joined"
	codeUsernameMismatch = "username_mismatch"
	codeRateLimited      = "rate_limited"
	codeUnknownEvent     = "unknown_event"
)

type user struct {
	Username string `json:"username"`
}

type message struct {
	Username string `json:"username"`
	Message  string `json:"message"`
}

// session is one socket's chat state. It is read and written only under
// chat.mu, because the library runs a socket's events and its disconnect on
// different goroutines.
type session struct {
	username string
	joined   bool
	left     bool // disconnect already handled (the library may fire it twice)

	tokens float64 // rate-limit bucket (SEC-4)
	filled time.Time

	written int    // accepted writeMessage from this socket (ReordersMessages)
	reason  string // why the socket disconnected (PingTimeoutRemovesUser)
}

// staleRoom holds StalePollingSessions' sockets that no longer get messages.
const staleRoom socket.Room = "stale"

// chat is one server's shared state. Every emit happens under mu, so that
// every socket receives the events in the one order in which the state
// changed (HIST-1).
type chat struct {
	defect Defect
	io     *socket.Server
	crash  func() // CrashOnBadInput: stop the whole server
	gate   *connectGate

	mu      sync.Mutex
	order   []string       // listed usernames, join order (NewestFirstList: reversed)
	holders map[string]int // username -> joined sockets holding it
	history []message
	written int // accepted writeMessage count, all sockets (LosesEveryTenth)
}

// Start runs the server with defect on 127.0.0.1 at a free port. It returns
// the base URL (http://127.0.0.1:PORT, Socket.IO at /socket.io/, an init
// route at /api/socket as in the seed) and stop, which closes every
// connection and the listener; stop is idempotent. The server also stops
// when ctx is done. With CrashOnBadInput the server may stop by itself.
func Start(ctx context.Context, defect Defect) (url string, stop func(), err error) {
	if !defect.Valid() {
		return "", nil, fmt.Errorf("brokenserver: unknown defect %q", defect)
	}
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("brokenserver: listen: %w", err)
	}

	opts := socket.DefaultServerOptions()
	opts.SetPingInterval(PingInterval)
	opts.SetPingTimeout(PingTimeout)
	opts.SetMaxHttpBufferSize(MaxPayloadBytes)
	opts.SetServeClient(false)
	switch defect {
	case NoPolling:
		opts.SetTransports(types.NewSet(socket.WebSocket))
	case NoWebSocket:
		opts.SetTransports(types.NewSet(safepolling.Polling))
		opts.SetAllowUpgrades(false)
	default:
		opts.SetTransports(types.NewSet(safepolling.Polling, socket.WebSocket))
	}
	io := socket.NewServer(nil, opts)

	c := &chat{defect: defect, io: io, gate: newConnectGate(), holders: make(map[string]int)}
	_ = io.On("connection", func(args ...any) {
		if s, ok := firstSocket(args); ok {
			c.onConnection(s)
		}
	})

	mux := http.NewServeMux()
	mux.Handle("/socket.io/", io.ServeHandler(nil))
	c.gate.install(io)
	mux.HandleFunc("GET /api/socket", func(w http.ResponseWriter, _ *http.Request) {
		// The seed's init route: it only makes sure the server is attached.
		w.WriteHeader(http.StatusOK)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	served := make(chan struct{})
	go func() {
		defer close(served)
		// Serve returns http.ErrServerClosed once stop closes it; any
		// other error also means the listener is gone, which clients
		// see as refused connections: there is no one else to tell.
		_ = hs.Serve(ln)
	}()

	var once sync.Once
	done := make(chan struct{})
	stop = func() {
		once.Do(func() {
			close(done)
			// Listener first: once a client sees its connection close,
			// a new one must already be refused (a crash is total).
			_ = hs.Close()
			<-served
			io.Close(nil) // WebSocket connections are hijacked: hs.Close leaves them
		})
	}
	// The crash must not run on the goroutine of the event that caused it:
	// closing a socket from inside its own task queue would wait on itself.
	c.crash = func() { go stop() }
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-done:
		}
	}()
	return "http://" + ln.Addr().String(), stop, nil
}

func firstSocket(args []any) (*socket.Socket, bool) {
	if len(args) == 0 {
		return nil, false
	}
	s, ok := args[0].(*socket.Socket)
	return s, ok
}

func (c *chat) onConnection(s *socket.Socket) {
	sess := &session{tokens: RateBurst, filled: time.Now()}
	_ = s.On("connecting", func(args ...any) { c.onConnecting(s, sess, args) })
	_ = s.On("writeMessage", func(args ...any) { c.onWriteMessage(s, sess, args) })
	_ = s.On("disconnect", func(args ...any) {
		reason, _ := firstString(args)
		c.onDisconnect(s, sess, reason)
	})
	if c.defect == StalePollingSessions {
		time.AfterFunc(10*time.Second, func() {
			if s.Connected() && s.Conn().Transport().Name() == "polling" {
				s.Join(staleRoom)
			}
		})
	}
	s.OnAny(func(args ...any) {
		name, _ := firstString(args)
		if name == "connecting" || name == "writeMessage" {
			return
		}
		_, ack := splitAck(args)
		// Queued behind the socket's earlier events so that the error
		// arrives in order.
		s.Enqueue(func() {
			c.refuse(s, ack, name, codeUnknownEvent, fmt.Sprintf("unknown event %q", name))
		})
	})
	c.gate.release(s.Conn().Id())
}

func (c *chat) onConnecting(s *socket.Socket, sess *session, args []any) {
	args, ack := splitAck(args)
	payload := firstArg(args)
	if c.defect == CrashOnBadInput && payload == nil {
		// const {username} = undefined: TypeError, the process dies.
		c.crash()
		return
	}

	var username string
	if c.defect == NoTypeChecks {
		fields, _ := payload.(map[string]any)
		username = fmt.Sprint(fields["username"])
	} else {
		fields, ok := payload.(map[string]any)
		if !ok {
			c.refuse(s, ack, "connecting", codeInvalidPayload, "payload must be an object {username}")
			return
		}
		name, ok := fields["username"].(string)
		if !ok {
			c.refuse(s, ack, "connecting", codeInvalidPayload, "username must be a string")
			return
		}
		username = name
	}
	if c.defect == NormalizesUsernames {
		username = norm.NFC.String(username)
	}
	if username == "" {
		c.refuse(s, ack, "connecting", codeInvalidUsername, "username must not be empty")
		return
	}
	if c.defect != NoSizeCap && len(username) > MaxUsernameBytes {
		c.refuse(s, ack, "connecting", codeInvalidUsername,
			fmt.Sprintf("username longer than %d bytes", MaxUsernameBytes))
		return
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if sess.joined {
		c.refuseLocked(s, ack, "connecting", codeInvalidPayload, "already joined")
		return
	}
	before := c.usersLocked()
	sess.username, sess.joined = username, true
	switch {
	case c.defect == NoDedup:
		c.order = append(c.order, username)
	case c.holders[username] > 0:
		// Already listed by another socket: keep its position (USER-2).
	case c.defect == RejoinKeepsPosition && slices.Contains(c.order, username):
		// Listed before and never deleted: usersLocked shows it again, in
		// its old place.
	case c.defect == NewestFirstList:
		c.order = slices.Insert(c.order, 0, username)
	default:
		c.order = append(c.order, username)
	}
	c.holders[username]++
	if c.defect == TabCountNotIncremented {
		c.holders[username] = 1
	}
	if c.defect == ResetHistoryOnJoin {
		c.history = nil
	}

	users := c.usersLocked()
	if c.defect == FirstUserUnlisted && len(before) == 0 {
		users = before
	}
	history := c.historyLocked()
	if c.defect == ShortConnectedHistory && len(history) > 60 {
		history = history[len(history)-60:]
	}
	if c.defect == ReversedHistoryOnJoin {
		slices.Reverse(history)
	}
	connected := map[string]any{"connectedUserList": users, "messagesList": history}
	joinedList := users
	if c.defect == StaleJoinedList {
		joinedList = before
	}
	joined := map[string]any{"connectedUserList": joinedList}

	if c.defect == ConnectedBroadcast {
		_ = c.io.Emit("connected", connected)
	} else {
		_ = s.Emit("connected", connected)
	}
	if c.defect == JoinedEchoedToJoiner {
		_ = c.io.Emit("joined", joined)
	} else {
		_ = s.Broadcast().Emit("joined", joined)
	}
	ackOK(ack)
}

func (c *chat) onWriteMessage(s *socket.Socket, sess *session, args []any) {
	args, ack := splitAck(args)
	payload := firstArg(args)
	if c.defect == CrashOnBadInput && payload == nil {
		// const {message, username} = undefined: the process dies.
		c.crash()
		return
	}

	var text, claimed string
	if c.defect == NoTypeChecks {
		fields, _ := payload.(map[string]any)
		text, claimed = fmt.Sprint(fields["message"]), fmt.Sprint(fields["username"])
	} else {
		fields, ok := payload.(map[string]any)
		if !ok {
			c.refuse(s, ack, "writeMessage", codeInvalidPayload, "payload must be an object {message, username}")
			return
		}
		var okText, okName bool
		text, okText = fields["message"].(string)
		claimed, okName = fields["username"].(string)
		if !okText || !okName {
			c.refuse(s, ack, "writeMessage", codeInvalidPayload, "message and username must be strings")
			return
		}
	}
	if c.defect != NoSizeCap && len(text) > MaxMessageBytes {
		c.refuse(s, ack, "writeMessage", codeMessageTooLong,
			fmt.Sprintf("message longer than %d bytes", MaxMessageBytes))
		return
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	author := sess.username
	switch {
	case !sess.joined && c.defect == WriteBeforeJoin:
		author = claimed
	case !sess.joined:
		c.refuseLocked(s, ack, "writeMessage", codeNotJoined, "emit connecting first")
		return
	case claimed != sess.username && c.defect == Impersonation:
		author = claimed
	case claimed != sess.username && c.defect == IdentityFirstWriteOnly && sess.written > 0:
		author = claimed
	case claimed != sess.username && c.defect == IdentityFoldsCase && strings.EqualFold(claimed, sess.username):
		author = claimed
	case claimed != sess.username:
		c.refuseLocked(s, ack, "writeMessage", codeUsernameMismatch,
			fmt.Sprintf("this socket joined as %q", sess.username))
		return
	}
	if c.defect != NoRateLimit && !sess.take(time.Now()) {
		c.refuseLocked(s, ack, "writeMessage", codeRateLimited,
			fmt.Sprintf("more than %d messages per second", RatePerSecond))
		return
	}

	c.written++
	sess.written++
	if c.defect == LosesEveryTenth && c.written%10 == 0 {
		ackOK(ack) // the sender believes it was accepted
		return
	}
	if c.defect == DropsLongAcked && len(text) > 1000 {
		ackOK(ack)
		return
	}
	if c.defect == EscapesHTML {
		text = html.EscapeString(text)
	}
	if c.defect == NormalizesText {
		text = norm.NFC.String(text)
	}
	m := message{Username: author, Message: text}
	if c.defect == SwappedFields {
		m = message{Username: text, Message: author}
	}
	if c.defect == ReordersMessages && sess.written%2 == 0 && len(c.history) > 0 {
		c.history = slices.Insert(c.history, len(c.history)-1, m)
	} else {
		c.history = append(c.history, m)
	}
	limit := HistoryCap
	if c.defect == SmallHistoryCap {
		limit = smallHistoryCap
	}
	if c.defect != UncappedHistory && len(c.history) > limit {
		c.history = slices.Delete(c.history, 0, len(c.history)-limit)
	}

	list := c.historyLocked()
	if c.defect == OnlyNewMessage {
		list = []message{m}
	}
	written := map[string]any{"messagesList": list}
	switch {
	case c.defect == StalePollingSessions:
		_ = c.io.Except(staleRoom).Emit("messageWritten", written)
	case c.defect == BroadcastStopsAfter1000 && c.written > 1000:
		_ = s.Emit("messageWritten", written)
	default:
		if c.defect != SenderNotEchoed {
			_ = s.Emit("messageWritten", written)
		}
		_ = s.Broadcast().Emit("messageWritten", written)
	}
	ackOK(ack)
}

// onDisconnect handles a socket's disconnect once. The library may fire
// it twice, from two goroutines at once (a transport close racing the
// server's Close): everything of sess is touched under c.mu.
func (c *chat) onDisconnect(s *socket.Socket, sess *session, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sess.left {
		return // the library fired disconnect twice for this socket
	}
	sess.left = true
	sess.reason = reason

	if c.defect == SeedDisconnect {
		// connectedUserList.filter(item => item.username !== socket.username)
		if sess.joined {
			c.order = slices.DeleteFunc(c.order, func(u string) bool { return u == sess.username })
			delete(c.holders, sess.username)
		}
		_ = s.Broadcast().Emit("disconnected", map[string]any{"connectedUserList": c.usersLocked()})
		return
	}
	if !sess.joined {
		return // USER-5: an unjoined socket removes nobody.
	}
	before := c.usersLocked()
	c.holders[sess.username]--
	if c.defect == PingTimeoutRemovesUser && sess.reason == "ping timeout" {
		c.holders[sess.username] = 0
	}
	if c.defect == NoDedup {
		if i := slices.Index(c.order, sess.username); i >= 0 {
			c.order = slices.Delete(c.order, i, i+1)
		}
	}
	if c.holders[sess.username] > 0 {
		return // USER-4: another socket still holds the username.
	}
	delete(c.holders, sess.username)
	if c.defect != RejoinKeepsPosition {
		c.order = slices.DeleteFunc(c.order, func(u string) bool { return u == sess.username })
	}
	if c.defect == NoDisconnectBroadcast {
		return
	}
	list := c.usersLocked()
	if c.defect == DisconnectedStaleList {
		list = before
	}
	_ = s.Broadcast().Emit("disconnected", map[string]any{"connectedUserList": list})
	if c.defect == DisconnectedTwice {
		_ = s.Broadcast().Emit("disconnected", map[string]any{"connectedUserList": list})
	}
}

// usersLocked returns the current list as sent on the wire. An empty list
// is [] except with NullEmptyLists, where it is a nil slice (JSON null).
func (c *chat) usersLocked() []user {
	names := c.order
	if c.defect == SortedList {
		names = slices.Clone(names)
		sort.Strings(names)
	}
	var out []user
	if c.defect != NullEmptyLists {
		out = make([]user, 0, len(names))
	}
	for _, name := range names {
		if c.defect == RejoinKeepsPosition && c.holders[name] == 0 {
			continue // everyone who ever joined stays in order; only the present are shown
		}
		if c.defect == ListPageOf30 && len(out) == 30 {
			break
		}
		out = append(out, user{Username: name})
	}
	return out
}

// historyLocked returns a copy of the history; see usersLocked for empty lists.
func (c *chat) historyLocked() []message {
	if len(c.history) == 0 && c.defect == NullEmptyLists {
		return nil
	}
	return append(make([]message, 0, len(c.history)), c.history...)
}

// take spends one rate-limit token, refilling the bucket for the time since
// the last call. It reports false when the bucket is empty.
func (sess *session) take(now time.Time) bool {
	sess.tokens = min(RateBurst, sess.tokens+now.Sub(sess.filled).Seconds()*RatePerSecond)
	sess.filled = now
	if sess.tokens < 1 {
		return false
	}
	sess.tokens--
	return true
}

func (c *chat) refuse(s *socket.Socket, ack socket.Ack, event, code, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refuseLocked(s, ack, event, code, msg)
}

// refuseLocked tells the offending socket, and only it, why its event was
// refused (ERR-1): a chatError event and, if it asked for one, a failed ack.
func (c *chat) refuseLocked(s *socket.Socket, ack socket.Ack, event, code, msg string) {
	if c.defect == SilentRefusal {
		return
	}
	_ = s.Emit("chatError", map[string]any{"event": event, "code": code, "message": msg})
	if ack != nil {
		ack([]any{map[string]any{"ok": false, "code": code, "message": msg}}, nil)
	}
}

func ackOK(ack socket.Ack) {
	if ack != nil {
		ack([]any{map[string]any{"ok": true}}, nil)
	}
}

// splitAck separates the acknowledgement callback that the library appends
// when the client asked for one.
func splitAck(args []any) ([]any, socket.Ack) {
	if n := len(args); n > 0 {
		if ack, ok := args[n-1].(socket.Ack); ok {
			return args[:n-1], ack
		}
	}
	return args, nil
}

// firstArg returns the event's payload; nil when it is missing or null.
func firstArg(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

func firstString(args []any) (string, bool) {
	if len(args) == 0 {
		return "", false
	}
	s, ok := args[0].(string)
	return s, ok
}
