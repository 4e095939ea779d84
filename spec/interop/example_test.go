package interop_test

import (
	"context"
	"fmt"
	"log"

	"github.com/chatspec/chatspec/spec/interop"
)

// A suite that verifies servers can use the Node server as a second,
// independently written target. The directory is relative to the caller's
// package (here spec/interop); from the module root it is
// "spec/testdata/nodeserver".
func ExampleStartNodeServer() {
	ctx := context.Background()
	srv, err := interop.StartNodeServer(ctx, "../testdata/nodeserver", "--port", "0", "--lazy", "--history-limit", "50")
	if err != nil {
		log.Fatal(err) // wraps interop.ErrNodeSetup when Node or node_modules is missing
	}
	defer srv.Stop()
	fmt.Println("verify", srv.URL())
}

// The official socket.io-client's verdict on any target.
func ExampleRunCheck() {
	ctx := context.Background()
	rep, err := interop.RunCheck(ctx, "../testdata/jsclient", "http://127.0.0.1:3000",
		"--transport", "upgrade", "--init-path", "/api/socket")
	if err != nil {
		log.Fatal(err) // no report at all: Node missing, check.js crashed
	}
	for _, line := range rep.Failures {
		fmt.Println(line) // "FAIL USER-4 ...: expected ..., got ..."
	}
	fmt.Printf("%d passed, %d failed\n", rep.Passed, rep.Failed)
}
