package reference

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string // substring of the error
	}{
		{"empty addr", func(c *Config) { c.Addr = "" }, "Addr is empty"},
		{"addr without port", func(c *Config) { c.Addr = "localhost" }, `Addr "localhost" is not host:port`},
		{"path without slash", func(c *Config) { c.Path = "socket.io/" }, "must start with /"},
		{"path without trailing slash", func(c *Config) { c.Path = "/socket.io" }, "ending with /"},
		{"root path", func(c *Config) { c.Path = "/" }, "ending with /"},
		{"path with query", func(c *Config) { c.Path = "/s?x=1/" }, "plain path"},
		{"init path under path", func(c *Config) { c.InitPath = "/socket.io/init" }, "lies under Path"},
		{"init path root", func(c *Config) { c.InitPath = "/" }, "every unknown path"},
		{"init path is healthz", func(c *Config) { c.InitPath = "/healthz" }, "/healthz is reserved"},
		{"path is metrics", func(c *Config) { c.Path = "/metrics/" }, "/metrics is reserved"},
		{"username limit", func(c *Config) { c.MaxUsernameLen = 0 }, "MaxUsernameLen must be at least 1, got 0"},
		{"message limit", func(c *Config) { c.MaxMessageLen = -1 }, "MaxMessageLen must be at least 1, got -1"},
		{"history", func(c *Config) { c.HistoryLimit = 0 }, "HistoryLimit must be at least 1, got 0"},
		{"buffer too small", func(c *Config) { c.MaxHTTPBufferSize = 1000 }, "MaxHTTPBufferSize 1000 is too small"},
		{"ping interval", func(c *Config) { c.PingInterval = 0 }, "PingInterval must be positive"},
		{"ping timeout", func(c *Config) { c.PingTimeout = -time.Second }, "PingTimeout must be positive"},
		{"cors origin", func(c *Config) { c.CORSOrigins = []string{"chat.example"} }, `CORS origin "chat.example"`},
		{"cors origin with path", func(c *Config) { c.CORSOrigins = []string{"https://chat.example/app"} }, "CORS origin"},
		{"no transports", func(c *Config) { c.Transports = nil }, "Transports is empty"},
		{"unknown transport", func(c *Config) { c.Transports = []string{"webtransport"} }, `unknown transport "webtransport"`},
		{"duplicate transport", func(c *Config) { c.Transports = []string{"polling", "polling"} }, "listed twice"},
		{"negative rate", func(c *Config) { c.Rate = -1 }, "Rate must not be negative"},
		{"negative compression threshold", func(c *Config) { c.HTTPCompressionThreshold = -1 }, "HTTPCompressionThreshold must not be negative"},
		{"zero burst", func(c *Config) { c.RateBurst = 0 }, "RateBurst must be at least 1"},
		{"negative max conns", func(c *Config) { c.MaxConnections = -1 }, "MaxConnections must not be negative"},
		{"negative per ip", func(c *Config) { c.MaxConnectionsPerIP = -1 }, "MaxConnectionsPerIP must not be negative"},
		{"shutdown timeout", func(c *Config) { c.ShutdownTimeout = 0 }, "ShutdownTimeout must be positive"},
		{"store timeout", func(c *Config) { c.StoreTimeout = 0 }, "StoreTimeout must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mutate(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
			if _, err := New(cfg); err == nil {
				t.Fatalf("New accepted an invalid config")
			}
		})
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
	}{
		{"no init path", func(c *Config) { c.InitPath = "" }},
		{"rate off with no burst", func(c *Config) { c.Rate, c.RateBurst = 0, 0 }},
		{"any origin", func(c *Config) { c.CORSOrigins = []string{"*", "https://a.example:8443"} }},
		{"websocket only", func(c *Config) { c.Transports = []string{"websocket"} }},
	} {
		t.Run("valid/"+tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mutate(&cfg)
			if err := cfg.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
		})
	}
}

func TestTokenBucket(t *testing.T) {
	clock := &fakeClock{}
	b := newTokenBucket(10, 2, clock.now)
	if !b.allow() || !b.allow() || b.allow() {
		t.Fatal("a bucket of 2 did not allow exactly 2 at once")
	}
	clock.advance(100 * time.Millisecond)
	if !b.allow() || b.allow() {
		t.Fatal("100 ms at 10/s did not give back exactly one token")
	}
	clock.advance(time.Hour)
	if !b.allow() || !b.allow() || b.allow() {
		t.Fatal("a long pause refilled beyond the burst")
	}
	var none *tokenBucket
	if none != newTokenBucket(0, 0, clock.now) || !none.allow() {
		t.Fatal("rate 0 must mean no limit")
	}
}
