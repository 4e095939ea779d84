//go:build tools

// Package tools pins the modules chatspec is built on, so `go mod tidy` keeps
// them while packages are being written. It is never compiled.
package tools

import (
	_ "github.com/HdrHistogram/hdrhistogram-go"
	_ "github.com/coder/websocket"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/onsi/ginkgo/v2"
	_ "github.com/onsi/gomega"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/vbauerster/mpb/v8"
	_ "github.com/zishang520/socket.io/adapters/redis/v3"
	_ "github.com/zishang520/socket.io/clients/socket/v3"
	_ "github.com/zishang520/socket.io/parsers/engine/v3"
	_ "github.com/zishang520/socket.io/parsers/socket/v3"
	_ "github.com/zishang520/socket.io/servers/socket/v3"
	_ "go.uber.org/goleak"
)
