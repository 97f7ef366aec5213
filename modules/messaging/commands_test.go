package messaging

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/store/storetest"
)

// fakeSender records queued sends. Content "reject" is a validation
// failure; content "flaky" fails as unavailable on its first three tries.
type fakeSender struct {
	mu       sync.Mutex
	stored   map[string]bool // clientMessageId -> stored
	order    []string        // clientMessageIds in the order first stored
	attempts map[string]int
	calls    int
}

func newFakeSender() *fakeSender {
	return &fakeSender{stored: map[string]bool{}, attempts: map[string]int{}}
}

func (s *fakeSender) SendQueued(_ context.Context, sends []chat.QueuedSend) ([]chat.Appended, error) {
	out := make([]chat.Appended, len(sends))
	for i, q := range sends {
		msg, created, err := s.sendOne(q.UserID, q.Request)
		out[i] = chat.Appended{Message: msg, Created: created, Err: err}
	}
	return out, nil
}

func (s *fakeSender) sendOne(userID string, req chat.SendRequest) (chat.Message, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.attempts[req.ClientMessageID]++
	switch {
	case req.Content == "reject":
		return chat.Message{}, false, &chat.Error{Kind: chat.ErrInvalid, Code: "invalid_content", Detail: "rejected by the test"}
	case req.Content == "flaky" && s.attempts[req.ClientMessageID] <= 3:
		return chat.Message{}, false, fmt.Errorf("append message: %w", chat.ErrUnavailable)
	}
	if s.stored[req.ClientMessageID] {
		return chat.Message{SenderID: userID}, false, nil
	}
	s.stored[req.ClientMessageID] = true
	s.order = append(s.order, req.ClientMessageID)
	return chat.Message{SenderID: userID}, true, nil
}

func (s *fakeSender) snapshot() (order []string, attempts map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	attempts = map[string]int{}
	for k, v := range s.attempts {
		attempts[k] = v
	}
	return append([]string(nil), s.order...), attempts
}

func (s *fakeSender) waitStored(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		order, _ := s.snapshot()
		if len(order) >= n {
			return order
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d commands stored", len(order), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var commandCases = []struct {
	name    string
	storage func(testing.TB) config.Storage
	relay   string
}{
	{"sqlite_sql_queue", storetest.NewSQLite, config.RelayMemory},
	{"postgres_sql_queue", storetest.NewPostgres, config.RelayMemory},
	{"postgres_amqp_queue", storetest.NewPostgres, config.RelayAMQP},
}

// TestCommands submits chat.send commands on one instance and checks that
// they are stored in order, once, by a consumer on either instance; that a
// rejected command becomes an error event for its sender; and that a
// transient failure is retried until it works.
func TestCommands(t *testing.T) {
	for _, tc := range commandCases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t, tc.storage(t), tc.relay)
			sender := newFakeSender()
			a := startInstance(t, s, "a", withSender(sender))
			ins := []*instance{a}
			if tc.relay == config.RelayAMQP {
				ins = append(ins, startInstance(t, s, "b", withSender(sender)))
			}
			ctx := context.Background()

			const n = 200
			for i := range n {
				req := chat.SendRequest{SessionID: "s", Content: "hello", ClientMessageID: fmt.Sprintf("c-%03d", i)}
				if err := a.m.Commands().Submit(ctx, "alice", req); err != nil {
					t.Fatalf("submit %d: %v", i, err)
				}
			}
			order := sender.waitStored(t, n)
			for i, id := range order[:n] {
				if want := fmt.Sprintf("c-%03d", i); id != want {
					t.Fatalf("stored #%d is %s, want %s (order %v)", i, id, want, order[:i+1])
				}
			}

			if err := a.m.Commands().Submit(ctx, "carol", chat.SendRequest{SessionID: "s", Content: "reject", ClientMessageID: "bad-1"}); err != nil {
				t.Fatal(err)
			}
			if err := a.m.Commands().Submit(ctx, "alice", chat.SendRequest{SessionID: "s", Content: "flaky", ClientMessageID: "flaky-1"}); err != nil {
				t.Fatal(err)
			}
			sender.waitStored(t, n+1)
			_, attempts := sender.snapshot()
			if attempts["flaky-1"] != 4 {
				t.Errorf("flaky command tried %d times, want 4 (3 failures, then stored)", attempts["flaky-1"])
			}
			if attempts["bad-1"] < 1 {
				t.Errorf("rejected command never tried")
			}
			for _, in := range ins {
				evs := in.hub.waitFor(t, 30*time.Second, "the error event on "+in.name, func(evs []chat.Event) bool {
					return errorEvent(evs) != nil
				})
				ev := errorEvent(evs)
				time.Sleep(100 * time.Millisecond) // a second report would arrive by now
				if n := countErrors(in.hub.snapshot()); n != 1 {
					t.Errorf("%s got %d error events, want 1: a rejection is reported once, however often its batch is retried", in.name, n)
				}
				if len(ev.Participants) != 1 || ev.Participants[0] != "carol" {
					t.Errorf("error event goes to %v, want [carol]", ev.Participants)
				}
				if ev.Problem.Code != "invalid_content" || ev.Problem.ClientMessageID != "bad-1" || ev.Problem.Status != 400 {
					t.Errorf("error event problem %+v", *ev.Problem)
				}
			}
		})
	}
}

