package reference

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// A long-polling POST whose body trickles in (one byte, then nothing) is
// answered 408 and its connection closed once RequestBodyTimeout has
// passed after the headers, and the engine never sees the partial body;
// a polling client chatting meanwhile is not affected.
func TestSlowRequestBodyCut(t *testing.T) {
	const bodyTimeout = 300 * time.Millisecond
	r := startServer(t, func(c *Config) { c.RequestBodyTimeout = bodyTimeout })
	ann, _ := join(t, r, sioclient.Polling, "ann")

	base := r.URL() + r.Server().cfg.Path + "?EIO=4&transport=polling"
	_, open := httpDo(t, "GET", base, "")
	sid := strings.TrimSuffix(strings.SplitN(strings.SplitN(open, `"sid":"`, 2)[1], `"`, 2)[0], `"`)
	target := r.Server().cfg.Path + "?EIO=4&transport=polling&sid=" + sid

	for _, tc := range []struct {
		name, head, sent string
	}{
		{"content-length", "Content-Length: 40\r\n", "4"},
		{"chunked", "Transfer-Encoding: chunked\r\n", "1\r\n4\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(r.URL(), "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain;charset=UTF-8\r\n%s\r\n%s", target, tc.head, tc.sent)
			c.SetReadDeadline(time.Now().Add(waitFor))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer to a stalled body after %s: %v", time.Since(start), err)
			}
			body, _ := io.ReadAll(resp.Body)
			took := time.Since(start)
			t.Logf("stalled body: %d %q after %s", resp.StatusCode, strings.TrimSpace(string(body)), took.Round(time.Millisecond))
			if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "not received within") {
				t.Errorf("stalled body answered %d %q, want 408 naming the bound", resp.StatusCode, body)
			}
			if took < bodyTimeout {
				t.Errorf("answered after %s, before the %s bound", took, bodyTimeout)
			}
			if _, err := br.ReadByte(); err == nil {
				t.Errorf("the connection stays open after the 408")
			}
		})
	}
	// The chat is unaffected, and the partial packet ("4", a message with
	// no payload) never reached the engine: the session is still usable.
	ann.write("still here")
	ann.expect(EventMessageWritten, nil)
	if code, body := httpDo(t, "POST", r.URL()+target, "40"); code != http.StatusOK {
		t.Errorf("a complete POST on the same session after the cut bodies: %d %q", code, body)
	}
}
