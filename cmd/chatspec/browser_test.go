package main

// Tests in a real browser: headless Chromium, driven over the DevTools
// protocol with chromedp, against a reference server started in-process on
// 127.0.0.1. They cover the chat page `chatspec serve` answers at "/" and
// the HTML reports of `verify` and `load`.
//
// Chromium is a prerequisite (Debian: apt-get install chromium). Without it
// these tests FAIL, so a CI image that lost it cannot pass silently; set
// CHATSPEC_SKIP_BROWSER=1 to skip them on purpose.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/chatspec/chatspec/reference"
)

// browserWait bounds every wait for the page. Chromium and the server share
// a busy 2-core machine with other tests, so it is generous; a wait that
// depends on the server noticing a drop adds the server's own
// pingInterval + pingTimeout to it.
const browserWait = 30 * time.Second

// chromiumPath finds the browser, or fails (skips only on request).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if os.Getenv("CHATSPEC_SKIP_BROWSER") == "1" {
		t.Skip("CHATSPEC_SKIP_BROWSER=1: browser tests skipped on request")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("browser tests need Chromium and none was found on PATH (chromium, chromium-browser, google-chrome): " +
		"install it (Debian/Ubuntu: apt-get install chromium), or set CHATSPEC_SKIP_BROWSER=1 to skip these tests on purpose")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile and returns
// the context of its first tab. The flags that turn off background
// networking keep Chromium from dialling out (the test network is closed,
// and refused connections would only slow it down).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath(t)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium (%s): %v", path, err)
	}
	return ctx
}

// page is one browser tab and what its console said.
type page struct {
	t      *testing.T
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	console []string // errors and exceptions only
}

// openTab opens a new tab of the browser at rawURL and records its console
// errors. Closing the tab (close) is what a user closing it does.
func openTab(t *testing.T, browser context.Context, rawURL string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	p := &page{t: t, ctx: ctx, cancel: cancel}
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // creates the tab
		t.Fatalf("opening a tab: %v", err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				p.mu.Lock()
				p.console = append(p.console, m.String())
				p.mu.Unlock()
			}
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate(rawURL)); err != nil {
		t.Fatalf("opening %s: %v", rawURL, err)
	}
	return p
}

func (p *page) close() { p.cancel() }

func (p *page) consoleErrors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.console)
}

// do runs actions, failing the test with what it was doing.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\npage status: %s", what, err, p.statusText())
	}
}

// eval evaluates a JavaScript expression and decodes its value.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript predicate until it is true or within is over.
func (p *page) waitFor(what, predicate string, within time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, within+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(within)))
	if err != nil {
		p.t.Fatalf("waiting until %s (%s): %v\npage status: %s\nusers: %q\nmessages: %q\nerror line: %q",
			what, predicate, err, p.statusText(), p.usersNow(), p.messagesNow(), p.errorLine())
	}
}

func (p *page) statusText() string {
	v, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`(document.getElementById('status')||{}).textContent||''`))
	return v
}

func (p *page) usersNow() []string {
	v, _ := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#users li')].map(li => li.textContent)`))
	return v
}

func (p *page) messagesNow() []string {
	v, _ := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#messages li')].map(li => li.textContent)`))
	return v
}

func (p *page) errorLine() string {
	v, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`(e => e.hidden ? '' : e.textContent)(document.getElementById('error'))`))
	return v
}

// join types a username and waits until the server answered `connected`.
func (p *page) join(name string) {
	p.t.Helper()
	p.do("joining as "+name,
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SetValue(chromedp.ID("username"), name),
		chromedp.Click(chromedp.CSS("#join button")),
	)
	p.waitFor(name+" has joined", `document.getElementById('status').dataset.state === 'joined'`, browserWait)
}

// write types a message and sends it with the Send button.
func (p *page) write(text string) {
	p.t.Helper()
	p.do("writing a message",
		chromedp.SetValue(chromedp.ID("message"), text),
		chromedp.Click(chromedp.CSS("#write button")),
	)
}

