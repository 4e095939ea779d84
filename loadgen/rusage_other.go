//go:build !unix

package loadgen

import "time"

// processRusage is not measured on this platform; the self-check then
// reports zero CPU and RSS.
func processRusage() (time.Duration, int64) { return 0, 0 }

// OpenFileLimit is not known on this platform.
func OpenFileLimit() (uint64, bool) { return 0, false }
