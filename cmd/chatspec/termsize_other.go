//go:build !unix

package main

import "io"

// terminalSize is unknown off Unix: progress falls back to lines.
func terminalSize(io.Writer) (cols, rows int, ok bool) { return 0, 0, false }
