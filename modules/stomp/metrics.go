package stomp

import (
	sharedmetrics "github.com/chat-service/chat/modules/metrics"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the STOMP gateway. Command labels are bounded to the STOMP
// commands; counters are resolved once so the hot path does no label lookup.
type metrics struct {
	connections   prometheus.Gauge
	subscriptions prometheus.Gauge
	framesIn      *prometheus.CounterVec
	framesOut     *prometheus.CounterVec
	slowConsumers prometheus.Counter
	dropped       *prometheus.CounterVec
	in            map[string]prometheus.Counter
	outMessage    prometheus.Counter
	outReceipt    prometheus.Counter
	outConnected  prometheus.Counter
	outError      prometheus.Counter
	outHeartbeat  prometheus.Counter
	droppedTyping prometheus.Counter
	pipeline      *prometheus.HistogramVec // chat_pipeline_stage_seconds, shared with messaging
	stageHub      sharedmetrics.StageTimer
	stageWrite    sharedmetrics.StageTimer
	resyncs       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chat_stomp_connections", Help: "Open STOMP connections on this instance.",
		}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chat_stomp_subscriptions", Help: "Active STOMP subscriptions on this instance.",
		}),
		framesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_stomp_frames_in_total", Help: "STOMP frames received, by command.",
		}, []string{"command"}),
		framesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_stomp_frames_out_total", Help: "STOMP frames and heart-beats sent, by command.",
		}, []string{"command"}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chat_stomp_slow_consumer_disconnects_total", Help: "Connections closed because their outbound queue overflowed.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_stomp_dropped_events_total", Help: "Transient events dropped under back-pressure, by event type.",
		}, []string{"type"}),
		pipeline: sharedmetrics.NewPipelineStageSeconds(),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chat_stomp_resynced_subscriptions_total", Help: "Subscriptions recovered from the store after the relay may have lost events.",
		}),
	}
	if reg != nil {
		var err error
		if m.connections, err = sharedmetrics.Register(reg, m.connections); err != nil {
			return nil, err
		}
		if m.subscriptions, err = sharedmetrics.Register(reg, m.subscriptions); err != nil {
			return nil, err
		}
		if m.framesIn, err = sharedmetrics.Register(reg, m.framesIn); err != nil {
			return nil, err
		}
		if m.framesOut, err = sharedmetrics.Register(reg, m.framesOut); err != nil {
			return nil, err
		}
		if m.slowConsumers, err = sharedmetrics.Register(reg, m.slowConsumers); err != nil {
			return nil, err
		}
		if m.dropped, err = sharedmetrics.Register(reg, m.dropped); err != nil {
			return nil, err
		}
		if m.pipeline, err = sharedmetrics.Register(reg, m.pipeline); err != nil {
			return nil, err
		}
		if m.resyncs, err = sharedmetrics.Register(reg, m.resyncs); err != nil {
			return nil, err
		}
	}
	m.stageHub = sharedmetrics.Stage(m.pipeline, sharedmetrics.StageHub)
	m.stageWrite = sharedmetrics.Stage(m.pipeline, sharedmetrics.StageWrite)
	m.in = make(map[string]prometheus.Counter, len(knownCommands))
	for _, c := range knownCommands {
		m.in[c] = m.framesIn.WithLabelValues(c)
	}
	m.outMessage = m.framesOut.WithLabelValues(frame.MESSAGE)
	m.outReceipt = m.framesOut.WithLabelValues(frame.RECEIPT)
	m.outConnected = m.framesOut.WithLabelValues(frame.CONNECTED)
	m.outError = m.framesOut.WithLabelValues(frame.ERROR)
	m.outHeartbeat = m.framesOut.WithLabelValues("heartbeat")
	m.droppedTyping = m.dropped.WithLabelValues("typing")
	return m, nil
}
