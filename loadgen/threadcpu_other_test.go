//go:build !linux

package loadgen

import "time"

// threadCPU is not measured off Linux; the benchmark then reports 0.
func threadCPU() time.Duration { return 0 }
