package interop

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// requireChromium returns the path of a headless-capable Chromium, failing
// the test with a hint when there is none. CHATSPEC_CHROMIUM names it
// explicitly; CHATSPEC_SKIP_BROWSER=1 skips the browser tests.
func requireChromium(t *testing.T) string {
	t.Helper()
	if os.Getenv("CHATSPEC_SKIP_BROWSER") == "1" {
		t.Skip("CHATSPEC_SKIP_BROWSER=1: skipping the Chromium tests")
	}
	if p := os.Getenv("CHATSPEC_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: install it (apt-get install chromium), name it with CHATSPEC_CHROMIUM, or set CHATSPEC_SKIP_BROWSER=1")
	return ""
}

// handshake is one Engine.IO handshake request the browser made.
type handshake struct {
	transport string
	cookie    bool // it carried the chatspec_client cookie
}

// pageServer serves jsclient/seedhook.html and socket.io-client's browser
// bundle on the chat server's origin, proxies everything else to the chat
// server (WebSocket upgrades included), records the Engine.IO handshakes
// and receives the page's report.
type pageServer struct {
	url     string
	results chan map[string]any

	mu         sync.Mutex
	handshakes []handshake
}

func startPageServer(t *testing.T, chat string) *pageServer {
	t.Helper()
	target, err := url.Parse(chat)
	if err != nil {
		t.Fatal(err)
	}
	p := &pageServer{results: make(chan map[string]any, 1)}
	proxy := httputil.NewSingleHostReverseProxy(target)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(clientDir, "seedhook.html"))
	})
	mux.HandleFunc("GET /socket.io.min.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(clientDir, "node_modules", "socket.io-client", "dist", "socket.io.min.js"))
	})
	mux.HandleFunc("POST /result", func(w http.ResponseWriter, r *http.Request) {
		var res map[string]any
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&res); err == nil {
			select {
			case p.results <- res:
			default:
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/socket.io/") && r.URL.Query().Get("sid") == "" {
			_, err := r.Cookie("chatspec_client")
			p.mu.Lock()
			p.handshakes = append(p.handshakes, handshake{transport: r.URL.Query().Get("transport"), cookie: err == nil})
			p.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	p.url = "http://" + ln.Addr().String()
	return p
}

// runBrowserHook opens the seed-hook page in headless Chromium with a
// fresh profile (no cookies) and returns the page's report.
func runBrowserHook(t *testing.T, chromium, chat string, noWait bool) (map[string]any, []handshake) {
	t.Helper()
	p := startPageServer(t, chat)
	page := p.url + "/?u=browser-" + fmt.Sprint(time.Now().UnixNano()%1e6)
	if noWait {
		page += "&nowait"
	}
	// chromedp starts Chromium with a fresh temporary profile (no cookies)
	// and, when the context ends, kills every process of that browser and
	// removes the profile: Chromium's children outlive a main process
	// killed alone and keep writing into the profile directory.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(),
		chromedp.ExecPath(chromium),
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
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	// Navigate returns once the page has loaded; its script then runs the
	// seed's hook and POSTs its report.
	if _, err := chromedp.Run(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("open %s in %s: %v", page, chromium, err)
	}
	// Chromium starts in a few seconds; the page's own steps take
	// milliseconds. The rest is slack for a loaded machine.
	select {
	case res := <-p.results:
		p.mu.Lock()
		defer p.mu.Unlock()
		return res, append([]handshake(nil), p.handshakes...)
	case <-time.After(60 * time.Second):
		t.Fatalf("the page reported nothing within 60s (handshakes seen: %+v)", p.handshakes)
		return nil, nil
	}
}

// TestSeedHookInChromium runs the seed's hook in a real browser, where the
// two io() calls race their handshakes and cookies behave as they do for
// the seed's users: through --seed-clients it chats, and both handshakes
// carry the cookie the init request set (so the tie is the cookie, not
// only the address); without the flag it gets the refusal that names both
// fixes.
func TestSeedHookInChromium(t *testing.T) {
	requireNode(t) // the browser bundle comes from jsclient's node_modules
	chromium := requireChromium(t)
	t.Run("seed-clients", func(t *testing.T) {
		res, hs := runBrowserHook(t, chromium, startSeedReference(t, true), false)
		if res["outcome"] != "delivered" || res["connections"] != 2.0 {
			t.Fatalf("page reported %v, want delivered over 2 connections", res)
		}
		if len(hs) != 2 || !hs[0].cookie || !hs[1].cookie {
			t.Errorf("handshakes %+v: want 2, both carrying the chatspec_client cookie from the init request", hs)
		}
	})
	t.Run("default refuses", func(t *testing.T) {
		res, _ := runBrowserHook(t, chromium, startSeedReference(t, false), false)
		msg, _ := res["message"].(string)
		if res["outcome"] != "refused" || res["code"] != "not_joined" || !strings.Contains(msg, "--seed-clients") || !strings.Contains(msg, "call it once") {
			t.Fatalf("page reported %v, want refused with not_joined naming both fixes", res)
		}
	})
}
