package reference_test

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/chatspec/chatspec/reference"
)

// Start a reference server on a free loopback port, check it, stop it.
func ExampleStart() {
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	running, err := reference.Start(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer running.Stop(context.Background())

	resp, err := http.Get(running.URL() + "/healthz")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.StatusCode, " ", string(body))
	// Output: 200 {"status":"ok","store":"ok"}
}
