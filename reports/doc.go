// Package reports renders what chatspec measured: verify results (a case
// per contract requirement) and load summaries, as a console table, JSON,
// JUnit XML and one self-contained HTML file. A report is plain data; each
// renderer writes it to an io.Writer and returns every write error. HTML is
// built with html/template from embedded templates, loads nothing from the
// network, and escapes everything a server sent.
package reports

import "io"

// errWriter keeps the first write error, so that a renderer can write
// freely and return that error once at the end.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
