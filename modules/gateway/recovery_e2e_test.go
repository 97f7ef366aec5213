package gateway_test

import (
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	stompc "github.com/go-stomp/stomp/v3"
	"github.com/gorilla/websocket"
	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/platform/platformtest"
	"github.com/chat-service/chat/modules/stomp"
	"github.com/chat-service/chat/modules/store/storetest"
)

type instance struct {
	ws  string
	svc *chat.Service
}

func startInstance(t *testing.T, cfg config.Config) instance {
	t.Helper()
	var svc *chat.Service
	app := platformtest.Start(t, cfg, fx.Populate(&svc))
	return instance{ws: "ws" + strings.TrimPrefix(app.URL, "http"), svc: svc}
}

// TestRecoveryAcrossReconnect: a subscriber drops while 300 messages flow
// and comes back with since-seq, on the embedded default and, on
// PostgreSQL + RabbitMQ, on the other of two instances. Across both
// connections it sees seq 1..300 in order, no gap and no duplicate.
func TestRecoveryAcrossReconnect(t *testing.T) { acrossDeployments(t, recoverAcross) }

// acrossDeployments runs fn with two instances: on the embedded default the
// same one twice, on PostgreSQL + RabbitMQ two of them over one database.
// Send limits are raised: the tests drive many sends from few users.
func acrossDeployments(t *testing.T, fn func(t *testing.T, a, b instance)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		cfg := platformtest.Config(t, storetest.NewSQLite(t))
		cfg.Limits.RatePerSecond, cfg.Limits.Burst = 10000, 10000
		a := startInstance(t, cfg)
		fn(t, a, a)
	})
	t.Run("postgres_amqp_two_instances", func(t *testing.T) {
		t.Parallel()
		db := storetest.NewPostgres(t)
		amqpURL := os.Getenv("TEST_CHAT_AMQP_URL")
		if amqpURL == "" {
			t.Skip("needs TEST_CHAT_AMQP_URL")
		}
		newCfg := func() config.Config {
			cfg := platformtest.Config(t, db)
			cfg.Limits.RatePerSecond, cfg.Limits.Burst = 10000, 10000
			cfg.Relay.Driver, cfg.Relay.AMQP.URL = "amqp", amqpURL
			return cfg
		}
		fn(t, startInstance(t, newCfg()), startInstance(t, newCfg()))
	})
}

func recoverAcross(t *testing.T, first, second instance) {
	const total = 300
	sess, _, err := first.svc.CreateSession(t.Context(), "alice", chat.CreateSessionRequest{Participants: []string{"bob"}})
	if err != nil {
		t.Fatal(err)
	}
	dial := func(in instance) (*stompc.Conn, *websocket.Conn) {
		ws, _, err := websocket.DefaultDialer.Dial(in.ws+"/ws?access_token="+url.QueryEscape(platformtest.Token(t, "bob")), nil)
		if err != nil {
			t.Fatal(err)
		}
		return connectOver(t, ws), ws
	}

	bob, bobWS := dial(first)
	sub, err := bob.Subscribe(stomp.TopicSessionPrefix+sess.ID, stompc.AckAuto, stompc.SubscribeOpt.Header("since-seq", "0"))
	if err != nil {
		t.Fatal(err)
	}
	barrier(t, bob, sess.ID)

	// alice sends all 300, paced so that they are still flowing when bob drops.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= total; i++ {
			if _, _, err := first.svc.Send(t.Context(), "alice", chat.SendRequest{SessionID: sess.ID, Content: "m" + strconv.Itoa(i)}); err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	defer wg.Wait()

	var seen []int64
	take := func(sub *stompc.Subscription, until func() bool) {
		deadline := time.After(60 * time.Second)
		for !until() {
			select {
			case m, ok := <-sub.C:
				if !ok || m == nil || m.Err != nil {
					t.Fatalf("subscription ended after seq %v: %v", last(seen), m)
				}
				ev := eventOf(t, m.Body)
				if ev.Type == chat.EventResync {
					t.Fatalf("resync instead of replay after %d messages", len(seen))
				}
				if ev.Type == chat.EventMessage {
					seen = append(seen, ev.Message.Seq)
				}
			case <-deadline:
				t.Fatalf("stuck after seqs up to %v of %d", last(seen), total)
			}
		}
	}
	take(sub, func() bool { return len(seen) >= 100 })
	// The connection drops without a goodbye while messages keep coming.
	if err := bobWS.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	time.Sleep(50 * time.Millisecond)

	bob2, _ := dial(second)
	sub2, err := bob2.Subscribe(stomp.TopicSessionPrefix+sess.ID, stompc.AckAuto,
		stompc.SubscribeOpt.Header("since-seq", strconv.FormatInt(last(seen), 10)))
	if err != nil {
		t.Fatal(err)
	}
	take(sub2, func() bool { return last(seen) >= total })

	for i, s := range seen {
		if s != int64(i+1) {
			t.Fatalf("seqs are not 1..%d in order without gaps or duplicates: position %d has %d (%v...)", total, i, s, seen[max(0, i-3):min(len(seen), i+3)])
		}
	}
	if len(seen) != total {
		t.Fatalf("saw %d messages, want %d", len(seen), total)
	}
}

func last(s []int64) int64 {
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1]
}
