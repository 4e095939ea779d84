package clustertest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/chatspec/chatspec/reference"
	"github.com/chatspec/chatspec/reference/store"
	"github.com/chatspec/chatspec/reference/store/redisstore"
	"github.com/chatspec/chatspec/reference/store/redisstore/sioadapter"
	"github.com/chatspec/chatspec/spec/sioclient"
)

// waitFor bounds every wait; a test that hits it has failed.
const waitFor = 15 * time.Second

// chatspecBin is the chatspec binary TestMain builds, for the tests that
// run `chatspec serve`, `verify` and `load` as a user would.
var chatspecBin string

func TestMain(m *testing.M) {
	// go-redis prints every failed dial while a test has Redis down.
	redis.SetLogger(quietRedis{})
	dir, err := os.MkdirTemp("", "clustertest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "clustertest:", err)
		os.Exit(1)
	}
	chatspecBin = filepath.Join(dir, "chatspec")
	build := exec.Command("go", "build", "-o", chatspecBin, "github.com/chatspec/chatspec/cmd/chatspec")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "clustertest: building cmd/chatspec:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// node is one in-process cluster node, wired as `chatspec serve --redis`
// wires it: a redisstore with its change feed, the Socket.IO Redis
// adapter, and a reference server, which subscribes to the feed itself.
type node struct {
	run *reference.Running
	st  *redisstore.Store
	ad  *sioadapter.Adapter
	reg *prometheus.Registry

	stopOnce sync.Once
}

type nodeOptions struct {
	prefix       string
	id           string
	ttl          time.Duration
	historyLimit int
	logger       *slog.Logger
}

// startNode starts a node on a free port; it is shut down (store first,
// then server, then adapter) when the test ends.
func startNode(t *testing.T, redisURL string, o nodeOptions) *node {
	t.Helper()
	if o.ttl == 0 {
		o.ttl = time.Second
	}
	if o.historyLimit == 0 {
		o.historyLimit = 200
	}
	if o.logger == nil {
		o.logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	n := &node{reg: prometheus.NewRegistry()}
	st, err := redisstore.New(ctx, redisstore.Options{
		URL: redisURL, Prefix: o.prefix, NodeID: o.id, NodeTTL: o.ttl,
		HistoryLimit: o.historyLimit, Logger: o.logger,
	})
	if err != nil {
		t.Fatalf("redisstore.New: %v", err)
	}
	n.st = st
	ad, err := sioadapter.New(ctx, sioadapter.Options{URL: redisURL, Kind: sioadapter.Streams, ChannelPrefix: o.prefix + "sio", Logger: o.logger})
	if err != nil {
		st.Close()
		t.Fatalf("sioadapter.New: %v", err)
	}
	n.ad = ad
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.HistoryLimit = o.historyLimit
	cfg.PingInterval = time.Second
	cfg.PingTimeout = 2 * time.Second
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.StoreTimeout = 2 * time.Second
	cfg.Rate = 0 // the ordering test writes in bursts
	run, err := reference.Start(context.Background(), cfg,
		reference.WithStore(st), reference.WithAdapter(ad.Builder()),
		reference.WithLogger(o.logger), reference.WithRegisterer(n.reg))
	if err != nil {
		st.Close()
		ad.Close()
		t.Fatalf("reference.Start: %v", err)
	}
	n.run = run
	t.Cleanup(func() { n.stop(t) })
	return n
}

func (n *node) stop(t *testing.T) {
	n.stopOnce.Do(func() {
		if err := n.st.Close(); err != nil {
			t.Logf("closing the store: %v", err) // Redis may be down on purpose
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := n.run.Stop(ctx); err != nil {
			t.Errorf("stopping the server: %v", err)
		}
		n.ad.Close()
	})
}

func (n *node) URL() string { return n.run.URL() }

// health GETs /healthz and returns its status code and body.
func (n *node) health(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get(n.URL() + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// storeUp scrapes chatspec_reference_store_up.
func (n *node) storeUp(t *testing.T) float64 {
	t.Helper()
	mfs, err := n.reg.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "chatspec_reference_store_up" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("chatspec_reference_store_up is not registered")
	return -1
}

// client is one test socket.
type client struct {
	t    *testing.T
	name string
	*sioclient.Conn
}

func dial(t *testing.T, url string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := sioclient.Dial(ctx, sioclient.Options{URL: url, Path: "/socket.io/", Transport: sioclient.WebSocket})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, Conn: c}
}

// join dials url and joins as username, returning the connected payload.
func join(t *testing.T, url, username string) (*client, payload) {
	t.Helper()
	c := dial(t, url)
	c.name = username
	c.emit("connecting", map[string]any{"username": username})
	return c, c.await("connected", nil)
}

func (c *client) emit(event string, args ...any) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.Emit(ctx, event, args...); err != nil {
		c.t.Fatalf("%s: emit %s: %v", c.name, event, err)
	}
}

// write emits writeMessage with an ack and returns the ack.
func (c *client) write(text string) map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	raw, err := c.EmitWithAck(ctx, "writeMessage", map[string]any{"message": text, "username": c.name})
	if err != nil {
		c.t.Fatalf("%s: writeMessage: %v", c.name, err)
	}
	var acks []map[string]any
	if err := json.Unmarshal(raw, &acks); err != nil || len(acks) != 1 {
		c.t.Fatalf("%s: ack %s: want one object (err %v)", c.name, raw, err)
	}
	return acks[0]
}

type payload struct {
	ConnectedUserList []store.User    `json:"connectedUserList"`
	MessagesList      []store.Message `json:"messagesList"`
}

// await skips events until one named name for which ok (nil: any) holds.
func (c *client) await(name string, ok func(payload) bool) payload {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for {
		ev, err := c.Next(ctx)
		if err != nil {
			c.t.Fatalf("%s: waiting for %s: %v", c.name, name, err)
		}
		if ev.Name != name {
			continue
		}
		var p payload
		if err := ev.Decode(0, &p); err != nil {
			c.t.Fatalf("%s: %s: %v", c.name, name, err)
		}
		if ok == nil || ok(p) {
			return p
		}
	}
}

func names(users []store.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.Username
	}
	return out
}

func lists(users []store.User, name string) bool {
	for _, u := range users {
		if u.Username == name {
			return true
		}
	}
	return false
}

// waitUntil polls cond (for state no event reports: health, metrics).
func waitUntil(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > waitFor {
			t.Fatalf("timed out after %v waiting for %s", waitFor, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// serveProcess runs `chatspec serve` as a child process and returns its
// URL once it listens.
func serveProcess(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(chatspecBin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &lockedBuilder{b: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting chatspec serve: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("chatspec serve %v stderr:\n%s", args, cmd.Stderr.(*lockedBuilder).String())
		}
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "chatspec serve: listening on "); ok {
				urls <- rest
			}
		}
		close(urls)
	}()
	select {
	case u, ok := <-urls:
		if !ok {
			t.Fatalf("chatspec serve exited before listening; stderr:\n%s", cmd.Stderr.(*lockedBuilder).String())
		}
		return cmd, u
	case <-time.After(waitFor):
		t.Fatalf("chatspec serve did not print its URL within %v", waitFor)
	}
	return nil, ""
}

type lockedBuilder struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// testLogger logs a node's warnings and errors through t (all levels with
// CLUSTERTEST_DEBUG=1), so that a failure shows what the nodes saw.
func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("CLUSTERTEST_DEBUG") == "1" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

// tWriter is an io.Writer onto t.Log; writes after the test ended are dropped.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // t.Log after the test returned panics
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
