// Package webchat is the chat page the reference server answers at "/": one
// self-contained page (HTML, CSS, a small script and the official
// socket.io-client browser build, all embedded in the binary) that joins,
// lists who is online, shows the history and writes messages over the
// events of spec/CONTRACT.md. It talks to the serving reference by default
// and to any contract server with ?server=URL (see static/chat.js and
// README.md next to this file).
package webchat

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// Options tells the page where the serving server's Socket.IO lives; a
// ?path= or ?init= query parameter overrides them in the browser.
type Options struct {
	Path     string // Socket.IO path, e.g. "/socket.io/"
	InitPath string // route to GET once before connecting ("" for none)
}

// contentSecurityPolicy allows scripts and styles from this page only (no
// inline script, so an HTML injection could run nothing even if the page
// rendered a server's text as markup, which it does not) and connections to
// any http(s)/ws(s) origin, for ?server=.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self' http: https: ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the page at "/" and its assets beside it. Any other path
// is 404, directories are not listed, and only GET and HEAD are answered.
func Handler(o Options) http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	index := renderIndex(sub, o)
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		switch {
		case r.URL.Path == "/" || r.URL.Path == "/index.html":
			h.Set("Content-Type", "text/html; charset=utf-8")
			w.Write(index)
		case strings.HasSuffix(r.URL.Path, "/"):
			http.NotFound(w, r)
		default:
			files.ServeHTTP(w, r)
		}
	})
}

func renderIndex(sub fs.FS, o Options) []byte {
	t := template.Must(template.ParseFS(sub, "index.html"))
	var b bytes.Buffer
	if err := t.Execute(&b, o); err != nil {
		panic(err) // the template and its data are fixed at build time
	}
	return b.Bytes()
}
