package target

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatspec/chatspec/spec/sioclient"
)

func TestSourceFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // the addresses, or the error's text
	}{
		{"127.0.0.2", "127.0.0.2"},
		{"127.0.0.2, 127.0.0.3", "127.0.0.2,127.0.0.3"},
		{"127.0.0.0/30", "127.0.0.0,127.0.0.1,127.0.0.2,127.0.0.3"},
		{"127.0.0.9/30", "127.0.0.8,127.0.0.9,127.0.0.10,127.0.0.11"},
		{"127.0.0.2-127.0.0.4", "127.0.0.2,127.0.0.3,127.0.0.4"},
		{"::1", "::1"},
		{"localhost", "not an IP address"},
		{"127.0.0.0/33", "not a CIDR prefix"},
		{"10.0.0.0/8", "at most 65536"},
		{"127.0.0.9-127.0.0.2", "not a range"},
		{"127.0.0.1-::1", "not a range"},
	} {
		var f sourceFlag
		err := f.Set(tc.in)
		got := f.String()
		if err != nil {
			got = err.Error()
		}
		wantErr := strings.HasPrefix(tc.want, "not") || strings.HasPrefix(tc.want, "at most")
		if !strings.Contains(got, tc.want) || (err != nil) != wantErr {
			t.Errorf("--source-addr %q: got %q, want %q", tc.in, got, tc.want)
		}
	}
	var f sourceFlag
	if err := f.Set("127.0.0.0/16"); err != nil {
		t.Fatal(err)
	}
	if err := f.Set("127.1.0.1"); err == nil || !strings.Contains(err.Error(), "in all") {
		t.Errorf("past the bound: %v, want an error", err)
	}
}

// Client i connects from source address i mod n, for the init request
// and for both transports' requests, and an address that is not this
// machine's is refused before anything runs.
func TestSourceAddrsSpreadConnections(t *testing.T) {
	var mu sync.Mutex
	from := map[string][]string{} // path kind -> remote IPs, in order
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		kind := "init"
		if strings.HasPrefix(r.URL.Path, "/socket.io/") {
			kind = r.URL.Query().Get("transport")
		}
		mu.Lock()
		from[kind] = append(from[kind], ip)
		mu.Unlock()
		http.Error(w, "no", http.StatusBadRequest)
	}))
	defer srv.Close()
	o := Options{Targets: []string{srv.URL}, Path: "/socket.io/", Namespace: "/", InitPath: "/api/socket", ConnectTimeout: 5 * time.Second,
		SourceAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		_ = o.Init(ctx, i) // answered 400: only where it came from matters
		for _, tr := range []sioclient.Transport{sioclient.Polling, sioclient.WebSocket} {
			d := o.DialOptions(i)
			d.Transport = tr
			if c, err := sioclient.Dial(ctx, d); err == nil {
				c.Close()
				t.Fatalf("dial %d over %s succeeded against a server that refuses everything", i, tr)
			}
		}
	}
	want := "127.0.0.2,127.0.0.3,127.0.0.2"
	for _, kind := range []string{"init", "polling", "websocket"} {
		if got := strings.Join(from[kind], ","); got != want {
			t.Errorf("%s requests came from %s, want %s", kind, got, want)
		}
	}

	bad := o
	bad.SourceAddrs = []netip.Addr{netip.MustParseAddr("192.0.2.1")} // TEST-NET-1, nobody's
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "not an address of this machine") {
		t.Errorf("a foreign source address: %v, want it refused", err)
	}
}
