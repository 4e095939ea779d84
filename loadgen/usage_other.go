//go:build !unix

package loadgen

import "time"

// processUsage is not measured on this platform; the self-check then
// reports zero CPU and RSS.
func processUsage() (time.Duration, int64) { return 0, 0 }
