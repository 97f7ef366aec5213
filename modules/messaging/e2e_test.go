package messaging

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	sharedmetrics "github.com/chat-service/chat/modules/metrics"
	"github.com/chat-service/chat/modules/profiles"
)

// TestSendThroughQueue is the STOMP chat.send path with the real domain
// service: Submit → command queue → chat.Service.SendQueued (message row and
// outbox event in one transaction) → forwarder → relay → hub. On SQLite the
// consumer's writes run while its queue poll is open, which must not
// deadlock SQLite's single writer.
func TestSendThroughQueue(t *testing.T) {
	for _, tc := range deliveryCases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t, tc.storage(t), tc.relay)
			sender := &lazySender{}
			a := startInstance(t, s, "a", withSender(sender))
			svc, err := chat.NewService(chat.Deps{
				Store: a.store, Events: a.m.Events(), Profiles: openDirectory{},
				Limits:   config.Limits{MaxMessageBytes: 4096, MaxParticipants: 100, RatePerSecond: 1000, Burst: 1000},
				Recovery: config.Recovery{MaxMessages: 1000},
			})
			if err != nil {
				t.Fatal(err)
			}
			sender.s.Store(svc)
			sessions := a.createSessions(t, 1, users...)
			ctx := context.Background()

			const n = 100
			for i := range n {
				req := chat.SendRequest{SessionID: sessions[0], Content: fmt.Sprintf("hi %d", i), ClientMessageID: fmt.Sprintf("c-%d", i)}
				if err := a.m.Commands().Submit(ctx, "alice", req); err != nil {
					t.Fatal(err)
				}
				if i == 10 { // a client retry: the same clientMessageId again
					if err := a.m.Commands().Submit(ctx, "alice", req); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := a.m.Commands().Submit(ctx, "alice", chat.SendRequest{SessionID: sessions[0], Content: "", ClientMessageID: "empty"}); err != nil {
				t.Fatal(err)
			}
			evs := a.hub.waitFor(t, 60*time.Second, "every queued message and the error", func(evs []chat.Event) bool {
				n2, _ := uniqueMessages(evs)
				return n2 >= n && errorEvent(evs) != nil
			})
			want := make([]int64, n)
			for i := range want {
				want[i] = int64(i + 1)
			}
			if got := messagesBySession(evs)[sessions[0]]; !slices.Equal(got, want) {
				t.Errorf("seqs %v, want 1..%d once each, in order", got, n)
			}
			if p := errorEvent(evs).Problem; p.Code != "invalid_content" || p.ClientMessageID != "empty" {
				t.Errorf("error event %+v", *p)
			}
			// Every stage of the way was timed in chat_pipeline_stage_seconds.
			for _, stage := range []string{sharedmetrics.StageCommandPublish, sharedmetrics.StageCommit,
				sharedmetrics.StageForward, sharedmetrics.StageRelay} {
				if n := stageCount(t, a.m.metrics.pipeline, stage); n == 0 {
					t.Errorf("chat_pipeline_stage_seconds{stage=%q}: nothing observed", stage)
				}
			}
		})
	}
}

// lazySender is a Sender set after the instance starts.
type lazySender struct{ s atomic.Pointer[chat.Service] }

func (l *lazySender) SendQueued(ctx context.Context, sends []chat.QueuedSend) ([]chat.Appended, error) {
	return l.s.Load().SendQueued(ctx, sends)
}

// openDirectory knows no profiles and allows every pairing.
type openDirectory struct{}

func (openDirectory) Lookup(context.Context, []string) map[string]profiles.Profile { return nil }
func (openDirectory) CanChat(context.Context, string, string) bool                 { return true }

// stageCount is how many observations one stage of the pipeline histogram holds.
func stageCount(t *testing.T, vec *prometheus.HistogramVec, stage string) uint64 {
	t.Helper()
	var m dto.Metric
	if err := vec.WithLabelValues(stage).(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}