// waitMessage waits until the page shows a message from user with text.
func (p *page) waitMessage(user, text string, within time.Duration) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("the page shows %q from %q", text, user), fmt.Sprintf(
		`[...document.querySelectorAll('#messages li')].some(li =>
			li.querySelector('.author').textContent === %s && li.querySelector('.text').textContent === %s)`,
		jsString(user), jsString(text)), within)
}

// waitUsers waits until the page's user list is exactly want, in order.
func (p *page) waitUsers(want []string, within time.Duration) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("the user list is %q", want), fmt.Sprintf(
		`JSON.stringify([...document.querySelectorAll('#users li')].map(li => li.textContent)) === %s`,
		jsString(string(mustJSON(want)))), within)
}

func jsString(s string) string { return string(mustJSON(s)) }

// mustJSON encodes v as JSON.stringify would (no \u003c for "<"), so that
// a JSON text built here compares equal to one built in the page.
func mustJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// startReference starts a reference server on 127.0.0.1 for one test.
func startReference(t *testing.T, edit func(*reference.Config)) (*reference.Running, reference.Config) {
	t.Helper()
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := reference.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("starting the reference: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		stopCtx, stop := context.WithTimeout(context.Background(), cfg.ShutdownTimeout+time.Second)
		defer stop()
		_ = srv.Stop(stopCtx)
	})
	return srv, cfg
}

func TestChatPageTwoUsersChat(t *testing.T) {
	srv, _ := startReference(t, nil)
	browser := newBrowser(t)

	alice := openTab(t, browser, srv.URL()+"/")
	alice.join("alice")
	bob := openTab(t, browser, srv.URL()+"/")
	bob.join("bob")

	alice.waitUsers([]string{"alice", "bob"}, browserWait)
	bob.waitUsers([]string{"alice", "bob"}, browserWait)

	alice.write("hello bob")
	bob.waitMessage("alice", "hello bob", browserWait)
	bob.write("hi alice, ça va? 👋")
	alice.waitMessage("bob", "hi alice, ça va? 👋", browserWait)
	alice.waitMessage("alice", "hello bob", browserWait)

	// A late joiner reads the history (HIST-3).
	carol := openTab(t, browser, srv.URL()+"/")
	carol.join("carol")
	carol.waitMessage("alice", "hello bob", browserWait)
	carol.waitMessage("bob", "hi alice, ça va? 👋", browserWait)
	alice.waitUsers([]string{"alice", "bob", "carol"}, browserWait)

	// Both pages upgraded to WebSocket (the default path when nothing blocks it).
	for _, p := range []*page{alice, bob} {
		p.waitFor("the page runs on WebSocket", `document.body.dataset.transport === 'websocket'`, browserWait)
	}
	for _, p := range []*page{alice, bob, carol} {
		if errs := p.consoleErrors(); len(errs) > 0 {
			t.Errorf("console errors: %q", errs)
		}
	}
}

// upgradeBlocker is a reverse proxy to the reference that refuses every
// WebSocket upgrade, as a corporate proxy may: the page behind it must
// still chat, over long-polling (TRANS-1).
type upgradeBlocker struct {
	refused atomic.Int64
	proxy   *httputil.ReverseProxy
}

func (b *upgradeBlocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		b.refused.Add(1)
		http.Error(w, "WebSocket is blocked here", http.StatusForbidden)
		return
	}
	b.proxy.ServeHTTP(w, r)
}

func TestChatPageChatsOverPollingWhenWebSocketIsBlocked(t *testing.T) {
	srv, _ := startReference(t, nil)
	target, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	blocker := &upgradeBlocker{proxy: httputil.NewSingleHostReverseProxy(target)}
	blocker.proxy.FlushInterval = -1 // long-polling answers go out at once
	proxy := httptest.NewServer(blocker)
	t.Cleanup(proxy.Close)
	browser := newBrowser(t)

	blocked := openTab(t, browser, proxy.URL+"/")
	blocked.join("behind-proxy")
	direct := openTab(t, browser, srv.URL()+"/")
	direct.join("direct")

	// The client tried to upgrade and was refused before anything else is
	// asserted, so the chat below really ran with WebSocket blocked.
	deadline := time.Now().Add(browserWait)
	for blocker.refused.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the page behind the proxy never tried WebSocket (transport %q)",
				eval[string](blocked, `document.body.dataset.transport || ''`))
		}
		time.Sleep(50 * time.Millisecond)
	}

	blocked.write("sent over polling")
	direct.waitMessage("behind-proxy", "sent over polling", browserWait)
	direct.write("received over polling")
	blocked.waitMessage("direct", "received over polling", browserWait)
	blocked.waitUsers([]string{"behind-proxy", "direct"}, browserWait)
	if got := eval[string](blocked, `document.body.dataset.transport || ''`); got != "polling" {
		t.Errorf("transport of the page behind the proxy = %q, want polling", got)
	}
}

