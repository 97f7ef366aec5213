package messaging

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	sharedmetrics "github.com/chat-service/chat/modules/metrics"
)

// metrics are messaging's Prometheus series (namespace chat).
type metrics struct {
	outboxLagRows     prometheus.Gauge
	outboxLagSeconds  prometheus.Gauge
	forwarded         prometheus.Counter
	forwardFailures   prometheus.Counter
	forwardDelay      prometheus.Histogram
	pruned            *prometheus.CounterVec
	relayUpGauge      *prometheus.GaugeVec
	relayReceived     prometheus.Counter
	relayResyncs      prometheus.Counter
	commands          *prometheus.CounterVec
	commandRetries    prometheus.Counter
	commandQueueDepth prometheus.Gauge
	commandBatch      prometheus.Histogram
	pipeline          *prometheus.HistogramVec // chat_pipeline_stage_seconds, shared with the STOMP hub
	stagePublish      sharedmetrics.StageTimer
	stageCommit       sharedmetrics.StageTimer
	stageForward      sharedmetrics.StageTimer
	stageRelay        sharedmetrics.StageTimer
}

func newMetrics() *metrics {
	m := &metrics{
		pipeline: sharedmetrics.NewPipelineStageSeconds(),
		outboxLagRows: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "chat", Subsystem: "outbox", Name: "lag_rows",
			Help: "Outbox rows not yet forwarded to the relay.",
		}),
		outboxLagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "chat", Subsystem: "outbox", Name: "lag_seconds",
			Help: "Age of the oldest outbox row not yet forwarded (0 when none).",
		}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "chat", Subsystem: "outbox", Name: "forwarded_total",
			Help: "Outbox events published to the relay by this instance.",
		}),
		forwardFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "chat", Subsystem: "outbox", Name: "forward_failures_total",
			Help: "Failed attempts to publish an outbox event to the relay (each is retried).",
		}),
		forwardDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "chat", Subsystem: "outbox", Name: "forward_delay_seconds",
			Help:    "Time from an event's commit to the outbox until the relay accepted it.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "chat", Subsystem: "outbox", Name: "pruned_rows_total",
			Help: "Forwarded rows deleted after outbox.retention, by table.",
		}, []string{"table"}),
		relayUpGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "chat", Subsystem: "relay", Name: "up",
			Help: "1 while the relay connection is up, by connection (publish, consume).",
		}, []string{"connection"}),
		relayReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "chat", Subsystem: "relay", Name: "received_total",
			Help: "Relay events handed to this instance's hub.",
		}),
		relayResyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "chat", Subsystem: "relay", Name: "resyncs_total",
			Help: "Times the relay consumer resumed after a possible loss and the hub recovered messages from the store.",
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "chat", Subsystem: "commands", Name: "processed_total",
			Help: "chat.send commands taken from the queue, by result (stored, duplicate, rejected).",
		}, []string{"result"}),
		commandRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "chat", Subsystem: "commands", Name: "retries_total",
			Help: "chat.send commands retried after a transient failure (database unavailable).",
		}),
		commandBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "chat", Subsystem: "commands", Name: "batch_size",
			Help:    "chat.send commands stored per batch (one transaction each, up to commands.prefetch).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		commandQueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "chat", Subsystem: "commands", Name: "sql_queue_rows",
			Help: "Rows of the SQL command queue not yet consumed (SQL queue only).",
		}),
	}
	m.stages()
	return m
}

// stages resolves the pipeline stages this module times.
func (m *metrics) stages() {
	m.stagePublish = sharedmetrics.Stage(m.pipeline, sharedmetrics.StageCommandPublish)
	m.stageCommit = sharedmetrics.Stage(m.pipeline, sharedmetrics.StageCommit)
	m.stageForward = sharedmetrics.Stage(m.pipeline, sharedmetrics.StageForward)
	m.stageRelay = sharedmetrics.Stage(m.pipeline, sharedmetrics.StageRelay)
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.outboxLagRows, m.outboxLagSeconds, m.forwarded, m.forwardFailures,
		m.forwardDelay, m.pruned, m.relayUpGauge, m.relayReceived, m.relayResyncs, m.commands, m.commandRetries, m.commandQueueDepth, m.commandBatch}
}

// register adds the series to reg; a nil reg registers nothing.
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	var errs []error
	for _, c := range m.collectors() {
		errs = append(errs, reg.Register(c))
	}
	// The pipeline histogram is shared with the hub on the same registry.
	var err error
	if m.pipeline, err = sharedmetrics.Register(reg, m.pipeline); err != nil {
		errs = append(errs, err)
	}
	m.stages()
	return errors.Join(errs...)
}

func (m *metrics) relayUp(conn string) func(bool) {
	g := m.relayUpGauge.WithLabelValues(conn)
	return func(up bool) {
		if up {
			g.Set(1)
		} else {
			g.Set(0)
		}
	}
}
