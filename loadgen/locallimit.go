package loadgen

import (
	"errors"
	"fmt"
	"syscall"
)

// localErrnos are the errors of a generator that has run out of something
// of its own: open files (per process, per system), ephemeral ports or
// kernel buffers. A dial that fails with one of them says nothing about
// the target, so it must not be counted as the target's failure, nor
// probed as its outage: the run ends as generator_limit.
var localErrnos = []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.EADDRNOTAVAIL, syscall.ENOBUFS}

// localLimit reports whether err is the generator's own resource
// exhaustion (see localErrnos).
func localLimit(err error) bool {
	if err == nil {
		return false
	}
	for _, errno := range localErrnos {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// stopAtLocalLimit ends the run as EndedGeneratorLimit when err is the
// generator's own resource exhaustion, and reports whether it did.
func (e *Engine) stopAtLocalLimit(err error) bool {
	if !localLimit(err) {
		return false
	}
	hint := "raise it, or spread the users over --source-addr or --shard processes"
	if errors.Is(err, syscall.EMFILE) {
		if n, ok := OpenFileLimit(); ok {
			hint = fmt.Sprintf("this process may hold %d open files (ulimit -n); each connection is one: raise the limit, or split the users over --shard processes", n)
		}
	} else if errors.Is(err, syscall.EADDRNOTAVAIL) {
		hint = "no local port or address left for a new connection: spread the users over --source-addr addresses or --shard processes"
	}
	e.stop(EndedGeneratorLimit, fmt.Sprintf("the generator ran out of a resource of its own, not the target's: %v (%s)", err, hint))
	return true
}