func TestChatPageShowsMarkupAsTextAndRunsNothing(t *testing.T) {
	srv, _ := startReference(t, nil)
	browser := newBrowser(t)
	const (
		evilName = `<b onmouseover="window.__ran='name'">mallory</b>`
		evilText = `<img src=x onerror="window.__ran='message'"><script>window.__ran='script'</script>`
	)

	victim := openTab(t, browser, srv.URL()+"/")
	victim.join("victim")
	mallory := openTab(t, browser, srv.URL()+"/")
	mallory.join(evilName)
	mallory.write(evilText)
	victim.waitMessage(evilName, evilText, browserWait)
	victim.waitUsers([]string{"victim", evilName}, browserWait)

	for _, p := range []*page{victim, mallory} {
		// What markup would have made: an element inside the lists, and a
		// side effect. Neither may exist; the texts above are shown verbatim.
		if n := eval[int](p, `document.querySelectorAll('#messages img, #messages script, #messages b, #users b').length`); n != 0 {
			t.Errorf("%d elements were created from the chat's text", n)
		}
		// Give a broken image's onerror every chance to fire before looking.
		p.waitFor("the page is idle", `new Promise(r => setTimeout(() => r(true), 200))`, browserWait)
		if ran := eval[string](p, `String(window.__ran ?? '')`); ran != "" {
			t.Errorf("injected code ran: window.__ran = %q", ran)
		}
	}
}

func TestChatPageClosedTabLeavesTheList(t *testing.T) {
	srv, cfg := startReference(t, nil)
	browser := newBrowser(t)

	stays := openTab(t, browser, srv.URL()+"/")
	stays.join("stays")
	leaves := openTab(t, browser, srv.URL()+"/")
	leaves.join("leaves")
	stays.waitUsers([]string{"stays", "leaves"}, browserWait)

	leaves.close()
	// Closing a tab closes its connection, so the server usually notices at
	// once; the bound is the server's own ping deadline, plus the margin.
	stays.waitUsers([]string{"stays"}, cfg.PingInterval+cfg.PingTimeout+browserWait)
}

func TestChatPageShowsTheServersRefusal(t *testing.T) {
	srv, _ := startReference(t, func(c *reference.Config) { c.MaxMessageLen = 10 })
	browser := newBrowser(t)

	p := openTab(t, browser, srv.URL()+"/")
	p.join("terse")
	p.write("far longer than ten bytes")
	p.waitFor("the refusal is shown", `(e => !e.hidden && e.textContent.includes('message_too_long'))(document.getElementById('error'))`, browserWait)
	p.write("short")
	p.waitMessage("terse", "short", browserWait)
	if got := p.messagesNow(); len(got) != 1 {
		t.Errorf("messages = %q, want only the short one", got)
	}
}

// cuttableProxy forwards to the reference and can drop every connection
// at once without a goodbye, as a network failure does.
type cuttableProxy struct {
	*httptest.Server
	mu    sync.Mutex
	conns map[net.Conn]bool
}

func newCuttableProxy(t *testing.T, target string) *cuttableProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	c := &cuttableProxy{conns: map[net.Conn]bool{}}
	c.Server = httptest.NewUnstartedServer(rp)
	c.Config.ConnState = func(conn net.Conn, s http.ConnState) {
		c.mu.Lock()
		defer c.mu.Unlock()
		switch s {
		case http.StateNew:
			c.conns[conn] = true
		case http.StateClosed:
			delete(c.conns, conn)
		}
	}
	c.Start()
	t.Cleanup(c.Close)
	return c
}

