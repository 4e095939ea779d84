package reports

import (
	_ "embed"
	"html/template"
	"io"
	"time"
)

//go:embed verify.html.tmpl
var verifyHTMLSource string

// verifyHTML is parsed once; html/template escapes every value, so text a
// server sent (usernames, messages quoted in failures) cannot inject markup.
var verifyHTML = template.Must(template.New("verify").Funcs(template.FuncMap{
	"ms": func(ms int64) string { return (time.Duration(ms) * time.Millisecond).Round(time.Millisecond).String() },
	"utc": func(t time.Time) string {
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
}).Parse(verifyHTMLSource))

// WriteVerifyHTML writes report.html: one self-contained file (inline CSS,
// no scripts, nothing loaded from the network).
func WriteVerifyHTML(w io.Writer, r VerifyReport) error {
	return verifyHTML.Execute(w, struct {
		VerifyReport
		TargetsText string
	}{r, verifyTargetsText(r)})
}
