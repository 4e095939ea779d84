// Command chatspec verifies and load-tests real-time chat servers built on
// Socket.IO, and runs the reference chat server they are measured against.
//
//	chatspec serve   run the reference chat server
//	chatspec verify  check a server against spec/CONTRACT.md
//	chatspec load    simulate many users and measure what they feel
//	chatspec merge   merge the shards of a sharded load run into one report
//
// main only wires the process to run; everything else takes a context and
// writers so that tests can drive every subcommand.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// lastWordsTimeout bounds the report a second signal still writes: a
// report directory takes milliseconds, and a stuck disk must not keep the
// process from exiting.
const lastWordsTimeout = 5 * time.Second

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal asks the running subcommand to stop gracefully
		// (it still writes its report); a second one writes the report with
		// what is there (the subcommand's last words) and exits.
		sig := <-signals
		fmt.Fprintf(os.Stderr, "\nchatspec: %s received: stopping (press Ctrl-C again to exit now)\n", sig)
		cancel()
		<-signals
		fmt.Fprintln(os.Stderr, "chatspec: second signal: writing what was measured, then exiting")
		sayLastWords(lastWordsTimeout)
		os.Exit(ExitInterrupted)
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