// cut closes every client connection of the proxy (hijacked WebSockets
// included: ConnState keeps reporting them as StateHijacked, not closed).
func (c *cuttableProxy) cut() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for conn := range c.conns {
		if conn.Close() == nil {
			n++
		}
		delete(c.conns, conn)
	}
	return n
}

func TestChatPageRejoinsAfterADrop(t *testing.T) {
	srv, cfg := startReference(t, nil)
	proxy := newCuttableProxy(t, srv.URL())
	browser := newBrowser(t)

	watcher := openTab(t, browser, srv.URL()+"/")
	watcher.join("watcher")
	flaky := openTab(t, browser, proxy.URL+"/")
	flaky.join("flaky")
	watcher.waitUsers([]string{"watcher", "flaky"}, browserWait)
	flaky.waitFor("the page runs on WebSocket", `document.body.dataset.transport === 'websocket'`, browserWait)

	joinsBefore := eval[int](flaky, `Number(document.body.dataset.joins)`)
	if n := proxy.cut(); n == 0 {
		t.Fatal("the proxy had no connection to cut")
	}
	// The page reconnects by itself and sends `connecting` again (RECON-1):
	// it receives a new `connected`, and the watcher sees it listed.
	flaky.waitFor("the page joined again", fmt.Sprintf(`Number(document.body.dataset.joins) > %d && document.getElementById('status').dataset.state === 'joined'`, joinsBefore),
		cfg.PingInterval+cfg.PingTimeout+browserWait)
	watcher.waitUsers([]string{"watcher", "flaky"}, cfg.PingInterval+cfg.PingTimeout+browserWait)
	flaky.write("back again")
	watcher.waitMessage("flaky", "back again", browserWait)
}

func TestHTMLReportsOpenInTheBrowser(t *testing.T) {
	browser := newBrowser(t) // first: a missing browser fails before the runs
	verifyDir, loadDir := realReports(t)
	for _, tt := range []struct {
		name      string
		file      string
		minCharts int
	}{
		{"verify", filepath.Join(verifyDir, "report.html"), 1},
		{"load", filepath.Join(loadDir, "report.html"), 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := openTab(t, browser, "file://"+tt.file)
			p.waitFor("the report has loaded", `document.readyState === 'complete'`, browserWait)
			// Drawn charts: SVGs with marks in them, each as wide as most of
			// the page's content (not a thumbnail in a corner).
			charts := eval[int](p, `[...document.querySelectorAll('svg')].filter(s =>
				s.querySelectorAll('polyline[points]:not([points=""]), rect, path').length > 0).length`)
			if charts < tt.minCharts {
				t.Errorf("%d drawn charts, want at least %d", charts, tt.minCharts)
			}
			narrow := eval[int](p, `[...document.querySelectorAll('svg')].filter(s =>
				s.getBoundingClientRect().width < 0.9 * s.parentElement.getBoundingClientRect().width).length`)
			if narrow > 0 {
				t.Errorf("%d charts use less than 90%% of the width they have", narrow)
			}
			// Axis labels in plain numbers: no scientific notation (1e+04).
			if bad := eval[[]string](p, `[...document.querySelectorAll('svg text')].map(e => e.textContent).filter(s => /\de[+-]?\d/.test(s))`); len(bad) > 0 {
				t.Errorf("axis labels in scientific notation: %q", bad)
			}
			// Contract text shows no raw Markdown marks.
			if bad := eval[[]string](p, `[...document.querySelectorAll('.req, .verdict-why')].map(e => e.textContent).filter(s => /[`+"`"+`]|\*\*/.test(s))`); len(bad) > 0 {
				t.Errorf("raw Markdown marks in the text: %q", bad)
			}
			if dir := os.Getenv("CHATSPEC_SCREENSHOT_DIR"); dir != "" {
				png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
				if err == nil {
					err = os.WriteFile(filepath.Join(dir, tt.name+".png"), png, 0o644)
				}
				if err != nil {
					t.Logf("screenshot: %v", err)
				}
			}
			if errs := p.consoleErrors(); len(errs) > 0 {
				t.Errorf("console errors: %q", errs)
			}
		})
	}
}
