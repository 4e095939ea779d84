package reference

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus series. Names are prefixed
// chatspec_reference_ so they do not clash with a host program's.
type metrics struct {
	connections        prometheus.Gauge
	users              prometheus.Gauge
	messages           prometheus.Counter
	deliveries         prometheus.Counter
	broadcastBytes     prometheus.Counter
	rejected           *prometheus.CounterVec
	refusedConnections *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chatspec_reference_connections",
			Help: "Sockets connected to this server's main namespace.",
		}),
		users: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chatspec_reference_users",
			Help: "Usernames in the connected-user list, as last seen by this server.",
		}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chatspec_reference_messages_total",
			Help: "Messages accepted and appended to history.",
		}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chatspec_reference_deliveries_total",
			Help: "messageWritten events queued to this server's sockets (messages times recipients).",
		}),
		broadcastBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chatspec_reference_broadcast_bytes_total",
			Help: "History bytes of accepted messages times their recipients: the output the chat-wide --broadcast-rate bounds.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatspec_reference_rejected_events_total",
			Help: "Client events refused with chatError, by code (CONTRACT.md ERR-1).",
		}, []string{"code"}),
		refusedConnections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatspec_reference_refused_connections_total",
			Help: "Sockets refused at connect time, by the cap that refused them.",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.connections, m.users, m.messages, m.deliveries, m.broadcastBytes, m.rejected, m.refusedConnections} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Pre-create every code's series so dashboards see zeros, not gaps.
	for _, code := range []string{CodeInvalidPayload, CodeInvalidUsername, CodeMessageTooLong, CodeNotJoined,
		CodeUsernameMismatch, CodeRateLimited, CodeUnknownEvent, CodeServerBusy, CodeInternal} {
		m.rejected.WithLabelValues(code)
	}
	for _, reason := range []string{"total", "per_ip"} {
		m.refusedConnections.WithLabelValues(reason)
	}
	// A registry supplied by the caller may already hold the Go and
	// process collectors; that is not an error.
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			if are := (prometheus.AlreadyRegisteredError{}); !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}
