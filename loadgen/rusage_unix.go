//go:build unix

package loadgen

import (
	"runtime"
	"syscall"
	"time"
)

// processRusage returns this process's CPU time (user + system) and its
// peak resident set size in bytes.
func processRusage() (time.Duration, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	rss := int64(ru.Maxrss) // KiB on Linux, bytes on Darwin
	if runtime.GOOS != "darwin" {
		rss *= 1024
	}
	return cpu, rss
}

// OpenFileLimit returns this process's limit of open files (the soft
// RLIMIT_NOFILE, which Go raises to the hard limit at start).
func OpenFileLimit() (uint64, bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, false
	}
	return uint64(lim.Cur), true
}
