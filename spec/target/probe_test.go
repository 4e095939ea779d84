package target

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chatspec/chatspec/reference"
)

// hangingPollingServer is a working chat server (the reference) whose
// long-polling requests hang: WebSocket is fine.
func hangingPollingServer(t *testing.T) string {
	t.Helper()
	cfg := reference.DefaultConfig()
	srv, err := reference.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("transport") == "polling" {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { close(release); ts.CloseClientConnections(); ts.Close() })
	return ts.URL
}

// The probe tries WebSocket as well as polling, each with the whole
// budget: a server whose long polls hang is reachable (issue 13: the
// re-probe spent its budget on polling and declared the target dead).
func TestProbeBrokenPollingIsNotADeadTarget(t *testing.T) {
	o, err := parse(t, "--target", hangingPollingServer(t), "--connect-timeout", "2s")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := o.Probe(ctx); err != nil {
		t.Fatalf("probe of a server with hanging long polls and a working WebSocket: %v", err)
	}
}

// A dead target (nothing listens) is unreachable on both transports, and
// the error says what each one was answered.
func TestProbeDeadTargetNamesBothTransports(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	u := ts.URL
	ts.Close()
	o, err := parse(t, "--target", u)
	if err != nil {
		t.Fatal(err)
	}
	err = o.Probe(context.Background())
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "polling") || !strings.Contains(err.Error(), "over WebSocket") {
		t.Fatalf("probe of a dead target: %v; want ErrUnreachable naming both transports", err)
	}
}

// nextJSStandIn answers as a Next.js server whose Socket.IO server is not
// attached: /socket.io/ redirects (308) to /socket.io, which is 404, and a
// WebSocket upgrade is never answered.
func nextJSStandIn(t *testing.T) string {
	t.Helper()
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
			select { // never answered
			case <-r.Context().Done():
			case <-release:
			}
		case r.URL.Path == "/socket.io/":
			http.Redirect(w, r, "/socket.io?"+r.URL.RawQuery, http.StatusPermanentRedirect)
		default:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte("<!DOCTYPE html><html><body>404: This page could not be found.</body></html>"))
		}
	}))
	t.Cleanup(func() { close(release); ts.CloseClientConnections(); ts.Close() })
	return ts.URL
}

// Issue 18: the probe says what was requested and what answered, calls an
// unattached Next.js server by its name and suggests --init-path, without
// waiting out the WebSocket upgrade Next never answers.
func TestProbeRecognisesAnUnattachedNextJSServer(t *testing.T) {
	u := nextJSStandIn(t)
	o, err := parse(t, "--target", u, "--connect-timeout", "5s")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = o.Probe(context.Background())
	took := time.Since(start)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("probe: %v, want ErrUnreachable", err)
	}
	msg := err.Error()
	for _, want := range []string{
		u + "/socket.io/: redirected (308 to " + u + "/socket.io), which answered HTTP 404",
		"Next.js", "--init-path /api/socket",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q:\n%s", want, msg)
		}
	}
	// Fast: the answer is known from the polling request alone; waiting
	// for the WebSocket upgrade would take the whole --connect-timeout.
	if took > 2500*time.Millisecond {
		t.Errorf("the probe took %s; the 5s connect timeout must not be spent on the WebSocket upgrade", took)
	}
	t.Log(msg)
}
