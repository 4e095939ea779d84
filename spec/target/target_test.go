package target

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func parse(t *testing.T, args ...string) (*Options, error) {
	t.Helper()
	var o Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return &o, o.Validate()
}

func TestFlags(t *testing.T) {
	o, err := parse(t,
		"--target", "ws://127.0.0.1:3000", "--target", "http://127.0.0.1:3001/",
		"--path", "/chat/socket", "--namespace", "/chat", "--init-path", "/api/socket",
		"--header", "Authorization: Bearer x", "--query", "room=a", "--auth", `{"token":"t"}`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(o.Targets, " "), "http://127.0.0.1:3000 http://127.0.0.1:3001"; got != want {
		t.Errorf("targets = %q, want %q", got, want)
	}
	if got, want := o.Path, "/chat/socket/"; got != want {
		t.Errorf("path = %q, want %q", got, want)
	}
	d := o.DialOptions(3)
	if got, want := d.URL, "http://127.0.0.1:3001"; got != want {
		t.Errorf("client 3 url = %q, want %q (round-robin)", got, want)
	}
	if got, want := d.Header.Get("Authorization"), "Bearer x"; got != want {
		t.Errorf("header = %q, want %q", got, want)
	}
	if got, want := d.Query.Get("room"), "a"; got != want {
		t.Errorf("query = %q, want %q", got, want)
	}
	if auth, ok := d.Auth.(map[string]any); !ok || auth["token"] != "t" {
		t.Errorf("auth = %#v, want token t", d.Auth)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"scheme", []string{"--target", "ftp://x"}, "want an http://"},
		{"no host", []string{"--target", "http://"}, "no host"},
		{"path in target", []string{"--target", "http://127.0.0.1:1/socket.io/"}, "--path /socket.io/"},
		{"header", []string{"--header", "nocolon"}, "Name: value"},
		{"query", []string{"--query", "novalue"}, "name=value"},
		{"auth", []string{"--auth", "[1]"}, "JSON object"},
		{"path", []string{"--path", "socket.io"}, "must start with /"},
		{"namespace", []string{"--namespace", "chat"}, "must start with /"},
		{"timeout", []string{"--connect-timeout", "0s"}, "must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestInit(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header
		if r.URL.Path != "/api/socket" {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	o, err := parse(t, "--target", srv.URL, "--init-path", "/api/socket", "--header", "X-Test: 1")
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Init(context.Background(), 0); err != nil {
		t.Fatalf("init: %v", err)
	}
	if got.Get("X-Test") != "1" {
		t.Errorf("init request lacked the extra header")
	}
	o.InitPath = "/missing"
	err = o.Init(context.Background(), 0)
	if err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Fatalf("init of a missing route: err = %v, want status 404", err)
	}
}

func TestProbeUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	o, err := parse(t, "--target", "http://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	err = o.Probe(context.Background())
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("probe: err = %v, want ErrUnreachable naming %s", err, addr)
	}
}