func countErrors(evs []chat.Event) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == chat.EventError {
			n++
		}
	}
	return n
}

func errorEvent(evs []chat.Event) *chat.Event {
	for _, ev := range evs {
		if ev.Type == chat.EventError && ev.Problem != nil {
			return &ev
		}
	}
	return nil
}

// TestSubmitUnavailable: Submit fails with chat.ErrUnavailable, quickly,
// before start and while RabbitMQ is unreachable, and works again after.
func TestSubmitUnavailable(t *testing.T) {
	s := newSetup(t, storetest.NewPostgres(t), config.RelayAMQP)
	db := openStore(t, s.storage)
	m, err := New(Params{DB: db.SQL, Storage: s.storage, Relay: s.relay, Outbox: s.outbox, Commands: s.commands})
	if err != nil {
		t.Fatal(err)
	}
	req := chat.SendRequest{SessionID: "s", Content: "hi", ClientMessageID: "c-1"}
	if err := m.Commands().Submit(context.Background(), "alice", req); !errors.Is(err, chat.ErrUnavailable) {
		t.Errorf("submit before start: %v, want ErrUnavailable", err)
	}

	px, viaProxy := newAMQPProxy(t, s.relay.AMQP.URL)
	sender := newFakeSender()
	a := startInstance(t, s, "a", withSender(sender), withAMQPURL(viaProxy))
	px.Cut()
	waitRelayDown(t, a)
	start := time.Now()
	if err := a.m.Commands().Submit(context.Background(), "alice", req); !errors.Is(err, chat.ErrUnavailable) {
		t.Errorf("submit while RabbitMQ is cut: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("submit took %s to fail", d)
	}
	px.Restore()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := a.m.Commands().Submit(context.Background(), "alice", req)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("submit after restore: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	sender.waitStored(t, 1)
}

// TestDeadBrokerFailsStart: a RabbitMQ that does not answer fails Start
// with an error naming it.
func TestDeadBrokerFailsStart(t *testing.T) {
	s := newSetup(t, storetest.NewSQLite(t), config.RelayMemory)
	s.relay = config.Relay{Driver: config.RelayAMQP, AMQP: config.AMQP{URL: "amqp://guest:secret@127.0.0.1:1/", Exchange: "amq.topic"}}
	db := openStore(t, s.storage)
	m, err := New(Params{DB: db.SQL, Storage: s.storage, Relay: s.relay, Outbox: s.outbox, Commands: s.commands})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = m.Start(ctx, newRecordingHub(), noSender{})
	if err == nil {
		_ = m.Stop(ctx)
		t.Fatal("start succeeded without a broker")
	}
	if !strings.Contains(err.Error(), "RabbitMQ") || strings.Contains(err.Error(), "secret") {
		t.Errorf("start error %q: want it to name RabbitMQ and hide the password", err)
	}
}
