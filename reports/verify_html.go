package reports

import (
	_ "embed"
	"fmt"
	"html"
	"html/template"
	"io"
	"regexp"
	"strings"
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
	"md": inlineMarkdown,
}).Parse(verifyHTMLSource))

// The inline Markdown of spec/CONTRACT.md's requirement texts.
var (
	mdCode   = regexp.MustCompile("`([^`]+)`")
	mdStrong = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	mdEm     = regexp.MustCompile(`\*([^*\s][^*]*)\*`)
)

// inlineMarkdown renders the contract's inline marks (`code`, **strong**,
// *emphasis*) as HTML. The text is escaped first, so nothing in it can
// become markup except these three marks; code spans are set aside before
// the emphasis marks are read, so an asterisk inside code stays literal.
func inlineMarkdown(s string) template.HTML {
	esc := html.EscapeString(s)
	var codes []string
	esc = mdCode.ReplaceAllStringFunc(esc, func(m string) string {
		codes = append(codes, m[1:len(m)-1])
		return fmt.Sprintf("\x00%d\x00", len(codes)-1)
	})
	esc = mdStrong.ReplaceAllString(esc, "<strong>$1</strong>")
	esc = mdEm.ReplaceAllString(esc, "<em>$1</em>")
	for i, c := range codes {
		esc = strings.Replace(esc, fmt.Sprintf("\x00%d\x00", i), "<code>"+c+"</code>", 1)
	}
	return template.HTML(esc) // escaped above; only the tags added here are markup
}

// outcomeBar is the verify report's chart: one bar split by outcome.
type outcomeSegment struct {
	Outcome string
	Count   int
	X, W    float64 // in a 1000-unit-wide viewBox
}

func outcomeBar(c VerifyCounts) []outcomeSegment {
	total := c.Passed + c.Failed + c.Skipped + c.Info
	if total == 0 {
		return nil
	}
	var segs []outcomeSegment
	x := 0.0
	for _, o := range []struct {
		name string
		n    int
	}{{OutcomePassed, c.Passed}, {OutcomeFailed, c.Failed}, {OutcomeSkipped, c.Skipped}, {OutcomeInfo, c.Info}} {
		if o.n == 0 {
			continue
		}
		w := 1000 * float64(o.n) / float64(total)
		segs = append(segs, outcomeSegment{Outcome: o.name, Count: o.n, X: round1(x), W: round1(w)})
		x += w
	}
	return segs
}

// WriteVerifyHTML writes report.html: one self-contained file (inline CSS,
// no scripts, nothing loaded from the network).
func WriteVerifyHTML(w io.Writer, r VerifyReport) error {
	return verifyHTML.Execute(w, struct {
		VerifyReport
		TargetsText string
		Bar         []outcomeSegment
	}{r, verifyTargetsText(r), outcomeBar(r.Counts)})
}
