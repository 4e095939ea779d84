// Package reports renders what chatspec measured: verify results (a case
// per contract requirement) and load summaries, as a console table, JSON,
// JUnit XML and one self-contained HTML file. A report is plain data; each
// renderer writes it to an io.Writer and returns every write error. HTML is
// built with html/template from embedded templates, loads nothing from the
// network, and escapes everything a server sent.
package reports
