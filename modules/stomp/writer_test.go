package stomp_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chat-service/chat/modules/stomp"
	"github.com/chat-service/chat/modules/stomp/stomptest"
)

// TestIdleConnectionsKeepOneGoroutine: a connected, subscribed connection
// with nothing to write has its reader and no writer goroutine; a delivery
// still reaches it, and it still closes cleanly.
func TestIdleConnectionsKeepOneGoroutine(t *testing.T) {
	e := newEnv(t, func(o *stomp.Options) { o.Limits.MaxConnsPerUser = 0 })
	sid := e.b.CreateSession("alice", "bob")
	settle := func() int {
		var n int
		for range 50 { // goroutines of earlier drains and timers end on their own
			n = runtime.NumGoroutine()
			time.Sleep(5 * time.Millisecond)
			if runtime.NumGoroutine() == n {
				break
			}
		}
		return n
	}
	before := settle()
	const conns = 40
	trs := make([]interface{ Next(testing.TB) *frame.Frame }, 0, conns)
	for range conns {
		tr := e.connect(t, "bob")
		subscribe(t, tr, "t", stomp.TopicSessionPrefix+sid)
		trs = append(trs, tr)
	}
	// Serve's goroutine is each connection's reader; the fake transport
	// has none of its own. A writer lingers a while after its last write.
	deadline := time.Now().Add(stomptest.Wait)
	for got := settle() - before; got > conns+5; got = settle() - before {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle connections hold %d goroutines; want about one each", conns, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.b.Publish(sid, "alice", "hello")
	for _, tr := range trs {
		if f := tr.Next(t); f.Command != frame.MESSAGE {
			t.Fatalf("got %s, want MESSAGE", f.Command)
		}
	}
}

// TestPipelineStagesTimed: a delivery is timed in the hub and in the
// writer (chat_pipeline_stage_seconds{stage="hub"} and {stage="write"}).
func TestPipelineStagesTimed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sid := e.b.CreateSession("alice", "bob")
	bob := e.connect(t, "bob")
	subscribe(t, bob, "t", stomp.TopicSessionPrefix+sid)
	e.b.Publish(sid, "alice", "hello")
	expectMessage(t, bob, stomp.TopicSessionPrefix+sid, 1)
	eventually(t, "the write stage", func() bool { return stageCount(t, e.reg, "write") > 0 })
	if n := stageCount(t, e.reg, "hub"); n == 0 {
		t.Fatal("hub stage not observed")
	}
}

func stageCount(t *testing.T, reg *prometheus.Registry, stage string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "chat_pipeline_stage_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" && l.GetValue() == stage {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}
