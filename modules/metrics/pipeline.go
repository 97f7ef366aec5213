package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stages of chat_pipeline_stage_seconds, in the order a message passes
// them on its way from a STOMP SEND to its subscribers' sockets.
const (
	// StageCommandPublish: a STOMP SEND's command, from Submit until the
	// command queue has durably accepted it (RabbitMQ's confirm, or the
	// committed row).
	StageCommandPublish = "command_publish"
	// StageCommit: a batch of queued commands stored in one transaction
	// (group commit, the outbox rows with it).
	StageCommit = "commit"
	// StageForward: an event's commit to the outbox until the forwarder
	// publishes it to the relay: the forwarder's wake-up and read.
	StageForward = "forward"
	// StageRelay: the forwarder's publish until this instance's relay
	// consumer has the event (RabbitMQ, or the in-process relay).
	StageRelay = "relay"
	// StageHub: the hub's fan-out of one event into its local
	// connections' queues.
	StageHub = "hub"
	// StageWrite: the event reaching the hub until its frame is handed to
	// a connection's socket (the writer's wake-up, encoding and write),
	// the first frame of each write.
	StageWrite = "write"
)

// NewPipelineStageSeconds returns chat_pipeline_stage_seconds, unregistered.
// Every module that times stages registers it with Register, so that they
// share one histogram per registry.
func NewPipelineStageSeconds() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "chat_pipeline_stage_seconds",
		Help: "Time a message spends in each stage from a STOMP SEND to its subscribers' sockets " +
			"(command_publish, commit, forward, relay, hub, write).",
		// 25 µs to ~0.8 s.
		Buckets: prometheus.ExponentialBuckets(25e-6, 2, 16),
	}, []string{"stage"})
}

// StageTimer observes one stage of chat_pipeline_stage_seconds.
type StageTimer struct{ o prometheus.Observer }

// Stage resolves one stage's series once, so that observing does no label lookup.
func Stage(vec *prometheus.HistogramVec, stage string) StageTimer {
	return StageTimer{o: vec.WithLabelValues(stage)}
}

// Since observes the time since start.
func (s StageTimer) Since(start time.Time) { s.o.Observe(time.Since(start).Seconds()) }

// Observe observes d.
func (s StageTimer) Observe(d time.Duration) { s.o.Observe(d.Seconds()) }
