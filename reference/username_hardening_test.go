package reference

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/chatspec/chatspec/spec/sioclient"
)

// TestLookAlikeUsernamesRefused joins "ann", then tries, on a second real
// socket, names that render exactly like "ann" (or rearrange the list):
// each is refused with invalid_username on that socket only, nobody sees a
// join, and the socket can still join under a visible name.
func TestLookAlikeUsernamesRefused(t *testing.T) {
	lookAlikes := []string{
		"ann\u200b",       // zero-width space
		"\ufeffann",       // BOM
		"a\u200dnn",       // zero-width joiner
		"\u202enna",       // right-to-left override: draws as "ann"
		"\u2066ann\u2069", // left-to-right isolate
		"ann\u200e",       // left-to-right mark
		"ann\u061c",       // Arabic letter mark
		"ann\u2060",       // word joiner
		"ann\u00ad",       // soft hyphen
		"ann\u3164",       // Hangul filler
		"ann\ufe0f",       // variation selector
		"ann\u2028",       // line separator
	}
	forEachTransport(t, func(t *testing.T, tr sioclient.Transport) {
		r := startServer(t, nil)
		ann, _ := join(t, r, tr, "ann")
		spoof := dial(t, r, tr)
		for _, name := range lookAlikes {
			spoof.emit(EventConnecting, map[string]any{"username": name})
			spoof.expectError(EventConnecting, CodeInvalidUsername)
		}
		// Nothing reached ann: the next event on her ordered stream is
		// her own barrier's chatError, not a joined.
		ann.barrier()
		spoof.name = "bob"
		spoof.emit(EventConnecting, map[string]any{"username": "bob"})
		var p connectedPayload
		spoof.expect(EventConnected, &p)
		if diff := cmp.Diff([]string{"ann", "bob"}, names(p.ConnectedUserList)); diff != "" {
			t.Fatalf("user list after the refused look-alikes (-want +got):\n%s", diff)
		}
	})
}
