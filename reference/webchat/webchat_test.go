package webchat

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestHandlerServesThePageAndItsAssets(t *testing.T) {
	h := Handler(Options{Path: "/chat-io/", InitPath: "/api/socket"})

	res, body := get(t, h, http.MethodGet, "/")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, want := range []string{`<meta name="chatspec-path" content="/chat-io/">`, `<meta name="chatspec-init-path" content="/api/socket">`,
		`src="third_party/socket.io-client/socket.io.min.js"`, `src="chat.js"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy = %q: want scripts from the page's origin only", csp)
	}

	res, body = get(t, h, http.MethodGet, "/third_party/socket.io-client/socket.io.min.js")
	if res.StatusCode != http.StatusOK || !strings.Contains(body[:200], "Socket.IO v4.8.3") {
		t.Errorf("socket.io.min.js: %d, banner %q", res.StatusCode, body[:min(len(body), 120)])
	}
	if res, body = get(t, h, http.MethodGet, "/third_party/socket.io-client/LICENSE"); res.StatusCode != http.StatusOK || !strings.Contains(body, "MIT License") {
		t.Errorf("the client's licence is not served beside it: %d", res.StatusCode)
	}

	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/nope", http.StatusNotFound},
		{http.MethodGet, "/third_party/", http.StatusNotFound}, // no directory listing
		{http.MethodPost, "/", http.StatusMethodNotAllowed},
		{http.MethodHead, "/chat.js", http.StatusOK},
	} {
		if res, _ := get(t, h, tt.method, tt.path); res.StatusCode != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, res.StatusCode, tt.want)
		}
	}
}

// The page must escape what it is given: a path with markup stays text.
func TestHandlerEscapesItsOptions(t *testing.T) {
	_, body := get(t, Handler(Options{Path: `/"><script>x</script>/`}), http.MethodGet, "/")
	if strings.Contains(body, "<script>x</script>") {
		t.Errorf("the path was written into the page unescaped")
	}
}
